"""Notify: alert transitions delivered to webhooks and e-mail, never lost, never doubled.

The roles:

- the **outbox** (:mod:`plantcast.store.notifications`): every alert transition (opened,
  acknowledged, resolved, reopened) queues one row per destination in the alert's own
  transaction, with its body frozen and a unique idempotency key;
- **channels** (:mod:`.webhook`, :mod:`.mail`): one delivery attempt of one row; a webhook is
  POSTed with an HMAC-SHA256 signature of the exact body (:mod:`.signing`), an e-mail goes
  through the SMTP server of the settings;
- the **sender** (:mod:`.sender`, ``plantcast notify run``): picks due rows, delivers them,
  marks them delivered only after the receiver accepted them (2xx / SMTP accepted), and
  otherwise retries with exponential backoff. A row delivered but not yet marked when the sender
  dies is sent again, under the same key: receivers drop repeats of a key they have seen.

Like the other surfaces it reads and writes through the store only.
"""

from plantcast.notify.destinations import add_destination, send_test
from plantcast.notify.sender import Sender, SendStats
from plantcast.notify.signing import SIGNATURE_HEADER, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "SendStats",
    "Sender",
    "add_destination",
    "send_test",
    "sign",
    "verify",
]

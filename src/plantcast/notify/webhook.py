"""One webhook delivery: POST the frozen body, signed, under its idempotency key."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from plantcast import __version__
from plantcast.core.errors import InputError
from plantcast.notify.signing import EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign


class DeliveryError(Exception):
    """A delivery that did not go through; its message is stored as the row's last error."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be replayed as a GET without its body: treat 3xx as a failure.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"not an http(s) URL: {url!r}", field="url")
    return url


def post(url: str, body: str, *, key: str, event: str, secret: str | None, timeout: float) -> int:
    """POST ``body``; returns the 2xx status, raises :class:`DeliveryError` otherwise."""
    data = body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"plantcast/{__version__}",
        IDEMPOTENCY_HEADER: key,
        EVENT_HEADER: event,
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, data)
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason} from {url}") from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"cannot reach {url}: {exc.reason}") from None
    except (TimeoutError, ConnectionError, OSError) as exc:
        raise DeliveryError(f"cannot reach {url}: {exc}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from {url}")
    return status

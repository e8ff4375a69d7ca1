"""Webhook signatures: HMAC-SHA256 of the exact body bytes, hex, as ``sha256=<hex>``."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Plantcast-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Plantcast-Event"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body`` under ``secret``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute over the raw body and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)

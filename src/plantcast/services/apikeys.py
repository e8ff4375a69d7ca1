"""API keys for the REST API: issue a random token (shown once), check one, revoke one.

A token is 32 random bytes (URL-safe base64, prefixed ``pc_``); the store keeps only its
SHA-256, which is enough for a high-entropy secret (no salt or slow hash needed: there is no
dictionary to guess from). Scopes nest: ``admin`` ⊃ ``write`` ⊃ ``read``.
"""

from __future__ import annotations

import hashlib
import secrets

from plantcast.core.errors import InputError
from plantcast.store import Store
from plantcast.store.apikeys import ApiKey

SCOPES = ("read", "write", "admin")
TOKEN_PREFIX = "pc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``read,write`` → ('read', 'write'); unknown scopes are an InputError."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    scopes = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InputError(
            f"unknown scope(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SCOPES)}",
            field="scopes",
        )
    return scopes


def grants(scopes: tuple[str, ...], needed: str) -> bool:
    """True when a key with ``scopes`` may do what ``needed`` allows (admin ⊃ write ⊃ read)."""
    rank = {s: i for i, s in enumerate(SCOPES)}
    return any(rank[s] >= rank[needed] for s in scopes if s in rank)


def create_key(store: Store, name: str, scopes) -> tuple[ApiKey, str]:
    """A new key and its token; the token is not stored and cannot be shown again."""
    if not name.strip():
        raise InputError("a key needs a name", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = store.add_api_key(name.strip(), token[:10], hash_token(token), parse_scopes(scopes))
    return key, token


def check_token(store: Store, token: str) -> ApiKey | None:
    """The active key with this token, or None (unknown or revoked)."""
    if not token:
        return None
    key = store.find_api_key(hash_token(token))
    return key if key is not None and key.active else None

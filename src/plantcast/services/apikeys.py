"""API keys for the REST API: issue a random token (shown once), check one, revoke one.

A token is 32 random bytes (URL-safe base64, prefixed ``pc_``); the store keeps only its
SHA-256, which is enough for a high-entropy secret (no salt or slow hash needed: there is no
dictionary to guess from). Scopes nest: ``admin`` ⊃ ``write`` ⊃ ``read``. A key made for a user
(``--user``) carries that user's role instead (plantcast.services.users), read at each request.
Creating and revoking a key each write one audit entry.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from plantcast.core.errors import InputError
from plantcast.services.audit import SYSTEM, jsonable
from plantcast.services.users import ROLES, scope_role
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


ROLE_SCOPES = {
    "viewer": ("read",),
    "operator": ("read", "write"),
    "admin": ("read", "write", "admin"),
}


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: the key, the name its changes are audited under, its role."""

    key: ApiKey
    actor: str  # the key's user, or "key:<name>" for a key made without one
    role: str | None


def _key_record(key: ApiKey, user: str | None) -> dict:
    return (
        jsonable({"name": key.name, "prefix": key.prefix, "scopes": list(key.scopes), "user": user})
        or {}
    )


def create_key(
    store: Store, name: str, scopes=None, *, user: str | None = None, actor: str = SYSTEM
) -> tuple[ApiKey, str]:
    """A new key and its token; the token is not stored and cannot be shown again. With
    ``user`` the key carries that user's role (its scopes are only what the role had then)."""
    if not name.strip():
        raise InputError("a key needs a name", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.transaction() as tx:
        owner = None if user is None else tx.get_user(user.strip())
        if owner is not None and not owner.active:
            raise InputError(f"user {owner.name!r} is disabled", field="user")
        if owner is not None and scopes is not None:
            raise InputError(
                "a key made for a user carries the user's role; give --scopes only without --user",
                field="scopes",
            )
        if owner is not None:
            granted = ROLE_SCOPES[owner.role] if owner.role in ROLES else ("read",)
        else:
            granted = parse_scopes("read" if scopes is None else scopes)
        key = tx.add_api_key(
            name.strip(),
            token[:10],
            hash_token(token),
            granted,
            None if owner is None else owner.id,
        )
        owner_name = None if owner is None else owner.name
        tx.audit(actor, "key.create", f"key:{key.id}", None, _key_record(key, owner_name))
    return key, token


def revoke_key(store: Store, key_id: int, *, actor: str = SYSTEM) -> ApiKey:
    """Revoke a key: requests with it answer 401 from then on."""
    with store.transaction() as tx:
        key = tx.revoke_api_key(key_id)
        after = jsonable({"revoked_at": key.revoked_at})
        tx.audit(actor, "key.revoke", f"key:{key.id}", None, after)
    return key


def check_token(store: Store, token: str) -> ApiKey | None:
    """The active key with this token, or None (unknown or revoked)."""
    if not token:
        return None
    key = store.find_api_key(hash_token(token))
    return key if key is not None and key.active else None


def caller_of(store: Store, token: str) -> Caller | None:
    """Who a token acts as, or None: unknown, revoked, or its user disabled or gone."""
    key = check_token(store, token)
    if key is None:
        return None
    if key.user_id is None:
        return Caller(key, f"key:{key.name}", scope_role(key.scopes))
    with store.transaction(readonly=True) as tx:
        owner = tx.user_by_id(key.user_id)
    if owner is None or not owner.active:
        return None
    return Caller(key, owner.name, owner.role)

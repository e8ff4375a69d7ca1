"""API keys: rows holding a token's SHA-256 (never the token), its scopes and revocation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, inspect, select, update

from plantcast.core.errors import NotFound
from plantcast.core.timeutil import utcnow
from plantcast.store.schema import api_keys


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: pd.Timestamp
    revoked_at: pd.Timestamp | None
    last_used_at: pd.Timestamp | None
    user_id: int | None = None  # the user whose role the key carries (None: its scopes')

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _to_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(s for s in row.scopes.split(",") if s),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        user_id=row.user_id,
    )


def add_api_key(
    conn: Connection,
    name: str,
    prefix: str,
    token_hash: str,
    scopes: tuple[str, ...],
    user_id: int | None = None,
) -> ApiKey:
    values = {
        "name": name,
        "prefix": prefix,
        "token_hash": token_hash,
        "scopes": ",".join(scopes),
        "user_id": user_id,
    }
    key_id = conn.execute(api_keys.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]  # never None after an INSERT
    return _to_key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())


def list_api_keys(conn: Connection) -> list[ApiKey]:
    return [_to_key(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]


def find_api_key(conn: Connection, token_hash: str) -> ApiKey | None:
    row = conn.execute(select(api_keys).where(api_keys.c.token_hash == token_hash)).first()
    return None if row is None else _to_key(row)


def revoke_api_key(conn: Connection, key_id: int) -> ApiKey:
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    if row.revoked_at is None:
        conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=utcnow()))
    return _to_key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())


def touch_api_key(conn: Connection, key_id: int) -> None:
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=utcnow()))


def upgrade(conn: Connection) -> list[str]:
    """Bring an older ``api_keys`` table up to this schema (``user_id`` came later: keys made
    before keep the role of their scopes). Returns what was done."""
    columns = {c["name"] for c in inspect(conn).get_columns("api_keys")}
    if "user_id" in columns:
        return []
    conn.exec_driver_sql("ALTER TABLE api_keys ADD COLUMN user_id INTEGER REFERENCES users(id)")
    return ["api_keys.user_id added"]

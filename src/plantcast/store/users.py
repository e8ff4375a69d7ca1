"""Users: a login name and a role; disabled rather than deleted (the audit log names them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, select

from plantcast.core.errors import NotFound
from plantcast.core.timeutil import utcnow
from plantcast.store.schema import users


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    created_at: pd.Timestamp
    disabled_at: pd.Timestamp | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def _to_user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def find_user(conn: Connection, name: str) -> User | None:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return None if row is None else _to_user(row)


def get_user(conn: Connection, name: str) -> User:
    found = find_user(conn, name)
    if found is None:
        raise NotFound(f"no user named {name!r} (plantcast users list shows them)")
    return found


def user_by_id(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None else _to_user(row)


def list_users(conn: Connection) -> list[User]:
    return [_to_user(r) for r in conn.execute(select(users).order_by(users.c.name))]


def insert_user(conn: Connection, name: str, role: str) -> User:
    conn.execute(users.insert().values(name=name, role=role))
    return get_user(conn, name)


def set_user_role(conn: Connection, name: str, role: str) -> User:
    conn.execute(users.update().where(users.c.name == name).values(role=role))
    return get_user(conn, name)


def disable_user(conn: Connection, name: str) -> User:
    conn.execute(
        users.update()
        .where((users.c.name == name) & users.c.disabled_at.is_(None))
        .values(disabled_at=utcnow())
    )
    return get_user(conn, name)

"""Who is using the page, and with which role (roles are decided in plantcast.services.users).

With OpenID Connect configured (``PLANTCAST_OIDC_*``, plantcast.core.oidc) the person is the one
logged in (``st.login``): named by the ``preferred_username``, ``email`` or ``sub`` claim, with
the role the ``PLANTCAST_OIDC_ROLE_CLAIM`` claim gives, else their role in the users table,
else viewer; a user disabled in the table is refused. Without login (the page bound to
127.0.0.1) the person is the one at this machine, as on the command line: ``PLANTCAST_USER`` or
the login name, with their role in the users table, or ``admin`` when the table does not name
them (the CLI on this machine can do as much).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import streamlit as st

from plantcast.core import oidc
from plantcast.dashboard import state
from plantcast.services import users
from plantcast.services.audit import cli_actor

NAME_CLAIMS = ("preferred_username", "email", "sub")


@dataclass(frozen=True)
class Person:
    name: str
    role: str | None  # None: a disabled user (may do nothing)
    logged_in: bool  # through OpenID Connect

    def can(self, action: str) -> bool:
        return users.can(self.role, action)


def login_required() -> bool:
    return oidc.configured()


def logged_in() -> bool:
    """Logged in through ``st.login`` (st.user holds nothing at all outside a served page)."""
    return bool(st.user.to_dict().get("is_logged_in"))


def _claimed_role(claims: dict[str, Any]) -> str | None:
    claim = os.environ.get(oidc.ROLE_CLAIM, "").strip()
    value = claims.get(claim) if claim else None
    given = [value] if isinstance(value, str) else list(value or [])
    found = [r for r in users.ROLES if r in given]
    return found[-1] if found else None  # the highest role the claim names


def person() -> Person:
    store = state.store()
    if not login_required():
        name = cli_actor()
        return Person(name, users.role_of(store, name) or "admin", logged_in=False)
    claims = {k: v for k, v in st.user.to_dict().items()}
    name = next((str(claims[c]) for c in NAME_CLAIMS if claims.get(c)), "unknown")
    with store.transaction(readonly=True) as tx:
        user = tx.find_user(name)
    if user is not None and not user.active:
        return Person(name, None, logged_in=True)
    role = _claimed_role(claims) or (user.role if user is not None else None) or "viewer"
    return Person(name, role, logged_in=True)


def read_only_note(who: Person, action: str) -> None:
    """A line saying why the controls of ``action`` are disabled (nothing when they are not)."""
    if not who.can(action):
        needed = users.needed_role(action)
        st.caption(
            f"{who.name} is a {who.role or 'disabled user'}: {action} needs {needed} or above."
        )


def admin_page(action: str) -> Person | None:
    """The person on an admins' page (users, keys, the audit log): None, with why said on
    the page, when nobody is there yet or their role may not ``action``."""
    who = state.load(person)
    if who is None:
        return None
    if not who.can(action):
        st.info(f"{who.name} is a {who.role or 'disabled user'}: this page is for admins.")
        return None
    return who

"""Who is using the page, and with which role (roles are decided in plantcast.services.users).

Without login (the page bound to 127.0.0.1) the person is the one at this machine, as on the
command line: ``PLANTCAST_USER`` or the login name, with their role in the users table, or
``admin`` when the table does not name them (the CLI on this machine can do as much).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from plantcast.dashboard import state
from plantcast.services import users
from plantcast.services.audit import cli_actor


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    logged_in: bool  # through OpenID Connect

    def can(self, action: str) -> bool:
        return users.can(self.role, action)


def person() -> Person:
    name = cli_actor()
    role = users.role_of(state.store(), name) or "admin"
    return Person(name, role, logged_in=False)


def read_only_note(who: Person, action: str) -> None:
    """A line saying why the controls of ``action`` are disabled (nothing when they are not)."""
    if not who.can(action):
        needed = users.needed_role(action)
        st.caption(f"{who.name} is a {who.role}: {action} needs {needed} or above.")

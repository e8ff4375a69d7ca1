"""Users and roles: who may do what. THE one place roles are decided (CLI, API and page).

Roles nest, ``viewer`` < ``operator`` < ``admin``: viewers read; operators acknowledge, assign,
comment, label, silence, annotate and import; admins also manage users, keys, limits, assets,
notification destinations and read the audit log. An action is named like its audit entry
(``alert.acknowledge``, ``silence.add``); its family (the part before the dot) decides the role
it needs. An API key made for a user carries that user's role (read at each request: a new role
or a disabled user takes effect at once); a key made without one has the role of its scopes
(read → viewer, write → operator, admin → admin).
"""

from __future__ import annotations

from plantcast.core.errors import Forbidden, InputError
from plantcast.services.audit import jsonable
from plantcast.store import Store
from plantcast.store.users import User

ROLES = ("viewer", "operator", "admin")

# The role each family of actions needs (an action is "family.verb", or a family alone).
NEEDS = {
    "read": "viewer",
    "write": "operator",  # data writes: readings, imports, injected events, forecasts
    "alert": "operator",
    "silence": "operator",
    "annotation": "operator",
    "import": "operator",
    "event": "operator",
    "admin": "admin",
    "limit": "admin",
    "asset": "admin",
    "key": "admin",
    "user": "admin",
    "audit": "admin",
    "destination": "admin",
}
SCOPE_ROLES = {"read": "viewer", "write": "operator", "admin": "admin"}


def needed_role(action: str) -> str:
    """The least role that may do ``action`` (``alert.label`` → operator)."""
    family = action.split(".", 1)[0]
    try:
        return NEEDS[family]
    except KeyError:
        raise ValueError(f"unknown action {action!r}; families: {', '.join(NEEDS)}") from None


def can(role: str | None, action: str) -> bool:
    """True when ``role`` may do ``action``; an unknown or missing role may do nothing."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed_role(action))


def require(role: str | None, action: str, who: str) -> None:
    """Raise :class:`Forbidden` (the API answers 403) unless ``role`` may do ``action``."""
    if not can(role, action):
        has = f"has the role {role}" if role in ROLES else "has no role"
        needed = needed_role(action)
        raise Forbidden(
            f"{who} {has}; {action} needs {needed} or above",
            role=role if role in ROLES else None,
            needed=needed,
        )


def scope_role(scopes: tuple[str, ...] | list[str]) -> str | None:
    """The role of a key made without a user: its highest scope's."""
    found = [SCOPE_ROLES[s] for s in scopes if s in SCOPE_ROLES]
    return max(found, key=ROLES.index) if found else None


def parse_role(text: str) -> str:
    role = text.strip().lower()
    if role not in ROLES:
        raise InputError(f"unknown role {text!r}; choose one of {', '.join(ROLES)}", field="role")
    return role


def _name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise InputError("a user name is 1 to 200 printable characters", field="name")
    return name


def role_of(store: Store, name: str | None) -> str | None:
    """The role of an active user, or None (unknown, disabled or no name)."""
    if not name:
        return None
    with store.transaction(readonly=True) as tx:
        user = tx.find_user(name.strip())
    return user.role if user is not None and user.active else None


def get_user(store: Store, name: str) -> User:
    with store.transaction(readonly=True) as tx:
        return tx.get_user(name.strip())


def list_users(store: Store) -> list[User]:
    with store.transaction(readonly=True) as tx:
        return tx.list_users()


def _record(user: User) -> dict:
    return {"name": user.name, "role": user.role, "disabled_at": user.disabled_at}


def add_user(store: Store, name: str, role: str, *, actor: str) -> User:
    """A new user with ``role``; a name already taken is refused."""
    name, role = _name(name), parse_role(role)
    with store.transaction() as tx:
        if tx.find_user(name) is not None:
            raise InputError(f"a user named {name!r} exists already", field="name")
        user = tx.insert_user(name, role)
        tx.audit(actor, "user.add", f"user:{name}", None, jsonable(_record(user)))
    return user


def set_role(store: Store, name: str, role: str, *, actor: str) -> User:
    role = parse_role(role)
    with store.transaction() as tx:
        before = tx.get_user(name.strip())
        user = tx.set_user_role(before.name, role)
        tx.audit(actor, "user.set_role", f"user:{user.name}", {"role": before.role}, {"role": role})
    return user


def disable(store: Store, name: str, *, actor: str) -> User:
    """Disable a user: no login, and their API keys answer 401 (kept for the audit log)."""
    with store.transaction() as tx:
        before = tx.get_user(name.strip())
        user = tx.disable_user(before.name)
        tx.audit(
            actor,
            "user.disable",
            f"user:{user.name}",
            jsonable({"disabled_at": before.disabled_at}),
            jsonable({"disabled_at": user.disabled_at}),
        )
    return user

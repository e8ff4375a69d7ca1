"""Admin routes: users and their roles, API keys, and the audit log of who changed what."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from plantcast.api.auth import actor_of, require
from plantcast.api.models import (
    AuditEntryOut,
    KeyIn,
    KeyMade,
    KeyOut,
    Rfc3339,
    RoleIn,
    UserIn,
    UserOut,
)
from plantcast.api.problems import COMMON, NOT_FOUND
from plantcast.api.routes.common import NO_NUL, store_of, utc
from plantcast.services import apikeys
from plantcast.services import audit as audit_service
from plantcast.services import users as service

router = APIRouter(tags=["people"])
UserName = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="User")]
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Key id")]
USER = require("user")
KEY = require("key")
AUDIT = require("audit")


def _user_out(u) -> UserOut:
    return UserOut(name=u.name, role=u.role, created_at=u.created_at, disabled_at=u.disabled_at)


@router.get("/users", response_model=list[UserOut], responses=COMMON, dependencies=[USER])
def list_users(request: Request) -> list[UserOut]:
    """Every user by name, with role and whether disabled."""
    return [_user_out(u) for u in service.list_users(store_of(request))]


@router.post(
    "/users", response_model=UserOut, status_code=201, responses=COMMON, dependencies=[USER]
)
def add_user(request: Request, body: UserIn) -> UserOut:
    """Add a user with a role."""
    user = service.add_user(store_of(request), body.name, body.role, actor=actor_of(request))
    return _user_out(user)


@router.put(
    "/users/{name}/role",
    response_model=UserOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[USER],
)
def set_role(request: Request, name: UserName, body: RoleIn) -> UserOut:
    """Change a user's role (their keys carry it from the next request)."""
    user = service.set_role(store_of(request), name, body.role, actor=actor_of(request))
    return _user_out(user)


@router.post(
    "/users/{name}/disable",
    response_model=UserOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[USER],
)
def disable_user(request: Request, name: UserName) -> UserOut:
    """Disable a user: their keys answer 401 from now on."""
    return _user_out(service.disable(store_of(request), name, actor=actor_of(request)))


def _key_out(k, owners: dict[int, str]) -> dict:
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": list(k.scopes),
        "user": owners.get(k.user_id) if k.user_id else None,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "revoked_at": k.revoked_at,
    }


def _owners(request: Request) -> dict[int, str]:
    return {u.id: u.name for u in service.list_users(store_of(request))}


@router.get("/keys", response_model=list[KeyOut], responses=COMMON, dependencies=[KEY])
def list_keys(request: Request) -> list[KeyOut]:
    """Every key (never its token)."""
    owners = _owners(request)
    return [KeyOut(**_key_out(k, owners)) for k in store_of(request).list_api_keys()]


@router.post(
    "/keys",
    response_model=KeyMade,
    status_code=201,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[KEY],
)
def create_key(request: Request, body: KeyIn) -> KeyMade:
    """A new key; its token is in this answer only."""
    key, token = apikeys.create_key(
        store_of(request), body.name, body.scopes, user=body.user, actor=actor_of(request)
    )
    return KeyMade(**_key_out(key, _owners(request)), token=token)


@router.delete(
    "/keys/{key_id}",
    response_model=KeyOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[KEY],
)
def revoke_key(request: Request, key_id: KeyId) -> KeyOut:
    """Revoke a key."""
    key = apikeys.revoke_key(store_of(request), key_id, actor=actor_of(request))
    return KeyOut(**_key_out(key, _owners(request)))


@router.get("/audit", response_model=list[AuditEntryOut], responses=COMMON, dependencies=[AUDIT])
def list_audit(
    request: Request,
    since: Rfc3339 | None = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=60, pattern=NO_NUL)] = None,
    target: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditEntryOut]:
    """The audit log, newest first; ``action`` ending in ``.`` matches a family."""
    found = audit_service.entries(
        store_of(request),
        since=None if since is None else utc(since, "since"),
        actor=actor,
        action=action,
        target=target,
        limit=limit,
    )
    return [
        AuditEntryOut(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            target=e.target,
            before=e.before,
            after=e.after,
        )
        for e in found
    ]

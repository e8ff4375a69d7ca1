"""API keys on every route but /health: ``Authorization: Bearer <key>`` or ``X-API-Key``.

No key, an unknown or a revoked one (or one whose user is disabled) → 401; a key whose role
cannot do the route's action → 403 naming both (``plantcast.services.users`` decides: a key made
for a user has the user's role, one made without has its scopes'). Only the
token's SHA-256 is looked up (``plantcast.services.apikeys``); ``last_used_at`` is written at
most once a minute per key, so a busy client does not turn every read into a write.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from plantcast.api.problems import ApiProblem
from plantcast.services.apikeys import Caller, caller_of
from plantcast.services.users import can, needed_role

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")
TOUCH_EVERY_S = 60.0
_touch_lock = threading.Lock()


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _touch(request: Request, key) -> None:
    now = time.monotonic()
    touched = request.app.state.key_touched  # key id -> when last written, per app
    with _touch_lock:
        if now - touched.get(key.id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        touched[key.id] = now
    with contextlib.suppress(Exception):  # bookkeeping only: never fail a request over it
        request.app.state.store.touch_api_key(key.id)


def require(action: str):
    """A dependency that answers 401/403 unless the request's key may do ``action`` (an action
    or family of plantcast.services.users: ``read``, ``write``, ``admin``, ``alert.label``…).
    The caller is also left on ``request.state.caller`` (its actor names audit entries)."""
    needed_role(action)  # an unknown action fails at import, not at the first request

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> Caller:
        tokens = [t for t in (header, bearer.credentials if bearer else None) if t]
        if not tokens:
            raise _unauthorized("an API key is needed: Authorization: Bearer <key> or X-API-Key")
        store = request.app.state.store
        caller = None
        for token in tokens:
            caller = caller_of(store, token)
            if caller is not None:
                break
        if caller is None:
            raise _unauthorized("unknown or revoked API key (or its user is disabled)")
        if not can(caller.role, action):
            has = f"the role {caller.role!r}" if caller.role else "no role"
            raise ApiProblem(
                403,
                "forbidden",
                "Forbidden",
                f"{action} needs the role {needed_role(action)!r} or above; key "
                f"{caller.key.name!r} (acting as {caller.actor}) has {has}",
                role=caller.role,
                needed=needed_role(action),
            )
        request.state.caller = caller
        _touch(request, caller.key)
        return caller

    return Depends(dependency)


def actor_of(request: Request) -> str:
    """Who the request's changes are audited under (set by the route's dependency)."""
    return request.state.caller.actor


READ = require("read")
WRITE = require("write")
ADMIN = require("admin")

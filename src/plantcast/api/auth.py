"""API keys on every route but /health: ``Authorization: Bearer <key>`` or ``X-API-Key``.

No key, an unknown or a revoked one → 401; a key without the route's scope → 403. Only the
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
from plantcast.services.apikeys import check_token, grants
from plantcast.store.apikeys import ApiKey

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")
TOUCH_EVERY_S = 60.0
_touch_lock = threading.Lock()


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _touch(request: Request, key: ApiKey) -> None:
    now = time.monotonic()
    touched = request.app.state.key_touched  # key id -> when last written, per app
    with _touch_lock:
        if now - touched.get(key.id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        touched[key.id] = now
    with contextlib.suppress(Exception):  # bookkeeping only: never fail a request over it
        request.app.state.store.touch_api_key(key.id)


def require(scope: str):
    """A dependency that answers 401/403 unless the request carries a key with ``scope``."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        header: Annotated[str | None, Security(_header)],
    ) -> ApiKey:
        tokens = [t for t in (header, bearer.credentials if bearer else None) if t]
        if not tokens:
            raise _unauthorized("an API key is needed: Authorization: Bearer <key> or X-API-Key")
        store = request.app.state.store
        key = None
        for token in tokens:
            key = check_token(store, token)
            if key is not None:
                break
        if key is None:
            raise _unauthorized("unknown or revoked API key")
        if not grants(key.scopes, scope):
            raise ApiProblem(
                403,
                "forbidden",
                "Forbidden",
                f"this route needs the {scope!r} scope; the key has {', '.join(key.scopes)}",
            )
        _touch(request, key)
        return key

    return Depends(dependency)


READ = require("read")
WRITE = require("write")
ADMIN = require("admin")

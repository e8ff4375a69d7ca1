"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantcast.core.errors import (
    Forbidden,
    InputError,
    NotEnoughData,
    NotFound,
    PlantcastError,
    Refused,
    StoreUnavailable,
)

log = logging.getLogger(__name__)
PROBLEM_TYPE = "urn:plantcast:problem:"
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """What went wrong, for people (title, detail) and programs (type, status, field)."""

    type: str = Field(description="A URI naming the kind of problem (urn:plantcast:problem:…).")
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="The request field at fault, when one is.")
    line: int | None = Field(None, description="CSV bodies: the line at fault (1 is the header).")
    limit: int | None = Field(None, description="The limit exceeded, when a limit was.")
    errors: list[dict] | None = Field(None, description="Every validation error, when several.")
    role: str | None = Field(None, description="403: the role the caller has.")
    needed: str | None = Field(None, description="403: the least role the action needs.")


class ApiProblem(Exception):
    """Raised by routes: answered as a problem with this status."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **extra) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = (
            status,
            kind,
            title,
            detail,
            extra,
        )


def problem_response(
    status: int, kind: str, title: str, detail: str, headers: dict | None = None, **extra
) -> JSONResponse:
    body = Problem(type=PROBLEM_TYPE + kind, title=title, status=status, detail=detail, **extra)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": Problem.model_json_schema()}},
    }


# The problems every authenticated route may answer, for the OpenAPI document.
COMMON: dict[int | str, dict[str, Any]] = {
    401: _problem_doc("No API key, an unknown one or a revoked one"),
    403: _problem_doc("The key's role (its user's, or its scopes') cannot do this"),
    413: _problem_doc("The request body is larger than the limit"),
    422: _problem_doc("Invalid input: the field at fault is named"),
    503: _problem_doc("The database cannot be reached right now"),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _problem_doc("No such sensor or alert")}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _problem_doc("Not allowed on this object (e.g. injection into imported data)")
}


def _field_of(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or ".".join(map(str, loc))


# Validation errors whose context holds the maximum exceeded, by error type: the problem's limit.
_MAXIMA = {
    "less_than_equal": "le",
    "less_than": "lt",
    "too_long": "max_length",
    "string_too_long": "max_length",
}


def _not_json(error: dict, body) -> dict:
    """A body that is not JSON: no field of it is at fault; where it breaks goes in the message.
    FastAPI puts the character offset in ``loc`` (``("body", 9)``); pydantic's own parse (the
    readings batch) says the line and column in its message."""
    loc = error.get("loc", ())
    pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    if pos is None:
        where = str(error.get("msg", "")).removeprefix("Invalid JSON: ")
    else:
        reason = str((error.get("ctx") or {}).get("error", "invalid JSON"))
        text = body if isinstance(body, str) else ""
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        where = f"{reason} at line {line} column {column} (character {pos})"
    return {"field": "body", "message": f"the body is not valid JSON: {where}"}


def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors: list[dict[str, Any]] = [
        _not_json(e, getattr(exc, "body", None))
        if e.get("type") == "json_invalid"
        else {"field": _field_of(e.get("loc", ())), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    first: dict[str, Any] = errors[0] if errors else {"field": None, "message": "invalid request"}
    detail = str(first["message"])
    if first["field"] and first["field"] != "body":
        detail = f"{first['field']}: {detail}"
    extra: dict[str, Any] = {}
    if exc.errors():
        e = exc.errors()[0]
        maximum = (e.get("ctx") or {}).get(_MAXIMA.get(e.get("type"), ""))
        if isinstance(maximum, int | float) and float(maximum).is_integer():
            extra["limit"] = int(maximum)
    return problem_response(
        422, "invalid-input", "Invalid input", detail, field=first["field"], errors=errors, **extra
    )


def _plantcast(_request: Request, exc: PlantcastError) -> JSONResponse:
    if isinstance(exc, InputError):
        return problem_response(
            422,
            "invalid-input",
            "Invalid input",
            exc.reason,
            field=exc.field,
            line=exc.line,
        )
    if isinstance(exc, Forbidden):
        return problem_response(
            403, "forbidden", "Forbidden", str(exc), role=exc.role, needed=exc.needed
        )
    for kind, status, slug, title in (
        (NotFound, 404, "not-found", "Not found"),
        (Refused, 409, "refused", "Not allowed on this object"),
        (NotEnoughData, 422, "not-enough-data", "Not enough data"),
        (StoreUnavailable, 503, "store-unavailable", "Database unavailable"),
    ):
        if isinstance(exc, kind):
            return problem_response(status, slug, title, str(exc))
    log.exception("unexpected plantcast error", exc_info=exc)
    return problem_response(500, "internal", "Internal error", str(exc))


def _api_problem(_request: Request, exc: ApiProblem) -> JSONResponse:
    return problem_response(exc.status, exc.kind, exc.title, exc.detail, **exc.extra)


def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:  # FastAPI could not parse the body (not JSON, bad encoding)
        return problem_response(
            422, "invalid-input", "Invalid input", str(exc.detail), field="body"
        )
    titles = {404: "Not found", 405: "Method not allowed"}
    title = titles.get(exc.status_code, "HTTP error")
    slug = title.lower().replace(" ", "-")
    return problem_response(
        exc.status_code, slug, title, str(exc.detail), headers=getattr(exc, "headers", None)
    )


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return problem_response(500, "internal", "Internal error", f"{type(exc).__name__}")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]  # Starlette types handlers for Exception only
    app.add_exception_handler(PlantcastError, _plantcast)  # type: ignore[arg-type]  # Starlette types handlers for Exception only
    app.add_exception_handler(ApiProblem, _api_problem)  # type: ignore[arg-type]  # Starlette types handlers for Exception only
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]  # Starlette types handlers for Exception only
    app.add_exception_handler(Exception, _unexpected)

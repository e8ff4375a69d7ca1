"""The API's limits, named in the problems that enforce them; and the request size guard."""

from __future__ import annotations

import pandas as pd

from plantcast.api.problems import problem_response

MAX_BODY_BYTES = 10 * 1024 * 1024  # a POST body: ~200k CSV readings
MAX_WINDOW = pd.Timedelta("366d")  # a readings window
MAX_BUCKETS = 10_000  # buckets in one answer
MAX_RAW_READINGS = 100_000  # raw readings in one answer (window / nominal interval)
MAX_FORECAST_STEPS = 5_000
MAX_ALERTS_PAGE = 500
DEFAULT_WINDOW = pd.Timedelta("1d")


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, whether Content-Length says so up
    front or a chunked body grows past it while being read."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self):
        return problem_response(
            413,
            "too-large",
            "Request body too large",
            f"the body exceeds the limit of {self.max_bytes:,} bytes",
            limit=self.max_bytes,
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive)
            return await self._too_large()(scope, receive, send)
        # No or a small declared length: read the body here, at most the limit, then replay it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                if message.get("more_body"):
                    await _drain(receive)
                return await self._too_large()(scope, receive, send)
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _drain(receive) -> None:
    """Read and drop what the client sends (bounded), so it sees the answer, not a reset."""
    dropped = 0
    while dropped < 64 * 1024 * 1024:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body"):
            return

"""The lean path of the hottest route, `GET /api/v1/shares/{share_id}` (INTERFACE.md §3).

Pure ASGI, inside the shared middleware (metrics, correlation ids) but before FastAPI's routing,
dependency resolution and exception machinery: it answers the common cases itself — a valid
token, an optional valid `min_version`, then the view's ready-made bytes or the 404 — and hands
everything else (a missing or bad token, a malformed `min_version`) to the regular route in
`http_queries`, which gives the canonical error answers. Same auth, same answers, less work.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.auth import AuthError, api_user_of
from servicekit.faults import is_transient
from servicekit.http import RouteTemplate, unavailable_answer
from share_service.domain.errors import LinkNotFound
from share_service.entrypoints.http_errors import answer_for
from share_service.entrypoints.wiring import wiring

PATH = re.compile(r"^/api/v1/shares/([A-Za-z0-9_-]{1,200})$")
MIN_VERSION = re.compile(r"^min_version=([1-9][0-9]{0,17})$")
NO_STORE = [(b"cache-control", b"private, no-store")]


ROUTE = RouteTemplate("/api/v1/shares/{share_id}")


class HotShareReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._not_found: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        query = scope.get("query_string", b"").decode("latin-1")
        version = MIN_VERSION.match(query) if query else None
        if match is None or (query and version is None):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            api_user_of(request)
        except AuthError:
            await self.app(scope, receive, send)  # the route answers 401/403 canonically
            return
        try:
            body = await wiring(request).read_share_bytes(
                match.group(1), int(version.group(1)) if version else None
            )
        except Exception as error:
            if not is_transient(error):
                raise
            await unavailable_answer()(scope, receive, send)  # as the routes answer it
            return
        scope["route"] = ROUTE
        if body is None:
            await _answer(send, 404, self._not_found_body())
        else:
            await _answer(send, 200, body)

    def _not_found_body(self) -> bytes:
        if self._not_found is None:
            self._not_found = bytes(
                answer_for(LinkNotFound("")).body
            )  # carries nothing of the request
        return self._not_found


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *NO_STORE,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

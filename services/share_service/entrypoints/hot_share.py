"""The lean path of the busiest command, Copy Link: `POST /api/v1/chats/{chat_id}/share`
(INTERFACE.md §3).

Pure ASGI, like `hot_read` and beside it: inside the shared middleware (metrics, correlation
ids), before FastAPI's routing, dependency resolution and body validation, which cost about a
quarter of the API's CPU per command. It answers the common cases itself — a valid token and a
body that is empty, `{}` or `{"chat_version": <n ≥ 1>}` — through the same `copy_link` as the
regular route, with the same error answers. Everything else (no or a bad token, any other body,
another content type) goes to the regular route in `http_commands` with the body as it came, so
401, 403 and 422 are answered canonically.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import AuthError, api_user_of
from servicekit.faults import is_transient
from servicekit.http import RouteTemplate, unavailable_answer
from share_service.domain.errors import ShareServiceError
from share_service.entrypoints.http_commands import MAX_CHAT_VERSION, copy_link
from share_service.entrypoints.http_errors import answer_for
from share_service.entrypoints.wiring import wiring

log = logging.getLogger(__name__)

PATH = re.compile(r"^/api/v1/chats/([^/]+)/share$")
# Bodies the lean path reads itself; a larger one is not `{"chat_version": n}`.
MAX_BODY_BYTES = 256
NOT_PARSED = object()


ROUTE = RouteTemplate("/api/v1/chats/{chat_id}/share")


class HotShareCommands:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            PATH.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _read_small_body(receive)
        request = Request(scope)
        chat_version = NOT_PARSED if body is None else _chat_version(request, body)
        try:
            user = None if chat_version is NOT_PARSED else api_user_of(request)
        except AuthError:
            user = None  # the route answers 401/403 canonically
        if user is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        assert chat_version is None or isinstance(chat_version, int)
        scope["route"] = ROUTE
        try:
            answer, status = await copy_link(
                wiring(request), match.group(1), user.user_id, chat_version
            )
        except ShareServiceError as error:
            await answer_for(error)(scope, receive, send)
            return
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("POST %s met an infrastructure fault: %r", scope["path"], error)
            await unavailable_answer()(scope, receive, send)
            return
        body_out = answer.model_dump_json().encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body_out)).encode()),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": body_out})


async def _read_small_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read, and the body if it was whole and small (else None)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None  # a disconnect: the route deals with it
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _chat_version(request: Request, body: bytes) -> Any:
    """None, a `chat_version` ≥ 1, or NOT_PARSED for anything the route should judge."""
    if not body:
        return None
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";")[0].strip() != "application/json":
        return NOT_PARSED
    try:
        parsed = json.loads(body)
    except ValueError:
        return NOT_PARSED
    if not isinstance(parsed, dict) or set(parsed) - {"chat_version"}:
        return NOT_PARSED
    version = parsed.get("chat_version")
    if version is None or (type(version) is int and 1 <= version <= MAX_CHAT_VERSION):
        return version
    return NOT_PARSED


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as if nothing had been read from it yet."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay

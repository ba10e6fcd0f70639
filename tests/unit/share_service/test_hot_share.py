"""Which Copy Link requests the lean path answers itself, and which it hands to the regular
route (for the canonical 422) with the body as it came. The answers themselves are tested over
HTTP in tests/integration/share_service/test_share_commands_http.py, where both paths run."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request
from starlette.types import Message

from share_service.entrypoints.hot_share import (
    NOT_PARSED,
    _chat_version,
    _read_small_body,
    _replaying,
)


def request_with(content_type: str | None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


@pytest.mark.parametrize(
    ("body", "content_type", "taken"),
    [
        (b"", None, None),
        (b"", "text/plain", None),  # no body: nothing to judge
        (b"{}", "application/json", None),
        (b'{"chat_version": null}', "application/json", None),
        (b'{"chat_version": 7}', "application/json; charset=utf-8", 7),
        (b'{"chat_version": 7}', None, 7),  # FastAPI reads JSON when no type is given
        (b'{"chat_version": 0}', "application/json", NOT_PARSED),
        (b'{"chat_version": 9223372036854775807}', "application/json", 2**63 - 1),
        (b'{"chat_version": 9223372036854775808}', "application/json", NOT_PARSED),  # > bigint
        (b'{"chat_version": true}', "application/json", NOT_PARSED),
        (b'{"chat_version": "2"}', "application/json", NOT_PARSED),
        (b'{"chat_version": 1.0}', "application/json", NOT_PARSED),
        (b'{"chat_version": 1, "extra": 1}', "application/json", NOT_PARSED),
        (b"[1]", "application/json", NOT_PARSED),
        (b"null", "application/json", NOT_PARSED),
        (b" ", "application/json", NOT_PARSED),  # the route says why whitespace is not JSON
        (b"{", "application/json", NOT_PARSED),
        (b'{"chat_version": 7}', "text/plain", NOT_PARSED),
    ],
)
def test_the_lean_path_takes_only_bodies_the_route_would_accept(
    body: bytes, content_type: str | None, taken: object
) -> None:
    assert _chat_version(request_with(content_type), body) == taken


async def test_a_body_handed_on_arrives_whole_at_the_route() -> None:
    sent: list[Message] = [
        {"type": "http.request", "body": b'{"chat_version": ', "more_body": True},
        {"type": "http.request", "body": json.dumps("x" * 300).encode() + b"}", "more_body": False},
    ]
    source = list(sent)

    async def receive() -> Message:
        return source.pop(0)

    read, body = await _read_small_body(receive)
    assert body is None  # too large to be {"chat_version": n}: the route judges it
    replay = _replaying(read, receive)
    assert [await replay(), await replay()] == sent

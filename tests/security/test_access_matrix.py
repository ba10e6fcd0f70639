"""Who may call what: INTERFACE.md §2–§4 as one table — every endpoint of share_service and
settings_service against every kind of caller — run on the real services, the broker and the
database. A failure prints the whole matrix, expected against answered."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.security.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    OTHER,
    OWNER,
    OWNER_TOKEN,
    PENDING,
    PENDING_TOKEN,
    Stack,
)

pytestmark = pytest.mark.integration

# The callers, left to right: the JSON API reads the Authorization header only, so a token sent
# as the `token` cookie counts there as no token at all; only the HTML page reads the cookie.
CALLERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "pending": PENDING,
    "owner": OWNER,
    "other user": OTHER,
    "admin": ADMIN,
    "owner (cookie)": {"Cookie": f"token={OWNER_TOKEN}"},
    "admin (cookie)": {"Cookie": f"token={ADMIN_TOKEN}"},
    "pending (cookie)": {"Cookie": f"token={PENDING_TOKEN}"},
}


@dataclass(frozen=True)
class Row:
    service: str  # "share" or "settings"
    method: str
    path: str  # {chat}, {link}, {request}; {doomed} is a live link of the owner's per caller
    body: dict[str, Any] | None
    expected: tuple[int, ...]  # one status per caller, in CALLERS' order

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


#         anonymous pending owner other admin owner(cookie) admin(cookie) pending(cookie)
MATRIX = [
    Row("share", "POST", "/api/v1/chats/{chat}/share", {},
        (401, 403, 200, 403, 403, 401, 401, 401)),
    Row("share", "PUT", "/api/v1/shares/{link}/snapshot", {},
        (401, 403, 200, 403, 403, 401, 401, 401)),
    Row("share", "GET", "/api/v1/chats/{chat}/share", None,
        (401, 403, 200, 403, 403, 401, 401, 401)),
    Row("share", "DELETE", "/api/v1/shares/{doomed}", None,
        (401, 403, 204, 403, 204, 401, 401, 401)),
    Row("share", "GET", "/api/v1/shares/{link}", None,
        (401, 403, 200, 200, 200, 401, 401, 401)),
    Row("share", "GET", "/api/v1/shares?owner=me", None,
        (401, 403, 200, 200, 200, 401, 401, 401)),
    Row("share", "GET", "/s/{link}", None,
        (302, 403, 200, 200, 200, 200, 200, 403)),
    Row("share", "POST", "/api/v1/chats/{chat}/community-share", {"access": "public"},
        (401, 403, 202, 403, 403, 401, 401, 401)),
    Row("share", "GET", "/api/v1/community-shares/{request}", None,
        (401, 403, 200, 403, 200, 401, 401, 401)),
    Row("settings", "GET", "/api/v1/settings/features", None,
        (401, 403, 200, 200, 200, 401, 401, 401)),
    Row("settings", "PUT", "/api/v1/admin/settings/community-sharing", {"enabled": True},
        (401, 403, 403, 403, 200, 401, 401, 401)),
    Row("settings", "PUT", "/api/v1/admin/settings/tts", {"enabled": False},
        (401, 403, 403, 403, 200, 401, 401, 401)),
    Row("settings", "GET", "/api/v1/admin/settings/history", None,
        (401, 403, 403, 403, 200, 401, 401, 401)),
]  # fmt: skip


@dataclass
class World:
    """What the callers act on: the owner's chat with its live link, a community request (the
    admin has community sharing on), and one more live link per caller for it to delete."""

    chat: str
    link: str
    request: str
    doomed: dict[str, str]

    def path(self, row: Row, caller: str) -> str:
        return row.path.format(
            chat=self.chat, link=self.link, request=self.request, doomed=self.doomed[caller]
        )


async def shared_chat(stack: Stack) -> tuple[str, str]:
    """A chat of the owner's with a live link: (chat_id, share_id)."""
    feed = await stack.share.chat("alice", "hello", "hi there")
    answer = await stack.share.share(feed, OWNER)
    assert answer.status_code == 201, answer.text
    return feed.chat_id, answer.json()["share_id"]


async def community_sharing_on(stack: Stack) -> None:
    """Turned on by the admin on settings_service; waits until share_service's view has it."""
    switched = await stack.settings.client.put(
        "/api/v1/admin/settings/community-sharing", json={"enabled": True}, headers=ADMIN
    )
    assert switched.status_code == 200, switched.text
    async with asyncio.timeout(30):
        while not (await stack.share.app.state.wiring.policy.current()).community_sharing_enabled:
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def world(stack: Stack) -> World:
    (chat, link), *doomed = await asyncio.gather(
        *(shared_chat(stack) for _ in range(1 + len(CALLERS)))
    )
    await community_sharing_on(stack)
    requested = await stack.share.client.post(
        f"/api/v1/chats/{chat}/community-share", json={"access": "public"}, headers=OWNER
    )
    assert requested.status_code == 202, requested.text
    readable = await stack.share.client.get(f"/api/v1/shares/{link}?min_version=1", headers=OWNER)
    assert readable.status_code == 200, "the projection never applied the link"
    return World(
        chat=chat,
        link=link,
        request=requested.json()["request_id"],
        doomed={caller: share_id for caller, (_, share_id) in zip(CALLERS, doomed, strict=True)},
    )


async def call(stack: Stack, row: Row, path: str, headers: dict[str, str]) -> httpx.Response:
    client = stack.share.client if row.service == "share" else stack.settings.client
    return await client.request(row.method, path, json=row.body, headers=headers)


def problem_with(answer: httpx.Response, expected: int) -> str | None:
    """What is wrong with an answer besides its status: refusals of the JSON API say why, and a
    401 says where to log in."""
    if answer.status_code != expected:
        return f"{answer.status_code}"
    if answer.status_code in (401, 403) and "json" in answer.headers.get("content-type", ""):
        body = answer.json()
        if not body.get("detail"):
            return f"{answer.status_code} without detail"
        if answer.status_code == 401 and not body.get("login_url", "").startswith(
            "/auth?redirect="
        ):
            return "401 without login_url"
    if answer.status_code == 302 and not answer.headers["location"].startswith("/auth?redirect="):
        return f"302 to {answer.headers['location']}"
    return None


def render(answered: dict[tuple[str, str], str | None]) -> str:
    width = max(len(row.name) for row in MATRIX)
    cell = max(len(caller) for caller in CALLERS)
    lines = [" " * width + " | " + " | ".join(f"{caller:>{cell}}" for caller in CALLERS)]
    for row in MATRIX:
        cells = []
        for caller, expected in zip(CALLERS, row.expected, strict=True):
            problem = answered[(row.name, caller)]
            shown = f"{expected}" if problem is None else f"✗ {expected}≠{problem}"
            cells.append(f"{shown:>{cell}}")
        lines.append(f"{row.name:<{width}} | " + " | ".join(cells))
    return "\n".join(lines)


async def test_every_caller_gets_what_interface_md_says_on_every_endpoint(
    stack: Stack, world: World
) -> None:
    answered: dict[tuple[str, str], str | None] = {}
    for row in MATRIX:
        for caller, expected in zip(CALLERS, row.expected, strict=True):
            answer = await call(stack, row, world.path(row, caller), CALLERS[caller])
            answered[(row.name, caller)] = problem_with(answer, expected)
    if any(answered.values()):
        pytest.fail("access matrix (expected, ✗ where the answer differed):\n" + render(answered))

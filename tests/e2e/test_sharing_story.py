"""The seed's story end to end, on the services as `make up` runs them: the admin turns
community sharing on; a user shares a chat (Copy Link), views it, shares it to the community,
and deletes the link — dead at once, while the community copy stays."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.chat_feed import ChatFeed, send
from tests.e2e.conftest import RunningStack
from tests.identities import bearer, make_token

pytestmark = pytest.mark.e2e

ADMIN = bearer(make_token("admin-1", "admin"))
OWNER = bearer(make_token("story-owner", "user"))
COLLEAGUE = bearer(make_token("colleague", "user"))


async def eventually(check: object, within: float = 30) -> httpx.Response:
    async with asyncio.timeout(within):
        while True:
            answer = await check()  # type: ignore[operator]
            if answer is not None:
                return answer  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def test_share_view_share_to_community_and_delete(running_stack: RunningStack) -> None:
    settings = httpx.AsyncClient(base_url=running_stack.url("settings_service"), timeout=10)
    share = httpx.AsyncClient(base_url=running_stack.url("share_service"), timeout=10)
    site = httpx.AsyncClient(base_url=running_stack.url("community_standin"), timeout=10)
    turned_on = await settings.put(
        "/api/v1/admin/settings/community-sharing", json={"enabled": True}, headers=ADMIN
    )
    assert turned_on.status_code == 200

    feed = ChatFeed("story-owner")
    created_chat = feed.created("Learning")  # versions count in the order events are made
    question = feed.message("What is event sourcing?")
    answer = feed.message("Storing facts, not state.", role="assistant", model="llama3")
    events = [created_chat, question, answer]
    await send(running_stack.env["CHATSHARE_KAFKA_BOOTSTRAP_SERVERS"], events)

    created = await share.post(
        f"/api/v1/chats/{feed.chat_id}/share", json={"chat_version": feed.version}, headers=OWNER
    )
    assert created.status_code == 201, created.text
    link = created.json()
    view = await share.get(
        f"/api/v1/shares/{link['share_id']}?min_version={link['version']}", headers=COLLEAGUE
    )
    assert view.status_code == 200
    assert [m["content"] for m in view.json()["messages"]] == [
        "What is event sourcing?",
        "Storing facts, not state.",
    ]
    # The login cookie as a browser sends it (httpx deprecates per-request `cookies=`).
    page = await share.get(
        f"/s/{link['share_id']}", headers={"Cookie": f"token={make_token('colleague')}"}
    )
    assert page.status_code == 200
    assert "Storing facts, not state." in page.text

    async def community_request() -> httpx.Response | None:
        answer = await share.post(
            f"/api/v1/chats/{feed.chat_id}/community-share",
            json={"access": "public"},
            headers=OWNER,
        )
        return answer if answer.status_code != 403 else None  # the policy view catches up

    requested = await eventually(community_request)
    assert requested.status_code == 202
    request_id = requested.json()["request_id"]

    async def published() -> httpx.Response | None:
        status = await share.get(f"/api/v1/community-shares/{request_id}", headers=OWNER)
        return (
            status if status.status_code == 200 and status.json()["status"] != "pending" else None
        )

    outcome = (await eventually(published)).json()
    assert outcome["status"] == "published", outcome
    uploads = (await site.get("/api/v1/chats")).json()["items"]
    mine = [u for u in uploads if u["body"]["source"]["request_id"] == request_id]
    assert len(mine) == 1
    assert mine[0]["headers"]["idempotency-key"] == request_id
    assert "history" not in mine[0]["body"]["chat"]

    deleted = await share.delete(f"/api/v1/shares/{link['share_id']}", headers=OWNER)
    assert deleted.status_code == 204
    assert (
        await share.get(f"/api/v1/shares/{link['share_id']}", headers=COLLEAGUE)
    ).status_code == 404
    assert (await share.get(f"/s/{link['share_id']}", headers=COLLEAGUE)).status_code == 404
    after = (await site.get("/api/v1/chats")).json()["items"]
    assert [
        u for u in after if u["body"]["source"]["request_id"] == request_id
    ] == mine  # untouched
    for client in (settings, share, site):
        await client.aclose()

"""share_service's read rows of INTERFACE.md §3, over HTTP, on the real broker and database: the
service's lifespan runs (chat mirror, relay, share projection, policy view), links are made with
the commands, and what readers see comes from the view store the projection keeps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import contracts
from share_service.config import ShareServiceSettings
from tests.chat_feed import ChatFeed
from tests.integration.share_service.share_harness import (
    ADMIN,
    ALICE,
    BOB,
    PENDING,
    PUBLIC_URL,
    ShareService,
    outcome,
    publish,
    running_share_service,
)

pytestmark = pytest.mark.integration

MIN_VERSION_WAIT = 1.0
SHARED_CHAT_FIELDS = {
    "share_id", "chat_id", "owner_id", "title", "messages", "history",
    "created_at", "updated_at", "version", "tts_enabled",
}  # fmt: skip
LINK_FIELDS = {"share_id", "chat_id", "url", "created_at", "updated_at", "version"}


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[ShareService]:
    settings = ShareServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix,
        public_url=PUBLIC_URL, chat_version_wait_seconds=5, min_version_wait_seconds=MIN_VERSION_WAIT,
        kafka_session_timeout_ms=6000,
    )  # fmt: skip
    async with running_share_service(settings) as running:
        yield running


async def read(
    service: ShareService, share_id: str, headers: dict[str, str] = BOB, **params: Any
) -> httpx.Response:
    return await service.client.get(f"/api/v1/shares/{share_id}", params=params, headers=headers)


async def until(service: ShareService, share_id: str, check: Any) -> dict[str, Any]:
    """Read the link until `check(body)` holds (a policy change arrives by Kafka)."""
    deadline = time.monotonic() + 30
    while True:
        answer = await read(service, share_id)
        if answer.status_code == 200 and check(answer.json()):
            return dict(answer.json())
        assert time.monotonic() < deadline, answer.text
        await asyncio.sleep(0.05)


async def test_a_shared_chat_reads_as_its_snapshot_with_the_policy_s_tts_flag(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "Where shall we go?", "Lisbon!")
    link = (await service.share(feed)).json()
    answer = await read(service, link["share_id"], min_version=link["version"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == SHARED_CHAT_FIELDS
    assert (body["share_id"], body["chat_id"], body["owner_id"], body["title"]) == (
        link["share_id"], feed.chat_id, "alice", "Holiday",
    )  # fmt: skip
    assert [m["content"] for m in body["messages"]] == ["Where shall we go?", "Lisbon!"]
    assert set(body["messages"][0]) == {"id", "parent_id", "role", "content", "model", "created_at"}
    assert body["history"]["current_id"] == body["messages"][-1]["id"]
    assert body["history"]["messages"][body["messages"][0]["id"]]["children_ids"] == [
        body["messages"][1]["id"]
    ]
    assert (body["created_at"], body["updated_at"], body["version"]) == (
        link["created_at"], link["updated_at"], 1,
    )  # fmt: skip
    assert body["tts_enabled"] is False
    await service.set_policy(contracts.TextToSpeechEnabled, "tts", True, version=1)
    spoken = await until(service, link["share_id"], lambda b: b["tts_enabled"] is True)
    assert {**spoken, "tts_enabled": False} == body  # the toggle rewrote nothing else
    await service.set_policy(contracts.TextToSpeechDisabled, "tts", False, version=2)
    await until(service, link["share_id"], lambda b: b["tts_enabled"] is False)


async def test_unknown_and_deleted_links_answer_the_same_404_and_a_delete_is_seen_at_once(
    service: ShareService,
) -> None:
    unknown = await read(service, "no-such-share-0000000000000")
    assert unknown.status_code == 404
    assert unknown.headers["cache-control"] == "private, no-store"
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    assert (await read(service, share_id, min_version=1)).status_code == 200
    assert (
        await service.client.delete(f"/api/v1/shares/{share_id}", headers=ALICE)
    ).status_code == 204
    deleted = await read(service, share_id)  # the very next read, no waiting
    assert deleted.status_code == 404
    assert deleted.content == unknown.content

    def same_for_any_request(answer: httpx.Response) -> dict[str, str]:
        # The correlation id is the request's own, by design; everything else must match.
        return {k: v for k, v in answer.headers.items() if k != "x-correlation-id"}

    assert same_for_any_request(deleted) == same_for_any_request(unknown)
    started = time.monotonic()
    assert (await read(service, share_id, min_version=1)).status_code == 404
    assert time.monotonic() - started < MIN_VERSION_WAIT / 2  # a tombstone is an answer
    await service.projection_applied(share_id, 2)  # LinkDeleted, applied again, changes nothing
    assert (await read(service, share_id)).content == unknown.content


async def test_a_link_deleted_before_the_projection_saw_it_stays_dead(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    assert (
        await service.client.delete(f"/api/v1/shares/{share_id}", headers=ALICE)
    ).status_code == 204
    assert (await read(service, share_id)).status_code == 404
    await service.projection_applied(share_id, 2)  # ShareCreated arrives after the tombstone
    assert (await read(service, share_id)).status_code == 404


async def test_who_may_read_a_shared_chat(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    assert (await read(service, share_id, headers=ALICE, min_version=1)).status_code == 200
    assert (await read(service, share_id, headers=ADMIN)).status_code == 200
    assert (await read(service, share_id, headers=BOB)).status_code == 200
    pending = await read(service, share_id, headers=PENDING)
    assert pending.status_code == 403
    anonymous = await read(service, share_id, headers={})
    assert anonymous.status_code == 401
    assert anonymous.json()["login_url"] == f"/auth?redirect=%2Fapi%2Fv1%2Fshares%2F{share_id}"


async def test_a_command_s_version_lets_its_client_read_what_it_wrote(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "first")
    link = (await service.share(feed)).json()
    assert (await read(service, link["share_id"], min_version=link["version"])).json()[
        "version"
    ] == 1
    await service.send([feed.message("second")])
    assert await service.app.state.wiring.chats.wait_for_version(feed.chat_id, feed.version, 30)
    updated = await service.client.put(
        f"/api/v1/shares/{link['share_id']}/snapshot", json={"chat_version": feed.version},
        headers=ALICE,
    )  # fmt: skip
    version = updated.json()["version"]
    body = (await read(service, link["share_id"], min_version=version)).json()
    assert body["version"] == version == 2
    assert [m["content"] for m in body["messages"]] == ["first", "second"]


async def test_min_version_waits_then_answers_with_what_the_view_has(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    assert (await read(service, share_id, min_version=1)).status_code == 200
    started = time.monotonic()
    ahead = await read(service, share_id, min_version=7)
    waited = time.monotonic() - started
    assert (ahead.status_code, ahead.json()["version"]) == (200, 1)
    assert MIN_VERSION_WAIT * 0.9 <= waited < MIN_VERSION_WAIT + 2
    started = time.monotonic()
    assert (await read(service, "never-made-0000000000000000", min_version=1)).status_code == 404
    assert time.monotonic() - started >= MIN_VERSION_WAIT * 0.9
    assert (await read(service, share_id, min_version=0)).status_code == 422
    assert (await read(service, share_id, min_version="x")).status_code == 422


async def my_links(service: ShareService, headers: dict[str, str] = ALICE, **params: Any) -> Any:
    answer = await service.client.get(
        "/api/v1/shares", params={"owner": "me", **params}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def all_pages(service: ShareService, **params: Any) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        page = await my_links(service, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page["items"])
        if (cursor := page["next"]) is None:
            return pages


async def test_owner_me_pages_through_the_caller_s_live_links_newest_first(
    service: ShareService,
) -> None:
    feeds = [ChatFeed("alice") for _ in range(55)]
    await service.send([event for feed in feeds for event in (feed.created(), feed.message("hi"))])
    for feed in feeds:
        assert await service.app.state.wiring.chats.wait_for_version(feed.chat_id, 2, 30)
    made = [(await service.share(feed)).json() for feed in feeds]
    bobs = (await service.share(await service.chat("bob", "mine"), BOB)).json()
    for link in [*made, bobs]:  # read-your-writes: each link is in the view store
        assert (await read(service, link["share_id"], min_version=1)).status_code == 200
    first = await my_links(service)
    assert (len(first["items"]), set(first["items"][0])) == (50, LINK_FIELDS)
    assert first["items"][0]["url"] == f"{PUBLIC_URL}/s/{first['items'][0]['share_id']}"
    second = await my_links(service, cursor=first["next"])
    assert (len(second["items"]), second["next"]) == (5, None)
    listed = first["items"] + second["items"]
    newest_first = sorted(
        made, key=lambda link: (link["created_at"], link["share_id"]), reverse=True
    )
    assert [link["share_id"] for link in listed] == [link["share_id"] for link in newest_first]
    assert listed == newest_first  # the commands' own answers, exactly
    assert [len(page) for page in await all_pages(service, limit=20)] == [20, 20, 15]
    assert [link["share_id"] for link in (await my_links(service, BOB))["items"]] == [
        bobs["share_id"]
    ]
    gone = listed[7]["share_id"]
    assert (await service.client.delete(f"/api/v1/shares/{gone}", headers=ALICE)).status_code == 204
    remaining = [link["share_id"] for page in await all_pages(service, limit=30) for link in page]
    assert (len(remaining), gone in remaining) == (54, False)


async def test_owner_listing_refuses_what_it_cannot_answer(service: ShareService) -> None:
    for params in ({"owner": "bob"}, {}, {"owner": "me", "limit": 101}, {"owner": "me", "limit": 0},
                   {"owner": "me", "cursor": "not-a-cursor!"}, {"owner": "me", "cursor": "Zm9v"}):  # fmt: skip
        answer = await service.client.get("/api/v1/shares", params=params, headers=ALICE)
        assert answer.status_code == 422, params
        assert answer.json()["detail"].startswith("The request is not valid")
    assert (await service.client.get("/api/v1/shares?owner=me")).status_code == 401
    assert (await service.client.get("/api/v1/shares?owner=me", headers=PENDING)).status_code == 403
    assert await my_links(service) == {"items": [], "next": None}


async def request_community_share(service: ShareService, feed: ChatFeed) -> str:
    """Share to Community once the policy view has seen sharing turned on."""
    url = f"/api/v1/chats/{feed.chat_id}/community-share"
    deadline = time.monotonic() + 30
    while (
        answer := await service.client.post(url, json={"access": "public"}, headers=ALICE)
    ).status_code == 403:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["request_id"])


async def status_of(
    service: ShareService, request_id: str, headers: dict[str, str] = ALICE
) -> httpx.Response:
    return await service.client.get(f"/api/v1/community-shares/{request_id}", headers=headers)


async def test_a_community_share_s_status_for_its_requester_and_admins(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hi")
    await service.set_policy(contracts.CommunitySharingEnabled, "community_sharing", True, 1)
    request_id = await request_community_share(service, feed)
    pending = await status_of(service, request_id)  # right after the 202, no waiting
    assert (pending.status_code, pending.json()) == (
        200,
        {"request_id": request_id, "status": "pending"},
    )
    assert (await status_of(service, request_id, ADMIN)).json()["status"] == "pending"
    assert (await status_of(service, request_id, BOB)).status_code == 403
    assert (await status_of(service, request_id, PENDING)).status_code == 403
    assert (await status_of(service, request_id, {})).status_code == 401
    assert (await status_of(service, str(uuid.uuid4()))).status_code == 404
    url = "https://community.example/c/42"
    published = outcome(
        contracts.CommunitySharePublished, request_id, community_id="42", community_url=url
    )
    await publish(service.settings, [published])
    deadline = time.monotonic() + 30
    while (answer := (await status_of(service, request_id)).json())["status"] == "pending":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert answer == {"request_id": request_id, "status": "published", "community_url": url}
    refused = await request_community_share(service, feed)
    await publish(
        service.settings, [outcome(contracts.CommunityShareRejected, refused, reason="off")]
    )
    while (answer := (await status_of(service, refused, ADMIN)).json())["status"] == "pending":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert answer == {"request_id": refused, "status": "rejected", "reason": "off"}

"""share_service's command rows of INTERFACE.md §3, over HTTP, on the real broker and database:
the service's lifespan runs (chat mirror, policy view, relay), chats arrive on chat.events as the
platform sends them, and what the service publishes is read back from share.events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

import contracts
from contracts.topics import SETTINGS_EVENTS, SHARE_EVENTS
from share_service.bootstrap import create_app
from share_service.config import ShareServiceSettings
from tests.chat_feed import ChatFeed, send
from tests.identities import bearer, make_token

pytestmark = pytest.mark.integration

ALICE = bearer(make_token("alice", "user"))
BOB = bearer(make_token("bob", "user"))
ADMIN = bearer(make_token("root", "admin"))
PENDING = bearer(make_token("newcomer", "pending"))
PUBLIC_URL = "https://chat.example"


@dataclass
class ShareService:
    client: httpx.AsyncClient
    settings: ShareServiceSettings
    app: FastAPI

    async def chat(self, owner: str = "alice", *messages: str) -> ChatFeed:
        """A chat the platform created, with messages, once the mirror has it."""
        feed = ChatFeed(owner)
        await self.send([feed.created("Holiday"), *(feed.message(text) for text in messages)])
        assert await self.app.state.wiring.chats.wait_for_version(feed.chat_id, feed.version, 30)
        return feed

    async def send(self, events: list[Any]) -> None:
        await send(self.settings.kafka_bootstrap_servers, events, self.settings.topic_prefix)

    async def share(self, feed: ChatFeed, headers: dict[str, str] = ALICE) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/chats/{feed.chat_id}/share",
            json={"chat_version": feed.version},
            headers=headers,
        )

    async def allow_community_sharing(self, version: int = 1) -> None:
        event = contracts.CommunitySharingEnabled(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), setting="community_sharing",
            value=True, policy_version=version, changed_by="root", changed_at=datetime.now(UTC),
        )  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await producer.start()
        await producer.send_and_wait(
            self.settings.topic(SETTINGS_EVENTS), contracts.encode_event(event), key=b"instance"
        )
        await producer.stop()

    async def published(self, key: str, count: int) -> list[dict[str, Any]]:
        """The first `count` events on share.events under `key`, as the relay published them."""
        consumer = AIOKafkaConsumer(
            self.settings.topic(SHARE_EVENTS), bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest", isolation_level="read_committed",
        )  # fmt: skip
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(30):
                while len(found) < count:
                    for records in (await consumer.getmany(timeout_ms=300)).values():
                        found += [json.loads(r.value) for r in records if r.key == key.encode()]
        finally:
            await consumer.stop()
        return found


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[ShareService]:
    settings = ShareServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix,
        public_url=PUBLIC_URL, chat_version_wait_seconds=1.5, max_snapshot_bytes=20_000,
        kafka_session_timeout_ms=6000,
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://share") as client:
            yield ShareService(client, settings, app)


async def test_copy_link_creates_a_link_and_sharing_again_resnapshots_the_same_one(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "Where shall we go?")
    first = await service.share(feed)
    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"share_id", "chat_id", "url", "created_at", "updated_at", "version"}
    assert body["url"] == f"{PUBLIC_URL}/s/{body['share_id']}"
    assert (body["chat_id"], body["version"]) == (feed.chat_id, 1)
    assert len(body["share_id"]) >= 22  # ≥ 128 random bits, URL-safe base64
    await service.send([feed.message("Lisbon!")])
    again = await service.share(feed)
    assert again.status_code == 200
    assert (again.json()["share_id"], again.json()["version"]) == (body["share_id"], 2)


async def test_the_snapshot_is_static_until_the_owner_updates_it(service: ShareService) -> None:
    feed = await service.chat("alice", "Plan the trip")
    share_id = (await service.share(feed)).json()["share_id"]
    await service.send([feed.message("A message sent after the link was made")])
    created = (await service.published(share_id, 1))[0]
    assert created["type"] == "ShareCreated"
    assert [m["content"] for m in created["snapshot"]["messages"]] == ["Plan the trip"]
    updated = await service.client.put(
        f"/api/v1/shares/{share_id}/snapshot", json={"chat_version": feed.version}, headers=ALICE
    )
    assert (updated.status_code, updated.json()["version"]) == (200, 2)
    events = await service.published(share_id, 2)
    assert events[1]["type"] == "SnapshotUpdated"
    assert [m["content"] for m in events[1]["snapshot"]["messages"]] == [
        "Plan the trip", "A message sent after the link was made",
    ]  # fmt: skip


async def test_who_may_share_and_what_an_unknown_chat_answers(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    assert (await service.share(feed, BOB)).status_code == 403
    assert (await service.share(feed, PENDING)).status_code == 403
    assert (await service.share(feed, {})).status_code == 401
    unknown = await service.client.post("/api/v1/chats/no-such-chat/share", headers=ALICE)
    assert unknown.status_code == 404
    unseen = await service.client.post(
        "/api/v1/chats/no-such-chat/share", json={"chat_version": 3}, headers=ALICE
    )
    assert unseen.status_code == 409
    assert "chat version 3" in unseen.json()["detail"]


async def test_malformed_bodies_are_422_with_a_reason(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    url = f"/api/v1/chats/{feed.chat_id}/share"
    for body in (
        {"chat_version": "2"},
        {"chat_version": 0},
        {"chat_version": 1, "extra": True},
        [1],
    ):
        answer = await service.client.post(url, json=body, headers=ALICE)
        assert answer.status_code == 422, body
        assert answer.json()["detail"].startswith("The request is not valid")
    no_body = await service.client.post(url, headers=ALICE)
    assert no_body.status_code in (200, 201)


async def test_the_chat_version_wait_lets_a_share_follow_the_chat_s_own_events(
    service: ShareService,
) -> None:
    feed = ChatFeed("alice")
    created, message = feed.created(), feed.message("just sent")
    share = asyncio.create_task(service.share(feed))  # asks for version 2 before it exists
    await asyncio.sleep(0.2)
    await service.send([created, message])
    answer = await share
    assert answer.status_code == 201
    snapshot = (await service.published(answer.json()["share_id"], 1))[0]["snapshot"]
    assert [m["content"] for m in snapshot["messages"]] == ["just sent"]


async def test_update_and_before_are_for_the_owner_only(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    assert (
        await service.client.put(f"/api/v1/shares/{share_id}/snapshot", headers=BOB)
    ).status_code == 403
    assert (
        await service.client.put("/api/v1/shares/unknown-share-id-0000000/snapshot", headers=ALICE)
    ).status_code == 404
    before = await service.client.get(f"/api/v1/chats/{feed.chat_id}/share", headers=ALICE)
    assert (before.status_code, before.json()["share_id"]) == (200, share_id)
    assert (
        await service.client.get(f"/api/v1/chats/{feed.chat_id}/share", headers=BOB)
    ).status_code == 403
    never_shared = await service.chat("alice", "private")
    assert (
        await service.client.get(f"/api/v1/chats/{never_shared.chat_id}/share", headers=ALICE)
    ).status_code == 404


async def test_delete_this_link_by_the_owner_or_an_admin_and_sharing_again_makes_a_new_id(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    assert (
        await service.client.delete(f"/api/v1/shares/{share_id}", headers=BOB)
    ).status_code == 403
    assert (
        await service.client.delete(f"/api/v1/shares/{share_id}", headers=ADMIN)
    ).status_code == 204
    assert (
        await service.client.delete(f"/api/v1/shares/{share_id}", headers=ALICE)
    ).status_code == 404
    assert (
        await service.client.get(f"/api/v1/chats/{feed.chat_id}/share", headers=ALICE)
    ).status_code == 404
    again = await service.share(feed)
    assert again.status_code == 201
    assert again.json()["share_id"] != share_id
    deleted = (await service.published(share_id, 2))[1]
    assert (deleted["type"], deleted["reason"], deleted["deleted_by"], deleted["version"]) == (
        "LinkDeleted", "admin", "root", 2,
    )  # fmt: skip


async def test_concurrent_first_shares_of_one_chat_make_one_link(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    answers = await asyncio.gather(*(service.share(feed) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["share_id"] for a in answers}) == 1


async def test_a_snapshot_over_the_size_limit_is_413(service: ShareService) -> None:
    feed = await service.chat("alice", "x" * 30_000)
    answer = await service.share(feed)
    assert answer.status_code == 413
    assert "over this instance's limit" in answer.json()["detail"]


async def test_a_deleted_chat_takes_its_link_along(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    share_id = (await service.share(feed)).json()["share_id"]
    await service.send([feed.deleted()])
    deleted = (await service.published(share_id, 2))[1]
    assert (deleted["type"], deleted["reason"]) == ("LinkDeleted", "chat_deleted")
    assert (await service.share(feed)).status_code == 404


async def test_share_to_community_only_while_the_admin_allows_it(service: ShareService) -> None:
    feed = await service.chat("alice", "hi")
    url = f"/api/v1/chats/{feed.chat_id}/community-share"
    refused = await service.client.post(url, json={"access": "public"}, headers=ALICE)
    assert (refused.status_code, refused.json()) == (
        403,
        {"detail": "community sharing is disabled"},
    )
    await service.allow_community_sharing()
    async with asyncio.timeout(30):
        while (
            accepted := await service.client.post(url, json={"access": "public"}, headers=ALICE)
        ).status_code == 403:
            await asyncio.sleep(0.1)
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "pending"
    request_id = accepted.json()["request_id"]
    assert (
        await service.client.post(url, json={"access": "everyone"}, headers=ALICE)
    ).status_code == 422
    assert (
        await service.client.post(url, json={"access": "public"}, headers=BOB)
    ).status_code == 403
    requested = (await service.published(request_id, 1))[0]
    assert (requested["type"], requested["access"], requested["policy_version"]) == (
        "CommunityShareRequested", "public", 1,
    )  # fmt: skip
    assert [m["content"] for m in requested["snapshot"]["messages"]] == ["hi"]

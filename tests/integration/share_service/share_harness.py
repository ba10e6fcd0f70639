"""What share_service's read-side tests share: links' events as share_service publishes them,
outcomes as community_publisher publishes them, a producer for any topic (poison included), and
share_service itself on a running lifespan with an HTTP client."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

import contracts
from contracts.community_events import CommunityEventBase
from contracts.topics import COMMUNITY_EVENTS, SETTINGS_EVENTS, SHARE_EVENTS, SHARE_PROJECTION_GROUP
from servicekit.config import ServiceSettings
from share_service.adapters.projection_progress import ProjectionProgress
from share_service.bootstrap import EVENT_STORE_SCHEMA, create_app
from share_service.config import ShareServiceSettings
from tests.chat_feed import ChatFeed, send
from tests.identities import bearer, make_token

ALICE = bearer(make_token("alice", "user"))
BOB = bearer(make_token("bob", "user"))
ADMIN = bearer(make_token("root", "admin"))
PENDING = bearer(make_token("newcomer", "pending"))
PUBLIC_URL = "https://chat.example"
Offsets = dict[tuple[str, int], int]  # (topic, partition) → one past the last record sent
SETTINGS_KINDS = (
    contracts.CommunitySharingEnabled, contracts.CommunitySharingDisabled,
    contracts.TextToSpeechEnabled, contracts.TextToSpeechDisabled,
)  # fmt: skip


def snapshot(title: str, *contents: str) -> dict[str, Any]:
    """A chat of one branch, root first, shaped as share events carry it."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    ids = [f"m{n}" for n in range(len(contents))]
    messages = [
        {"id": ids[n], "parent_id": ids[n - 1] if n else None, "role": ("user", "assistant")[n % 2],
         "content": content, "model": None, "created_at": at}
        for n, content in enumerate(contents)
    ]  # fmt: skip
    history = {m["id"]: {**m, "children_ids": ids[n + 1 : n + 2]} for n, m in enumerate(messages)}
    return {
        "title": title,
        "messages": messages,
        "history": {"messages": history, "current_id": ids[-1] if ids else None},
    }


@dataclass
class LinkStory:
    """One link's events in the order share_service publishes them, versions counted."""

    owner_id: str
    share_id: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    chat_id: str = field(default_factory=lambda: f"chat-{uuid.uuid4().hex[:12]}")
    version: int = 0

    def _next(self, kind: type[Any], **fields: Any) -> Any:
        self.version += 1
        return kind(
            event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), share_id=self.share_id,
            chat_id=self.chat_id, owner_id=self.owner_id, version=self.version, **fields,
        )  # fmt: skip

    def created(self, *contents: str) -> contracts.ShareCreated:
        return self._next(  # type: ignore[no-any-return]
            contracts.ShareCreated, chat_version=1, snapshot=snapshot("Trip", *contents)
        )

    def updated(self, *contents: str) -> contracts.SnapshotUpdated:
        return self._next(  # type: ignore[no-any-return]
            contracts.SnapshotUpdated,
            chat_version=self.version,
            snapshot=snapshot("Trip", *contents),
        )

    def deleted(self) -> contracts.LinkDeleted:
        return self._next(contracts.LinkDeleted, reason="owner", deleted_by=self.owner_id)  # type: ignore[no-any-return]


def community_request(owner_id: str) -> contracts.CommunityShareRequested:
    return contracts.CommunityShareRequested(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), request_id=str(uuid.uuid4()),
        chat_id="chat-1", owner_id=owner_id, access="public", policy_version=1,
        snapshot=snapshot("Trip", "hi"),
    )  # fmt: skip


def outcome(kind: type[Any], request_id: str, **fields: Any) -> Any:
    """A community_publisher outcome: CommunitySharePublished, …Rejected or …Failed."""
    return kind(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), request_id=request_id, **fields
    )


def record_of(event: Any) -> tuple[str, bytes, bytes]:
    """(topic, key, value) as the event's producer writes it."""
    if isinstance(event, CommunityEventBase):
        topic, key = COMMUNITY_EVENTS, event.request_id
    elif isinstance(event, contracts.CommunityShareRequested):
        topic, key = SHARE_EVENTS, event.request_id
    elif isinstance(event, SETTINGS_KINDS):
        topic, key = SETTINGS_EVENTS, "instance"
    else:
        topic, key = SHARE_EVENTS, event.share_id
    return topic, key.encode(), contracts.encode_event(event)


async def publish(
    settings: ServiceSettings, events: list[Any], raw: Sequence[tuple[str, bytes, bytes]] = ()
) -> Offsets:
    """Send events (and raw `(topic, key, value)` records, for poison) in order, under the
    settings' topic prefix; answers how far each partition got."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    reached: Offsets = {}
    try:
        for topic, key, value in [*map(record_of, events), *raw]:
            sent = await producer.send_and_wait(settings.topic(topic), value, key=key)
            reached[(sent.topic, sent.partition)] = sent.offset + 1
    finally:
        await producer.stop()
    return reached


async def records_of(settings: ServiceSettings, topic: str, key: str, count: int) -> Offsets:
    """Wait for `count` records under `key` on `topic` (the relay publishes after the command
    answered); answers one past the last of them, per partition."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic), bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest", isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    found: Offsets = {}
    seen = 0
    try:
        async with asyncio.timeout(30):
            while seen < count:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        if record.key == key.encode():
                            seen += 1
                            found[(record.topic, record.partition)] = record.offset + 1
    finally:
        await consumer.stop()
    return found


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

    async def set_policy(self, kind: type[Any], setting: str, value: bool, version: int) -> Offsets:
        """The admin's switch, as settings_service publishes it; answers where it landed."""
        now = datetime.now(UTC)
        event = kind(
            event_id=uuid.uuid4(), occurred_at=now, setting=setting, value=value,
            policy_version=version, changed_by="root", changed_at=now,
        )  # fmt: skip
        return await publish(self.settings, [event])

    async def projection_applied(self, share_id: str, events: int) -> None:
        """The link's first `events` events are in the view store (whatever the row shows)."""
        wanted = await records_of(self.settings, SHARE_EVENTS, share_id, events)
        await until_applied(
            ProjectionProgress(self.app.state.runtime.pool, EVENT_STORE_SCHEMA),
            self.settings.group(SHARE_PROJECTION_GROUP),
            wanted,
        )


async def until_applied(progress: ProjectionProgress, group: str, wanted: Offsets) -> None:
    """Wait until the projection's stored positions reach `wanted` (records that were
    dead-lettered never count: wait for a good record after them)."""
    async with asyncio.timeout(30):
        while True:
            done = await progress.positions(group)
            if all(done.get(at, 0) >= offset for at, offset in wanted.items()):
                return
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running_share_service(settings: ShareServiceSettings) -> AsyncIterator[ShareService]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://share") as client:
            yield ShareService(client, settings, app)

"""What community_publisher's tests send and read: community-share requests as share_service
publishes them (with a chat that has a regeneration branch), the admin's policy changes, and the
outcomes on `community.events`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

import contracts
from contracts.topics import COMMUNITY_EVENTS, SETTINGS_EVENTS, SHARE_EVENTS

STARTED = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)


def _message(
    message_id: str,
    parent_id: str | None,
    role: str,
    content: str,
    children: list[str],
    minute: int,
) -> contracts.HistoryMessage:
    return contracts.HistoryMessage(
        id=message_id, parent_id=parent_id, role=role, content=content,
        model="llama3" if role == "assistant" else None,
        created_at=STARTED + timedelta(minutes=minute), children_ids=children,
    )  # fmt: skip


def branched_snapshot(title: str = "Trip to Lisbon") -> contracts.Snapshot:
    """A question answered twice (a regeneration): the second answer is the visible branch."""
    tree = {
        "q": _message("q", None, "user", "Where shall we go?", ["a1", "a2"], 0),
        "a1": _message("a1", "q", "assistant", "Porto.", [], 1),
        "a2": _message("a2", "q", "assistant", "Lisbon!", [], 2),
    }
    visible = [
        contracts.SnapshotMessage(**tree[i].model_dump(exclude={"children_ids"}))
        for i in ("q", "a2")
    ]
    return contracts.Snapshot(
        title=title,
        messages=visible,
        history=contracts.History(messages=tree, current_id="a2"),
    )


def community_request(
    access: str = "public", policy_version: int = 1, owner_id: str = "alice"
) -> contracts.CommunityShareRequested:
    return contracts.CommunityShareRequested(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), request_id=str(uuid.uuid4()),
        chat_id=f"chat-{uuid.uuid4().hex[:8]}", owner_id=owner_id,
        access=access, policy_version=policy_version, snapshot=branched_snapshot(),
    )  # fmt: skip


def policy_change(enabled: bool, version: int) -> contracts.SettingsEvent:
    kind = contracts.CommunitySharingEnabled if enabled else contracts.CommunitySharingDisabled
    return kind(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), setting="community_sharing",
        value=enabled, policy_version=version, changed_by="root", changed_at=datetime.now(UTC),
    )  # fmt: skip


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def send_requests(
    bootstrap: str, prefix: str, *requests: contracts.CommunityShareRequested
) -> None:
    """As share_service's relay publishes them: on share.events, keyed by request_id."""
    records = [(r.request_id.encode(), contracts.encode_event(r)) for r in requests]
    await produce(bootstrap, prefix + SHARE_EVENTS, records)


async def set_policy(bootstrap: str, prefix: str, *changes: tuple[bool, int]) -> None:
    """The admin's switches as settings_service publishes them on settings.events."""
    records = [
        (b"instance", contracts.encode_event(policy_change(enabled, version)))
        for enabled, version in changes
    ]
    await produce(bootstrap, prefix + SETTINGS_EVENTS, records)


async def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    within: float = 60.0,
    linger: float = 0.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of `topic` from the start, once `until` holds (and `linger` more
    seconds, to see whatever would follow)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        isolation_level="read_committed", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(within):
            while not until(found):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += records
        if linger:
            await asyncio.sleep(linger)
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += records
    finally:
        await consumer.stop()
    return found


async def outcomes(
    bootstrap: str, prefix: str, request_ids: list[str], linger: float = 0.0
) -> dict[str, list[dict[str, Any]]]:
    """The events on community.events for each request, once each has at least one."""

    def by_request(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {rid: [] for rid in request_ids}
        for record in records:
            if record.key is not None and record.key.decode() in found:
                found[record.key.decode()].append(json.loads(record.value))
        return found

    records = await read_topic(
        bootstrap, prefix + COMMUNITY_EVENTS,
        lambda got: all(by_request(got).values()), linger=linger,
    )  # fmt: skip
    return by_request(records)

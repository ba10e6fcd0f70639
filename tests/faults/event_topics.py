"""What chatshare's event topics hold, read as an operator's `chatshare events tail` would:
every committed record from the first offset to the end as of now."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts.topics import COMMUNITY_EVENTS, EVENT_TOPICS, SETTINGS_EVENTS, SHARE_EVENTS

Record: TypeAlias = ConsumerRecord[bytes, bytes]
PARTITIONS = {spec.name: spec.partitions for spec in EVENT_TOPICS}


async def read_topic(bootstrap: str, topic: str, prefix: str) -> list[Record]:
    """Every committed record of the topic, from its first to its end as of now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    partitions = [TopicPartition(prefix + topic, p) for p in range(PARTITIONS[topic])]
    await consumer.start()
    records: list[Record] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(60):
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                for batch in (await consumer.getmany(timeout_ms=300)).values():
                    records += [
                        r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)]
                    ]
    finally:
        await consumer.stop()
    return records


def events_of(records: Iterable[Record]) -> list[dict[str, Any]]:
    return [json.loads(record.value) for record in records]


@dataclass
class Topics:
    """What the event topics hold once the relays caught up."""

    share: list[dict[str, Any]] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)
    community: list[dict[str, Any]] = field(default_factory=list)

    @property
    def links(self) -> dict[str, dict[int, set[str]]]:
        """share_id → version → the event ids published for it."""
        found: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        for event in self.share:
            if "share_id" in event:
                found[event["share_id"]][event["version"]].add(event["event_id"])
        return found

    @property
    def last_of_link(self) -> dict[str, dict[str, Any]]:
        last: dict[str, dict[str, Any]] = {}
        for event in self.share:
            if "share_id" in event and event["version"] >= last.get(event["share_id"], {}).get(
                "version", 0
            ):
                last[event["share_id"]] = event
        return last

    @property
    def requests(self) -> set[str]:
        return {e["request_id"] for e in self.share if e["type"] == "CommunityShareRequested"}

    @property
    def outcomes(self) -> dict[str, dict[str, dict[str, Any]]]:
        """request_id → event_id → the outcome."""
        found: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for event in self.community:
            found[event["request_id"]][event["event_id"]] = event
        return found


async def read_topics(bootstrap: str, prefix: str) -> Topics:
    share, settings, community = await asyncio.gather(
        *(
            read_topic(bootstrap, t, prefix)
            for t in (SHARE_EVENTS, SETTINGS_EVENTS, COMMUNITY_EVENTS)
        )
    )
    return Topics(events_of(share), events_of(settings), events_of(community))

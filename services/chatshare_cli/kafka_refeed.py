"""`chatshare replay share-views --from-kafka`: the view store re-fed from the topics the
`share-projection` group reads — `share.events` (links' views, community requests) and
`community.events` (the requests' outcomes) — instead of the event store, into the live tables,
from an offset or a time.

A consumer of no group reads every partition of both topics up to the end it had when it started
and applies each batch with the projection's own code (`apply_share_events`): the writes are
version-checked or idempotent, and an outcome read before its request is kept (the request then
only fills in its owner), so a re-feed of what the store already reflects changes nothing. The
`share-projection` group's position is not touched. Records that are no event (the projection
dead-lettered them) are counted and skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiokafka import ConsumerRecord

from chatshare_cli.kafka_reads import read_until, start_offsets, topic_reader
from contracts.share_events import LinkEventBase
from contracts.topics import GROUP_TOPICS, SHARE_PROJECTION_GROUP
from servicekit.config import ServiceSettings
from servicekit.consumer import Unprocessable
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.view_store import ShareViewStore
from share_service.bootstrap import EVENT_STORE_SCHEMA
from share_service.entrypoints.share_projection import (
    ProjectedEvent,
    ProjectionDecoder,
    apply_share_events,
)

BATCH_RECORDS = 2_000

OnProgress = Callable[[int, int], None]  # (records read, records to read)


@dataclass
class RefeedOutcome:
    events: int = 0  # records applied
    skipped: int = 0  # records that are no event of the topic
    links: set[str] = field(default_factory=set)  # links whose events were applied
    requests: set[str] = field(default_factory=set)  # community requests whose events were read
    changed: set[str] = field(default_factory=set)  # links whose rows the re-feed changed
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "views": len(self.links), "changed": len(self.changed),
            "requests": len(self.requests), "events": self.events, "skipped": self.skipped, "seconds": round(self.seconds, 3), "source": "kafka",
        }  # fmt: skip


class KafkaRefeed:
    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, on_progress: OnProgress):
        self.settings = settings
        self.pool = pool
        self.views = ShareViewStore(pool, EVENT_STORE_SCHEMA)
        self.requests = CommunityRequestStore(pool, EVENT_STORE_SCHEMA)
        self.decode = ProjectionDecoder(settings)
        self.on_progress = on_progress
        self.outcome = RefeedOutcome()

    async def run(self, since: int | datetime | None) -> RefeedOutcome:
        started = time.perf_counter()
        await self.views.create_table()
        await self.requests.create_table()
        topics = [self.settings.topic(name) for name in GROUP_TOPICS[SHARE_PROJECTION_GROUP]]
        async with topic_reader(self.settings, topics) as (consumer, partitions):
            starts = await start_offsets(consumer, partitions, since)
            ends = await consumer.end_offsets(partitions)
            total = sum(ends[tp] - starts[tp] for tp in partitions)
            async for batch, done in read_until(consumer, starts, ends, BATCH_RECORDS):
                await self._apply(batch)
                self.on_progress(done, total)
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    async def _apply(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        events: list[ProjectedEvent] = []
        for record in records:
            try:
                events.append(self.decode(record))
            except Unprocessable:
                self.outcome.skipped += 1
        if not events:
            return
        async with self.pool.acquire() as connection, connection.transaction():
            changed = await apply_share_events(connection, self.views, self.requests, events)
        self.outcome.events += len(events)
        self.outcome.changed |= changed
        for event in events:
            if isinstance(event, LinkEventBase):
                self.outcome.links.add(event.share_id)
            else:
                self.outcome.requests.add(event.request_id)

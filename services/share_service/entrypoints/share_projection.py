"""The `share-projection` consumer group: `share.events` and `community.events` into the view
store (DESIGN.md "Read side").

A batch is applied in one transaction together with the group's progress rows; the shared
consumer group commits the Kafka offsets only after it. Every write is version-checked or
idempotent, so a batch redelivered after a crash between the two commits changes nothing. What
cannot be decoded is dead-lettered to `dlq.share-projection` by the group, which keeps going.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import asyncpg
from aiokafka import ConsumerRecord

import contracts
from contracts.share_events import LinkEventBase
from contracts.topics import (
    COMMUNITY_EVENTS,
    SHARE_EVENTS,
    SHARE_PROJECTION_GROUP,
)
from servicekit.config import ServiceSettings
from servicekit.consumer import Delivery, Unprocessable
from servicekit.runtime import ServiceRuntime
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.projection_progress import Partition, ProjectionProgress
from share_service.adapters.view_store import ShareViewStore
from share_service.application.view_writes import view_writes
from share_service.entrypoints.projection_lag import ProjectionLag, watch_lag

ProjectedEvent = contracts.ShareEvent | contracts.CommunityEvent


class ProjectionDecoder:
    """Decodes each record with the contract of the topic it came from (names carry the
    deployment's topic prefix), and checks that its key is its link's or request's id."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.contracts = {settings.topic(name): name for name in (SHARE_EVENTS, COMMUNITY_EVENTS)}

    def __call__(self, record: ConsumerRecord[bytes, bytes]) -> ProjectedEvent:
        topic = self.contracts.get(record.topic)
        if topic is None or record.value is None:
            raise Unprocessable(f"no event in a record of {record.topic}")
        try:
            event: ProjectedEvent = contracts.decode_event(topic, record.value)  # type: ignore[assignment]
        except contracts.ContractViolation as error:
            raise Unprocessable(str(error)) from error
        name, key = (
            ("share_id", event.share_id)
            if isinstance(event, LinkEventBase)
            else ("request_id", event.request_id)
        )
        if record.key is not None and record.key.decode(errors="replace") != key:
            raise Unprocessable(f"the record's key is not its {name}")
        return event


class ShareProjection:
    def __init__(
        self,
        views: ShareViewStore,
        progress: ProjectionProgress,
        requests: CommunityRequestStore,
        group: str,
        lag: ProjectionLag,
    ) -> None:
        self.views = views
        self.progress = progress
        self.requests = requests
        self.group = group
        self.lag = lag
        self.born = LinkBirths()

    async def apply(self, deliveries: Sequence[Delivery[ProjectedEvent]]) -> None:
        """The consumer group's handler: the whole batch and its progress in one transaction.

        The common batch — links' events only, each snapshot's link's `created_at` known (born
        in the batch, or remembered) — needs nothing read first: its rows, their readers'
        wake-up and the progress are one statement, one round trip (each hop counts towards a
        reader's freshness). Any other batch reads the links' `created_at` first, in a
        transaction around it all."""
        events = [delivery.event for delivery in deliveries]
        progress = self.progress.advancing(self.group, next_offsets(deliveries))
        async with self.views.pool.acquire() as connection:
            known = self.born.known_for(events)
            if known is not None:
                links, created = known
                changed = await self.views.put_views(
                    connection, view_writes(links, created), along=progress
                )
                self.born.remember(changed)
            else:
                seen: dict[str, datetime] = {}
                async with connection.transaction():
                    await apply_share_events(
                        connection, self.views, self.requests, events, seen.update
                    )
                    await connection.execute(progress.sql, *progress.args)
                self.born.remember(seen)  # committed
        self.lag.applied(deliveries)


class LinkBirths:
    """The `created_at` of links' view rows, as the rows have them — a snapshot's body needs it
    and its event does not carry it. A row's `created_at` never changes once written, so what
    is remembered is never stale, whichever process writes the rows; only rows seen here
    (written, or read) are remembered, the newest `LIMIT`."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._times: dict[str, datetime] = {}

    def remember(self, times: Mapping[str, datetime]) -> None:
        self._times.update(times)
        while len(self._times) > self.LIMIT:
            del self._times[next(iter(self._times))]  # the oldest remembered

    def known_for(
        self, events: Sequence[ProjectedEvent]
    ) -> tuple[list[LinkEventBase], dict[str, datetime]] | None:
        """The events and the `created_at` their writes need, if they are links' events alone
        and no row must be read for it; else None. A snapshot needs its link's, unless the
        link's `ShareCreated` comes earlier in the batch (a `ShareCreated` lands only where no
        row is; a tombstone keeps the row's times)."""
        links: list[LinkEventBase] = []
        created: dict[str, datetime] = {}
        born: set[str] = set()
        for event in events:
            if not isinstance(event, LinkEventBase):
                return None
            if isinstance(event, contracts.ShareCreated):
                born.add(event.share_id)
            elif isinstance(event, contracts.SnapshotUpdated) and event.share_id not in born:
                time = self._times.get(event.share_id)
                if time is None:
                    return None
                created[event.share_id] = time
            links.append(event)
        return links, created


async def apply_share_events(
    connection: asyncpg.Connection,
    views: ShareViewStore,
    requests: CommunityRequestStore,
    events: Sequence[ProjectedEvent],
    seen: Callable[[Mapping[str, datetime]], None] | None = None,
) -> set[str]:
    """What the projection does with a batch, its progress aside; the operator CLI's re-feed
    from Kafka and its redrive of dead letters run exactly this. Call inside a transaction.
    Answers the links whose view rows changed; `seen` is told the rows' `created_at` it read
    or wrote."""
    links = [event for event in events if isinstance(event, LinkEventBase)]
    changed = await apply_link_events(connection, views, links, seen)
    for event in events:
        match event:
            case contracts.CommunityShareRequested():
                await requests.requested(event.request_id, event.owner_id, connection)
            case contracts.CommunitySharePublished():
                await requests.concluded(
                    connection, event.request_id, "published", community_url=event.community_url
                )
            case contracts.CommunityShareRejected():
                await requests.concluded(
                    connection, event.request_id, "rejected", reason=event.reason
                )
            case contracts.CommunityShareFailed():
                await requests.concluded(
                    connection, event.request_id, "failed", reason=event.reason
                )
    return changed


async def apply_link_events(
    connection: asyncpg.Connection,
    views: ShareViewStore,
    events: Sequence[LinkEventBase],
    seen: Callable[[Mapping[str, datetime]], None] | None = None,
) -> set[str]:
    """Links' events into `views`, in order, version-checked: the projection's writes, and the
    replay's into its shadow table. Call inside a transaction (it locks the links' rows).
    Answers the links whose rows changed; `seen` is told the rows' `created_at`."""
    created = await views.lock_created_at(connection, {event.share_id for event in events})
    if seen is not None:
        seen(created)
    changed = await views.put_views(connection, view_writes(events, created))
    if seen is not None:
        seen(changed)
    return set(changed)


def next_offsets(deliveries: Sequence[Delivery[ProjectedEvent]]) -> dict[Partition, int]:
    offsets: dict[Partition, int] = {}
    for delivery in deliveries:
        at = (delivery.record.topic, delivery.record.partition)
        offsets[at] = max(offsets.get(at, 0), delivery.record.offset + 1)
    return offsets


def follow_share_events(
    runtime: ServiceRuntime,
    views: ShareViewStore,
    progress: ProjectionProgress,
    requests: CommunityRequestStore,
    group: str = SHARE_PROJECTION_GROUP,
) -> ShareProjection:
    """Subscribe the projection (call before `broker.start()`) and watch its lag. `group` is
    another name only to re-feed a fresh store from the start; dead letters stay on
    `dlq.share-projection`."""
    settings = runtime.settings
    topics = [settings.topic(SHARE_EVENTS), settings.topic(COMMUNITY_EVENTS)]
    lag = ProjectionLag(runtime.registry)
    projection = ShareProjection(views, progress, requests, settings.group(group), lag)
    runtime.follow(
        group, [SHARE_EVENTS, COMMUNITY_EVENTS], ProjectionDecoder(settings), projection.apply,
        dead_letters_of=SHARE_PROJECTION_GROUP,
    )  # fmt: skip
    if runtime.joins(group):  # measured by the processes that run the group
        runtime.run_in_background(
            f"{group}-lag", lambda: watch_lag(settings, progress, projection.group, topics, lag)
        )
    return projection

"""The `share-projection` consumer group: `share.events` and `community.events` into the view
store (DESIGN.md "Read side").

A batch is applied in one transaction together with the group's progress rows; the shared
consumer group commits the Kafka offsets only after it. Every write is version-checked or
idempotent, so a batch redelivered after a crash between the two commits changes nothing. What
cannot be decoded is dead-lettered to `dlq.share-projection` by the group, which keeps going.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    async def apply(self, deliveries: Sequence[Delivery[ProjectedEvent]]) -> None:
        """The consumer group's handler: the whole batch and its progress in one transaction.

        The common batch — links' events only, none a snapshot of a link born before the batch
        — needs nothing read first: its rows, their readers' wake-up and the progress are one
        statement, one round trip (each hop counts towards a reader's freshness). Any other
        batch reads the links' `created_at` first, in a transaction around it all."""
        events = [delivery.event for delivery in deliveries]
        progress = self.progress.advancing(self.group, next_offsets(deliveries))
        async with self.views.pool.acquire() as connection:
            links = links_born_in(events)
            if links is not None:
                await self.views.put_views(connection, view_writes(links, {}), along=progress)
            else:
                async with connection.transaction():
                    await apply_share_events(connection, self.views, self.requests, events)
                    await connection.execute(progress.sql, *progress.args)
        self.lag.applied(deliveries)


def links_born_in(events: Sequence[ProjectedEvent]) -> list[LinkEventBase] | None:
    """The events, if they are links' alone and their writes need no row's `created_at`; else
    None. A snapshot needs it unless its link's `ShareCreated` comes earlier in the batch (a
    `ShareCreated` lands only where no row is; a tombstone keeps the row's times)."""
    born: set[str] = set()
    links: list[LinkEventBase] = []
    for event in events:
        match event:
            case contracts.ShareCreated():
                born.add(event.share_id)
            case contracts.SnapshotUpdated() if event.share_id in born:
                pass
            case contracts.LinkDeleted():
                pass
            case _:
                return None
        links.append(event)
    return links


async def apply_share_events(
    connection: asyncpg.Connection,
    views: ShareViewStore,
    requests: CommunityRequestStore,
    events: Sequence[ProjectedEvent],
) -> set[str]:
    """What the projection does with a batch, its progress aside; the operator CLI's re-feed
    from Kafka and its redrive of dead letters run exactly this. Call inside a transaction.
    Answers the links whose view rows changed."""
    links = [event for event in events if isinstance(event, LinkEventBase)]
    changed = await apply_link_events(connection, views, links)
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
    connection: asyncpg.Connection, views: ShareViewStore, events: Sequence[LinkEventBase]
) -> set[str]:
    """Links' events into `views`, in order, version-checked: the projection's writes, and the
    replay's into its shadow table. Call inside a transaction (it locks the links' rows).
    Answers the links whose rows changed."""
    created = await views.lock_created_at(connection, {event.share_id for event in events})
    return await views.put_views(connection, view_writes(events, created))


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

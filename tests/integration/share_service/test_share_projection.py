"""The share projection on the real broker and database: `share.events` and `community.events`
into the view store. Repeats and older redeliveries change nothing, a deleted link stays a
tombstone, a replay into a fresh store makes the same rows, and poison is dead-lettered while the
projection keeps going."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import CollectorRegistry

import contracts
from contracts.topics import (
    COMMUNITY_EVENTS,
    SHARE_EVENTS,
    SHARE_PROJECTION_GROUP,
    dead_letter_topic,
)
from servicekit.consumer import Delivery
from servicekit.http import Readiness
from servicekit.runtime import new_broker, open_runtime
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.projection_progress import ProjectionProgress
from share_service.adapters.view_store import LinkRow, ShareViewStore, StoredView
from share_service.application.view_writes import ViewWrite
from share_service.config import ShareServiceSettings
from share_service.entrypoints.projection_lag import ProjectionLag
from share_service.entrypoints.share_projection import ShareProjection, follow_share_events
from tests.integration.share_service.share_harness import (
    LinkStory,
    Offsets,
    community_request,
    outcome,
    publish,
    until_applied,
)

pytestmark = pytest.mark.integration

ROW = "share_id, chat_id, owner_id, version, deleted, body, created_at, updated_at"


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> ShareServiceSettings:
    return ShareServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix, kafka_session_timeout_ms=6000,
    )  # fmt: skip


@dataclass
class Projection:
    views: ShareViewStore
    requests: CommunityRequestStore
    progress: ProjectionProgress
    group: str
    registry: CollectorRegistry

    async def applied(self, offsets: Offsets) -> None:
        await until_applied(self.progress, self.group, offsets)

    async def rows(self) -> list[asyncpg.Record]:
        return list(await self.views.pool.fetch(f"SELECT {ROW} FROM {self.views.table} ORDER BY 1"))

    async def body(self, story: LinkStory) -> dict[str, Any]:
        view = await self.views.read(story.share_id)
        assert view is not None
        assert view.body is not None
        return dict(json.loads(view.body))


@asynccontextmanager
async def running_projection(
    settings: ShareServiceSettings,
    schema: str = "share_service",
    group: str = SHARE_PROJECTION_GROUP,
) -> AsyncIterator[Projection]:
    broker = new_broker(settings, "projection-test")
    registry = CollectorRegistry()
    async with open_runtime(settings, "share", registry, Readiness(), broker) as runtime:
        views = ShareViewStore(runtime.pool, schema)
        progress = ProjectionProgress(runtime.pool, schema)
        requests = CommunityRequestStore(runtime.pool, schema)
        for store in (views, progress, requests):
            await store.create_table()
        projection = follow_share_events(runtime, views, progress, requests, group)
        await broker.start()
        yield Projection(views, requests, progress, projection.group, registry)


async def test_a_link_s_view_is_its_latest_snapshot_ready_made(
    settings: ShareServiceSettings,
) -> None:
    story = LinkStory("alice")
    created, updated = story.created("Where to?"), story.updated("Where to?", "Lisbon.")
    offsets = await publish(settings, [created, updated])
    async with running_projection(settings) as projection:
        await projection.applied(offsets)
        body = await projection.body(story)
    assert list(body) == [
        "share_id", "chat_id", "owner_id", "title", "messages", "history",
        "created_at", "updated_at", "version",
    ]  # fmt: skip
    assert (body["share_id"], body["owner_id"], body["version"]) == (story.share_id, "alice", 2)
    assert [m["content"] for m in body["messages"]] == ["Where to?", "Lisbon."]
    assert body["history"]["current_id"] == "m1"
    assert body["created_at"] == created.occurred_at.isoformat().replace("+00:00", "Z")
    assert body["updated_at"] == updated.occurred_at.isoformat().replace("+00:00", "Z")


async def test_the_lag_gauges_say_how_far_behind_the_projection_is(
    settings: ShareServiceSettings,
) -> None:
    story = LinkStory("alice")
    offsets = await publish(settings, [story.created("a"), story.updated("a", "b")])
    ((topic, partition),) = offsets
    async with running_projection(settings) as projection:
        await projection.applied(offsets)
        labels = {"topic": topic, "partition": str(partition)}
        async with asyncio.timeout(20):  # measured every few seconds
            while projection.registry.get_sample_value("share_projection_lag_events", labels) != 0:
                await asyncio.sleep(0.1)
        seconds = projection.registry.get_sample_value(
            "share_projection_lag_seconds", {"topic": topic}
        )
        others = projection.registry.get_sample_value(
            "share_projection_lag_events",
            {"topic": settings.topic(COMMUNITY_EVENTS), "partition": "0"},
        )
    assert seconds is not None
    assert 0 <= seconds < 60
    assert others == 0  # every partition of both topics is watched


async def test_duplicates_leave_one_row_at_the_right_version(
    settings: ShareServiceSettings,
) -> None:
    story = LinkStory("alice")
    events = [story.created("one"), story.updated("one", "two")]
    offsets = await publish(settings, [*events, *events])
    async with running_projection(settings) as projection:
        await projection.applied(offsets)
        rows = await projection.rows()
        body = await projection.body(story)
    assert [(row["share_id"], row["version"], row["deleted"]) for row in rows] == [
        (story.share_id, 2, False)
    ]
    assert [m["content"] for m in body["messages"]] == ["one", "two"]


async def test_an_older_redelivery_changes_nothing_and_a_tombstone_stays_dead(
    settings: ShareServiceSettings,
) -> None:
    story = LinkStory("alice")
    created, second, third = (
        story.created("a"),
        story.updated("a", "b"),
        story.updated("a", "b", "c"),
    )
    async with running_projection(settings) as projection:
        await projection.applied(await publish(settings, [created, second, third]))
        before = await projection.rows()
        # As after a crash between the row's commit and the offset's: older events come again.
        await projection.applied(await publish(settings, [second, created]))
        assert await projection.rows() == before
        deleted = story.deleted()
        await projection.applied(await publish(settings, [deleted, third, second, created]))
        (row,) = await projection.rows()
        view = await projection.views.read(story.share_id)
    assert (row["version"], row["deleted"], row["body"]) == (4, True, None)
    assert view is not None
    assert view.body is None


async def test_a_group_that_lost_its_offsets_reapplies_everything_harmlessly(
    settings: ShareServiceSettings,
) -> None:
    kept, dead = LinkStory("alice"), LinkStory("bob")
    events = [kept.created("x"), kept.updated("x", "y"), dead.created("z"), dead.deleted()]
    offsets = await publish(settings, events)
    async with running_projection(settings) as projection:
        await projection.applied(offsets)
        before = await projection.rows()
    # The rows committed but no offset did: the group starts again from the earliest record.
    async with running_projection(settings, group="share-projection-again") as again:
        await again.applied(offsets)
        assert await again.rows() == before
        positions = await again.progress.positions(again.group)
    assert positions == offsets


async def test_a_deleted_link_is_a_tombstone_and_leaves_its_owner_s_list(
    settings: ShareServiceSettings,
) -> None:
    gone, live = LinkStory("carol"), LinkStory("carol")
    offsets = await publish(settings, [gone.created("hi"), live.created("hey"), gone.deleted()])
    async with running_projection(settings) as projection:
        await projection.applied(offsets)
        view = await projection.views.read(gone.share_id)
        listed = await projection.views.links_of_owner("carol", 10)
    assert view is not None
    assert (view.version, view.body) == (2, None)
    assert [link.share_id for link in listed] == [live.share_id]


async def test_a_replay_into_a_fresh_store_makes_identical_rows(
    settings: ShareServiceSettings,
) -> None:
    stories = [LinkStory("alice"), LinkStory("alice"), LinkStory("bob"), LinkStory("bob")]
    events: list[Any] = []
    for n, story in enumerate(stories):
        events += [story.created(f"hello {n}"), story.updated(f"hello {n}", "again")]
    events += [stories[1].deleted(), stories[3].deleted(), community_request("alice")]
    deleted_by_command = stories[3]
    async with running_projection(settings) as live:
        first = await publish(settings, events[:8])
        await live.applied(first)
        # The delete command tombstones the row itself before the projection sees LinkDeleted.
        row = await live.views.pool.fetchrow(
            f"SELECT created_at, updated_at FROM {live.views.table} WHERE share_id = $1",
            deleted_by_command.share_id,
        )
        link = LinkRow(deleted_by_command.share_id, deleted_by_command.chat_id, 3, *row)
        await live.views.put_tombstone(link, "bob")
        offsets = first | await publish(settings, events[8:])  # later offsets are larger
        await live.applied(offsets)
        live_rows = await live.rows()
    async with running_projection(settings, "replayed", "share-projection-replay") as replay:
        await replay.applied(offsets)
        replayed_rows = await replay.rows()
    assert len(live_rows) == 4
    assert [dict(row) for row in replayed_rows] == [dict(row) for row in live_rows]


async def test_a_delete_command_that_overtakes_the_projection_leaves_the_row_a_replay_makes(
    settings: ShareServiceSettings,
) -> None:
    """The delete command tombstones the row itself (revocation is synchronous) while the
    projection may still be behind — here it has applied the link's creation but not its new
    snapshot. The tombstone must be the one the projection and a replay make from the events:
    the link's times as of its last snapshot, not those of whatever row it met (found by the
    fault suite: a link deleted under load differed from `chatshare replay share-views`)."""
    story = LinkStory("erin")
    created, updated, deleted = story.created("hi"), story.updated("hi", "more"), story.deleted()
    async with running_projection(settings) as live:
        await live.applied(await publish(settings, [created]))
        # What the command side knows of the link it deletes: created, last snapshot at v2.
        link = LinkRow(story.share_id, story.chat_id, 3, created.occurred_at, updated.occurred_at)
        await live.views.put_tombstone(link, "erin")
        offsets = await publish(settings, [updated, deleted])  # then the projection gets them
        await live.applied(offsets)
        live_rows = await live.rows()
    async with running_projection(settings, "replayed", "share-projection-replay") as replay:
        await replay.applied(offsets)
        replayed_rows = await replay.rows()
    assert [dict(row) for row in live_rows] == [dict(row) for row in replayed_rows]
    assert (live_rows[0]["deleted"], live_rows[0]["updated_at"]) == (True, updated.occurred_at)


async def test_poison_is_dead_lettered_with_a_reason_and_the_projection_keeps_going(
    settings: ShareServiceSettings,
) -> None:
    story = LinkStory("dave")
    created = story.created("before")
    request = community_request("dave")
    wrong_key = LinkStory("dave").created("mine")
    poison = [
        (SHARE_EVENTS, story.share_id.encode(), b"{not json"),
        (SHARE_EVENTS, story.share_id.encode(), b'{"type": "ShareCreated"}'),
        (SHARE_EVENTS, b"someone-else", contracts.encode_event(wrong_key)),
        (COMMUNITY_EVENTS, request.request_id.encode(), contracts.encode_event(created)),
        (COMMUNITY_EVENTS, request.request_id.encode(), b'{"type": "CommunityShareFailed"}'),
    ]
    await publish(settings, [created, request], raw=poison)
    published = outcome(contracts.CommunitySharePublished, request.request_id,
                        community_id="c-1", community_url="https://community.example/c/1")  # fmt: skip
    after = [story.updated("before", "after"), published]
    async with running_projection(settings) as projection:
        await projection.applied(await publish(settings, after))
        body = await projection.body(story)
        status = await projection.requests.get(request.request_id)
    assert [m["content"] for m in body["messages"]] == ["before", "after"]
    assert status is not None
    assert status.status == "published"
    letters = await dead_letters(settings, expected=len(poison))
    assert sorted(letter.value for letter in letters) == sorted(value for _, _, value in poison)
    for letter in letters:
        headers = {key: value.decode() for key, value in letter.headers}
        assert headers["x-dlq-group"] == settings.group(SHARE_PROJECTION_GROUP)
        assert headers["x-dlq-source-topic"] in (
            settings.topic(SHARE_EVENTS), settings.topic(COMMUNITY_EVENTS),
        )  # fmt: skip
        assert headers["x-dlq-reason"].startswith("undecodable: ")
    reasons = " ".join(dict(letter.headers)["x-dlq-reason"].decode() for letter in letters)
    assert "the record's key is not its share_id" in reasons


async def test_community_requests_go_from_pending_to_their_outcome(
    settings: ShareServiceSettings,
) -> None:
    published, rejected, failed, early = (community_request("erin") for _ in range(4))
    url = "https://community.example/c/9"
    outcomes = [
        outcome(contracts.CommunitySharePublished, published.request_id, community_id="9", community_url=url),
        outcome(contracts.CommunityShareRejected, rejected.request_id, reason="sharing was off"),
        outcome(contracts.CommunityShareFailed, failed.request_id, reason="the site said 503"),
    ]  # fmt: skip
    async with running_projection(settings) as projection:
        # The outcome of `early` is applied before its request: the request only adds the owner.
        first = [outcome(contracts.CommunityShareRejected, early.request_id, reason="too late")]
        await projection.applied(await publish(settings, first))
        await projection.applied(await publish(settings, [published, rejected, failed, early]))
        pending = await projection.requests.get(published.request_id)
        # A published chat cannot be withdrawn: a later failure does not undo it; repeats are no-ops.
        late = outcome(contracts.CommunityShareFailed, published.request_id, reason="retry failed")
        await projection.applied(await publish(settings, [*outcomes, outcomes[0], late]))
        found = {
            r.request_id: await projection.requests.get(r.request_id)
            for r in (published, rejected, failed, early)
        }
    assert pending is not None
    assert (pending.owner_id, pending.status) == ("erin", "pending")
    answers = {
        key: (value.owner_id, value.status, value.community_url, value.reason)
        for key, value in found.items() if value is not None
    }  # fmt: skip
    assert answers == {
        published.request_id: ("erin", "published", url, None),
        rejected.request_id: ("erin", "rejected", None, "sharing was off"),
        failed.request_id: ("erin", "failed", None, "the site said 503"),
        early.request_id: ("erin", "rejected", None, "too late"),
    }


async def dead_letters(
    settings: ShareServiceSettings, expected: int
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        settings.topic(dead_letter_topic(SHARE_PROJECTION_GROUP)),
        bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < expected:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found += records
    finally:
        await consumer.stop()
    return found


def count_reads(views: ShareViewStore, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The reads of each link's row the store makes from now on."""
    reads: Counter[str] = Counter()
    read = views.read

    async def counted_read(share_id: str) -> StoredView | None:
        reads[share_id] += 1
        return await read(share_id)

    monkeypatch.setattr(views, "read", counted_read)
    return reads


async def test_a_reader_waiting_for_a_version_is_woken_by_another_process_s_write(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`?min_version=` answers as soon as any writer commits the row: the waiting reader hears
    the writer's NOTIFY. Polling is made useless here (once a minute), so only the wakeup can
    answer before the reader's deadline."""
    monkeypatch.setattr("share_service.adapters.view_store.POLL_SECONDS", 60.0)
    monkeypatch.setattr("share_service.adapters.view_store.LISTENING_POLL_SECONDS", 60.0)
    reader_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    writer_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        reader = ShareViewStore(reader_pool, "share_service")
        writer = ShareViewStore(writer_pool, "share_service")  # as another replica's projection
        await writer.create_table()
        listening = asyncio.create_task(reader.listen(database_url))
        now = datetime.now(UTC)
        write = ViewWrite("s1", "c1", "alice", 1, b'{"v":1}', now, now)
        async with writer_pool.acquire() as connection:
            await writer.put_views(connection, [write])
        await asyncio.sleep(0.5)  # the listener is connected and the first wait has begun below

        reads = count_reads(reader, monkeypatch)
        waiting = asyncio.create_task(reader.wait_for_version("s1", 2, within=30))
        elsewhere = asyncio.create_task(reader.wait_for_version("s2", 1, within=30))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # version 2 does not exist yet
        async with writer_pool.acquire() as connection:
            await writer.put_views(connection, [replace(write, version=2, body=b'{"v":2}')])
        # Polling alone would answer only at the reader's 30 s deadline.
        view = await asyncio.wait_for(waiting, 10)

        assert view is not None
        assert (view.version, view.body) == (2, b'{"v":2}')
        await asyncio.sleep(0.3)
        assert reads["s2"] == 1  # a write to s1 does not make the reader of s2 read again
        async with writer_pool.acquire() as connection:
            await writer.put_views(connection, [replace(write, share_id="s2", version=1)])
        other = await asyncio.wait_for(elsewhere, 10)
        assert other is not None
        assert other.version == 1
        listening.cancel()
    finally:
        await reader_pool.close()
        await writer_pool.close()


async def test_a_waiting_reader_polls_only_while_no_notification_can_reach_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the listener is connected a waiting reader reads its row once and then waits for
    the wakeup; with the listener gone it falls back to reading every `POLL_SECONDS`."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        views = ShareViewStore(pool, "share_service")
        await views.create_table()
        reads = count_reads(views, monkeypatch)
        unheard = asyncio.create_task(views.wait_for_version("unheard", 1, within=30))
        await asyncio.sleep(0.3)
        assert reads["unheard"] >= 5  # no listener: a read every 20 ms
        unheard.cancel()

        listening = asyncio.create_task(views.listen(database_url))
        async with asyncio.timeout(10):
            while not views.listening:
                await asyncio.sleep(0.01)
        heard = asyncio.create_task(views.wait_for_version("heard", 1, within=30))
        await asyncio.sleep(0.3)
        assert reads["heard"] == 1
        listening.cancel()
        heard.cancel()
        await asyncio.gather(listening, heard, unheard, return_exceptions=True)
    finally:
        await pool.close()


async def test_a_batch_changing_more_links_than_one_notification_can_name_wakes_each_reader(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """800 links of 43-character ids need five NOTIFY payloads (PostgreSQL takes < 8,000 bytes
    each): every waiting reader is woken by name. Polling is made useless, as above."""
    monkeypatch.setattr("share_service.adapters.view_store.POLL_SECONDS", 60.0)
    monkeypatch.setattr("share_service.adapters.view_store.LISTENING_POLL_SECONDS", 60.0)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    try:
        views = ShareViewStore(pool, "share_service")
        await views.create_table()
        listening = asyncio.create_task(views.listen(database_url))
        async with asyncio.timeout(10):
            while not views.listening:
                await asyncio.sleep(0.01)
        ids = [secrets.token_urlsafe(32) for _ in range(800)]
        waiting = [asyncio.create_task(views.wait_for_version(i, 1, within=30)) for i in ids]
        await asyncio.sleep(0.5)  # every reader has read its (missing) row and waits
        now = datetime.now(UTC)
        writes = [ViewWrite(i, "c", "alice", 1, b"{}", now, now) for i in ids]
        async with pool.acquire() as connection:
            assert set(await views.put_views(connection, writes)) == set(ids)
        answered = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert all(view is not None and view.version == 1 for view in answered)
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    finally:
        await pool.close()


def record_at(topic: str, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic, partition=0, offset=offset, timestamp=0, timestamp_type=0, key=None,
        value=None, checksum=None, serialized_key_size=0, serialized_value_size=0, headers=(),
    )  # fmt: skip


def delivered(events: list[Any], topic: str, first_offset: int) -> list[Delivery[Any]]:
    records = [record_at(topic, first_offset + n) for n in range(len(events))]
    return [Delivery(event, record) for event, record in zip(events, records, strict=True)]


async def test_a_batch_whose_link_times_are_known_is_one_statement_and_others_read_them(
    database_url: str,
) -> None:
    """Every round trip between the broker and the reader counts towards freshness: a batch of
    new links (snapshots of links born in it included) is projected in one statement — rows,
    readers' wake-up and progress together, atomic as any statement — and so is a snapshot of a
    link whose row this projection has seen. A snapshot of a link it has not (after a restart)
    needs the row's `created_at`, so its batch reads it first, in a transaction."""
    statements: list[str] = []  # the projection's own: not asyncpg's type lookups or resets

    def log(query: Any) -> None:
        text = query.query.strip()
        if '"share_service"' in text or text.upper().startswith(("BEGIN", "COMMIT")):
            statements.append(text)

    async def logged(connection: asyncpg.Connection) -> None:
        connection.add_query_logger(log)

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=logged)
    try:
        views = ShareViewStore(pool, "share_service")
        progress = ProjectionProgress(pool, "share_service")
        requests = CommunityRequestStore(pool, "share_service")
        for store in (views, progress, requests):
            await store.create_table()
        projection = ShareProjection(
            views, progress, requests, "g", ProjectionLag(CollectorRegistry())
        )
        first, second = LinkStory("alice"), LinkStory("bob")
        born = [first.created("a"), second.created("b"), second.updated("b", "c")]

        statements.clear()
        await projection.apply(delivered(born, "share.events", 0))
        assert len(statements) == 1
        assert await progress.positions("g") == {("share.events", 0): 3}
        assert [(r["share_id"], r["version"]) for r in await pool.fetch(
            f"SELECT share_id, version FROM {views.table} ORDER BY version"
        )] == sorted([(first.share_id, 1), (second.share_id, 2)], key=lambda r: r[1])  # fmt: skip

        statements.clear()
        await projection.apply(delivered([first.updated("a", "d")], "share.events", 3))
        assert len(statements) == 1  # first's row was written here: its time is known

        restarted = ShareProjection(
            views, progress, requests, "g", ProjectionLag(CollectorRegistry())
        )
        statements.clear()
        await restarted.apply(delivered([first.updated("a", "e")], "share.events", 4))
        assert any("FOR UPDATE" in statement for statement in statements)
        assert await progress.positions("g") == {("share.events", 0): 5}
        view = await views.read(first.share_id)
        assert view is not None
        assert view.body is not None
        body = json.loads(view.body)
        assert body["version"] == 3
        assert body["created_at"] == born[0].occurred_at.isoformat().replace("+00:00", "Z")

        statements.clear()  # and now the restarted projection knows it too
        await restarted.apply(delivered([first.updated("a", "f")], "share.events", 5))
        assert len(statements) == 1
        view = await views.read(first.share_id)
        assert view is not None
        assert view.body is not None
        assert json.loads(view.body)["created_at"] == body["created_at"]
    finally:
        await pool.close()

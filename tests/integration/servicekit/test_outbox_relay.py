"""The outbox relay on the real broker and database: everything stored is published in order;
a relay SIGKILLed mid-stream and restarted re-sends a tail and loses nothing, and one that meets
an unexpected error starts again by itself; a fenced relay publishes nothing; a second relay
stands by while the first is active."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from servicekit.event_store import eventsourcing_env
from servicekit.outbox import EventsourcingLog, NotificationBatch, Queryable
from servicekit.outbox_message import OutboxMessage
from tests.integration.servicekit.counter_store import SCHEMA, TallyApp, build_relay, message_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"test.relay.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(name, 4, 1)])
    await admin.close()
    return name


async def read_committed(
    bootstrap: str, topic: str, expected: int, within: float = 60
) -> list[dict[str, object]]:
    """Every record a read_committed consumer sees, once at least `expected` distinct events
    arrived (a re-sent tail repeats some: those are kept, and counted once)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        isolation_level="read_committed", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    seen: list[dict[str, object]] = []
    distinct: set[str] = set()

    def take(batches: dict[Any, list[Any]]) -> None:
        for records in batches.values():
            for record in records:
                headers = dict(record.headers)
                seen.append({**json.loads(record.value), "key": record.key.decode(),
                             "event_id": headers["event_id"].decode(),
                             "notification_id": int(headers["notification_id"])})  # fmt: skip
                distinct.add(headers["event_id"].decode())

    try:
        async with asyncio.timeout(within):
            while len(distinct) < expected:
                take(await consumer.getmany(timeout_ms=500))
        take(await consumer.getmany(timeout_ms=500))  # anything beyond what we waited for
    finally:
        await consumer.stop()
    return seen


def assert_complete_and_in_order(seen: list[dict[str, object]], tallies: dict[str, int]) -> None:
    per_key: dict[str, list[int]] = defaultdict(list)
    for item in seen:
        per_key[str(item["key"])].append(int(item["version"]))  # type: ignore[call-overload]
    for key, count in tallies.items():
        versions = per_key[key]
        # Order per key holds even with a re-sent tail: the repeat starts over from an earlier
        # version and climbs again; no version is ever missing.
        assert sorted(set(versions)) == list(range(2, count + 2)), key
        assert versions == sorted(versions) or _is_replayed_tail(versions), versions


def _is_replayed_tail(versions: list[int]) -> bool:
    drops = [i for i in range(1, len(versions)) if versions[i] <= versions[i - 1]]
    return len(drops) == 1  # one crash: one point where a tail starts over


@pytest.mark.parametrize(
    ("batch_bytes", "aggregates", "events_each"),
    [(None, 3, 30), (1, 2, 10)],
    ids=["default batches", "one event a batch"],
)
async def test_the_relay_publishes_every_stored_event_in_order_with_ids_in_headers(
    database_url: str,
    kafka_bootstrap: str,
    topic: str,
    batch_bytes: int | None,
    aggregates: int,
    events_each: int,
) -> None:
    """Also with a byte budget of one: every event is over it, so each batch is one event (one
    transaction) and says more follow; nothing is skipped."""
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    tallies = {
        str(app.count(None, range(1, events_each + 1))): events_each for _ in range(aggregates)
    }
    expected = aggregates * events_each
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    relay = build_relay(database_url, kafka_bootstrap, topic, pool)
    if batch_bytes is not None:
        relay.config = replace(relay.config, batch_bytes=batch_bytes)
    task = asyncio.create_task(relay.run())
    try:
        seen = await read_committed(kafka_bootstrap, topic, expected=expected)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(seen) == expected
    assert_complete_and_in_order(seen, tallies)
    assert len({item["event_id"] for item in seen}) == expected
    assert await relay.load_position() == max(int(item["notification_id"]) for item in seen)  # type: ignore[call-overload]
    await pool.close()


async def test_a_save_in_another_process_wakes_the_relay_at_once(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    """The event store's NOTIFY wakes the relay: with the relay in a workers process, the API's
    saves are published without waiting for its poll (here, once an hour)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    relay = build_relay(database_url, kafka_bootstrap, topic, pool)
    relay.config = replace(relay.config, poll_interval=3600, listening_poll_interval=3600)
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(30):
            while not relay.is_active:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # it has read the empty store and waits
        writer = TallyApp(env=eventsourcing_env(database_url, SCHEMA))  # never calls notify()
        tally = await asyncio.to_thread(writer.count, None, range(1, 6))
        seen = await read_committed(kafka_bootstrap, topic, expected=5, within=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()
    assert [item["version"] for item in seen if item["key"] == str(tally)] == [2, 3, 4, 5, 6]


async def test_an_idle_relay_that_hears_every_save_reads_the_store_only_as_a_safety_net(
    database_url: str, kafka_bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the store's NOTIFY heard, an idle relay reads the log once a second, not every
    20 ms (the poll a store without NOTIFY needs)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    relay = build_relay(database_url, kafka_bootstrap, topic, pool)
    reads = 0
    fetch_after = relay.notifications.fetch_after

    async def counted(
        connection: Queryable, position: int, limit: int, max_bytes: int
    ) -> NotificationBatch:
        nonlocal reads
        reads += 1
        return await fetch_after(connection, position, limit, max_bytes)

    monkeypatch.setattr(relay.notifications, "fetch_after", counted)
    task = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(30):
            while not relay.is_active:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        before = reads
        assert before >= 1  # the relay reads through `fetch_after` on PostgreSQL
        await asyncio.sleep(2.5)
        assert reads - before <= 3  # a 20 ms poll would have read ~125 times
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()


class FailingOnce(EventsourcingLog):
    """The store's log, failing once after the first batch as no outage does (seen after a
    PostgreSQL restart: asyncpg's InternalClientError on the lock's connection)."""

    failed = False

    async def fetch_after(
        self, connection: Queryable, position: int, limit: int, max_bytes: int
    ) -> NotificationBatch:
        if position > 0 and not self.failed:
            self.failed = True
            raise RuntimeError("an error no one planned for")
        return await super().fetch_after(connection, position, limit, max_bytes)


async def test_a_relay_that_meets_an_unexpected_error_starts_again_and_loses_nothing(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    tallies = {str(app.count(None, range(1, 31))): 30 for _ in range(3)}
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    relay = build_relay(database_url, kafka_bootstrap, topic, pool)  # batches of 50
    relay.notifications = failing = FailingOnce(app, message_for(topic))
    task = asyncio.create_task(relay.run())
    try:
        seen = await read_committed(kafka_bootstrap, topic, expected=90)
        assert failing.failed
        assert not task.done()  # the relay is still running, not dead of it
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert_complete_and_in_order(seen, tallies)
    await pool.close()


async def test_a_relay_killed_mid_stream_and_restarted_loses_nothing(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    tallies: dict[str, int] = {}
    for _ in range(10):
        tallies[str(app.count(None, range(1, 101)))] = 100  # 1,000 events
    command = [
        sys.executable,
        "-m",
        "tests.integration.servicekit.counter_store",
        database_url,
        kafka_bootstrap,
        topic,
    ]
    first = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
                                isolation_level="read_committed")  # fmt: skip
    await consumer.start()
    try:
        async with asyncio.timeout(60):  # wait until it is mid-stream
            while not await consumer.getmany(timeout_ms=200):
                pass
    finally:
        await consumer.stop()
    first.kill()  # SIGKILL: no cleanup, possibly inside an open transaction
    first.wait()
    for _ in range(5):  # more events arrive while no relay runs
        tallies[str(app.count(None, range(1, 21)))] = 20
    second = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    try:
        seen = await read_committed(kafka_bootstrap, topic, expected=1100, within=120)
    finally:
        second.kill()
        second.wait()
    assert_complete_and_in_order(seen, tallies)
    assert len({item["event_id"] for item in seen}) == 1100


async def test_a_fenced_relay_publishes_nothing(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    old = build_relay(database_url, kafka_bootstrap, topic, pool)
    new = build_relay(database_url, kafka_bootstrap, topic, pool)
    paused_producer = old._new_producer()
    await paused_producer.start()
    newer_producer = new._new_producer()
    await newer_producer.start()  # same transactional.id: this fences the paused relay
    message = OutboxMessage(
        topic=topic, key="k", value=b'{"n": 1, "version": 2}', event_id=uuid.uuid4()
    )
    try:
        with pytest.raises(KafkaError):
            await old.publish_batch(paused_producer, [(1, message)])
        await new.publish_batch(newer_producer, [(2, message)])
    finally:
        await paused_producer.stop()
        await newer_producer.stop()
    seen = await read_committed(kafka_bootstrap, topic, expected=1)
    assert [item["notification_id"] for item in seen] == [2]
    await pool.close()


async def test_relays_of_two_stacks_sharing_one_cluster_do_not_fence_each_other(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    """`CHATSHARE_TOPIC_PREFIX` lets several stacks share a cluster (README): the same service's
    relay in each, with its own database and topics, must not take the other's transactional
    id, or each new relay fences the other stack's active one."""
    prefix = f"other{uuid.uuid4().hex[:6]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(prefix + topic, 1, 1)])
    await admin.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    ours = build_relay(database_url, kafka_bootstrap, topic, pool)
    theirs = build_relay(database_url, kafka_bootstrap, topic, pool, topic_prefix=prefix)
    our_producer, their_producer = ours._new_producer(), theirs._new_producer()
    await our_producer.start()
    await their_producer.start()  # the other stack's relay starts after ours
    message = OutboxMessage(
        topic=topic, key="k", value=b'{"n": 1, "version": 2}', event_id=uuid.uuid4()
    )
    try:
        await ours.publish_batch(our_producer, [(1, message)])
        await theirs.publish_batch(their_producer, [(1, message)])
    finally:
        await our_producer.stop()
        await their_producer.stop()
    assert len(await read_committed(kafka_bootstrap, topic, expected=1)) == 1
    assert len(await read_committed(kafka_bootstrap, prefix + topic, expected=1)) == 1
    await pool.close()


async def test_a_second_relay_stands_by_while_the_first_is_active(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    first = build_relay(database_url, kafka_bootstrap, topic, pool)
    second = build_relay(database_url, kafka_bootstrap, topic, pool)
    first_task = asyncio.create_task(first.run())
    async with asyncio.timeout(30):
        while not first.is_active:
            await asyncio.sleep(0.05)
    second_task = asyncio.create_task(second.run())
    await asyncio.sleep(1.0)
    assert (first.is_active, second.is_active) == (True, False)
    first_task.cancel()  # the active one goes away: the stand-by takes over
    await asyncio.gather(first_task, return_exceptions=True)
    async with asyncio.timeout(30):
        while not second.is_active:
            await asyncio.sleep(0.05)
    second_task.cancel()
    await asyncio.gather(second_task, return_exceptions=True)
    await pool.close()


async def test_a_relay_whose_lock_connection_dies_stands_down_and_its_stand_by_loses_nothing(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    """The advisory lock dies with its connection (PostgreSQL ended it, a network cut): the
    stand-by relay takes the lock while the old one may not have noticed yet. The old one stands
    down at its next check, Kafka fences whatever it still sends, and every stored event —
    before, during and after the hand-over — arrives complete and in order per key."""
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    tallies = {str(app.count(None, range(1, 21))): 20 for _ in range(3)}
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    first = build_relay(database_url, kafka_bootstrap, topic, pool)
    second = build_relay(database_url, kafka_bootstrap, topic, pool)
    tasks = [asyncio.create_task(first.run())]
    try:
        async with asyncio.timeout(30):
            while not first.is_active:
                await asyncio.sleep(0.05)
        tasks.append(asyncio.create_task(second.run()))
        await read_committed(kafka_bootstrap, topic, expected=60)
        assert (first.is_active, second.is_active) == (True, False)

        ended = await pool.fetchval(  # in this test's database: the server is shared
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert ended == 1  # the active relay's lock, and with it its connection
        for _ in range(3):  # saves while the lock changes hands
            tallies[str(await asyncio.to_thread(app.count, None, range(1, 21)))] = 20
        async with asyncio.timeout(30):
            while first.is_active:  # it stands down (and waits a second before trying again)
                await asyncio.sleep(0.01)
            while first.is_active == second.is_active:  # then one of them holds the lock
                await asyncio.sleep(0.05)
        for _ in range(3):  # and after
            tallies[str(await asyncio.to_thread(app.count, None, range(1, 21)))] = 20
        seen = await read_committed(kafka_bootstrap, topic, expected=180)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.close()
    assert_complete_and_in_order(seen, tallies)
    assert len({item["event_id"] for item in seen}) == 180


async def test_the_relay_reads_the_same_notifications_with_asyncpg_as_eventsourcing_gives(
    database_url: str, topic: str
) -> None:
    """`fetch_after` (asyncpg, the relay's path on PostgreSQL) and `read_after` (eventsourcing's
    `select_notifications`) give the same notifications, decoded to the same messages, with
    the same contexts, from any position, up to any limit and any byte budget."""
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    start = app.recorder.max_notification_id() or 0
    for _ in range(3):
        app.count(None, range(1, 8))
    log = EventsourcingLog(app, message_for(topic))
    one = len(app.recorder.select_notifications(start + 2, 1)[0].state)  # a count's stored size
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        for position, limit, max_bytes in (
            (start, 100, 10**9), (start + 5, 4, 10**9), (start + 21, 10, 10**9),
            (start, 100, 3 * one), (start + 3, 100, 1),
        ):  # fmt: skip
            fetched = await log.fetch_after(pool, position, limit, max_bytes)
            assert fetched == log.read_after(position, limit, max_bytes)
        everything = await log.fetch_after(pool, start, 100, 10**9)
        assert len(everything.items) == 24  # three creations (not published) and 21 counts
        assert sum(message is not None for _, message in everything.items) == 21
        assert not everything.more
        assert (await log.fetch_after(pool, start + 5, 4, 10**9)).more  # the limit was reached
    finally:
        await pool.close()
        app.close()


async def test_a_batch_stops_at_its_byte_budget_and_always_takes_one_event(
    database_url: str, topic: str
) -> None:
    """Snapshot-sized events: a batch holds as many as fit in the budget, says more follow,
    and an event larger than the whole budget still goes out, alone."""
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    start = app.recorder.max_notification_id() or 0
    app.count(None, range(1, 7))
    sizes = [
        len(n.state) for n in app.recorder.select_notifications(start, 10, inclusive_of_start=False)
    ]
    log = EventsourcingLog(app, message_for(topic))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        budget = sum(sizes[:3]) + 1  # room for three, and one byte of a fourth
        cut = await log.fetch_after(pool, start, 100, budget)
        assert [nid for nid, _ in cut.items] == [start + 1, start + 2, start + 3, start + 4]
        assert cut.more
        alone = await log.fetch_after(pool, start + 1, 100, 1)
        assert [nid for nid, _ in alone.items] == [start + 2]
        assert alone.more
        last = await log.fetch_after(pool, start + 6, 100, 1)
        assert [nid for nid, _ in last.items] == [start + 7]
        assert not last.more
    finally:
        await pool.close()
        app.close()


async def test_events_stored_within_the_transaction_interval_leave_together(
    database_url: str, kafka_bootstrap: str, topic: str
) -> None:
    """Transactions are paced (`RelayConfig.transaction_interval`): events stored one by one
    just after a transaction wait for the next, and leave in it together, in order."""
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    relay = build_relay(database_url, kafka_bootstrap, topic, pool)
    relay.config = replace(relay.config, transaction_interval=2.0)
    batches: list[int] = []
    publish = relay.publish_batch

    async def recording(producer: Any, messages: Any) -> None:
        batches.append(len(messages))
        await publish(producer, messages)

    relay.publish_batch = recording  # type: ignore[method-assign]
    task = asyncio.create_task(relay.run())
    try:
        tally = app.count(None, range(1, 2))
        async with asyncio.timeout(30):
            while not batches:
                await asyncio.sleep(0.01)
        for n in range(2, 7):  # a save each, 50 ms apart: each its own batch, unpaced
            await asyncio.to_thread(app.count, tally, range(n, n + 1))
            await asyncio.sleep(0.05)
        seen = await read_committed(kafka_bootstrap, topic, expected=6)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()
    assert batches == [1, 5]
    assert [item["n"] for item in seen] == [1, 2, 3, 4, 5, 6]

"""The operator's `chatshare` CLI against a running share_service on the real broker and database:
the share views rebuilt from the event store (shadow, compare, swap) or re-fed from Kafka, dead
letters listed, shown and redriven to their own group, topics tailed, and consumer lag."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from chatshare_cli.dead_letters import DeadLetter, read_dead_letters
from chatshare_cli.shadow_views import ShadowViews
from chatshare_cli.share_view_replay import ShareViewReplay
from chatshare_cli.stored_share_events import StoredShareEvents

import contracts
from contracts.topics import CHAT_MIRROR_GROUP, SHARE_EVENTS, SHARE_PROJECTION_GROUP
from servicekit.consumer import DLQ_OMITTED
from share_service.adapters.projection_progress import ProjectionProgress
from tests.chat_feed import ChatFeed
from tests.integration.operators.cli_runner import chatshare, start_cli
from tests.integration.share_service.share_harness import (
    ALICE,
    BOB,
    LinkStory,
    ShareService,
    community_request,
    outcome,
    publish,
    until_applied,
)

pytestmark = pytest.mark.integration

VIEWS = "share_service.share_views"
ROW = "share_id, chat_id, owner_id, version, deleted, body, created_at, updated_at"


def pool(service: ShareService) -> asyncpg.Pool:
    found: asyncpg.Pool = service.app.state.runtime.pool
    return found


async def rows(service: ShareService) -> list[dict[str, Any]]:
    return [dict(row) for row in await pool(service).fetch(f"SELECT {ROW} FROM {VIEWS} ORDER BY 1")]


async def links(service: ShareService, count: int) -> list[str]:
    """Alice shares `count` chats; every link's view is in the store."""
    shared = []
    for n in range(count):
        feed = await service.chat("alice", f"hello {n}", "é 😀 <b>")
        answer = await service.share(feed)
        assert answer.status_code == 201
        shared.append(answer.json()["share_id"])
    for share_id in shared:
        await service.projection_applied(share_id, 1)
    return shared


async def history(service: ShareService) -> tuple[list[str], str]:
    """Links created, one re-snapshotted twice, one deleted: the live ones and the deleted one."""
    live = await links(service, 4)
    for _ in range(2):
        answer = await service.client.put(f"/api/v1/shares/{live[0]}/snapshot", headers=ALICE)
        assert answer.status_code == 200
    gone = live.pop()
    assert (await service.client.delete(f"/api/v1/shares/{gone}", headers=ALICE)).status_code == 204
    await service.projection_applied(live[0], 3)
    await service.projection_applied(gone, 2)
    return live, gone


async def test_a_replay_of_an_unchanged_store_changes_no_row(service: ShareService) -> None:
    await history(service)
    before = await rows(service)
    ran = await chatshare(service.settings, "replay", "share-views")
    assert ran.code == 0, ran.stderr
    assert ran.summary["changed"] == 0
    assert ran.summary["views"] == len(before) == 4
    assert ran.summary["events"] >= 7  # and the per-chat bookkeeping's events
    assert await rows(service) == before
    # The swapped-in table is the live one in every way: its indexes have the live names.
    indexes = await pool(service).fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'share_service'"
        " AND tablename LIKE 'share_views%' ORDER BY 1"
    )
    assert [row[0] for row in indexes] == ["share_views_by_owner", "share_views_pkey"]


async def test_a_dry_run_reports_a_corrupted_row_and_the_replay_repairs_it(
    service: ShareService,
) -> None:
    live, _ = await history(service)
    before = await rows(service)
    await pool(service).execute(
        f"UPDATE {VIEWS} SET body = $2, updated_at = now() WHERE share_id = $1", live[1], b"{}"
    )
    dry = await chatshare(service.settings, "replay", "share-views", "--dry-run")
    assert dry.code == 3, dry.stderr
    assert (dry.summary["changed"], dry.summary["swapped"]) == (1, False)
    assert live[1] in dry.stdout
    assert "body, updated_at" in dry.stdout
    assert await rows(service) != before  # a dry run repairs nothing
    ran = await chatshare(service.settings, "replay", "share-views")
    assert ran.code == 0, ran.stderr
    assert ran.summary["changed"] == 1
    assert await rows(service) == before
    answer = await service.client.get(f"/api/v1/shares/{live[1]}", headers=BOB)
    assert answer.json()["messages"][0]["content"] == "hello 1"


async def test_a_deleted_link_stays_a_tombstone_after_the_replay(service: ShareService) -> None:
    _, gone = await history(service)
    await pool(service).execute(f"DELETE FROM {VIEWS} WHERE share_id = $1", gone)
    ran = await chatshare(service.settings, "replay", "share-views")
    assert ran.code == 0, ran.stderr
    assert ran.summary["changed"] == 1  # a row present on one side only counts
    row = await pool(service).fetchrow(f"SELECT {ROW} FROM {VIEWS} WHERE share_id = $1", gone)
    assert row is not None
    assert (row["version"], row["deleted"], row["body"]) == (2, True, None)
    assert (await service.client.get(f"/api/v1/shares/{gone}", headers=BOB)).status_code == 404


async def test_reads_keep_being_served_while_the_replay_swaps_the_table(
    service: ShareService,
) -> None:
    shared = await links(service, 12)
    answers: list[int] = []
    replay = await start_cli(service.settings, "replay", "share-views")

    async def read_all_the_time() -> None:
        while replay.returncode is None:
            for share_id in shared:
                answer = await service.client.get(f"/api/v1/shares/{share_id}", headers=BOB)
                answers.append(answer.status_code)

    reading = asyncio.create_task(read_all_the_time())
    async with asyncio.timeout(120):
        stdout, stderr = await replay.communicate()
    await reading
    assert replay.returncode == 0, stderr.decode()
    assert '"changed": 0' in stdout.decode().splitlines()[-1]
    assert len(answers) > 100
    assert set(answers) == {200}


class SlowSwap(ShadowViews):
    """Holds the swap's lock a while, so reads certainly meet it."""

    def __init__(self, pool: asyncpg.Pool, locked: asyncio.Event) -> None:
        super().__init__(pool, "share_service")
        self.locked = locked

    async def swap(self, catch_up: Any) -> None:
        async def slowly(connection: asyncpg.Connection) -> None:
            await catch_up(connection)
            self.locked.set()
            await asyncio.sleep(0.5)

        await super().swap(slowly)


async def test_a_read_that_meets_the_swap_waits_for_it_then_reads_the_new_table(
    service: ShareService,
) -> None:
    shared = await links(service, 3)
    locked = asyncio.Event()
    events = StoredShareEvents(service.app.state.wiring.sharing)
    replay = ShareViewReplay(events, SlowSwap(pool(service), locked), page_size=2)
    replaying = asyncio.create_task(replay.run(dry_run=False, show=0))
    await locked.wait()
    started = time.monotonic()
    answers = await asyncio.gather(*(
        service.client.get(f"/api/v1/shares/{share_id}", headers=BOB) for share_id in shared
    ))  # fmt: skip
    waited = time.monotonic() - started
    outcome = await replaying
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert waited > 0.2  # they waited for the swap's transaction
    assert (outcome.changed, outcome.swapped) == (0, True)


async def test_a_rebuild_with_no_view_does_not_empty_a_full_store(service: ShareService) -> None:
    (share_id,) = await links(service, 1)
    await pool(service).execute("TRUNCATE share_service.share_events")  # the wrong event store
    refused = await chatshare(service.settings, "replay", "share-views")
    assert refused.code == 1
    assert "--allow-empty" in refused.stderr
    assert [row["share_id"] for row in await rows(service)] == [share_id]
    allowed = await chatshare(service.settings, "replay", "share-views", "--allow-empty")
    assert (allowed.code, allowed.summary["changed"], await rows(service)) == (0, 1, [])


async def test_the_view_store_is_refed_from_kafka_into_a_wiped_table(
    service: ShareService,
) -> None:
    await history(service)
    before = await rows(service)
    await pool(service).execute(f"DELETE FROM {VIEWS}")
    ran = await chatshare(service.settings, "replay", "share-views", "--from-kafka")
    assert ran.code == 0, ran.stderr
    assert (ran.summary["views"], ran.summary["changed"]) == (4, 4)
    assert await rows(service) == before
    again = await chatshare(
        service.settings, "replay", "share-views", "--from-kafka", "--since", "0"
    )
    assert (again.code, again.summary["changed"]) == (0, 0)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    future = await chatshare(
        service.settings, "replay", "share-views", "--from-kafka", "--since", later
    )
    assert (future.code, future.summary["events"]) == (0, 0)
    wrong = await chatshare(service.settings, "replay", "share-views", "--since", "0")
    assert wrong.code == 2


REQUESTS = "share_service.community_requests"


async def requests_rows(service: ShareService) -> dict[str, tuple[Any, ...]]:
    found = await pool(service).fetch(
        f"SELECT request_id, owner_id, status, community_url, reason FROM {REQUESTS}"
    )
    return {row["request_id"]: tuple(row)[1:] for row in found}


async def test_community_request_statuses_are_refed_from_both_topics(
    service: ShareService,
) -> None:
    settings = service.settings
    published, rejected, waiting = (community_request("alice") for _ in range(3))
    url = "https://community.example/c/7"
    outcomes = [
        outcome(contracts.CommunitySharePublished, published.request_id, community_id="7",
                community_url=url),
        outcome(contracts.CommunityShareRejected, rejected.request_id, reason="sharing was off"),
    ]  # fmt: skip
    progress = ProjectionProgress(pool(service), "share_service")
    group = settings.group(SHARE_PROJECTION_GROUP)
    await until_applied(progress, group, await publish(settings, [published, rejected, waiting]))
    await asyncio.sleep(0.05)  # the outcomes' timestamps come after this moment
    between = datetime.now(UTC)
    await asyncio.sleep(0.05)
    await until_applied(progress, group, await publish(settings, outcomes))
    before = await requests_rows(service)
    assert before == {
        published.request_id: ("alice", "published", url, None),
        rejected.request_id: ("alice", "rejected", None, "sharing was off"),
        waiting.request_id: ("alice", "pending", None, None),
    }
    await pool(service).execute(f"DELETE FROM {REQUESTS}")

    # --since applies to community.events too: only the outcomes are after `between`.
    late = await chatshare(settings, "replay", "share-views", "--from-kafka",
                           "--since", between.isoformat())  # fmt: skip
    assert late.code == 0, late.stderr
    assert (late.summary["events"], late.summary["requests"]) == (2, 2)
    assert await requests_rows(service) == {
        published.request_id: (None, "published", url, None),  # the owner comes with the request
        rejected.request_id: (None, "rejected", None, "sharing was off"),
    }
    ran = await chatshare(settings, "replay", "share-views", "--from-kafka")
    assert ran.code == 0, ran.stderr
    assert (ran.summary["events"], ran.summary["requests"]) == (5, 3)
    assert await requests_rows(service) == before
    answer = await service.client.get(
        f"/api/v1/community-shares/{published.request_id}", headers=ALICE
    )
    assert answer.json() == {"request_id": published.request_id, "status": "published",
                             "community_url": url}  # fmt: skip


async def dead_letters_of(service: ShareService, group: str, count: int) -> list[DeadLetter]:
    async with asyncio.timeout(30):
        while len(letters := await read_dead_letters(service.settings, group)) < count:
            await asyncio.sleep(0.2)
    return letters


async def park(service: ShareService, event: Any, reason: str) -> None:
    """A valid event that the share projection gave up on (say the database refused it then),
    as the group parks it."""
    settings = service.settings
    headers = {
        "x-dlq-source-topic": settings.topic(SHARE_EVENTS), "x-dlq-source-partition": "0",
        "x-dlq-source-offset": "4242", "x-dlq-group": settings.group(SHARE_PROJECTION_GROUP),
        "x-dlq-reason": reason, "x-dlq-failed-at": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(f"dlq.{SHARE_PROJECTION_GROUP}"), contracts.encode_event(event),
            key=event.share_id.encode(), partition=1,
            headers=[(name, value.encode()) for name, value in headers.items()],
        )  # fmt: skip
    finally:
        await producer.stop()


async def test_dead_letters_are_listed_shown_and_redriven_to_their_own_group(
    service: ShareService,
) -> None:
    settings, group = service.settings, SHARE_PROJECTION_GROUP
    await publish(settings, [], raw=[(SHARE_EVENTS, b"some-link", b"{not json")])
    story = LinkStory("alice")
    await park(service, story.created("parked"), "PostgresError: the disk was full")
    letters = await dead_letters_of(service, group, 2)
    (poison,) = [letter for letter in letters if letter.value == b"{not json"]
    (parked,) = [letter for letter in letters if letter is not poison]

    listed = await chatshare(settings, "dlq", "list", group, "--json")
    assert listed.code == 0, listed.stderr
    by_ref = {line["ref"]: line for line in listed.json_lines}
    assert set(by_ref) == {poison.ref, parked.ref}
    assert by_ref[poison.ref]["reason"].startswith("undecodable: ")
    assert by_ref[parked.ref]["source"] == f"{settings.topic(SHARE_EVENTS)}[0]@4242"
    assert {line["redriven_at"] for line in listed.json_lines} == {""}
    table = await chatshare(settings, "dlq", "list", group)
    assert (table.code, "the disk was full" in table.stdout) == (0, True)
    shown = await chatshare(settings, "dlq", "show", group, parked.ref)
    assert shown.code == 0, shown.stderr
    assert "x-dlq-reason" in shown.stdout
    assert '"title": "Trip"' in shown.stdout  # the value, pretty-printed

    redriven = await chatshare(settings, "dlq", "redrive", group, "--offset", parked.ref)
    assert redriven.code == 0, redriven.stderr
    assert redriven.summary == {"group": group, "redriven": 1, "refused": 0, "failed": 0}
    view = await service.app.state.wiring.views.read(story.share_id)
    assert view is not None
    assert view.version == 1
    twice = await chatshare(settings, "dlq", "redrive", group, "--offset", parked.ref)
    assert (twice.code, twice.summary["refused"]) == (1, 1)
    forced = await chatshare(settings, "dlq", "redrive", group, "--offset", parked.ref, "--force")
    assert (forced.code, forced.summary["redriven"]) == (0, 1)
    failed = await chatshare(settings, "dlq", "redrive", group, "--offset", poison.ref)
    assert (failed.code, failed.summary["failed"]) == (1, 1)
    assert "unprocessable" in failed.stdout
    every = await chatshare(settings, "dlq", "redrive", group, "--all")
    assert (every.code, every.summary) == (
        1,
        {"group": group, "redriven": 0, "refused": 1, "failed": 1},
    )
    relisted = await chatshare(settings, "dlq", "list", group, "--json")
    redriven_at = {line["ref"]: line["redriven_at"] for line in relisted.json_lines}
    assert (bool(redriven_at[parked.ref]), redriven_at[poison.ref]) == (True, "")

    assert (await chatshare(settings, "dlq", "redrive", group)).code == 2
    assert (await chatshare(settings, "dlq", "redrive", "no-such-group", "--all")).code == 2
    assert (await chatshare(settings, "dlq", "list", "no-such-group")).code == 2
    assert (await chatshare(settings, "dlq", "show", group, "2:999")).code == 2


async def test_a_chat_event_that_came_too_early_is_redriven_to_the_chat_mirror(
    service: ShareService,
) -> None:
    feed = ChatFeed("alice")
    created, early = feed.created("Later"), feed.message("before its chat")
    await service.send([early])  # the chat is unknown yet: dead-lettered
    (letter,) = await dead_letters_of(service, CHAT_MIRROR_GROUP, 1)
    assert "the chat is unknown" in letter.reason
    await service.send([created])
    chats = service.app.state.wiring.chats
    assert await chats.wait_for_version(feed.chat_id, 1, 30)
    ran = await chatshare(service.settings, "dlq", "redrive", CHAT_MIRROR_GROUP, "--all")
    assert ran.code == 0, ran.stderr + ran.stdout
    assert ran.summary["redriven"] == 1
    chat = await chats.get(feed.chat_id)
    assert chat is not None
    assert chat.chat_version == 2
    assert [m.content for m in chat.messages.values()] == ["before its chat"]


async def test_a_letter_parked_without_its_value_is_redriven_from_its_source_offset(
    service: ShareService,
) -> None:
    """A record too large to copy is parked without its value, naming where it stays; the
    redrive reads it there."""
    settings, story = service.settings, LinkStory("alice")
    ((topic, partition), end), *_ = (await publish(settings, [story.created("big")])).items()
    await service.projection_applied(story.share_id, 1)
    await pool(service).execute(f"DELETE FROM {VIEWS} WHERE share_id = $1", story.share_id)
    headers = {
        "x-dlq-source-topic": topic, "x-dlq-source-partition": str(partition),
        "x-dlq-source-offset": str(end - 1), "x-dlq-group": settings.group(SHARE_PROJECTION_GROUP),
        "x-dlq-reason": "PostgresError: the disk was full",
        "x-dlq-failed-at": datetime.now(UTC).isoformat(),
        DLQ_OMITTED: "5000000 bytes and the headers, too large to copy: read them at the source",
    }  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(f"dlq.{SHARE_PROJECTION_GROUP}"), b"", key=story.share_id.encode(),
            headers=[(name, value.encode()) for name, value in headers.items()],
        )  # fmt: skip
    finally:
        await producer.stop()
    ran = await chatshare(settings, "dlq", "redrive", SHARE_PROJECTION_GROUP, "--all")
    assert ran.code == 0, ran.stderr + ran.stdout
    assert ran.summary["redriven"] == 1
    answer = await service.client.get(f"/api/v1/shares/{story.share_id}", headers=BOB)
    assert answer.status_code == 200
    assert [m["content"] for m in answer.json()["messages"]] == ["big"]


async def test_a_topic_is_tailed_decoded_with_keys_and_headers(service: ShareService) -> None:
    (share_id,) = await links(service, 1)
    everything = await chatshare(service.settings, "events", "tail", "share.events",
                                 "--from-beginning", "--json")  # fmt: skip
    assert everything.code == 0, everything.stderr
    (record,) = [line for line in everything.json_lines if line["key"] == share_id]
    assert record["event"]["type"] == "ShareCreated"
    assert record["event"]["share_id"] == share_id
    assert {"event_id", "notification_id"} <= set(record["headers"])
    last = await chatshare(service.settings, "events", "tail", "chat.events", "-n", "1", "--json")
    assert [line["event"]["type"] for line in last.json_lines] == ["MessageAdded"]
    human = await chatshare(service.settings, "events", "tail", "share.events")
    assert (human.code, share_id in human.stdout) == (0, True)
    assert (await chatshare(service.settings, "events", "tail", "no.such.topic")).code == 2

    following = await start_cli(service.settings, "events", "tail", "settings.events", "-f",
                                "--json")  # fmt: skip
    try:
        # The topic may hold earlier tests' switches, printed first: this one is told by where
        # it landed.
        landed = await service.set_policy(contracts.TextToSpeechEnabled, "tts", True, 1)
        ((_, partition), end) = next(iter(landed.items()))
        assert following.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = await following.stdout.readline()
                assert line, "the tail ended without printing the new record"
                printed = json.loads(line)
                if (printed["partition"], printed["offset"]) == (partition, end - 1):
                    break
        assert printed["event"]["type"] == "TextToSpeechEnabled"
        following.send_signal(signal.SIGINT)  # Ctrl-C ends a --follow, with exit code 0
        async with asyncio.timeout(15):
            assert await following.wait() == 0
    finally:
        if following.returncode is None:
            following.kill()
            await following.wait()


async def test_lag_shows_each_group_s_committed_offsets_against_the_ends(
    service: ShareService,
) -> None:
    await links(service, 2)
    projection = service.settings.group(SHARE_PROJECTION_GROUP)
    async with asyncio.timeout(60):  # the group commits right after its batch is stored
        while True:
            ran = await chatshare(service.settings, "lag", "--json")
            assert ran.code == 0, ran.stderr
            mine = [line for line in ran.json_lines if line["group"] == projection]
            if sum(line["lag"] for line in mine) == 0:
                break
    assert {line["topic"] for line in mine} == {
        service.settings.topic("share.events"), service.settings.topic("community.events"),
    }  # fmt: skip
    publisher = [line for line in ran.json_lines if line["group"].endswith("community-publisher")]
    assert all(line["committed"] is None for line in publisher)  # that group is not running here
    assert sum(line["lag"] for line in publisher) > 0
    table = await chatshare(service.settings, "lag", "--group", SHARE_PROJECTION_GROUP)
    assert (table.code, projection in table.stdout) == (0, True)

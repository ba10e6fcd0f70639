"""Replay speed (issue 7): `chatshare replay share-views` rebuilding the share view store from an
event store of over 100,000 stored events — shadow table, compare and swap included — against
reading and decoding the same notifications without applying them, in the same run (target
≥ 0.5×).

The store is written as share_service writes it, through SharingApplication: every link with its
per-chat record, then re-snapshots and deletes in later saves (a link's events lie far apart in
the log, as they do in life), snapshots of about 300 B and about 5 KB.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
from chatshare_cli.shadow_views import ShadowViews
from chatshare_cli.share_view_replay import ReplayOutcome, ShareViewReplay
from chatshare_cli.stored_share_events import StoredShareEvents

from servicekit.event_store import eventsourcing_env
from share_service.application.sharing import SharingApplication
from share_service.bootstrap import EVENT_STORE_SCHEMA
from share_service.domain.share_link import ChatShares, ShareLink, new_share_id
from share_service.domain.snapshot import Snapshot, snapshot_size
from tests.benchmarks.infrastructure import BenchInfrastructure
from tests.benchmarks.report import Figure, Report

LINKS = 36_000
LARGE_SHARE = 0.3  # of snapshots about 5 KB; the others about 300 B
UPDATED_ONCE, UPDATED_TWICE, DELETED = 0.5, 0.2, 0.1
SAVE_BATCH = 500  # aggregates per save: one transaction
PAGE_SIZE = 10_000
ROUNDS = 2  # baseline and replay alternate; the best of each counts (shared, noisy machines)


def snapshot(messages: int, content_bytes: int) -> Any:
    at = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    ids = [f"m{n}" for n in range(messages)]
    listed = [
        {"id": ids[n], "parent_id": ids[n - 1] if n else None, "role": ("user", "assistant")[n % 2],
         "content": f"{n} " + "lorem ipsum " * (content_bytes // 12), "model": None,
         "created_at": at}
        for n in range(messages)
    ]  # fmt: skip
    history = {m["id"]: {**m, "children_ids": ids[n + 1 : n + 2]} for n, m in enumerate(listed)}
    return {
        "title": "Replay benchmark",
        "messages": listed,
        "history": {"messages": history, "current_id": ids[-1]},
    }


SMALL: Snapshot = snapshot(1, 0)
LARGE: Snapshot = snapshot(6, 280)


def write_store(app: SharingApplication, chosen: random.Random) -> dict[str, int]:
    """Links created, then re-snapshotted, then some deleted, each phase in many saves."""

    def pick() -> Snapshot:
        return LARGE if chosen.random() < LARGE_SHARE else SMALL

    made = [_link(n, pick()) for n in range(LINKS)]
    _save(app, [aggregate for pair in made for aggregate in pair])
    links = [link for _, link in made]
    updates = [link for link in links if chosen.random() < UPDATED_ONCE + UPDATED_TWICE]
    updates += [
        link for link in updates if chosen.random() < UPDATED_TWICE / (UPDATED_ONCE + UPDATED_TWICE)
    ]
    chosen.shuffle(updates)
    for start in range(0, len(updates), SAVE_BATCH):
        batch = {id(link): link for link in updates[start : start + SAVE_BATCH]}.values()
        for link in batch:
            link.update_snapshot(2, pick())
        _save(app, list(batch))
    deleted = chosen.sample(made, int(LINKS * DELETED))
    for shares, link in deleted:
        link.delete(link.owner_id, is_admin=False)
        shares.clear_live_link(link.share_id)
    _save(app, [aggregate for pair in deleted for aggregate in pair])
    return {"links": LINKS, "deleted": len(deleted)}


def _link(n: int, content: Snapshot) -> tuple[ChatShares, ShareLink]:
    shares = ChatShares(f"bench-chat-{n}")
    link = ShareLink(new_share_id(), shares.chat_id, f"user-{n % 997}", 1, content)
    shares.choose_live_link(link.share_id)
    return shares, link


def _save(app: SharingApplication, aggregates: list[ChatShares | ShareLink]) -> None:
    for start in range(0, len(aggregates), SAVE_BATCH):
        app.save(*aggregates[start : start + SAVE_BATCH])


def read_and_decode(events: StoredShareEvents) -> float:
    """The raw baseline: every notification read in pages and decoded to its contract event."""
    started, position, read = time.perf_counter(), 0, 0
    while (page := events.read_after(position, PAGE_SIZE)).notifications:
        position, read = page.position, read + page.notifications
    return read / (time.perf_counter() - started)


async def replay(database_url: str, events: StoredShareEvents) -> ReplayOutcome:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        shadow = ShadowViews(pool, EVENT_STORE_SCHEMA)
        return await ShareViewReplay(events, shadow, PAGE_SIZE).run(dry_run=False, show=0)
    finally:
        await pool.close()


def run(infra: BenchInfrastructure, report: Report) -> None:
    database_url = infra.new_database("bench_replay")
    app = SharingApplication(env=eventsourcing_env(database_url, EVENT_STORE_SCHEMA))
    started = time.perf_counter()
    written = write_store(app, random.Random(7))
    stored = app.recorder.max_notification_id() or 0
    print(f"replay benchmark: {stored:,} events stored in {time.perf_counter() - started:.0f} s")
    events = StoredShareEvents(app)
    first = asyncio.run(replay(database_url, events))  # the live store the replays compare with
    baselines, replays = [], []
    for _ in range(ROUNDS):
        baselines.append(read_and_decode(events))
        outcome = asyncio.run(replay(database_url, events))
        assert outcome.changed == 0, "a replay of an unchanged store changed rows"
        replays.append(outcome.events / outcome.seconds)
    app.close()
    sizes = f"snapshots {snapshot_size(SMALL):,} B / {snapshot_size(LARGE):,} B ({LARGE_SHARE:.0%} large)"
    report.add(Figure(
        "replay share-views: event store → shadow → swap", "events/s", max(replays),
        "read + decode the same notifications, no apply", max(baselines), target_ratio=0.5,
        notes=f"{stored:,} stored events, {first.link_events:,} of links ({written['links']:,} "
        f"links, {written['deleted']:,} deleted) → {first.views:,} rows; {sizes}; pages of "
        f"{PAGE_SIZE:,}; best of {ROUNDS} (replays {_spread(replays)}, baselines "
        f"{_spread(baselines)} events/s); changed 0",
    ))  # fmt: skip


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}" if len(values) > 1 else f"{values[0]:,.0f}"

"""A batch of link events leaves each view row exactly as applying its events one by one would,
whatever the row held before: repeats, older redeliveries and tombstones included, and although
a batch leaves out the snapshots a later one replaces."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from share_service.application.view_writes import ViewWrite, view_writes
from tests.integration.share_service.share_harness import LinkStory

Rows = dict[str, ViewWrite]


def upsert(row: ViewWrite | None, write: ViewWrite) -> ViewWrite:
    """What the view store's version-checked upsert does to a row (ShareViewStore._put)."""
    if row is None:
        return write
    if row.version >= write.version:
        return row
    if write.deleted:
        return replace(row, version=write.version, body=None)
    return replace(write, created_at=row.created_at)


def applied(rows: Rows, batch: list[Any]) -> Rows:
    """The batch applied as the projection applies one: `created` from the rows it holds."""
    rows = dict(rows)
    created = {share_id: row.created_at for share_id, row in rows.items()}
    for write in view_writes(batch, created):
        rows[write.share_id] = upsert(rows.get(write.share_id), write)
    return rows


def histories(chosen: random.Random) -> list[Any]:
    """Three links' events in publishing order (each link's in its own order, the links
    interleaved): created, re-snapshotted, some deleted."""
    lives = []
    for n in range(3):
        story = LinkStory(f"owner-{n}")
        life = [story.created("a")] + [story.updated("a", "b") for _ in range(chosen.randrange(3))]
        lives.append(life + ([story.deleted()] if chosen.random() < 0.5 else []))
    published = []
    while any(lives):
        published.append(chosen.choice([life for life in lives if life]).pop(0))
    return published


def deliveries(chosen: random.Random, events: list[Any]) -> list[Any]:
    """The events with redeliveries: a tail sent again, or an older event repeated late."""
    delivered = list(events)
    for _ in range(chosen.randrange(4)):
        at = chosen.randrange(len(delivered) + 1)
        delivered[at:at] = chosen.sample(events, chosen.randrange(1, 3))
    return delivered


def test_a_batch_leaves_the_rows_as_its_events_one_by_one_would() -> None:
    chosen = random.Random(11)
    for _ in range(400):
        delivered = deliveries(chosen, histories(chosen))
        before: Rows = applied({}, delivered[: chosen.randrange(len(delivered))])
        one_by_one = before
        for event in delivered:
            one_by_one = applied(one_by_one, [event])
        assert applied(before, delivered) == one_by_one


def test_a_snapshot_replaced_within_the_batch_is_never_built() -> None:
    story = LinkStory("alice")
    events = [story.created("a"), story.updated("a", "b"), story.updated("a", "b", "c")]
    writes = view_writes(events, {})
    assert [(w.version, w.created_at) for w in writes] == [(3, events[0].occurred_at)]


def test_a_tombstone_keeps_the_snapshot_before_it() -> None:
    story = LinkStory("alice")
    events = [story.created("a"), story.updated("a", "b"), story.deleted()]
    writes = view_writes(events, {})
    assert [(w.version, w.deleted) for w in writes] == [(2, False), (3, True)]

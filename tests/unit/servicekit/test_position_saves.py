"""The relay's position saves: beside its work, one at a time, at most one an interval, always
the latest position, and a failed save stops the relay at its next batch."""

from __future__ import annotations

import asyncio

import pytest

from servicekit.outbox import PositionSaves


class Store:
    def __init__(self) -> None:
        self.saved: list[int] = []
        self.fail_next: Exception | None = None

    async def save(self, position: int) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.saved.append(position)


async def test_positions_offered_within_an_interval_are_saved_once_the_latest() -> None:
    store = Store()
    saves = PositionSaves(store.save, interval=1.0)
    saves.offer(10)
    await asyncio.sleep(0.05)
    assert store.saved == [10]  # the first after a pause: at once
    for position in (20, 30, 40):
        saves.offer(position)
    await asyncio.sleep(0.05)
    assert store.saved == [10]  # within the interval: waiting
    await saves.settled()
    assert store.saved == [10, 40]


async def test_a_failed_save_is_raised_by_the_next_offer() -> None:
    store = Store()
    store.fail_next = ConnectionError("PostgreSQL went away")
    saves = PositionSaves(store.save, interval=0.0)
    saves.offer(10)
    with pytest.raises(ConnectionError):
        await saves.settled()
    with pytest.raises(ConnectionError):
        saves.offer(20)
    assert store.saved == []

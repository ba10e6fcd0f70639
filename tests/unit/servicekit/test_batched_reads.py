"""Reads by key that arrive in one turn of the event loop are one fetch; each caller gets its own
row or None; a failure reaches every read of its batch and no other; a cancelled caller leaves
the others their rows. (The fetch here is a dict: tests/integration reads real rows.)"""

from __future__ import annotations

import asyncio

import pytest

from servicekit.batched_reads import BatchedReads


class Rows:
    def __init__(self, rows: dict[str, str]) -> None:
        self.rows = rows
        self.fetches: list[list[str]] = []
        self.fail_next: Exception | None = None
        self.release: asyncio.Event | None = None  # set: fetches wait for it

    async def fetch_many(self, keys: list[str]) -> dict[str, str]:
        self.fetches.append(keys)
        if self.release is not None:
            await self.release.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        return {key: self.rows[key] for key in keys if key in self.rows}


async def test_reads_of_one_turn_are_one_fetch_each_getting_its_own_row() -> None:
    rows = Rows({"a": "row a", "b": "row b"})
    reads = BatchedReads(rows.fetch_many)

    got = await asyncio.gather(reads.get("a"), reads.get("b"), reads.get("missing"))

    assert got == ["row a", "row b", None]
    assert rows.fetches == [["a", "b", "missing"]]


async def test_one_key_asked_twice_is_fetched_once_and_both_get_it() -> None:
    rows = Rows({"a": "row a"})
    reads = BatchedReads(rows.fetch_many)

    assert await asyncio.gather(reads.get("a"), reads.get("a")) == ["row a", "row a"]
    assert rows.fetches == [["a"]]


async def test_reads_in_later_turns_are_fetched_without_waiting_for_more() -> None:
    rows = Rows({"a": "row a", "b": "row b"})
    reads = BatchedReads(rows.fetch_many)

    assert await reads.get("a") == "row a"
    assert await reads.get("b") == "row b"
    assert rows.fetches == [["a"], ["b"]]


async def test_a_failed_fetch_fails_its_batch_only() -> None:
    rows = Rows({"a": "row a", "b": "row b"})
    reads = BatchedReads(rows.fetch_many)
    rows.fail_next = ConnectionError("the database went away")

    failed = await asyncio.gather(reads.get("a"), reads.get("b"), return_exceptions=True)

    assert [type(error) for error in failed] == [ConnectionError, ConnectionError]
    assert await reads.get("a") == "row a"


async def test_a_cancelled_reader_leaves_the_others_their_rows() -> None:
    rows = Rows({"a": "row a", "b": "row b"})
    rows.release = asyncio.Event()
    reads = BatchedReads(rows.fetch_many)
    first = asyncio.create_task(reads.get("a"))
    second = asyncio.create_task(reads.get("a"))
    third = asyncio.create_task(reads.get("b"))
    await asyncio.sleep(0)  # the three are asking
    await asyncio.sleep(0)  # and their batch is being fetched

    first.cancel()
    rows.release.set()

    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "row a"
    assert await third == "row b"
    assert rows.fetches == [["a", "b"]]

"""The connections held for the hottest reads, on a real PostgreSQL: never more open than their
number however many readers wait, and a connection that broke or was abandoned mid-read is
replaced, not reused."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from servicekit.faults import is_transient
from servicekit.held_connections import HeldConnections

pytestmark = pytest.mark.integration


@pytest.fixture
async def marked(database_url: str) -> AsyncIterator[tuple[HeldConnections, str]]:
    """Three held connections that PostgreSQL can count by their application name."""
    name = f"held-{uuid.uuid4().hex[:8]}"
    held = HeldConnections(
        lambda: asyncpg.connect(database_url, server_settings={"application_name": name}), 3
    )
    yield held, name
    await held.close()


async def backends(database_url: str, name: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name
        )
        return count
    finally:
        await connection.close()


async def test_many_readers_share_as_many_connections_as_are_held(
    marked: tuple[HeldConnections, str], database_url: str
) -> None:
    held, name = marked
    rows = await asyncio.gather(
        *(held.fetchrow("SELECT $1::int AS n, pg_sleep(0.02)", n) for n in range(20))
    )
    assert [row["n"] for row in rows] == list(range(20))
    assert await backends(database_url, name) == 3
    assert held.opened == 3


async def test_a_connection_killed_under_a_reader_fails_that_read_alone(
    marked: tuple[HeldConnections, str], database_url: str
) -> None:
    held, name = marked
    await asyncio.gather(*(held.fetchrow("SELECT pg_sleep(0.02)") for _ in range(3)))
    killer = await asyncpg.connect(database_url)
    try:
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            name,
        )
    finally:
        await killer.close()

    failures: list[Exception] = []
    for _ in range(6):  # each dead connection fails the one read that finds it, then is gone
        try:
            assert (await held.fetchrow("SELECT 1 AS one"))["one"] == 1
        except Exception as error:
            failures.append(error)
    assert 1 <= len(failures) <= 3
    assert all(is_transient(error) for error in failures), failures  # the HTTP edge says 503
    assert (await held.fetchrow("SELECT 2 AS two"))["two"] == 2
    assert await backends(database_url, name) <= 3


async def test_a_read_abandoned_midway_leaves_no_connection_in_doubt(
    marked: tuple[HeldConnections, str], database_url: str
) -> None:
    held, name = marked
    slow = [asyncio.create_task(held.fetchrow("SELECT pg_sleep(5)")) for _ in range(3)]
    waiting = asyncio.create_task(held.fetchrow("SELECT 'waited' AS w"))  # in line behind them
    await asyncio.sleep(0.3)
    for task in slow:
        task.cancel()
    assert (await waiting)["w"] == "waited"
    assert all(task.cancelled() for task in slow)
    rows = await asyncio.gather(*(held.fetchrow("SELECT $1::int AS n", n) for n in range(6)))
    assert [row["n"] for row in rows] == list(range(6))
    assert held.opened <= 3
    await asyncio.sleep(0.2)  # terminated backends leave pg_stat_activity
    assert await backends(database_url, name) <= 3


async def test_closed_connections_refuse_reads_and_release_the_server(
    marked: tuple[HeldConnections, str], database_url: str
) -> None:
    held, name = marked
    await held.fetchrow("SELECT 1")
    await held.close()
    with pytest.raises(ConnectionError):
        await held.fetchrow("SELECT 1")
    await asyncio.sleep(0.2)
    assert await backends(database_url, name) == 0

"""How far a projection has applied each Kafka partition, written in the same transaction as the
rows it applied (DESIGN.md "Read side"): the store itself says what it reflects, whatever the
group's committed offsets say, and the lag gauge reads it."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

Partition = tuple[str, int]  # (topic, partition)


class ProjectionProgress:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.table = f'"{schema}".projection_progress'

    async def create_table(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            # next_offset: one past the last record applied, as Kafka counts committed positions.
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " consumer_group text NOT NULL, topic text NOT NULL, partition integer NOT NULL,"
                " next_offset bigint NOT NULL, PRIMARY KEY (consumer_group, topic, partition))"
            )

    async def advance(
        self, connection: asyncpg.Connection, group: str, offsets: Mapping[Partition, int]
    ) -> None:
        """Move forward only: a redelivered older batch leaves the position where it was."""
        await connection.executemany(
            f"INSERT INTO {self.table} AS p (consumer_group, topic, partition, next_offset)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (consumer_group, topic, partition)"
            " DO UPDATE SET next_offset = GREATEST(p.next_offset, EXCLUDED.next_offset)",
            [(group, topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )

    async def positions(self, group: str) -> dict[Partition, int]:
        rows = await self.pool.fetch(
            f"SELECT topic, partition, next_offset FROM {self.table} WHERE consumer_group = $1",
            group,
        )
        return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}

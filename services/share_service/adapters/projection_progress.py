"""How far a projection has applied each Kafka partition, written in the same transaction as the
rows it applied (DESIGN.md "Read side"): the store itself says what it reflects, whatever the
group's committed offsets say, and the lag gauge reads it."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from share_service.adapters.view_store import Statement

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

    def advancing(self, group: str, offsets: Mapping[Partition, int]) -> Statement:
        """The statement that moves the group's positions forward only (a redelivered older
        batch leaves them where they were): run it in the transaction of the rows it covers,
        or inside their statement (`ShareViewStore.put_views(along=…)`)."""
        partitions = sorted(offsets)  # one row each: ON CONFLICT touches a row once a statement
        return Statement(
            f"INSERT INTO {self.table} AS p (consumer_group, topic, partition, next_offset)"
            " SELECT $1, x.topic, x.partition, x.next_offset FROM unnest($2::text[],"
            " $3::integer[], $4::bigint[]) AS x(topic, partition, next_offset)"
            " ON CONFLICT (consumer_group, topic, partition)"
            " DO UPDATE SET next_offset = GREATEST(p.next_offset, EXCLUDED.next_offset)",
            (
                group,
                [topic for topic, _ in partitions],
                [partition for _, partition in partitions],
                [offsets[at] for at in partitions],
            ),
        )

    async def positions(self, group: str) -> dict[Partition, int]:
        rows = await self.pool.fetch(
            f"SELECT topic, partition, next_offset FROM {self.table} WHERE consumer_group = $1",
            group,
        )
        return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}

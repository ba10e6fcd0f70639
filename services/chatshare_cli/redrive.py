"""`chatshare dlq redrive`: a dead letter handed back to the group that gave up on it — to that
group alone.

Republishing to the source topic would deliver it to every group of that topic again. Instead the
CLI builds the group's own handler from the service's code (`group_handlers.py`: its decoder and
the batch handler its consumer runs) and applies the record in-process, as one batch of one:
every handler is
idempotent and version-checked, so this is safe beside the running group. The group's Kafka
position is not touched. Each redrive is recorded in `chatshare_ops.dead_letter_redrives`; a
letter redriven once is refused again unless forced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition

from chatshare_cli.dead_letters import DeadLetter
from chatshare_cli.kafka_reads import read_until, topic_reader
from servicekit.config import ServiceSettings
from servicekit.consumer import Unprocessable, is_transient

OPS_SCHEMA = "chatshare_ops"
# A group's handler given one record (group_handlers.py builds them).
Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]


@dataclass(frozen=True)
class Redriven:
    ref: str
    outcome: str  # redriven | refused | failed
    detail: str = ""


class RedriveLog:
    """What was redriven, when: a second redrive of one letter needs `--force`."""

    table = f'"{OPS_SCHEMA}".dead_letter_redrives'

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_table(self) -> None:
        await self.pool.execute(f'CREATE SCHEMA IF NOT EXISTS "{OPS_SCHEMA}"')
        await self.pool.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            ' dead_letter_topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL,'
            " consumer_group text NOT NULL, source text NOT NULL, forced boolean NOT NULL,"
            " redriven_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
            ' PRIMARY KEY (dead_letter_topic, partition, "offset", redriven_at))'
        )

    async def last_redrives(self, topic: str) -> dict[str, datetime]:
        """When each letter of the dead-letter topic was last redriven, by `partition:offset`."""
        rows = await self.pool.fetch(
            f'SELECT partition, "offset", max(redriven_at) AS at FROM {self.table}'
            ' WHERE dead_letter_topic = $1 GROUP BY partition, "offset"',
            topic,
        )
        return {f"{row['partition']}:{row['offset']}": row["at"] for row in rows}

    async def record(self, letter: DeadLetter, group: str, forced: bool) -> None:
        await self.pool.execute(
            f'INSERT INTO {self.table} (dead_letter_topic, partition, "offset", consumer_group,'
            " source, forced) VALUES ($1, $2, $3, $4, $5, $6)",
            letter.topic, letter.partition, letter.offset, group, letter.source, forced,
        )  # fmt: skip


class Redrive:
    def __init__(
        self, group: str, handle: Handler, log: RedriveLog, settings: ServiceSettings
    ) -> None:
        self.group = group
        self.handle = handle
        self.log = log
        self.settings = settings

    async def letters(self, letters: list[DeadLetter], *, force: bool) -> list[Redriven]:
        """Each letter in turn; a failure is reported and the next one tried."""
        done = await self.log.last_redrives(letters[0].topic) if letters else {}
        results = []
        for letter in letters:
            if letter.ref in done and not force:
                at = done[letter.ref].isoformat()
                results.append(Redriven(letter.ref, "refused", f"redriven at {at} (--force)"))
                continue
            results.append(await self._one(letter, forced=letter.ref in done))
        return results

    async def _one(self, letter: DeadLetter, *, forced: bool) -> Redriven:
        try:
            await self.handle(await original_record(self.settings, letter))
        except Exception as error:
            if is_transient(error):
                raise  # the infrastructure's fault, not the letter's: stop
            kind = "unprocessable" if isinstance(error, Unprocessable) else type(error).__name__
            return Redriven(letter.ref, "failed", f"{kind}: {error}")
        await self.log.record(letter, self.group, forced)
        return Redriven(letter.ref, "redriven")


async def original_record(
    settings: ServiceSettings, letter: DeadLetter
) -> ConsumerRecord[bytes, bytes]:
    """The record as the group received it: the letter's copy, or for a letter parked without
    its value (too large to copy) the record itself, read again at the source offset the letter
    names — event topics keep everything."""
    wanted = letter.source_record()
    if not letter.value_omitted:
        return wanted
    at = TopicPartition(wanted.topic, wanted.partition)
    async with topic_reader(settings, [wanted.topic]) as (consumer, _):
        async for batch, _ in read_until(consumer, {at: wanted.offset}, {at: wanted.offset + 1}):
            for record in batch:
                if record.offset == wanted.offset:
                    return record
    raise Unprocessable(f"{letter.source} holds no committed record to redrive")

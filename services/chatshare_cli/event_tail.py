"""`chatshare events tail`: a topic's records with their keys and headers, each value decoded with
its topic's contract (a dead letter's with its source topic's), committed records only."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

import contracts
from chatshare_cli.kafka_reads import read_until, topic_reader

if TYPE_CHECKING:
    from servicekit.config import ServiceSettings

DEFAULT_COUNT = 10
Emit = Callable[["TailedRecord"], None]


@dataclass(frozen=True)
class TailedRecord:
    topic: str  # as the contract names it, without the deployment's prefix
    partition: int
    offset: int
    timestamp: str
    key: str | None
    headers: dict[str, str]
    event: dict[str, Any] | None  # the decoded event, as JSON
    value: Any = None  # otherwise the value as JSON or text,
    problem: str | None = None  # and why it is no event of the topic

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class TopicTail:
    def __init__(self, settings: ServiceSettings, topic: str, emit: Emit) -> None:
        self.settings = settings
        self.topic = topic
        self.emit = emit

    async def run(self, *, from_beginning: bool, count: int | None, follow: bool) -> int:
        """Print what the topic holds (the last `count`, or from its first record), then, when
        following, what is committed after; answers how many records were printed."""
        # Installed first: a Ctrl-C while the records before were still being read ends it too.
        stop = _stopped_by_signals() if follow else asyncio.Event()
        async with topic_reader(self.settings, [self.settings.topic(self.topic)]) as (
            consumer,
            partitions,
        ):
            first = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            if from_beginning:
                shown = await self._from_first(consumer, first, ends, count)
            else:
                shown = await self._last(consumer, first, ends, count or DEFAULT_COUNT)
            if follow:
                for partition, end in ends.items():
                    consumer.seek(partition, end)
                while not stop.is_set():
                    shown += self._print(await consumer.getmany(timeout_ms=200))
        return shown

    async def _from_first(
        self,
        consumer: AIOKafkaConsumer,
        first: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        count: int | None,
    ) -> int:
        shown = 0
        async for batch, _ in read_until(consumer, first, ends):
            batch = batch if count is None else batch[: count - shown]
            shown += self._print({None: batch})
            if count is not None and shown >= count:
                break
        return shown

    async def _last(
        self,
        consumer: AIOKafkaConsumer,
        first: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        count: int,
    ) -> int:
        # Twice the offsets: a relay's transaction leaves a commit marker, an offset with no record.
        starts = {tp: max(first[tp], ends[tp] - 2 * count) for tp in ends}
        records: list[ConsumerRecord[bytes, bytes]] = []
        async for batch, _ in read_until(consumer, starts, ends):
            records += batch
        return self._print({None: _in_time_order(records)[-count:]})

    def _print(self, fetched: dict[Any, list[ConsumerRecord[bytes, bytes]]]) -> int:
        records = _in_time_order([r for batch in fetched.values() for r in batch])
        for record in records:
            self.emit(self.decode(record))
        return len(records)

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> TailedRecord:
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        moment = datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat()
        key = None if record.key is None else record.key.decode(errors="replace")
        shown = TailedRecord(
            self.topic, record.partition, record.offset, moment, key, headers, None
        )
        contract = self._contract(headers)
        raw = record.value or b""
        if contract is None:
            return _with_value(shown, raw, None)
        try:
            event = contracts.decode_event(contract, raw)
        except contracts.ContractViolation as error:
            return _with_value(shown, raw, f"not a {contract} event: {error}")
        return replace(shown, event=event.model_dump(mode="json"))

    def _contract(self, headers: dict[str, str]) -> str | None:
        """The event topic whose contract the values follow: the topic's, or a dead letter's
        source topic's."""
        prefix = self.settings.topic_prefix
        source = headers.get("x-dlq-source-topic", self.topic)
        name = (
            source[len(prefix) :] if source != self.topic and source.startswith(prefix) else source
        )
        return name if name in contracts.ADAPTERS_BY_TOPIC else None


def _with_value(shown: TailedRecord, raw: bytes, problem: str | None) -> TailedRecord:
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw.decode(errors="replace")
    return replace(shown, value=value, problem=problem)


def _in_time_order(
    records: list[ConsumerRecord[bytes, bytes]],
) -> list[ConsumerRecord[bytes, bytes]]:
    return sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))


def _stopped_by_signals() -> asyncio.Event:
    """Set by Ctrl-C (SIGINT) or SIGTERM: how a --follow ends, with exit code 0. A flag the loop
    checks between fetches, rather than asyncio.run's cancellation of the task: once in CI that
    cancellation was lost inside aiokafka's fetch and the tail never ended."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop

"""The consumer groups' poll and commits: records as soon as they come, no blind sleep after a
poll that found none (faststream 0.7's own batch poll sleeps `batch_timeout_ms` then; a record
landing during that sleep waited it out), and offsets committed beside the work, never lost."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker
from faststream.kafka.message import FAKE_CONSUMER, KafkaAckableMessage
from prometheus_client import CollectorRegistry

from servicekit.config import ServiceSettings
from servicekit.consumer import (
    IDLE_WAIT_MS,
    ConsumerGroup,
    ConsumerMetrics,
    PipelinedCommits,
    ReceivedBatch,
    received_batch,
)


def record(offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t", partition=0, offset=offset, timestamp=0, timestamp_type=0, key=None,
        value=b"x", checksum=None, serialized_key_size=0, serialized_value_size=1, headers=(),
    )  # fmt: skip


class Polled:
    """What aiokafka's `getmany` answers, one poll at a time."""

    def __init__(self, *answers: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]):
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    async def getmany(self, **kwargs: Any) -> dict[TopicPartition, list[Any]]:
        self.calls.append(kwargs)
        return self.answers.pop(0)


async def test_a_poll_that_finds_nothing_hands_back_at_once_and_the_next_finds_the_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_sleeping(*_: Any) -> None:
        raise AssertionError("the poll slept instead of polling again")

    monkeypatch.setattr("faststream.kafka.subscriber.usecase.anyio.sleep", no_sleeping)
    broker = KafkaBroker("127.0.0.1:9")
    group: ConsumerGroup[bytes] = ConsumerGroup(
        group="g", dead_letters="dlq.g", topics=["t"], decode=lambda r: r.value or b"",
        handle=lambda deliveries: _nothing(), broker=broker,
        metrics=ConsumerMetrics(CollectorRegistry()),
    )  # fmt: skip
    group.subscribe(ServiceSettings(), max_records=7)
    (subscriber,) = broker.subscribers
    consumer = Polled({}, {TopicPartition("t", 0): [record(0), record(1)]})

    assert await subscriber.get_msg(consumer) == ()  # type: ignore[arg-type]
    assert [r.offset for r in await subscriber.get_msg(consumer)] == [0, 1]  # type: ignore[arg-type, union-attr]
    assert consumer.calls == [{"timeout_ms": IDLE_WAIT_MS, "max_records": 7}] * 2


async def _nothing() -> None:
    return None


class SlowCommits:
    """A consumer whose commits wait until the test lets them through."""

    def __init__(self) -> None:
        self.calls: list[dict[TopicPartition, int]] = []
        self.release = asyncio.Event()
        self.fail_next: Exception | None = None

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.calls.append(dict(offsets))
        await self.release.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error


async def test_batches_handed_over_while_a_commit_is_out_go_out_merged_in_the_next() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer, commits = SlowCommits(), PipelinedCommits("g")
    commits.add(consumer, {a: 5})
    await asyncio.sleep(0)
    commits.add(consumer, {a: 9, b: 2})  # handed over while {a: 5} is in flight
    commits.add(consumer, {a: 7})  # an older position never moves a partition back
    consumer.release.set()
    await commits.flush()
    assert consumer.calls == [{a: 5}, {a: 9, b: 2}]


async def test_offsets_kafka_did_not_take_are_carried_by_the_next_commit() -> None:
    a = TopicPartition("t", 0)
    consumer, commits = SlowCommits(), PipelinedCommits("g")
    consumer.release.set()
    consumer.fail_next = KafkaConnectionError("broker gone")
    commits.add(consumer, {a: 5})
    await commits.flush()
    commits.add(consumer, {TopicPartition("t", 1): 3})
    await commits.flush()
    assert consumer.calls == [{a: 5}, {a: 5, TopicPartition("t", 1): 3}]


async def test_a_group_commits_at_once_after_a_pause_then_at_most_once_an_interval() -> None:
    a = TopicPartition("t", 0)
    consumer, commits = SlowCommits(), PipelinedCommits("g", interval=1.0)
    consumer.release.set()  # Kafka answers at once
    commits.add(consumer, {a: 1})
    await asyncio.sleep(0.05)
    assert consumer.calls == [{a: 1}]  # the first after a pause: not held back
    commits.add(consumer, {a: 2})
    commits.add(consumer, {a: 3})
    await asyncio.sleep(0.05)
    assert consumer.calls == [{a: 1}]  # within the interval: waiting, merged
    await commits.flush()
    assert consumer.calls == [{a: 1}, {a: 3}]


async def test_a_decoded_batch_is_freed_as_soon_as_it_is_dropped() -> None:
    """faststream keeps a message's decoded value on the message: the decoder must not hand
    back the message itself, or every batch, its records and headers would wait for the cycle
    collector (~15,000 objects every two seconds in the share workers under load)."""
    message = KafkaAckableMessage((record(0), record(1)), b"", consumer=FAKE_CONSUMER)
    message.set_decoder(received_batch)
    batch = await message.decode()
    assert isinstance(batch, ReceivedBatch)
    assert [r.offset for r in batch.records] == [0, 1]
    assert batch.consumer is FAKE_CONSUMER
    gone = weakref.ref(message)

    gc.disable()
    try:
        del message, batch
        assert gone() is None, "the message outlived its last reference: a reference cycle"
    finally:
        gc.enable()

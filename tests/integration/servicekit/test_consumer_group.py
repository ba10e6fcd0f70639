"""The shared consumer plumbing on the real broker: poison goes to `dlq.<group>` with its reason
and the group keeps going; transient faults are retried, not dead-lettered; a restarted group
resumes after what it committed."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from contracts.topics import dead_letter_topic
from servicekit.config import ServiceSettings
from servicekit.consumer import ConsumerGroup, ConsumerMetrics, Delivery, RetryPolicy, Unprocessable
from servicekit.runtime import new_broker

pytestmark = pytest.mark.integration


def decode(record: ConsumerRecord[bytes, bytes]) -> dict[str, object]:
    try:
        value = json.loads(record.value)
    except ValueError as error:
        raise Unprocessable(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise Unprocessable("not a JSON object")
    return value


@dataclass
class Ledger:
    """What a handler applied, and faults it should act out."""

    applied: list[int] = field(default_factory=list)
    transient_faults_left: int = 0
    glitches_left: int = 0  # handler failures once the transient faults are over
    always_failing: set[int] = field(default_factory=set)

    async def handle(self, deliveries: Sequence[Delivery[dict[str, object]]]) -> None:
        for delivery in deliveries:
            number = int(delivery.event["n"])  # type: ignore[call-overload]
            if number in self.always_failing:
                raise ValueError(f"cannot apply event {number}")
            if self.transient_faults_left:
                self.transient_faults_left -= 1
                raise ConnectionError("database went away")
            if self.glitches_left:
                self.glitches_left -= 1
                raise ValueError("a one-off failure as the database comes back")
        self.applied.extend(int(d.event["n"]) for d in deliveries)  # type: ignore[call-overload]


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = f"test.consumer.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    group = f"group-{name}"
    await admin.create_topics([NewTopic(name, 3, 1), NewTopic(dead_letter_topic(group), 1, 1)])
    await admin.close()
    return name


async def run_group(bootstrap: str, topic: str, ledger: Ledger, until: int) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, kafka_session_timeout_ms=6000)
    broker = new_broker(settings, "test")
    group = ConsumerGroup(
        group=f"group-{topic}", topics=[topic], decode=decode, handle=ledger.handle, broker=broker,
        metrics=ConsumerMetrics(CollectorRegistry()), retry=RetryPolicy(attempts=2, first_delay=0.01),
    )  # fmt: skip
    group.subscribe(settings)
    await broker.start()
    try:
        async with asyncio.timeout(60):
            while len(ledger.applied) < until:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # let the commit of the last batch land
    finally:
        await broker.stop()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"same-key")  # one partition, in order
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [record for records in batches.values() for record in records]
    finally:
        await consumer.stop()


def event(n: int) -> bytes:
    return json.dumps({"n": n}).encode()


async def test_poison_is_dead_lettered_with_its_reason_and_the_group_keeps_going(
    kafka_bootstrap: str, topic: str
) -> None:
    await produce(kafka_bootstrap, topic, [event(1), b"\xff not json", event(2), b"[1]", event(3)])
    ledger = Ledger()
    await run_group(kafka_bootstrap, topic, ledger, until=3)
    assert ledger.applied == [1, 2, 3]
    letters = await read_all(kafka_bootstrap, dead_letter_topic(f"group-{topic}"))
    assert [letter.value for letter in letters] == [b"\xff not json", b"[1]"]
    headers = dict(letters[0].headers)
    assert headers["x-dlq-source-topic"] == topic.encode()
    assert headers["x-dlq-source-offset"] == b"1"
    assert headers["x-dlq-reason"].startswith(b"undecodable: not JSON")
    assert letters[0].key == b"same-key"


async def test_a_record_the_handler_always_fails_is_dead_lettered_but_its_neighbours_apply(
    kafka_bootstrap: str, topic: str
) -> None:
    await produce(kafka_bootstrap, topic, [event(1), event(2), event(3)])
    ledger = Ledger(always_failing={2})
    await run_group(kafka_bootstrap, topic, ledger, until=2)
    assert ledger.applied == [1, 3]
    letters = await read_all(kafka_bootstrap, dead_letter_topic(f"group-{topic}"))
    assert [json.loads(letter.value) for letter in letters] == [{"n": 2}]
    assert b"cannot apply event 2" in dict(letters[0].headers)["x-dlq-reason"]


async def test_transient_faults_are_retried_not_dead_lettered(
    kafka_bootstrap: str, topic: str
) -> None:
    await produce(kafka_bootstrap, topic, [event(1), event(2)])
    ledger = Ledger(transient_faults_left=4)
    await run_group(kafka_bootstrap, topic, ledger, until=2)
    assert ledger.applied == [1, 2]
    assert await read_all(kafka_bootstrap, dead_letter_topic(f"group-{topic}")) == []


async def test_an_outage_does_not_use_up_the_handler_s_own_attempts(
    kafka_bootstrap: str, topic: str
) -> None:
    """Waiting out a database outage is not failing: one handler error as it comes back still
    leaves the record its retries (RetryPolicy.attempts), instead of dead-lettering it."""
    await produce(kafka_bootstrap, topic, [event(1)])
    ledger = Ledger(transient_faults_left=4, glitches_left=1)
    await run_group(kafka_bootstrap, topic, ledger, until=1)
    assert ledger.applied == [1]
    assert await read_all(kafka_bootstrap, dead_letter_topic(f"group-{topic}")) == []


async def test_a_restarted_group_resumes_after_its_committed_position(
    kafka_bootstrap: str, topic: str
) -> None:
    await produce(kafka_bootstrap, topic, [event(1), event(2)])
    first = Ledger()
    await run_group(kafka_bootstrap, topic, first, until=2)
    await produce(kafka_bootstrap, topic, [event(3)])
    second = Ledger()
    await run_group(kafka_bootstrap, topic, second, until=1)
    assert (first.applied, second.applied) == ([1, 2], [3])

"""What a group's dead-letter topic `dlq.<group>` holds: each record with where it came from and
why the group gave up on it (the `x-dlq-*` headers servicekit's consumer groups write)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import ConsumerRecord

from chatshare_cli.errors import NoSuchLetter
from chatshare_cli.kafka_reads import read_until, topic_reader
from contracts.topics import dead_letter_topic
from servicekit.consumer import DLQ_OMITTED

if TYPE_CHECKING:
    from servicekit.config import ServiceSettings

DLQ_HEADER_PREFIX = "x-dlq-"


@dataclass(frozen=True)
class DeadLetter:
    topic: str  # the dead-letter topic, prefixed as the deployment names it
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def ref(self) -> str:
        """`partition:offset`, how the CLI names a dead letter (its topic has 3 partitions)."""
        return f"{self.partition}:{self.offset}"

    @property
    def source(self) -> str:
        h = self.headers
        return f"{h.get('x-dlq-source-topic', '?')}[{h.get('x-dlq-source-partition', '?')}]@{h.get('x-dlq-source-offset', '?')}"

    @property
    def reason(self) -> str:
        return self.headers.get("x-dlq-reason", "")

    @property
    def value_omitted(self) -> bool:
        """Parked without its value and headers (too large to copy): they stay at the source."""
        return DLQ_OMITTED in self.headers

    @property
    def failed_at(self) -> str:
        return self.headers.get("x-dlq-failed-at", "")

    def value_shown(self) -> Any:
        """The value as JSON when it is JSON, else as text."""
        try:
            return json.loads(self.value)
        except ValueError:
            return self.value.decode(errors="replace")

    def source_record(self) -> ConsumerRecord[bytes, bytes]:
        """The record as the group received it: its source position, key, bytes and headers."""
        h = self.headers
        own = [(k, v.encode()) for k, v in h.items() if not k.startswith(DLQ_HEADER_PREFIX)]
        return ConsumerRecord(
            topic=h.get("x-dlq-source-topic", ""),
            partition=int(h.get("x-dlq-source-partition", "-1")),
            offset=int(h.get("x-dlq-source-offset", "-1")),
            timestamp=self.timestamp, timestamp_type=0, key=self.key, value=self.value,
            checksum=None, serialized_key_size=len(self.key or b""),
            serialized_value_size=len(self.value), headers=own,
        )  # fmt: skip


async def read_dead_letters(settings: ServiceSettings, group: str) -> list[DeadLetter]:
    """Every record `dlq.<group>` holds now, by partition and offset."""
    topic = settings.topic(dead_letter_topic(group))
    letters: list[DeadLetter] = []
    async with topic_reader(settings, [topic]) as (consumer, partitions):
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        async for batch, _ in read_until(consumer, starts, ends):
            letters += [_letter(record) for record in batch]
    return sorted(letters, key=lambda letter: (letter.partition, letter.offset))


def find_letter(letters: list[DeadLetter], ref: str) -> DeadLetter:
    """The letter at `partition:offset`, or at `offset` when only one partition has it."""
    partition, _, offset = ref.rpartition(":")
    found = [
        letter
        for letter in letters
        if str(letter.offset) == offset and (not partition or str(letter.partition) == partition)
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise NoSuchLetter(f"no dead letter at {ref}")
    refs = ", ".join(letter.ref for letter in found)
    raise NoSuchLetter(f"offset {ref} is in several partitions ({refs}): give partition:offset")


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
    return DeadLetter(
        record.topic, record.partition, record.offset, record.timestamp, record.key,
        record.value or b"", headers,
    )  # fmt: skip

"""A service's own view of the admin's policy, rebuilt from `settings.events` alone.

Each following service has its own consumer group (from the earliest offset) and its own table,
so every replica answers from the same store. It answers "is community sharing on, at which
`policy_version`?", can wait until it has seen version N, and can first catch up to the end of
the topic as it is right now (the publisher's "still on when sent").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import ContractViolation, SettingsEvent, decode_event
from contracts.topics import SETTINGS_EVENTS
from servicekit.config import ServiceSettings
from servicekit.consumer import Delivery, Unprocessable
from servicekit.runtime import ServiceRuntime

POLL_SECONDS = 0.02
# Each probe reads up to the topic's end and then asks for more: the broker holds a fetch with
# nothing to return for fetch.max.wait.ms (500 ms by default), and the next probe's fetch waits
# behind it. With the default, every upload's "still on?" cost about a second, serialised.
PROBE_FETCH_WAIT_MS = 10


@dataclass(frozen=True)
class Policy:
    community_sharing_enabled: bool = False
    tts_enabled: bool = False
    policy_version: int = 0
    kafka_offset: int = -1  # of the last settings.events record applied


class PolicyUnknown(Exception):
    """The view could not reach the version or offset asked for in time."""


class PolicyView:
    def __init__(self, pool: asyncpg.Pool, schema: str, settings: ServiceSettings) -> None:
        self.pool = pool
        self.schema = schema
        self.settings = settings
        self._probe: AIOKafkaConsumer | None = None
        self._probe_lock = asyncio.Lock()

    @property
    def table(self) -> str:
        return f'"{self.schema}".policy_view'

    async def create_table(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
                " community_sharing_enabled boolean NOT NULL, tts_enabled boolean NOT NULL,"
                " policy_version bigint NOT NULL, kafka_offset bigint NOT NULL,"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            )

    async def current(self) -> Policy:
        """Off, at version 0, until the first policy event is seen."""
        row = await self.pool.fetchrow(
            f"SELECT community_sharing_enabled, tts_enabled, policy_version, kafka_offset FROM {self.table}"
        )
        return Policy(*row) if row else Policy()

    async def wait_for_version(self, version: int, within: float) -> Policy:
        deadline = time.monotonic() + within
        while (policy := await self.current()).policy_version < version:
            if time.monotonic() > deadline:
                raise PolicyUnknown(f"policy version {version} not seen within {within} s")
            await asyncio.sleep(POLL_SECONDS)
        return policy

    async def caught_up(self, within: float) -> Policy:
        """The policy after applying every record committed to settings.events right now."""
        last = await self._last_committed_offset(within)
        deadline = time.monotonic() + within
        while (policy := await self.current()).kafka_offset < last:
            if time.monotonic() > deadline:
                raise PolicyUnknown(f"settings.events offset {last} not applied within {within} s")
            await asyncio.sleep(POLL_SECONDS)
        return policy

    async def apply(self, deliveries: Sequence[Delivery[SettingsEvent]]) -> None:
        """The consumer group's handler: apply in order; a version at or below ours is a repeat."""
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                f"SELECT community_sharing_enabled, tts_enabled, policy_version, kafka_offset"
                f" FROM {self.table} FOR UPDATE"
            )
            policy = Policy(*row) if row else Policy()
            for delivery in deliveries:
                policy = _next(policy, delivery)
            await connection.execute(
                f"INSERT INTO {self.table} AS v (community_sharing_enabled, tts_enabled,"
                " policy_version, kafka_offset) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (singleton) DO UPDATE SET"
                " community_sharing_enabled = $1, tts_enabled = $2, policy_version = $3,"
                " kafka_offset = GREATEST(v.kafka_offset, $4), updated_at = now()",
                policy.community_sharing_enabled,
                policy.tts_enabled,
                policy.policy_version,
                policy.kafka_offset,
            )

    async def _last_committed_offset(self, within: float) -> int:
        """Offset of the newest committed settings event (not a transaction marker, nor a record
        that is not an event) in settings.events."""
        partition = TopicPartition(self.settings.topic(SETTINGS_EVENTS), 0)
        async with self._probe_lock:
            probe = await self._probe_consumer(partition)
            end = (await probe.end_offsets([partition]))[partition]
            if end == 0:
                return -1
            # Each transaction ends with one marker; look back far enough to find a record.
            window = 16
            while True:
                start = max(0, end - window)
                probe.seek(partition, start)
                last = -1
                wait_ms = int(within * 1000)  # the first fetch may need a metadata round trip
                while (await probe.position(partition)) < end:
                    batch = await probe.getmany(partition, timeout_ms=wait_ms)
                    if not batch:
                        break  # only transaction markers (or aborted records) remain
                    # A record no view can apply is dead-lettered, its offset never applied:
                    # waiting for it would hold every caller until a valid event came after it.
                    events = (r.offset for r in batch[partition] if is_settings_event(r))
                    last = max(last, *events)
                    wait_ms = 50
                if last >= 0 or start == 0:
                    return last
                window *= 4

    async def _probe_consumer(self, partition: TopicPartition) -> AIOKafkaConsumer:
        if self._probe is None:
            self._probe = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                enable_auto_commit=False,
                isolation_level="read_committed",
                fetch_max_wait_ms=PROBE_FETCH_WAIT_MS,
            )
            await self._probe.start()
            self._probe.assign([partition])
        return self._probe

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.stop()
            self._probe = None


async def follow_policy(runtime: ServiceRuntime, group: str, schema: str) -> PolicyView:
    """A service's policy view, kept by its own group on settings.events; call before
    `broker.start()`."""
    view = PolicyView(runtime.pool, schema, runtime.settings)
    await view.create_table()
    runtime.follow(group, [SETTINGS_EVENTS], decode_settings_event, view.apply)
    return view


def decode_settings_event(record: ConsumerRecord[bytes, bytes]) -> SettingsEvent:
    try:
        event = decode_event(SETTINGS_EVENTS, record.value)
    except ContractViolation as error:
        raise Unprocessable(str(error)) from error
    return event  # type: ignore[return-value]


def is_settings_event(record: ConsumerRecord[bytes, bytes]) -> bool:
    try:
        decode_settings_event(record)
    except Unprocessable:
        return False
    return True


def _next(policy: Policy, delivery: Delivery[SettingsEvent]) -> Policy:
    event = delivery.event
    offset = max(policy.kafka_offset, delivery.record.offset)
    if event.policy_version <= policy.policy_version:  # a repeat: only the position moves
        return replace(policy, kafka_offset=offset)
    if event.setting == "community_sharing":
        return Policy(event.value, policy.tts_enabled, event.policy_version, offset)
    return Policy(policy.community_sharing_enabled, event.value, event.policy_version, offset)

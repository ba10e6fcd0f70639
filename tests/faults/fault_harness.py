"""The fault suite's stack in use: the split processes, a pool on their database, the ledger of
what users were told, the steady stream, and the one check every fault ends with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from devstack import postgres
from devstack.kafka import KafkaNode
from tests.faults.consistency import (
    Problems,
    community_outcomes,
    links_of_deleted_chats_alive,
    lost_or_doubled_link_events,
    mirror_behind_the_chats,
    policy_everywhere,
    relays_caught_up,
    replay_differences,
    request_statuses,
    settled,
    uploaded_once,
    views_behind_the_topic,
)
from tests.faults.event_topics import read_topics
from tests.faults.split_stack import SplitStack, keep_logs, new_split_stack
from tests.faults.traffic import ADMIN, Ledger, SteadyTraffic
from tests.faults.version_watch import VersionWatch
from tests.running_services import new_topic_prefix

UPLOAD_DELAY_MS = 100  # the site answers slowly: a killed publisher often has an upload in flight


@dataclass
class FaultStack:
    processes: SplitStack
    pool: asyncpg.Pool
    ledger: Ledger
    share: httpx.AsyncClient
    settings: httpx.AsyncClient
    site: httpx.AsyncClient

    def traffic(self) -> SteadyTraffic:
        """The steady stream; `async with` it."""
        p = self.processes
        return SteadyTraffic(
            p.bootstrap, p.prefix, p.url("share_api"), p.url("settings_service"), self.ledger
        )

    async def kill_and_restart(self, name: str, down_for: float = 1.0) -> None:
        """SIGKILL the part; the stream goes on without it for a while; start it again."""
        self.processes.kill(name)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.processes.start, name)

    async def uploads(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.site.get("/api/v1/chats")).json()["items"]
        return items

    # How far the stream got: what a test waits on to know it flows through a part.

    async def links_acknowledged(self) -> int:
        return len(self.ledger.acknowledged)

    async def chat_events_sent(self) -> int:
        return self.ledger.chat_events

    async def policy_changes_acknowledged(self) -> int:
        return len(self.ledger.policy_versions)

    async def accepted_uploads(self) -> int:
        return int((await self.site.get("/_control")).json()["accepted"])

    async def assert_nothing_lost_nothing_doubled(self, watch: VersionWatch | None = None) -> None:
        """Once the stream stopped: wait for the stack to settle, then check everything a fault
        could have broken (INTERFACE.md's promises, DESIGN.md's idempotency)."""
        ledger, pool, p = self.ledger, self.pool, self.processes
        assert not ledger.unexpected, f"answers no user may get: {ledger.unexpected[:10]}"
        assert not ledger.served_after_delete, f"read after its 204: {ledger.served_after_delete}"
        await settled(lambda: relays_caught_up(pool), "the relays did not catch up")

        async def publisher_decided() -> Problems:
            topics = await read_topics(p.bootstrap, p.prefix)
            return [
                f"request {r} has no outcome yet" for r in topics.requests - set(topics.outcomes)
            ]

        await settled(publisher_decided, "community requests left undecided")
        await settled(lambda: relays_caught_up(pool), "the relays did not catch up")
        topics = await read_topics(p.bootstrap, p.prefix)
        assert not (lost := lost_or_doubled_link_events(ledger, topics)), "\n".join(lost[:20])
        await settled(
            lambda: views_behind_the_topic(pool, topics), "the views are not share.events"
        )
        await settled(lambda: mirror_behind_the_chats(pool, ledger), "the mirror is not the chats")
        await settled(lambda: links_of_deleted_chats_alive(pool, ledger), "links outlive chats")
        assert not (bad := community_outcomes(ledger, topics)), "\n".join(bad[:20])
        assert not (bad := uploaded_once(topics, await self.uploads())), "\n".join(bad[:20])
        await settled(lambda: request_statuses(self.share, ledger), "requesters read no outcome")
        await settled(
            lambda: policy_everywhere(self.settings, pool, ledger, topics), "the policy differs"
        )
        replay = await replay_differences(p.share_settings(), pool)
        assert replay.changed == 0, f"views differ from a fresh replay: {replay.differences}"
        assert replay.views > 0
        if watch is not None:
            assert watch.rounds > 0
            assert not watch.went_back, f"versions went back: {watch.went_back[:10]}"


@asynccontextmanager
async def fault_stack(
    kafka: KafkaNode, database: postgres.PostgresNode
) -> AsyncIterator[FaultStack]:
    prefix = await new_topic_prefix(kafka.bootstrap_servers)
    processes = new_split_stack(kafka, database, prefix)
    try:
        await asyncio.to_thread(processes.start_all)
        pool = await asyncpg.create_pool(processes.database_url, min_size=1, max_size=4)
        async with (
            httpx.AsyncClient(base_url=processes.url("share_api"), timeout=30) as share,
            httpx.AsyncClient(base_url=processes.url("settings_service"), timeout=30) as settings,
            httpx.AsyncClient(base_url=processes.url("community_standin"), timeout=30) as site,
        ):
            stack = FaultStack(processes, pool, Ledger(), share, settings, site)
            await sharing_on(stack)
            (await site.post("/_control", json={"delay_ms": UPLOAD_DELAY_MS})).raise_for_status()
            yield stack
        await pool.close()
    finally:
        await asyncio.to_thread(processes.stop_all)
        keep_logs(processes)


async def sharing_on(stack: FaultStack) -> None:
    """The admin turns community sharing on, and both services' policy views have seen it."""
    answer = await stack.settings.put(
        "/api/v1/admin/settings/community-sharing", json={"enabled": True}, headers=ADMIN
    )
    answer.raise_for_status()
    stack.ledger.policy_versions.add(answer.json()["policy_version"])

    async def views_behind() -> Problems:
        problems = []
        for schema in ("share_service", "community_publisher"):
            on = await stack.pool.fetchval(
                f'SELECT community_sharing_enabled FROM "{schema}".policy_view'
            )
            if not on:
                problems.append(f"{schema} has not seen community sharing on")
        return problems

    await settled(views_behind, "the policy views did not follow")

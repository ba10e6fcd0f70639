"""The Kafka broker and PostgreSQL stopped and started again under the whole running stack, while
chat events, share commands, community requests and the admin's switches keep flowing.

Afterwards, as a user and an operator would check: every acknowledged command (each 2xx's
`(share_id, version)`, each 204) is on `share.events` and in the view store; each chat's shared
snapshot holds every message sent, each once and in order; each community request is
published, uploaded once; the services are ready again and none crashed; and the operator's
`chatshare replay share-views --dry-run` finds no view that differs from a fresh replay.

The module runs its own Kafka and PostgreSQL nodes (these tests stop them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from tests.faults.infra_checks import assert_nothing_lost, refusals
from tests.faults.infra_load import ADMIN, StreamLoad
from tests.faults.infra_stack import (
    InfraStack,
    own_kafka_and_postgres,
    readiness,
    services_on,
)

pytestmark = pytest.mark.e2e

WARM_UP_SECONDS = 2.0
OUTAGE_SECONDS = 4.0  # with the infrastructure down, after it stopped
AFTER_SECONDS = 3.0  # of load once it is back


@pytest.fixture(scope="module")
def infra_stack() -> Iterator[InfraStack]:
    with own_kafka_and_postgres() as (broker, database), services_on(broker, database) as stack:
        turned_on = httpx.put(
            stack.url("settings_service") + "/api/v1/admin/settings/community-sharing",
            json={"enabled": True}, headers=ADMIN, timeout=10,
        )  # fmt: skip
        assert turned_on.status_code == 200, turned_on.text
        yield stack


Fault = Callable[[], Awaitable[None]]


async def under_load(
    stack: InfraStack, name: str, stop: Fault, start: Fault
) -> tuple[StreamLoad, dict[str, tuple[int, dict[str, str]]]]:
    """Stop the infrastructure mid-stream, keep the stream flowing, start it again, then let the
    stream run a little longer. Answers the load and the readiness seen during the outage."""
    load = StreamLoad(stack, name)
    async with load.timed("prepare"):
        await load.prepare()
        await community_sharing_seen(load)
    running = asyncio.create_task(load.run())
    try:
        await asyncio.sleep(WARM_UP_SECONDS)
        load.phase = "outage"
        async with load.timed("outage"):
            async with load.timed("stop"):
                await stop()
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            during = await readiness(stack)
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            async with load.timed("start"):
                await start()
        load.phase, load.back_at = "after", time.monotonic()
        await asyncio.sleep(AFTER_SECONDS)
    finally:
        load.stopping.set()
        await running
    return load, during


async def community_sharing_seen(load: StreamLoad) -> None:
    """share_service's policy view has caught up with the admin's switch."""
    line = load.live_lines()[0]
    url = load.share_url(f"/api/v1/chats/{line.feed.chat_id}/community-share")
    async with asyncio.timeout(60):
        while True:
            answer = await load.client.post(url, json={"access": "public"}, headers=line.owner)
            if answer.status_code == 202:
                load.ledger.requests[answer.json()["request_id"]] = line.feed.owner_id
                return
            assert answer.status_code == 403, answer.text
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_the_kafka_broker_restarted_mid_stream_loses_and_repeats_nothing(
    infra_stack: InfraStack, kill: bool
) -> None:
    stack = infra_stack
    load, during = await under_load(
        stack, f"kafka-{'kill' if kill else 'term'}",
        stop=lambda: stack.stop_kafka(kill=kill), start=stack.start_kafka,
    )  # fmt: skip
    try:
        assert_not_ready_for(during, "kafka")
        # No dual writes: with Kafka down, commands are stored and acknowledged all the same
        # (the outbox publishes them once it is back); not one is refused.
        assert not refusals(load.ledger.answers["outage"]), load.ledger.answers["outage"]
        outcome = await assert_nothing_lost(stack, load)
    finally:
        await load.close()
    print(f"\nkafka {'SIGKILL' if kill else 'SIGTERM'}: {json.dumps(outcome)}")


async def test_postgres_restarted_mid_stream_loses_and_repeats_nothing(
    infra_stack: InfraStack,
) -> None:
    stack = infra_stack
    load, during = await under_load(
        stack, "postgres", stop=stack.stop_postgres, start=stack.start_postgres
    )
    try:
        assert_not_ready_for(during, "postgresql")
        outage, after = load.ledger.answers["outage"], load.ledger.answers["after"]
        assert any(answer.endswith(" 503") for answer in outage), outage  # refused, clearly
        # The same processes heal on their own (their pools reconnect): commands succeed again.
        assert any(answer.startswith(("share 2", "update 2")) for answer in after), after
        outcome = await assert_nothing_lost(stack, load)
    finally:
        await load.close()
    print(f"\npostgres restart: {json.dumps(outcome)}")


def assert_not_ready_for(during: dict[str, tuple[int, dict[str, str]]], check: str) -> None:
    """Each service was alive but said, on `/readyz`, which dependency it could not reach."""
    for service, (status, checks) in during.items():
        assert status == 503, (service, status, checks)
        assert checks[check] != "ok", (service, checks)

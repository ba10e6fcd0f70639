"""`CHATSHARE_ROLES` splits share_service into Deployments: a workers-only process joins the
consumer groups and runs the relay; an HTTP-only one joins no group, runs no relay, and is ready
as soon as Kafka and PostgreSQL answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest

from contracts.topics import CHAT_MIRROR_GROUP, SHARE_PROJECTION_GROUP, SHARE_SERVICE_POLICY_GROUP
from share_service.config import ShareServiceSettings
from tests.integration.share_service.share_harness import (
    PUBLIC_URL,
    ShareService,
    running_share_service,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings_for(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> Callable[..., ShareServiceSettings]:
    def settings(roles: str, groups: str = "") -> ShareServiceSettings:
        return ShareServiceSettings(
            database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix, public_url=PUBLIC_URL, kafka_session_timeout_ms=6000,
            roles=roles.split(","), consumer_groups=groups,
        )  # fmt: skip

    return settings


async def ready_checks(service: ShareService) -> dict[str, str]:
    """`/readyz`'s checks once it says ready."""
    async with asyncio.timeout(30):
        while (answer := await service.client.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.2)
    checks: dict[str, str] = answer.json()["checks"]
    return checks


def background_tasks(service: ShareService) -> set[str]:
    return {task.get_name() for task in service.app.state.runtime.background}


async def test_a_workers_only_process_joins_every_group_and_runs_the_relay(
    settings_for: Callable[..., ShareServiceSettings],
) -> None:
    settings = settings_for("relay,consumers")
    async with running_share_service(settings) as service:
        checks = await ready_checks(service)

        groups = {settings.group(g) for g in (CHAT_MIRROR_GROUP, SHARE_PROJECTION_GROUP,
                                              SHARE_SERVICE_POLICY_GROUP)}  # fmt: skip
        assert {f"consumer:{group}" for group in groups} <= set(checks)
        assert set(checks.values()) == {"ok"}
        assert len(service.app.state.runtime.broker.subscribers) == 3
        assert "outbox-relay" in background_tasks(service)


async def test_an_http_only_process_joins_no_group_and_runs_no_relay(
    settings_for: Callable[..., ShareServiceSettings],
) -> None:
    async with running_share_service(settings_for("http")) as service:
        checks = await ready_checks(service)

        assert checks == {"postgresql": "ok", "kafka": "ok"}
        assert service.app.state.runtime.broker.subscribers == []
        # Only what its readers need: the wakeup for `?min_version=` waits. No relay.
        assert background_tasks(service) == {"view-change listener"}
        assert (await service.client.get("/api/v1/shares/nope", headers={})).status_code == 401


async def test_commands_answered_by_http_only_are_published_by_the_workers(
    settings_for: Callable[..., ShareServiceSettings],
) -> None:
    async with (
        running_share_service(settings_for("relay,consumers")) as workers,
        running_share_service(settings_for("http")) as http,
    ):
        feed = await workers.chat("alice", "hello")  # the mirror runs in the workers

        shared = await http.share(feed)

        assert shared.status_code == 201
        await workers.projection_applied(shared.json()["share_id"], 1)


async def test_the_projection_and_the_chat_mirror_run_in_processes_of_their_own(
    settings_for: Callable[..., ShareServiceSettings],
) -> None:
    """`CHATSHARE_CONSUMER_GROUPS` splits the consumers: each process joins its groups alone."""
    mirror_settings = settings_for("consumers", "chat-mirror,share-service-policy")
    async with (
        running_share_service(mirror_settings) as mirror,
        running_share_service(settings_for("consumers", "share-projection")) as projection,
        running_share_service(settings_for("http,relay")) as http,
    ):
        mirror_checks, projection_checks = (
            await ready_checks(mirror),
            await ready_checks(projection),
        )
        feed = await mirror.chat("alice", "hello")
        shared = await http.share(feed)

        assert shared.status_code == 201
        await projection.projection_applied(shared.json()["share_id"], 1)
    assert {check for check in mirror_checks if check.startswith("consumer:")} == {
        f"consumer:{mirror_settings.group(g)}"
        for g in (CHAT_MIRROR_GROUP, SHARE_SERVICE_POLICY_GROUP)
    }
    assert {check for check in projection_checks if check.startswith("consumer:")} == {
        f"consumer:{mirror_settings.group(SHARE_PROJECTION_GROUP)}"
    }
    assert "share-projection-lag" not in background_tasks(mirror)
    assert "share-projection-lag" in background_tasks(projection)


async def test_parts_started_together_on_a_fresh_database_all_come_up(
    settings_for: Callable[..., ShareServiceSettings],
) -> None:
    """Replicas (or the parts of a split service) started at once all create the same tables
    `IF NOT EXISTS` — which PostgreSQL does not make safe between sessions (found by the fault
    suite, whose split stack starts four share_service processes together)."""
    async with AsyncExitStack() as started:
        services = await asyncio.gather(
            *(started.enter_async_context(running_share_service(settings_for("http")))
              for _ in range(4))
        )  # fmt: skip
        checks = await asyncio.gather(*(ready_checks(service) for service in services))
    assert checks == [{"postgresql": "ok", "kafka": "ok"}] * 4

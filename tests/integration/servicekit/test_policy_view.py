"""Every service's view of the admin's policy, on the real broker and database: it follows the
settings_service's events through the real relay, ends at the same `policy_version` as its
peers, rebuilds from the topic alone, and can catch up to the topic's end before answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from anyio import to_thread
from prometheus_client import CollectorRegistry

from servicekit.http import Readiness
from servicekit.outbox import EventsourcingLog, OutboxRelay, RelayConfig, RelayMetrics
from servicekit.policy import Policy, PolicyUnknown, PolicyView, follow_policy
from servicekit.runtime import new_broker, open_runtime
from settings_service.adapters.settings_events import to_outbox_message
from settings_service.application.settings_app import SettingsApplication
from settings_service.bootstrap import EVENT_STORE_SCHEMA, open_settings_application
from settings_service.config import SettingsServiceSettings

pytestmark = pytest.mark.integration


@asynccontextmanager
async def settings_service(settings: SettingsServiceSettings) -> AsyncIterator[SettingsApplication]:
    """The admin's side: the settings application and its relay to settings.events."""
    app = await to_thread.run_sync(open_settings_application, settings.database_dsn)
    async with open_runtime(
        settings, "settings", CollectorRegistry(), Readiness(), new_broker(settings, "s")
    ) as runtime:
        relay = OutboxRelay(
            RelayConfig(name="settings_service", schema=EVENT_STORE_SCHEMA),
            EventsourcingLog(app, to_outbox_message),
            runtime.pool,
            settings,
            RelayMetrics(runtime.registry),
        )
        runtime.run_in_background("relay", relay.run)
        yield app
    app.close()


@asynccontextmanager
async def follower(
    settings: SettingsServiceSettings, group: str, schema: str
) -> AsyncIterator[PolicyView]:
    """A service following the policy, as share_service and community_publisher do."""
    broker = new_broker(settings, group)
    async with open_runtime(settings, group, CollectorRegistry(), Readiness(), broker) as runtime:
        view = await follow_policy(runtime, group, schema)
        await broker.start()
        try:
            yield view
        finally:
            await view.close()


async def switch(app: SettingsApplication, *values: bool) -> None:
    for value in values:
        await to_thread.run_sync(app.set_community_sharing, value, "admin-1")


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> SettingsServiceSettings:
    return SettingsServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        kafka_session_timeout_ms=6000,
    )


async def test_before_any_policy_event_community_sharing_is_off(
    settings: SettingsServiceSettings,
) -> None:
    async with follower(settings, "share-service-policy", "share_service") as view:
        assert await view.current() == Policy()
        assert (await view.caught_up(within=10)).community_sharing_enabled is False


async def test_on_off_on_every_follower_ends_at_the_same_version_and_a_new_one_rebuilds_it(
    settings: SettingsServiceSettings,
) -> None:
    async with (
        settings_service(settings) as admin_side,
        follower(settings, "share-service-policy", "share_service") as share_view,
        follower(settings, "community-publisher-policy", "community_publisher") as publisher_view,
    ):
        await switch(admin_side, True, False, True)
        await to_thread.run_sync(admin_side.set_tts, True, "admin-2")
        final = Policy(community_sharing_enabled=True, tts_enabled=True, policy_version=4)
        for view in (share_view, publisher_view):
            seen = await view.wait_for_version(4, within=30)
            assert (seen.community_sharing_enabled, seen.tts_enabled, seen.policy_version) == (
                final.community_sharing_enabled, final.tts_enabled, final.policy_version,
            )  # fmt: skip
    # A follower that has never run (new group, empty table) rebuilds it from the topic alone.
    async with follower(settings, "rebuilt-policy", "rebuilt") as rebuilt:
        seen = await rebuilt.caught_up(within=30)
        assert (seen.community_sharing_enabled, seen.tts_enabled, seen.policy_version) == (
            True,
            True,
            4,
        )


async def test_a_restarted_follower_resumes_and_sees_what_changed_while_it_was_down(
    settings: SettingsServiceSettings,
) -> None:
    async with settings_service(settings) as admin_side:
        async with follower(settings, "share-service-policy", "share_service") as view:
            await switch(admin_side, True)
            assert (await view.wait_for_version(1, within=30)).community_sharing_enabled
        await switch(admin_side, False)  # while the follower is down
        async with follower(settings, "share-service-policy", "share_service") as view:
            seen = await view.wait_for_version(2, within=30)
            assert seen.community_sharing_enabled is False


async def test_caught_up_waits_for_the_newest_event_on_the_topic_not_just_the_table(
    settings: SettingsServiceSettings,
) -> None:
    async with settings_service(settings) as admin_side:
        async with follower(settings, "community-publisher-policy", "community_publisher") as view:
            await switch(admin_side, True)
            assert (await view.wait_for_version(1, within=30)).community_sharing_enabled
        await switch(admin_side, False)  # published while nobody applies it
        async with open_runtime(
            settings, "p", CollectorRegistry(), Readiness(), new_broker(settings, "p")
        ) as runtime:
            idle = PolicyView(runtime.pool, "community_publisher", settings)
            async with asyncio.timeout(30):  # the table still says on, but the topic says off:
                while True:  # wait until the relay has published, then caught_up must refuse
                    try:
                        await idle.caught_up(within=0.5)
                    except PolicyUnknown:
                        break
            assert (await idle.current()).community_sharing_enabled is True
            await idle.close()
        async with follower(settings, "community-publisher-policy", "community_publisher") as view:
            assert (await view.caught_up(within=30)).community_sharing_enabled is False

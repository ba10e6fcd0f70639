"""`chatshare dlq redrive` for the groups that share their source topic with another group:
`community-publisher` (share.events, beside share-projection) and the two policy followers
(settings.events). share_service and community_publisher run on the real broker and database; a
group's store refuses a record, the record is dead-lettered, the store is fixed, and the redrive
applies it once, to that group alone: nothing is added to the source topic, and the other group
neither sees it again nor changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from chatshare_cli.dead_letters import DeadLetter, read_dead_letters
from chatshare_cli.kafka_reads import topic_reader

import contracts
from community_publisher.config import CommunityPublisherSettings
from contracts.topics import (
    COMMUNITY_PUBLISHER_GROUP,
    COMMUNITY_PUBLISHER_POLICY_GROUP,
    SETTINGS_EVENTS,
    SHARE_EVENTS,
    SHARE_PROJECTION_GROUP,
    SHARE_SERVICE_POLICY_GROUP,
)
from servicekit.config import ServiceSettings
from servicekit.policy import PolicyView
from share_service.config import ShareServiceSettings
from tests.community_requests import community_request, outcomes, produce, send_requests, set_policy
from tests.integration.community_publisher.conftest import (
    CommunitySite,
    publisher_settings,
    running_publisher,
    serve_standin,
)
from tests.integration.operators.cli_runner import chatshare
from tests.integration.share_service.share_harness import (
    ALICE,
    PUBLIC_URL,
    ShareService,
    running_share_service,
)

pytestmark = pytest.mark.integration

UPLOADS = "community_publisher.community_uploads_events"  # the publisher's store of outcomes


@dataclass
class Stack:
    share: ShareService
    publishing: CommunityPublisherSettings
    site: CommunitySite

    @property
    def pool(self) -> asyncpg.Pool:
        found: asyncpg.Pool = self.share.app.state.runtime.pool
        return found

    @property
    def cli_extra(self) -> dict[str, str]:
        return {"CHATSHARE_COMMUNITY_URL": self.site.url}


@pytest.fixture
async def stack(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[Stack]:
    """share_service and community_publisher on one database and one set of topics, as the dev
    stack runs them, with the community site's stand-in."""
    share_settings = ShareServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix, public_url=PUBLIC_URL, kafka_session_timeout_ms=6000,
    )  # fmt: skip
    async with serve_standin() as site:
        publishing = publisher_settings(database_url, kafka_bootstrap, topic_prefix, site.url)
        async with running_share_service(share_settings) as share, running_publisher(publishing):
            yield Stack(share, publishing, site)


async def letters_of(settings: ServiceSettings, group: str, count: int) -> list[DeadLetter]:
    async with asyncio.timeout(60):
        while len(letters := await read_dead_letters(settings, group)) < count:
            await asyncio.sleep(0.2)
    return letters


async def end_offsets(settings: ServiceSettings, topic: str) -> dict[Any, int]:
    async with topic_reader(settings, [settings.topic(topic)]) as (consumer, partitions):
        return dict(await consumer.end_offsets(partitions))


def consumed(share: ShareService, group: str, topic: str) -> float:
    labels = {"group": share.settings.group(group), "topic": share.settings.topic(topic)}
    value = share.app.state.registry.get_sample_value("kafka_events_consumed_total", labels)
    return float(value or 0.0)


async def request_status(share: ShareService, request_id: str, wanted: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            answer = await share.client.get(f"/api/v1/community-shares/{request_id}", headers=ALICE)
            if answer.status_code == 200 and answer.json()["status"] == wanted:
                found: dict[str, Any] = answer.json()
                return found
            await asyncio.sleep(0.05)


async def test_a_request_the_publisher_could_not_record_is_redriven_to_the_publisher_alone(
    stack: Stack,
) -> None:
    share, publishing, site = stack.share, stack.publishing, stack.site
    bootstrap, prefix = publishing.kafka_bootstrap_servers, publishing.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    await stack.pool.execute(
        f"ALTER TABLE {UPLOADS} ADD CONSTRAINT refused CHECK (false) NOT VALID"
    )
    request = community_request(owner_id="alice")
    await send_requests(bootstrap, prefix, request)
    await produce(bootstrap, prefix + SHARE_EVENTS, [(b"poison", b"{not json")])
    letters = await letters_of(publishing, COMMUNITY_PUBLISHER_GROUP, 2)
    (parked,) = [letter for letter in letters if letter.key == request.request_id.encode()]
    (poison,) = [letter for letter in letters if letter is not parked]
    assert parked.reason.startswith("IntegrityError: ")  # its outcome could not be stored
    await letters_of(share.settings, SHARE_PROJECTION_GROUP, 1)  # the poison: both groups
    tried = await site.counters()
    assert tried["accepted"] == 1  # the site took it; repeats under its key were replays
    await request_status(share, request.request_id, "pending")

    await stack.pool.execute(f"ALTER TABLE {UPLOADS} DROP CONSTRAINT refused")
    share_events_end = await end_offsets(publishing, SHARE_EVENTS)
    projected = consumed(share, SHARE_PROJECTION_GROUP, SHARE_EVENTS)
    ran = await chatshare(publishing, "dlq", "redrive", COMMUNITY_PUBLISHER_GROUP,
                          "--offset", parked.ref, extra=stack.cli_extra)  # fmt: skip
    assert ran.code == 0, ran.stderr + ran.stdout
    assert ran.summary == {
        "group": COMMUNITY_PUBLISHER_GROUP, "redriven": 1, "refused": 0, "failed": 0
    }  # fmt: skip
    published = await request_status(share, request.request_id, "published")
    (outcome,) = (await outcomes(bootstrap, prefix, [request.request_id], linger=1.0)).values()
    assert [event["type"] for event in outcome] == ["CommunitySharePublished"]
    assert published["community_url"] == outcome[0]["community_url"]
    assert await site.counters() == {"attempts": tried["attempts"] + 1, "accepted": 1}
    # Handed to the publisher alone: nothing new on share.events, nothing new for the projection.
    assert await end_offsets(publishing, SHARE_EVENTS) == share_events_end
    assert consumed(share, SHARE_PROJECTION_GROUP, SHARE_EVENTS) == projected

    # Applied once: a forced second redrive finds the outcome and sends nothing.
    again = await chatshare(publishing, "dlq", "redrive", COMMUNITY_PUBLISHER_GROUP,
                            "--offset", parked.ref, "--force", extra=stack.cli_extra)  # fmt: skip
    assert (again.code, again.summary["redriven"]) == (0, 1)
    assert await site.counters() == {"attempts": tried["attempts"] + 1, "accepted": 1}
    (outcome,) = (await outcomes(bootstrap, prefix, [request.request_id], linger=1.0)).values()
    assert len(outcome) == 1
    failed = await chatshare(publishing, "dlq", "redrive", COMMUNITY_PUBLISHER_GROUP,
                             "--offset", poison.ref, extra=stack.cli_extra)  # fmt: skip
    assert (failed.code, failed.summary["failed"]) == (1, 1)
    assert "unprocessable" in failed.stdout


def text_to_speech_on(version: int) -> contracts.TextToSpeechEnabled:
    now = datetime.now(UTC)
    return contracts.TextToSpeechEnabled(
        event_id=uuid.uuid4(), occurred_at=now, setting="tts", value=True,
        policy_version=version, changed_by="root", changed_at=now,
    )  # fmt: skip


POLICY_FOLLOWERS = {  # group → (its schema, the other follower's group and schema)
    SHARE_SERVICE_POLICY_GROUP: ("share_service", COMMUNITY_PUBLISHER_POLICY_GROUP,
                                 "community_publisher"),
    COMMUNITY_PUBLISHER_POLICY_GROUP: ("community_publisher", SHARE_SERVICE_POLICY_GROUP,
                                       "share_service"),
}  # fmt: skip


@pytest.mark.parametrize("group", list(POLICY_FOLLOWERS))
async def test_a_policy_change_one_follower_could_not_store_is_redriven_to_it_alone(
    stack: Stack, group: str
) -> None:
    settings, pool = stack.share.settings, stack.pool
    schema, other_group, other_schema = POLICY_FOLLOWERS[group]
    view, other = PolicyView(pool, schema, settings), PolicyView(pool, other_schema, settings)
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    for follower in (view, other):
        await follower.wait_for_version(1, within=30)
    constraint = f'ALTER TABLE "{schema}".policy_view {{}} CONSTRAINT stays_on'
    await pool.execute(constraint.format("ADD") + " CHECK (community_sharing_enabled) NOT VALID")
    await set_policy(bootstrap, prefix, (False, 2))  # the admin turns community sharing off
    (letter,) = await letters_of(settings, group, 1)
    assert letter.reason.startswith("CheckViolationError: ")
    await produce(bootstrap, prefix + SETTINGS_EVENTS,
                  [(b"instance", contracts.encode_event(text_to_speech_on(3)))])  # fmt: skip
    stale, seen = (await view.wait_for_version(3, 30), await other.wait_for_version(3, 30))
    assert (stale.community_sharing_enabled, stale.tts_enabled) == (True, True)  # missed "off"
    assert (seen.community_sharing_enabled, seen.tts_enabled) == (False, True)
    other_row = await pool.fetchrow(f'SELECT * FROM "{other_schema}".policy_view')
    settings_end = await end_offsets(settings, SETTINGS_EVENTS)

    still = await chatshare(settings, "dlq", "redrive", group, "--all")
    assert (still.code, still.summary["failed"]) == (1, 1)  # the store still refuses it
    assert "CheckViolationError" in still.stdout
    await pool.execute(constraint.format("DROP"))
    ran = await chatshare(settings, "dlq", "redrive", group, "--all")
    assert ran.code == 0, ran.stderr + ran.stdout
    assert ran.summary == {"group": group, "redriven": 1, "refused": 0, "failed": 0}
    # The older change of one switch is applied after a newer change of the other.
    fixed = await view.current()
    assert (fixed.community_sharing_enabled, fixed.tts_enabled, fixed.policy_version) == (
        False, True, 3,
    )  # fmt: skip
    # To that group alone: nothing new on settings.events, the other follower's row untouched.
    assert await end_offsets(settings, SETTINGS_EVENTS) == settings_end
    assert await pool.fetchrow(f'SELECT * FROM "{other_schema}".policy_view') == other_row
    assert await read_dead_letters(settings, other_group) == []
    again = await chatshare(settings, "dlq", "redrive", group, "--all", "--force")
    assert (again.code, again.summary["redriven"]) == (0, 1)
    assert await view.current() == fixed  # a repeat changes nothing

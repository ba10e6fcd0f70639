"""The admin's switch gates every upload (INTERFACE.md §6, DESIGN.md "Policy gate"): a request is
sent only if community sharing was on when it was asked for and is still on when it is sent;
otherwise it is rejected and the community site hears nothing."""

from __future__ import annotations

import asyncio

import pytest

from community_publisher.config import CommunityPublisherSettings
from contracts.topics import COMMUNITY_EVENTS
from tests.community_requests import (
    community_request,
    outcomes,
    read_topic,
    send_requests,
    set_policy,
)
from tests.integration.community_publisher.conftest import CommunitySite, running_publisher

pytestmark = pytest.mark.integration


async def test_with_sharing_off_a_request_is_rejected_and_nothing_is_sent(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    request = community_request(policy_version=1)
    async with running_publisher(settings):
        await set_policy(bootstrap, prefix, (True, 1), (False, 2))
        await send_requests(bootstrap, prefix, request)
        found = await outcomes(bootstrap, prefix, [request.request_id])
    (rejected,) = found[request.request_id]
    assert rejected["type"] == "CommunityShareRejected"
    assert rejected["reason"] == "community sharing is disabled"
    assert await site.counters() == {"attempts": 0, "accepted": 0}


async def test_sharing_turned_off_after_the_request_but_before_the_upload_rejects_it(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    """The race: on when asked (the request carries policy version 1), off (version 2) before
    the publisher acts on it."""
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    request = community_request(policy_version=1)
    await send_requests(bootstrap, prefix, request)
    await set_policy(bootstrap, prefix, (False, 2))
    async with running_publisher(settings):
        found = await outcomes(bootstrap, prefix, [request.request_id])
    (rejected,) = found[request.request_id]
    assert (rejected["type"], rejected["reason"]) == (
        "CommunityShareRejected",
        "community sharing is disabled",
    )
    assert await site.counters() == {"attempts": 0, "accepted": 0}


async def test_a_request_ahead_of_the_publisher_s_policy_view_waits_for_it(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    """A view that has not yet seen the version that allowed the request is late, not a "no":
    the request waits (no rejection, no dead letter) and is published once the view has it."""
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    request = community_request(policy_version=1)
    async with running_publisher(settings.model_copy(update={"policy_wait_seconds": 0.3})):
        await send_requests(bootstrap, prefix, request)
        await asyncio.sleep(3)  # several waits of the view time out meanwhile
        early = await read_topic(bootstrap, prefix + COMMUNITY_EVENTS, lambda _: True, linger=0.5)
        assert early == []
        assert await site.counters() == {"attempts": 0, "accepted": 0}
        await set_policy(bootstrap, prefix, (True, 1))
        found = await outcomes(bootstrap, prefix, [request.request_id])
    (published,) = found[request.request_id]
    assert published["type"] == "CommunitySharePublished"
    assert await site.counters() == {"attempts": 1, "accepted": 1}

"""community_publisher uploads community requests to the (stand-in) community site as
INTERFACE.md §6 says: what each access level may show, with its idempotency key and token,
retrying what may heal, and a failed upload as the business outcome `failed`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from community_publisher.config import CommunityPublisherSettings
from contracts.topics import COMMUNITY_PUBLISHER_GROUP, dead_letter_topic
from tests.community_requests import (
    community_request,
    outcomes,
    read_topic,
    send_requests,
    set_policy,
)
from tests.integration.community_publisher.conftest import (
    INSTANCE_ID,
    CommunitySite,
    publisher_settings,
    running_publisher,
    serve_standin,
)

pytestmark = pytest.mark.integration


def only_outcome(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The request's outcome; the relay may repeat it after a crash, never change it."""
    assert len({event["event_id"] for event in events}) == 1, events
    return events[0]


async def test_each_access_level_uploads_what_it_may_show(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    requests = {
        access: community_request(access, owner_id="alice")
        for access in ("private", "public", "public_full_history")
    }
    async with running_publisher(settings) as app:
        await send_requests(bootstrap, prefix, *requests.values())
        found = await outcomes(bootstrap, prefix, [r.request_id for r in requests.values()])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://publisher") as client:
            ready = await client.get("/readyz")
            metrics = (await client.get("/metrics")).text
    assert ready.status_code == 200, ready.text
    assert "community_uploads_sent_total 3.0" in metrics
    assert "community_uploads_published_total 3.0" in metrics
    assert "community_upload_duration_seconds_count 3.0" in metrics
    for access, request in requests.items():
        upload = await site.upload_of(request.request_id)
        snapshot = request.snapshot.model_dump(mode="json")
        chat = {"title": snapshot["title"], "messages": snapshot["messages"]}
        if access == "public_full_history":
            chat["history"] = snapshot["history"]  # every branch: "Porto." too
        assert upload["body"] == {
            "chat": chat,
            "access": access,
            "source": {
                "instance_id": INSTANCE_ID,
                "request_id": request.request_id,
                "owner_id": "alice",
            },
        }
        assert "authorization" not in upload["headers"]  # no token configured
        outcome = only_outcome(found[request.request_id])
        assert outcome["type"] == "CommunitySharePublished"
        assert (outcome["community_id"], outcome["community_url"]) == (upload["id"], upload["url"])
    assert await site.counters() == {"attempts": 3, "accepted": 3}


async def test_the_token_goes_along_when_set_and_a_refused_upload_is_not_retried(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    await set_policy(kafka_bootstrap, topic_prefix, (True, 1))
    refused, accepted = community_request(), community_request()
    async with serve_standin(token="s3cret-community-token") as site:

        def settings(token: str) -> CommunityPublisherSettings:
            return publisher_settings(
                database_url, kafka_bootstrap, topic_prefix, site.url, community_token=token
            )

        async with running_publisher(settings("a-wrong-token")):
            await send_requests(kafka_bootstrap, topic_prefix, refused)
            failed = only_outcome(
                (await outcomes(kafka_bootstrap, topic_prefix, [refused.request_id]))[
                    refused.request_id
                ]
            )
        assert failed["type"] == "CommunityShareFailed"
        assert "401" in failed["reason"]
        assert await site.counters() == {"attempts": 1, "accepted": 0}  # a 4xx is not retried

        async with running_publisher(settings("s3cret-community-token")):
            await send_requests(kafka_bootstrap, topic_prefix, accepted)
            found = await outcomes(kafka_bootstrap, topic_prefix, [accepted.request_id])
        assert only_outcome(found[accepted.request_id])["type"] == "CommunitySharePublished"
        upload = await site.upload_of(accepted.request_id)
        assert upload["headers"]["authorization"] == "Bearer s3cret-community-token"
        assert upload["headers"]["idempotency-key"] == accepted.request_id


async def test_a_site_failing_twice_then_succeeding_publishes_exactly_once(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    await site.control(fail_next=2, fail_status=503)
    request = community_request()
    async with running_publisher(settings) as app:
        await send_requests(bootstrap, prefix, request)
        found = await outcomes(bootstrap, prefix, [request.request_id], linger=1.0)
        registry = app.state.registry
        assert registry.get_sample_value("community_uploads_retried_total") == 2
        assert registry.get_sample_value("community_uploads_sent_total") == 3
    assert only_outcome(found[request.request_id])["type"] == "CommunitySharePublished"
    assert await site.counters() == {"attempts": 3, "accepted": 1}


async def test_a_site_that_keeps_failing_gives_failed_and_the_publisher_keeps_going(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    await site.control(fail_next=1000, fail_status=503)
    doomed, later = community_request(), community_request()
    async with running_publisher(settings) as app:
        await send_requests(bootstrap, prefix, doomed)
        failed = only_outcome(
            (await outcomes(bootstrap, prefix, [doomed.request_id]))[doomed.request_id]
        )
        await site.control(fail_next=0)
        await send_requests(bootstrap, prefix, later)
        found = await outcomes(bootstrap, prefix, [later.request_id])
        assert app.state.registry.get_sample_value("community_uploads_failed_total") == 1
    assert failed["type"] == "CommunityShareFailed"
    assert (
        failed["reason"]
        == "gave up after 3 attempt(s): the community site answered 503: the stand-in was told to fail this upload"
    )
    assert only_outcome(found[later.request_id])["type"] == "CommunitySharePublished"
    assert await site.counters() == {"attempts": 4, "accepted": 1}
    dead_letters = prefix + dead_letter_topic(COMMUNITY_PUBLISHER_GROUP)
    assert await read_topic(bootstrap, dead_letters, lambda _: True, linger=1.0) == []


async def test_a_site_too_slow_to_answer_gives_failed_saying_so(
    database_url: str, kafka_bootstrap: str, topic_prefix: str, site: CommunitySite
) -> None:
    settings = publisher_settings(
        database_url, kafka_bootstrap, topic_prefix, site.url,
        upload_timeout_seconds=0.3, upload_max_attempts=2,
    )  # fmt: skip
    await set_policy(kafka_bootstrap, topic_prefix, (True, 1))
    await site.control(delay_ms=1500)
    request = community_request()
    async with running_publisher(settings):
        await send_requests(kafka_bootstrap, topic_prefix, request)
        found = await outcomes(kafka_bootstrap, topic_prefix, [request.request_id])
    failed = only_outcome(found[request.request_id])
    assert failed["type"] == "CommunityShareFailed"
    assert "did not answer in time" in failed["reason"]
    assert (await site.counters())["attempts"] == 2

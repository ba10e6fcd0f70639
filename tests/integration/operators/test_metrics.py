"""What an operator watches is on share_service's `/metrics`: requests, events consumed,
produced and dead-lettered, the relay's position and lag, and the projection's lag in events and
seconds — with samples once a link was shared and projected."""

from __future__ import annotations

import asyncio
import re

import pytest

from contracts.topics import SHARE_PROJECTION_GROUP
from tests.integration.share_service.share_harness import ALICE, ShareService

pytestmark = pytest.mark.integration

OPERATOR_METRICS = (
    "http_requests_total",
    "http_request_duration_seconds",
    "kafka_events_consumed_total",
    "kafka_events_dead_lettered_total",
    "kafka_handler_retries_total",
    "outbox_events_published_total",
    "outbox_relay_position",
    "outbox_relay_lag_events",
    "outbox_relay_active",
    "share_projection_lag_events",
    "share_projection_lag_seconds",
)


async def metrics_text(service: ShareService) -> str:
    answer = await service.client.get("/metrics")
    assert answer.status_code == 200
    return answer.text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{key}="{value}"' in match.group(1) for key, value in labels.items()):
            return float(match.group(2))
    return None


async def until_sampled(service: ShareService, name: str, **labels: str) -> float:
    async with asyncio.timeout(30):
        while (value := sample(await metrics_text(service), name, **labels)) is None:
            await asyncio.sleep(0.2)
    return value


async def test_every_operator_metric_is_exported(service: ShareService) -> None:
    text = await metrics_text(service)

    missing = [name for name in OPERATOR_METRICS if f"# TYPE {name} " not in text]

    assert missing == []


async def test_a_shared_link_shows_in_the_request_relay_consumer_and_lag_metrics(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hello")
    assert (await service.share(feed)).status_code == 201
    share_events = service.settings.topic("share.events")
    projection = service.settings.group(SHARE_PROJECTION_GROUP)

    published = await until_sampled(
        service, "outbox_events_published_total", relay="share_service", topic="share.events"
    )
    consumed = await until_sampled(
        service, "kafka_events_consumed_total", group=projection, topic=share_events
    )
    position = await until_sampled(service, "outbox_relay_position", relay="share_service")
    lag_seconds = await until_sampled(service, "share_projection_lag_seconds", topic=share_events)

    assert published >= 1
    assert consumed >= 1
    assert position >= 1
    assert lag_seconds >= 0
    share_id = (await service.share(feed)).json()["share_id"]
    assert (
        await service.client.get(f"/api/v1/shares/{share_id}", headers=ALICE)
    ).status_code == 200
    text = await metrics_text(service)
    assert sample(text, "http_requests_total", route="/api/v1/chats/{chat_id}/share", status="201")
    # The hot read path answers before FastAPI's routing, and is counted under its route all the same.
    assert sample(text, "http_requests_total", route="/api/v1/shares/{share_id}", status="200")

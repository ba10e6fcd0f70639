"""A request's correlation id goes with the events it stores onto Kafka, and a consumer carries
it on: the caller can follow one Copy Link from its HTTP request to `share.events`."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

import contracts
from contracts.topics import CHAT_EVENTS, SHARE_EVENTS
from share_service.config import ShareServiceSettings
from tests.integration.share_service.share_harness import (
    ALICE,
    ShareService,
)

pytestmark = pytest.mark.integration


async def headers_of_records(
    settings: ShareServiceSettings, topic: str, key: str, count: int
) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(
        settings.topic(topic), bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest", isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    found: list[dict[str, str]] = []
    try:
        while len(found) < count:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                found.extend(
                    {name: value.decode() for name, value in record.headers}
                    for record in records
                    if record.key == key.encode()
                )
    finally:
        await consumer.stop()
    return found


@pytest.mark.timeout(60)
async def test_the_callers_correlation_id_reaches_the_kafka_records_of_its_command(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hello")

    answer = await service.client.post(
        f"/api/v1/chats/{feed.chat_id}/share",
        json={"chat_version": feed.version},
        headers={**ALICE, "X-Correlation-ID": "gateway-req-42"},
    )

    assert answer.status_code == 201
    assert answer.headers["X-Correlation-ID"] == "gateway-req-42"
    (created,) = await headers_of_records(
        service.settings, SHARE_EVENTS, answer.json()["share_id"], 1
    )
    assert created["correlation_id"] == "gateway-req-42"
    assert created["causation_id"] == "gateway-req-42"
    assert created["event_id"]
    assert created["notification_id"]


async def test_a_request_without_an_id_is_given_one(service: ShareService) -> None:
    answer = await service.client.get("/healthz", headers={"X-Request-ID": "lb-7"})
    fresh = await service.client.get("/healthz")

    assert answer.headers["X-Correlation-ID"] == "lb-7"
    assert len(fresh.headers["X-Correlation-ID"]) == 36


@pytest.mark.timeout(60)
async def test_links_that_die_with_their_chat_carry_the_chat_event_s_ids(
    service: ShareService,
) -> None:
    feed = await service.chat("alice", "hello")
    share_id = (await service.share(feed)).json()["share_id"]
    deleted = feed.deleted()
    producer = AIOKafkaProducer(bootstrap_servers=service.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            service.settings.topic(CHAT_EVENTS), contracts.encode_event(deleted),
            key=feed.chat_id.encode(),
            headers=[("event_id", str(deleted.event_id).encode()),
                     ("correlation_id", b"platform-chain-7")],
        )  # fmt: skip
    finally:
        await producer.stop()

    _, link_deleted = await headers_of_records(service.settings, SHARE_EVENTS, share_id, 2)
    assert link_deleted["correlation_id"] == "platform-chain-7"
    assert link_deleted["causation_id"] == str(deleted.event_id)


@pytest.mark.timeout(60)
async def test_consuming_writes_no_log_line_per_message(
    service: ShareService, caplog: pytest.LogCaptureFixture
) -> None:
    """Chat events mirrored, a link shared, published and projected: the log holds what an
    operator reads, not faststream's "Received"/"Processed" for every message handed over."""
    caplog.set_level(logging.INFO)
    feed = await service.chat("alice", "hello", "again")
    answer = await service.share(feed)
    assert answer.status_code == 201
    await service.projection_applied(answer.json()["share_id"], 1)

    per_message = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("faststream") and record.levelno < logging.WARNING
    ]
    assert per_message == []

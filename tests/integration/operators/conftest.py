"""The operator tests' running share_service: the whole service in-process, on this test's own
database and topics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from share_service.config import ShareServiceSettings
from tests.integration.share_service.share_harness import (
    PUBLIC_URL,
    ShareService,
    running_share_service,
)


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[ShareService]:
    settings = ShareServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix, public_url=PUBLIC_URL, kafka_session_timeout_ms=6000,
    )  # fmt: skip
    async with running_share_service(settings) as running:
        yield running

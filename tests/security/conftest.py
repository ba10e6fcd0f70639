"""The security tests' stack: share_service and settings_service on their lifespans, on the real
broker and a database of their own, started once for the whole folder. Both services share the
topics, so the admin's switch on settings_service reaches share_service's policy view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from devstack import postgres
from settings_service.config import SettingsServiceSettings
from share_service.config import ShareServiceSettings
from tests.identities import bearer, make_token
from tests.integration.share_service.share_harness import (
    PUBLIC_URL,
    ShareService,
    running_share_service,
)
from tests.running_services import (
    SettingsService,
    new_database,
    new_topic_prefix,
    running_settings_service,
)

OWNER_TOKEN = make_token("alice", "user")
OTHER_TOKEN = make_token("bob", "user")
ADMIN_TOKEN = make_token("root", "admin")
PENDING_TOKEN = make_token("newcomer", "pending")
OWNER, OTHER, ADMIN, PENDING = map(bearer, (OWNER_TOKEN, OTHER_TOKEN, ADMIN_TOKEN, PENDING_TOKEN))


@dataclass
class Stack:
    share: ShareService
    settings: SettingsService


@pytest.fixture(scope="package")
async def stack(postgres_node: postgres.PostgresNode, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    common = {
        "database_url": new_database(postgres_node),
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": await new_topic_prefix(kafka_bootstrap),
    }
    share_settings = ShareServiceSettings(
        **common, public_url=PUBLIC_URL, chat_version_wait_seconds=3.0
    )
    async with (
        running_share_service(share_settings) as share,
        running_settings_service(SettingsServiceSettings(**common)) as settings,
    ):
        yield Stack(share, settings)

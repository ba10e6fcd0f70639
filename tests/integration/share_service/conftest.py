"""share_service's behaviour tests on PostgreSQL: `open_sharing_app` opens replicas with their own
connection pools on one fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from servicekit.event_store import eventsourcing_env
from share_service.application.sharing import SharingApplication
from tests.unit.share_service.sharing_apps import OpenSharingApp

EVENT_STORE_SCHEMA = "share_service"


@pytest.fixture
def open_sharing_app(database_url: str) -> Iterator[OpenSharingApp]:
    opened: list[SharingApplication] = []

    def open_app(**options: Any) -> SharingApplication:
        env = eventsourcing_env(database_url, EVENT_STORE_SCHEMA)
        opened.append(SharingApplication(env=env, **options))
        return opened[-1]

    yield open_app
    for app in opened:
        app.close()

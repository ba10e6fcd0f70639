"""share_service's unit tests run on an in-memory store; tests/integration/share_service runs
the same tests with a PostgreSQL `open_sharing_app`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.popo import POPOApplicationRecorder

from servicekit.event_store import in_memory_env
from share_service.application.sharing import SharingApplication
from tests.unit.share_service.sharing_apps import OpenSharingApp


@pytest.fixture
def open_sharing_app() -> Iterator[OpenSharingApp]:
    """Applications sharing one in-memory store, as replicas share one database."""
    recorder = POPOApplicationRecorder()

    class SharingOnSharedMemory(SharingApplication):
        name = SharingApplication.name

        def construct_recorder(self) -> ApplicationRecorder:
            return recorder

    opened: list[SharingApplication] = []

    def open_app(**options: Any) -> SharingApplication:
        opened.append(SharingOnSharedMemory(env=in_memory_env(), **options))
        return opened[-1]

    yield open_app
    for app in opened:
        app.close()

"""How share_service's behaviour tests open applications on the test's one store, and read
back what it stored."""

from __future__ import annotations

from typing import Any, Protocol

from share_service.application.sharing import SharingApplication


class OpenSharingApp(Protocol):
    """A new application (a replica) on the test's store."""

    def __call__(self, *, max_snapshot_bytes: int = ...) -> SharingApplication: ...


def stored_events(app: SharingApplication) -> list[Any]:
    notifications = app.recorder.select_notifications(start=None, limit=1000)
    return [app.mapper.to_domain_event(notification) for notification in notifications]

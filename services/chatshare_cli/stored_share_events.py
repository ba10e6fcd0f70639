"""share_service's notification log read in order, each stored event as the contract event the
outbox relay publishes for it: the truth a replay of the share views is rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.share_events import LinkEventBase
from share_service.adapters.share_events import to_contract
from share_service.application.sharing import SharingApplication


@dataclass(frozen=True)
class Page:
    position: int  # the last notification id read; the one read after when there was none
    notifications: int
    links: Sequence[LinkEventBase]  # the links' events among them, in order
    stored_bytes: int  # of the stored events' states: what sizes the next page


class StoredShareEvents:
    """Blocking reads (eventsourcing is synchronous): call them from a worker thread."""

    def __init__(self, application: SharingApplication) -> None:
        self.application = application

    def read_after(self, position: int, limit: int) -> Page:
        """Up to `limit` notifications with ids above `position` (ids have gaps: never guess)."""
        notifications = self.application.recorder.select_notifications(
            start=position, limit=limit, inclusive_of_start=False
        )
        links = [
            event
            for notification in notifications
            if isinstance(event := to_contract(notification), LinkEventBase)
        ]
        last = notifications[-1].id if notifications else position
        size = sum(len(notification.state) for notification in notifications)
        return Page(last, len(notifications), links, size)

    def last_id(self) -> int:
        return int(self.application.recorder.max_notification_id() or 0)

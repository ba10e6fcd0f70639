"""What a link's events write into the share view store: one version-checked write per event,
in order. The projection and the operator's replays (`chatshare replay share-views`) both apply
link events through here, so the same events make the same rows, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import contracts
from contracts.share_events import LinkEventBase
from share_service.application.shared_chat import shared_chat_body


@dataclass(frozen=True)
class ViewWrite:
    """A link's row at `version`: live with `body`, or a tombstone when `body` is None.

    The store applies it only over an older row. A snapshot sets everything but `created_at`;
    a tombstone sets only the version and clears the body, keeping the row's times. The times
    given are used when there is no row yet.
    """

    share_id: str
    chat_id: str
    owner_id: str
    version: int
    body: bytes | None
    created_at: datetime
    updated_at: datetime

    @property
    def deleted(self) -> bool:
        return self.body is None


def view_writes(events: Iterable[LinkEventBase], created: dict[str, datetime]) -> list[ViewWrite]:
    """The writes of `events`, in order. `created` holds the `created_at` of the links that have
    a row already; the links born in `events` are added to it."""
    writes = []
    for event in events:
        match event:
            case contracts.ShareCreated() | contracts.SnapshotUpdated():
                # Only ShareCreated carries the link's birth; later snapshots keep it.
                created_at = created.setdefault(event.share_id, event.occurred_at)
                body = shared_chat_body(event, created_at)
                writes.append(_write(event, body, created_at))
            case contracts.LinkDeleted():
                # The times count only if no row exists (its ShareCreated was never applied).
                created_at = created.get(event.share_id, event.occurred_at)
                writes.append(_write(event, None, created_at))
    return writes


def _write(event: LinkEventBase, body: bytes | None, created_at: datetime) -> ViewWrite:
    return ViewWrite(
        event.share_id, event.chat_id, event.owner_id, event.version, body,
        created_at, event.occurred_at,
    )  # fmt: skip

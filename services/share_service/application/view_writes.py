"""What a link's events write into the share view store: one version-checked write per event,
in order. The projection and the operator's replays (`chatshare replay share-views`) both apply
link events through here, so the same events make the same rows, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def view_writes(events: Sequence[LinkEventBase], created: dict[str, datetime]) -> list[ViewWrite]:
    """The writes of `events`, in order. `created` holds the `created_at` of the links that have
    a row already; the links born in `events` are added to it.

    A snapshot directly followed (among its link's writes) by a snapshot of a higher version is
    left out: whatever row they meet, the later one alone leaves it exactly as both would
    (`created_at`, all the earlier could set alone, is the same in both), so its body is never
    built.
    """
    replaced = _replaced_snapshots(events)
    writes = []
    for index, event in enumerate(events):
        match event:
            case contracts.ShareCreated() | contracts.SnapshotUpdated():
                # Only ShareCreated carries the link's birth; later snapshots keep it.
                created_at = created.setdefault(event.share_id, event.occurred_at)
                if index not in replaced:
                    body = shared_chat_body(event, created_at)
                    writes.append(_write(event, body, created_at))
            case contracts.LinkDeleted():
                # The times count only if no row exists (its ShareCreated was never applied).
                created_at = created.get(event.share_id, event.occurred_at)
                writes.append(_write(event, None, created_at))
    return writes


def _replaced_snapshots(events: Sequence[LinkEventBase]) -> set[int]:
    """Positions of the snapshots whose link's next write (of those kept) is a snapshot of a
    higher version: the pair leaves any row as the later one alone does."""
    next_snapshot: dict[str, int] = {}  # per link, the version of its next kept snapshot write
    replaced = set()
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if not isinstance(event, contracts.ShareCreated | contracts.SnapshotUpdated):
            next_snapshot.pop(event.share_id, None)  # a tombstone in between: keep what precedes
        elif next_snapshot.get(event.share_id, 0) > event.version:
            replaced.add(index)
        else:
            next_snapshot[event.share_id] = event.version
    return replaced


def _write(event: LinkEventBase, body: bytes | None, created_at: datetime) -> ViewWrite:
    return ViewWrite(
        event.share_id, event.chat_id, event.owner_id, event.version, body,
        created_at, event.occurred_at,
    )  # fmt: skip

"""What share_service's use cases answer about a link: its view on the command side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from share_service.domain.share_link import DeleteReason, ShareLink
from share_service.domain.snapshot import Snapshot


@dataclass(frozen=True)
class ShareLinkView:
    """A link as the command side knows it; `version` counts its changes (1 when created)."""

    share_id: str
    chat_id: str
    owner_id: str
    version: int
    chat_version: int
    snapshot: Snapshot
    created_at: datetime
    updated_at: datetime
    deleted_reason: DeleteReason | None = None
    deleted_by: str | None = None

    @property
    def is_live(self) -> bool:
        return self.deleted_reason is None


def view_of(link: ShareLink) -> ShareLinkView:
    return ShareLinkView(
        share_id=link.share_id,
        chat_id=link.chat_id,
        owner_id=link.owner_id,
        version=link.version,
        chat_version=link.chat_version,
        snapshot=link.snapshot,
        created_at=link.created_at,
        updated_at=link.updated_at,
        deleted_reason=link.deleted_reason,
        deleted_by=link.deleted_by,
    )


@dataclass(frozen=True)
class ShareResult:
    link: ShareLinkView
    created: bool  # a new link (HTTP 201), not a new snapshot on the live one (200)

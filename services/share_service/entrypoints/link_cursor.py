"""The opaque `cursor` of `GET /api/v1/shares?owner=me`: where the previous page ended, as the
`(created_at, share_id)` of its last link (keyset paging: stable while links come and go)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from fastapi.exceptions import RequestValidationError


@dataclass(frozen=True)
class LinkCursor:
    created_at: datetime
    share_id: str

    def encode(self) -> str:
        raw = f"{self.created_at.isoformat()}|{self.share_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    """The `(created_at, share_id)` to continue after; 422 for a cursor this service never gave."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, separator, share_id = raw.partition("|")
        created_at = datetime.fromisoformat(moment)
        if not separator or not share_id or created_at.tzinfo is None:
            raise ValueError("incomplete")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RequestValidationError(
            [{"loc": ("query", "cursor"), "msg": "not a cursor this service gave out"}]
        ) from None
    return created_at, share_id

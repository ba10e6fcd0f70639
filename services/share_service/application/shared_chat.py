"""The answer of `GET /api/v1/shares/{share_id}` (INTERFACE.md §3), made once when the projection
stores a link's snapshot, and the read-time splice of the policy's `tts_enabled` flag into it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

import contracts

# Appended in place of the stored body's closing brace: the flag is the policy's, read at request
# time (DESIGN.md "The policy is read, not baked in"), so a toggle rewrites no view row.
TTS_ON = b',"tts_enabled":true}'
TTS_OFF = b',"tts_enabled":false}'
_BODY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def shared_chat_body(
    event: contracts.ShareCreated | contracts.SnapshotUpdated, created_at: datetime
) -> bytes:
    """Compact UTF-8 JSON of the link as its readers see it, without `tts_enabled`.

    Built from the event alone (and the link's `created_at`, which only `ShareCreated` carries),
    so a replay of `share.events` or of the event store makes the same bytes.
    """
    snapshot = event.snapshot
    body = {
        "share_id": event.share_id,
        "chat_id": event.chat_id,
        "owner_id": event.owner_id,
        "title": snapshot.title,
        "messages": snapshot.messages,
        "history": snapshot.history,
        "created_at": rfc3339(created_at),
        "updated_at": rfc3339(event.occurred_at),
        "version": event.version,
    }
    # pydantic-core writes the same bytes as `json.dumps(…, ensure_ascii=False,
    # separators=(",", ":"))` of the model's JSON dump (a unit test holds it to that, so rows
    # written either way compare equal), in a third of the time: replays build many bodies.
    return _BODY.serializer.to_json(body)


def with_tts(body: bytes, tts_enabled: bool) -> bytes:
    """The stored body with the flag added: one copy of the bytes, no parse, no serialisation."""
    return body[:-1] + (TTS_ON if tts_enabled else TTS_OFF)


def rfc3339(moment: datetime) -> str:
    """UTC with a `Z`, as pydantic writes the command answers' timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

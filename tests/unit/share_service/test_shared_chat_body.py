"""The ready-made body of a shared chat keeps its exact bytes: view rows written by earlier
versions (with `json.dumps`) must compare equal to rows a replay writes now."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import contracts
from share_service.application.shared_chat import rfc3339, shared_chat_body
from tests.integration.share_service.share_harness import LinkStory

ODD_CHARACTERS = [
    *map(chr, range(0x20)), "\x7f", "\\", '"', "/", "\u2028", "\u2029", "\ufeff", "é", "中文",
    "😀", "\U0010ffff", "<script>", "&amp;",
]  # fmt: skip


def json_dumps_body(event: contracts.ShareCreated, created_at: datetime) -> bytes:
    """How the body was first written: the model's JSON dump through `json.dumps`."""
    snapshot = event.snapshot.model_dump(mode="json")
    body: dict[str, Any] = {
        "share_id": event.share_id, "chat_id": event.chat_id, "owner_id": event.owner_id,
        "title": snapshot["title"], "messages": snapshot["messages"],
        "history": snapshot["history"], "created_at": rfc3339(created_at),
        "updated_at": rfc3339(event.occurred_at), "version": event.version,
    }  # fmt: skip
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def with_text(text: str, message_time: str) -> contracts.ShareCreated:
    event = LinkStory("alice").created(text, text[::-1])
    snapshot = event.snapshot.model_dump(mode="json")
    snapshot["title"] = text
    for message in [*snapshot["messages"], *snapshot["history"]["messages"].values()]:
        message["created_at"] = message_time
        message["model"] = text or None
    return event.model_copy(update={"snapshot": contracts.Snapshot.model_validate(snapshot)})


def test_the_body_is_byte_for_byte_what_json_dumps_wrote() -> None:
    chosen = random.Random(7)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3))]
    for _ in range(500):
        text = "".join(chosen.choice(ODD_CHARACTERS) for _ in range(chosen.randrange(0, 30)))
        moment = datetime(2026, 1, 2, 3, 4, 5, chosen.choice([0, 1, 120_000, 999_999]),
                          tzinfo=chosen.choice(zones))  # fmt: skip
        event = with_text(text, moment.isoformat())
        created_at = moment - timedelta(days=1)
        assert shared_chat_body(event, created_at) == json_dumps_body(event, created_at)

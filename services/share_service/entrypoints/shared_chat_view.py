"""A share's read body (GET /api/v1/shares/{id}) as the shared-chat page shows it: the title,
the visible branch with role labels, and each message's markdown as safe HTML."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from share_service.entrypoints.chat_markdown import ChatMarkdown

ROLE_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


@dataclass(frozen=True)
class Moment:
    iso: str
    label: str


@dataclass(frozen=True)
class MessageView:
    role_class: str
    role_label: str
    model: str | None
    html: Markup


@dataclass(frozen=True)
class SharedChatView:
    title: str
    messages: list[MessageView]
    snapshot_at: Moment | None
    tts_enabled: bool


def shared_chat_view(share: Mapping[str, Any], markdown: ChatMarkdown) -> SharedChatView:
    return SharedChatView(
        title=str(share.get("title") or "").strip() or "Untitled chat",
        messages=[message_view(message, markdown) for message in share.get("messages") or []],
        snapshot_at=moment(share.get("updated_at")),
        tts_enabled=share.get("tts_enabled") is True,
    )


def message_view(message: Mapping[str, Any], markdown: ChatMarkdown) -> MessageView:
    role = str(message.get("role") or "")
    content = message.get("content")
    model = message.get("model")
    return MessageView(
        role_class=role if role in ROLE_LABELS else "other",
        role_label=ROLE_LABELS.get(role, "Message"),
        model=str(model) if model else None,
        # Markup only around markdown-it's output: it escapes raw HTML (html=False) itself.
        html=Markup(markdown.render(content if isinstance(content, str) else "")),
    )


def moment(value: object) -> Moment | None:
    """The read body's timestamps arrive as datetimes or RFC 3339 text; shown in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return Moment(iso=utc.isoformat(), label=f"{utc.day} {utc:%b %Y, %H:%M} UTC")

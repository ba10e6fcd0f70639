"""One valid example of every event type, for the contract tests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from contracts import (
    BranchSelected,
    ChatCreated,
    ChatDeleted,
    ChatTitleChanged,
    CommunityShareFailed,
    CommunitySharePublished,
    CommunityShareRejected,
    CommunityShareRequested,
    CommunitySharingDisabled,
    CommunitySharingEnabled,
    EventEnvelope,
    History,
    HistoryMessage,
    LinkDeleted,
    MessageAdded,
    MessageEdited,
    ShareCreated,
    Snapshot,
    SnapshotMessage,
    SnapshotUpdated,
    TextToSpeechDisabled,
    TextToSpeechEnabled,
)
from contracts.topics import CHAT_EVENTS, COMMUNITY_EVENTS, SETTINGS_EVENTS, SHARE_EVENTS

AT = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
SHARE_ID = "p3Xq7VbN2kLm9RtY4wZs8A"


def envelope(n: int) -> dict[str, object]:
    return {"event_id": UUID(int=n), "occurred_at": AT}


def a_snapshot() -> Snapshot:
    question = {"id": "m1", "parent_id": None, "role": "user", "content": "Grüße <b>?</b>"}
    answer = {"id": "m2", "parent_id": "m1", "role": "assistant", "content": "Hello"}
    return Snapshot(
        title="A chat",
        messages=[
            SnapshotMessage(**question, model=None, created_at=AT),
            SnapshotMessage(**answer, model="llama3", created_at=AT),
        ],
        history=History(
            messages={
                "m1": HistoryMessage(**question, model=None, created_at=AT, children_ids=["m2"]),
                "m2": HistoryMessage(**answer, model="llama3", created_at=AT, children_ids=[]),
            },
            current_id="m2",
        ),
    )


def chat(n: int, version: int) -> dict[str, object]:
    return {**envelope(n), "chat_id": "chat-1", "chat_version": version}


def link(n: int, version: int) -> dict[str, object]:
    return {
        **envelope(n),
        "share_id": SHARE_ID,
        "chat_id": "chat-1",
        "owner_id": "u1",
        "version": version,
    }


def setting(n: int) -> dict[str, object]:
    return {**envelope(n), "policy_version": n, "changed_by": "admin-1", "changed_at": AT}


def every_event() -> list[tuple[str, EventEnvelope]]:
    """(topic, event) for every event type of every topic."""
    return [
        (CHAT_EVENTS, ChatCreated(**chat(1, 1), owner_id="u1", title="A chat")),
        (
            CHAT_EVENTS,
            MessageAdded(
                **chat(2, 2), message_id="m1", parent_id=None, role="user", content="Hi", model=None
            ),
        ),
        (CHAT_EVENTS, MessageEdited(**chat(3, 3), message_id="m1", content="Hi there")),
        (CHAT_EVENTS, BranchSelected(**chat(4, 4), message_id="m1")),
        (CHAT_EVENTS, ChatTitleChanged(**chat(5, 5), title="Renamed")),
        (CHAT_EVENTS, ChatDeleted(**chat(6, 6))),
        (SHARE_EVENTS, ShareCreated(**link(7, 1), chat_version=2, snapshot=a_snapshot())),
        (SHARE_EVENTS, SnapshotUpdated(**link(8, 2), chat_version=5, snapshot=a_snapshot())),
        (SHARE_EVENTS, LinkDeleted(**link(9, 3), reason="chat_deleted", deleted_by="u1")),
        (
            SHARE_EVENTS,
            CommunityShareRequested(
                **envelope(10),
                request_id="r1",
                chat_id="chat-1",
                owner_id="u1",
                access="public_full_history",
                policy_version=1,
                snapshot=a_snapshot(),
            ),
        ),
        (
            SETTINGS_EVENTS,
            CommunitySharingEnabled(**setting(11), setting="community_sharing", value=True),
        ),
        (
            SETTINGS_EVENTS,
            CommunitySharingDisabled(**setting(12), setting="community_sharing", value=False),
        ),
        (SETTINGS_EVENTS, TextToSpeechEnabled(**setting(13), setting="tts", value=True)),
        (SETTINGS_EVENTS, TextToSpeechDisabled(**setting(14), setting="tts", value=False)),
        (
            COMMUNITY_EVENTS,
            CommunitySharePublished(
                **envelope(15),
                request_id="r1",
                community_id="c-9",
                community_url="https://c.example/c/9",
            ),
        ),
        (
            COMMUNITY_EVENTS,
            CommunityShareRejected(**envelope(16), request_id="r2", reason="sharing is off"),
        ),
        (
            COMMUNITY_EVENTS,
            CommunityShareFailed(**envelope(17), request_id="r3", reason="HTTP 503"),
        ),
    ]

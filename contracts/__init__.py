"""Event contracts of chatshare: one pydantic model per event, a discriminated union per topic."""

from contracts.chat_events import (
    CHAT_EVENT_ADAPTER,
    BranchSelected,
    ChatCreated,
    ChatDeleted,
    ChatEvent,
    ChatTitleChanged,
    MessageAdded,
    MessageEdited,
)
from contracts.codec import (
    ADAPTERS_BY_TOPIC,
    ContractViolation,
    Event,
    decode_event,
    encode_event,
)
from contracts.community_events import (
    COMMUNITY_EVENT_ADAPTER,
    CommunityEvent,
    CommunityShareFailed,
    CommunitySharePublished,
    CommunityShareRejected,
)
from contracts.envelope import EventEnvelope
from contracts.settings_events import (
    SETTINGS_EVENT_ADAPTER,
    CommunitySharingDisabled,
    CommunitySharingEnabled,
    SettingsEvent,
    TextToSpeechDisabled,
    TextToSpeechEnabled,
)
from contracts.share_events import (
    SHARE_EVENT_ADAPTER,
    CommunityShareRequested,
    LinkDeleted,
    ShareCreated,
    ShareEvent,
    SnapshotUpdated,
)
from contracts.snapshot import History, HistoryMessage, Snapshot, SnapshotMessage

__all__ = [
    "ADAPTERS_BY_TOPIC",
    "CHAT_EVENT_ADAPTER",
    "COMMUNITY_EVENT_ADAPTER",
    "SETTINGS_EVENT_ADAPTER",
    "SHARE_EVENT_ADAPTER",
    "BranchSelected",
    "ChatCreated",
    "ChatDeleted",
    "ChatEvent",
    "ChatTitleChanged",
    "CommunityEvent",
    "CommunityShareFailed",
    "CommunitySharePublished",
    "CommunityShareRejected",
    "CommunityShareRequested",
    "CommunitySharingDisabled",
    "CommunitySharingEnabled",
    "ContractViolation",
    "Event",
    "EventEnvelope",
    "History",
    "HistoryMessage",
    "LinkDeleted",
    "MessageAdded",
    "MessageEdited",
    "SettingsEvent",
    "ShareCreated",
    "ShareEvent",
    "Snapshot",
    "SnapshotMessage",
    "SnapshotUpdated",
    "TextToSpeechDisabled",
    "TextToSpeechEnabled",
    "decode_event",
    "encode_event",
]

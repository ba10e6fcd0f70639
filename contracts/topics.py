"""Every Kafka topic and consumer group of chatshare, in one place.

The local stack, the test session, the Kubernetes `KafkaTopic` resources and docker-compose's
topic creator all create topics from this table; nothing relies on broker auto-creation.
"""

from __future__ import annotations

from dataclasses import dataclass

CHAT_EVENTS = "chat.events"
SHARE_EVENTS = "share.events"
SETTINGS_EVENTS = "settings.events"
COMMUNITY_EVENTS = "community.events"

# Consumer groups (INTERFACE.md §5). Each service that follows the policy has its own group on
# settings.events.
CHAT_MIRROR_GROUP = "chat-mirror"
SHARE_PROJECTION_GROUP = "share-projection"
COMMUNITY_PUBLISHER_GROUP = "community-publisher"
SHARE_SERVICE_POLICY_GROUP = "share-service-policy"
COMMUNITY_PUBLISHER_POLICY_GROUP = "community-publisher-policy"

CONSUMER_GROUPS: tuple[str, ...] = (
    CHAT_MIRROR_GROUP,
    SHARE_PROJECTION_GROUP,
    COMMUNITY_PUBLISHER_GROUP,
    SHARE_SERVICE_POLICY_GROUP,
    COMMUNITY_PUBLISHER_POLICY_GROUP,
)

# What each group reads (INTERFACE.md §5): where its lag is measured and its dead letters came from.
GROUP_TOPICS: dict[str, tuple[str, ...]] = {
    CHAT_MIRROR_GROUP: (CHAT_EVENTS,),
    SHARE_PROJECTION_GROUP: (SHARE_EVENTS, COMMUNITY_EVENTS),
    COMMUNITY_PUBLISHER_GROUP: (SHARE_EVENTS,),
    SHARE_SERVICE_POLICY_GROUP: (SETTINGS_EVENTS,),
    COMMUNITY_PUBLISHER_POLICY_GROUP: (SETTINGS_EVENTS,),
}

# Room for the largest snapshot plus the event envelope and Kafka's record overhead.
ENVELOPE_OVERHEAD_BYTES = 64 * 1024


def dead_letter_topic(group: str) -> str:
    """The topic where `group` parks the messages it cannot process at all."""
    return f"dlq.{group}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    description: str


EVENT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(CHAT_EVENTS, 12, "chat_id", "Chat events from the platform's chat services (input)."),
    TopicSpec(
        SHARE_EVENTS,
        12,
        "share_id, or request_id for community requests",
        "Share links' events and community-share requests, written by share_service.",
    ),
    TopicSpec(SETTINGS_EVENTS, 1, "instance", "The admin's policy changes, by settings_service."),
    TopicSpec(
        COMMUNITY_EVENTS, 6, "request_id", "Community uploads' outcomes, by community_publisher."
    ),
)

DEAD_LETTER_PARTITIONS = 3


def all_topics() -> tuple[TopicSpec, ...]:
    """The event topics and every group's dead-letter topic."""
    dead_letters = tuple(
        TopicSpec(
            dead_letter_topic(group),
            DEAD_LETTER_PARTITIONS,
            "as the source message",
            f"Messages the {group} group gave up on, with headers saying why.",
        )
        for group in CONSUMER_GROUPS
    )
    return EVENT_TOPICS + dead_letters


def max_message_bytes(max_snapshot_bytes: int) -> int:
    """Topic and producer message size that always fits the largest allowed snapshot."""
    return max_snapshot_bytes + ENVELOPE_OVERHEAD_BYTES

"""The `chat-mirror` consumer group: `chat.events` into share_service's own chat mirror.

A batch is applied in one transaction and its offsets committed only after it (the shared
consumer group does that). A duplicate changes nothing; a gap is applied, logged and counted; an
event that cannot apply is dead-lettered to `dlq.chat-mirror` by the group, which keeps going.
`ChatDeleted` kills every live link of the chat — also when it arrives again, so a crash between
the mirror's commit and the links' deletion heals on redelivery.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter

import contracts
from contracts.topics import CHAT_EVENTS, CHAT_MIRROR_GROUP
from servicekit.consumer import Delivery, Unprocessable
from servicekit.message_context import using_context
from servicekit.runtime import ServiceRuntime
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.domain import chat_events as domain
from share_service.domain.chat_tree import apply_chat_event
from share_service.domain.errors import ChatEventRejected

log = logging.getLogger(__name__)

DOMAIN_EVENTS: dict[str, type[domain.ChatEventBase]] = {
    cls.__name__: cls
    for cls in (
        domain.ChatCreated, domain.MessageAdded, domain.MessageEdited,
        domain.BranchSelected, domain.ChatTitleChanged, domain.ChatDeleted,
    )
}  # fmt: skip
ENVELOPE_ONLY = {"event_id", "type", "schema_version"}

ChatDeletedHandler = Callable[[str], Awaitable[None]]


def decode_chat_event(record: ConsumerRecord[bytes, bytes]) -> domain.ChatEvent:
    try:
        event = contracts.decode_event(CHAT_EVENTS, record.value)
    except contracts.ContractViolation as error:
        raise Unprocessable(str(error)) from error
    if record.key is not None and record.key.decode(errors="replace") != event.chat_id:  # type: ignore[union-attr]
        raise Unprocessable("the record's key is not its chat_id")
    fields = event.model_dump(exclude=ENVELOPE_ONLY)
    return DOMAIN_EVENTS[event.type](**fields)  # type: ignore[return-value]


class ChatMirror:
    def __init__(
        self,
        store: ChatMirrorStore,
        on_chat_deleted: ChatDeletedHandler,
        registry: CollectorRegistry,
    ) -> None:
        self.store = store
        self.on_chat_deleted = on_chat_deleted
        self.gaps = Counter(
            "chat_mirror_gaps_total", "chat.events that skipped versions", registry=registry
        )
        self.missing_versions = Counter(
            "chat_mirror_missing_versions_total", "chat_versions never seen", registry=registry
        )
        self.duplicates = Counter(
            "chat_mirror_duplicates_total",
            "chat.events at or below the applied version",
            registry=registry,
        )

    async def apply(self, deliveries: Sequence[Delivery[domain.ChatEvent]]) -> None:
        async with self.store.pool.acquire() as connection, connection.transaction():
            chats = await self.store.lock(connection, (d.event.chat_id for d in deliveries))
            changed = set()
            for delivery in deliveries:
                event = delivery.event
                try:
                    result = apply_chat_event(chats.get(event.chat_id), event)
                except ChatEventRejected as error:
                    raise Unprocessable(str(error)) from error
                self._count(result.outcome, result.missing_versions, event)
                chats[event.chat_id] = result.chat
                if result.outcome != "duplicate":
                    changed.add(event.chat_id)
            for chat_id in changed:
                await self.store.save(connection, chats[chat_id])
        deleted = {
            d.event.chat_id: d for d in deliveries if isinstance(d.event, domain.ChatDeleted)
        }
        for chat_id, delivery in deleted.items():
            with using_context(delivery.context):  # the links die because of this event
                await self.on_chat_deleted(chat_id)

    def _count(self, outcome: str, missing: int, event: domain.ChatEvent) -> None:
        if outcome == "duplicate":
            self.duplicates.inc()
        elif outcome == "gap":
            self.gaps.inc()
            self.missing_versions.inc(missing)
            log.warning(
                "chat %s skipped %d version(s) before %d; applied anyway",
                event.chat_id, missing, event.chat_version,
            )  # fmt: skip


def follow_chats(runtime: ServiceRuntime, mirror: ChatMirror) -> None:
    """Subscribe the chat-mirror group; call before `broker.start()`."""
    runtime.follow(CHAT_MIRROR_GROUP, [CHAT_EVENTS], decode_chat_event, mirror.apply)

"""What the platform's chat services send on `chat.events`, for tests: a chat written event by
event, with its versions counted the way a real producer counts them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

import contracts
from contracts.topics import CHAT_EVENTS


@dataclass
class ChatFeed:
    owner_id: str
    chat_id: str = field(default_factory=lambda: f"chat-{uuid.uuid4().hex[:12]}")
    version: int = 0
    last_message: str | None = None

    def _next(self, kind: type[Any], **fields: Any) -> Any:
        self.version += 1
        return kind(
            event_id=uuid.uuid4(),
            occurred_at=datetime.now(UTC),
            chat_id=self.chat_id,
            chat_version=self.version,
            **fields,
        )

    def created(self, title: str = "A chat") -> contracts.ChatCreated:
        return self._next(contracts.ChatCreated, owner_id=self.owner_id, title=title)  # type: ignore[no-any-return]

    def message(
        self, content: str, role: str = "user", parent_id: str | None = "", model: str | None = None
    ) -> contracts.MessageAdded:
        message_id = f"m-{uuid.uuid4().hex[:10]}"
        parent = self.last_message if parent_id == "" else parent_id
        self.last_message = message_id
        return self._next(  # type: ignore[no-any-return]
            contracts.MessageAdded,
            message_id=message_id, parent_id=parent, role=role, content=content, model=model,
        )  # fmt: skip

    def title(self, title: str) -> contracts.ChatTitleChanged:
        return self._next(contracts.ChatTitleChanged, title=title)  # type: ignore[no-any-return]

    def branch(self, message_id: str) -> contracts.BranchSelected:
        self.last_message = message_id
        return self._next(contracts.BranchSelected, message_id=message_id)  # type: ignore[no-any-return]

    def deleted(self) -> contracts.ChatDeleted:
        return self._next(contracts.ChatDeleted)  # type: ignore[no-any-return]


async def send(
    bootstrap: str,
    events: list[Any],
    prefix: str = "",
    raw: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Publish events keyed by chat id (and raw key/value pairs, for poison) to chat.events."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                prefix + CHAT_EVENTS, contracts.encode_event(event), key=event.chat_id.encode()
            )
        for key, value in raw or []:
            await producer.send_and_wait(prefix + CHAT_EVENTS, value, key=key)
    finally:
        await producer.stop()

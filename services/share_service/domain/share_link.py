"""Share links as event-sourced aggregates, and the per-chat aggregate that keeps one live link
per chat even under concurrent requests. Pure: no I/O."""

from __future__ import annotations

import copy
import secrets
from datetime import datetime
from functools import lru_cache
from typing import Literal, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from share_service.domain.errors import ChatNotFound, LinkGone, NotLinkOwner
from share_service.domain.snapshot import Snapshot

DeleteReason = Literal["owner", "admin", "chat_deleted"]
# `deleted_by` of links that die with their chat: ChatDeleted does not say who deleted the chat.
CHAT_DELETION_ACTOR = "system"

# 24 random bytes = 192 bits, 32 URL-safe characters: far beyond guessing (INTERFACE.md asks 128).
SHARE_ID_BYTES = 24
# Fixed forever: the ids of stored aggregates are derived from them.
CHAT_SHARES_NAMESPACE = uuid5(NAMESPACE_URL, "chatshare:share_service:chat-shares")
SHARE_LINK_NAMESPACE = uuid5(NAMESPACE_URL, "chatshare:share_service:share-link")


def new_share_id() -> str:
    return secrets.token_urlsafe(SHARE_ID_BYTES)


# Every command derives one or two of these (a SHA-1 each); the ids of busy chats and links are
# asked for again and again.
@lru_cache(maxsize=16_384)
def chat_shares_id(chat_id: str) -> UUID:
    return uuid5(CHAT_SHARES_NAMESPACE, chat_id)


@lru_cache(maxsize=16_384)
def share_link_id(share_id: str) -> UUID:
    return uuid5(SHARE_LINK_NAMESPACE, share_id)


AggregateT = TypeVar("AggregateT", bound=Aggregate)


def copy_for_a_command(aggregate: AggregateT, memo: dict[int, object]) -> AggregateT:
    """The aggregate's fields shared (every one is immutable or only ever replaced by an event),
    its pending events its own. A generic deepcopy walked the UUID and the datetimes through
    `__reduce_ex__`: some 100 µs of every Copy Link."""
    clone = copy.copy(aggregate)
    clone._pending_events = [copy.deepcopy(event, memo) for event in aggregate._pending_events]
    return clone


class ChatShares(Aggregate):
    """One per chat, its id derived from the chat id: every command that creates or deletes a
    link of the chat changes it in the same save as the link, so two concurrent writers collide
    on its version and the loser retries — never two live links for one chat.

    Internal bookkeeping: its events are not published on `share.events`.
    """

    @staticmethod
    def create_id(chat_id: str) -> UUID:
        return chat_shares_id(chat_id)

    def __init__(self, chat_id: str) -> None:
        self.chat_id = chat_id
        self.live_share_id: str | None = None
        self.chat_deleted = False

    def __deepcopy__(self, memo: dict[int, object]) -> ChatShares:
        """A copy for a command to change: every field is immutable (strings, a flag, the id,
        timestamps), so a shallow copy with its own pending events is a full one."""
        return copy_for_a_command(self, memo)

    class Event(Aggregate.Event):
        pass

    class LiveLinkChosen(Event):
        share_id: str

        def apply(self, aggregate: ChatShares) -> None:
            aggregate.live_share_id = self.share_id

    class LiveLinkCleared(Event):
        share_id: str

        def apply(self, aggregate: ChatShares) -> None:
            aggregate.live_share_id = None

    class ChatClosed(Event):
        """The chat was deleted: it gets no link any more."""

        def apply(self, aggregate: ChatShares) -> None:
            aggregate.chat_deleted = True

    def choose_live_link(self, share_id: str) -> None:
        if self.chat_deleted:
            raise ChatNotFound(f"chat {self.chat_id} was deleted")
        if self.live_share_id is not None:
            raise ValueError(f"chat {self.chat_id} already has the live link {self.live_share_id}")
        self.trigger_event(self.LiveLinkChosen, share_id=share_id)

    def clear_live_link(self, share_id: str) -> None:
        if self.live_share_id != share_id:
            raise ValueError(f"{share_id} is not the live link of chat {self.chat_id}")
        self.trigger_event(self.LiveLinkCleared, share_id=share_id)

    def close_chat(self) -> None:
        """Refuse every later link; the caller deletes the live one first."""
        if self.live_share_id is not None:
            raise ValueError(f"chat {self.chat_id} still has the live link {self.live_share_id}")
        if not self.chat_deleted:
            self.trigger_event(self.ChatClosed)


class ShareLink(Aggregate):
    """A link to a static snapshot of a chat, found by its `share_id`.

    The link's `version` of INTERFACE.md is the aggregate's own: 1 when created, +1 for every
    `SnapshotUpdated` and for `LinkDeleted`. Each event carries share_id, chat_id and owner_id,
    so the outbox relay maps one stored event to one `share.events` record on its own, with the
    event's `originator_version` as `version` and its `timestamp` as the moment of the change.
    """

    @staticmethod
    def create_id(share_id: str) -> UUID:
        return share_link_id(share_id)

    class Event(Aggregate.Event):
        share_id: str
        chat_id: str
        owner_id: str

    class ShareCreated(Aggregate.Created, Event):
        chat_version: int
        snapshot: Snapshot

    class SnapshotUpdated(Event):
        chat_version: int
        snapshot: Snapshot

        def apply(self, aggregate: ShareLink) -> None:
            aggregate.chat_version = self.chat_version
            aggregate.snapshot = self.snapshot
            aggregate.updated_at = self.timestamp

    class LinkDeleted(Event):
        reason: DeleteReason
        deleted_by: str

        def apply(self, aggregate: ShareLink) -> None:
            aggregate.deleted_reason = self.reason
            aggregate.deleted_by = self.deleted_by

    def __init__(
        self, share_id: str, chat_id: str, owner_id: str, chat_version: int, snapshot: Snapshot
    ) -> None:
        self.share_id = share_id
        self.chat_id = chat_id
        self.owner_id = owner_id
        self.chat_version = chat_version
        self.snapshot = snapshot
        self.updated_at = self.created_on  # set from the creating event before __init__ runs
        self.deleted_reason: DeleteReason | None = None
        self.deleted_by: str | None = None

    def __deepcopy__(self, memo: dict[int, object]) -> ShareLink:
        """A copy for a command to change (eventsourcing copies cached aggregates): the snapshot
        is shared, not copied, as nothing changes a snapshot in place; events replace it."""
        return copy_for_a_command(self, memo)

    @property
    def created_at(self) -> datetime:
        return self.created_on

    @property
    def is_live(self) -> bool:
        return self.deleted_reason is None

    def check_owner(self, user_id: str) -> None:
        if user_id != self.owner_id:
            raise NotLinkOwner(f"link {self.share_id} is not {user_id}'s")

    def update_snapshot(self, chat_version: int, snapshot: Snapshot) -> None:
        self._check_live()
        self.trigger_event(
            self.SnapshotUpdated, chat_version=chat_version, snapshot=snapshot, **self._ids()
        )

    def delete(self, user_id: str, *, is_admin: bool) -> None:
        """The owner deletes their link; an admin deletes anyone's."""
        self._check_live()
        reason: DeleteReason = "owner" if user_id == self.owner_id else "admin"
        if reason == "admin" and not is_admin:
            raise NotLinkOwner(f"link {self.share_id} is not {user_id}'s")
        self.trigger_event(self.LinkDeleted, reason=reason, deleted_by=user_id, **self._ids())

    def delete_with_chat(self, deleted_by: str = CHAT_DELETION_ACTOR) -> None:
        self._check_live()
        self.trigger_event(
            self.LinkDeleted, reason="chat_deleted", deleted_by=deleted_by, **self._ids()
        )

    def _check_live(self) -> None:
        if not self.is_live:
            raise LinkGone(f"link {self.share_id} was deleted")

    def _ids(self) -> dict[str, str]:
        return {"share_id": self.share_id, "chat_id": self.chat_id, "owner_id": self.owner_id}

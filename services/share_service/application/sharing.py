"""share_service's use cases: share a chat (Copy Link), update and delete its link, find links,
ask for a community share.

Synchronous, like eventsourcing itself: the HTTP layer calls it from worker threads. Every
command is split in two: `decide_*` loads aggregates and changes them in memory, returning a
`Decision`; `run` saves it, retrying from a fresh load when another writer got there first.
Saving several decisions' aggregates in one `save` commits them in one transaction, which is
what the group commit does.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from copy import deepcopy
from typing import ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.utils import EnvType

from servicekit.event_store import ServiceApplication
from share_service.application.decision import Decision, StaleRead
from share_service.application.link_view import ShareLinkView, ShareResult, view_of
from share_service.domain.chat_tree import MirroredChat
from share_service.domain.community_share_request import CommunityShareRequest
from share_service.domain.errors import (
    ChatNotFound,
    LinkNotFound,
    NotChatOwner,
    SnapshotTooLarge,
    TooManyConcurrentChanges,
)
from share_service.domain.share_link import (
    CHAT_DELETION_ACTOR,
    ChatShares,
    ShareLink,
    chat_shares_id,
    new_share_id,
    share_link_id,
)
from share_service.domain.snapshot import Snapshot, snapshot_of, snapshot_size

__all__ = [
    "DEFAULT_MAX_SNAPSHOT_BYTES",
    "Decision",
    "ShareLinkView",
    "ShareResult",
    "SharingApplication",
    "StaleRead",
]

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

DEFAULT_MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024


class SharingApplication(ServiceApplication):
    """Share links, the per-chat live-link records and community-share requests, event-sourced;
    the notification log feeds `share.events` through the outbox relay."""

    name = "share"  # tables: <schema>.share_events
    # Aggregates stay in memory between commands (LRU), so a command usually reads nothing from
    # the database: see `_load_for_change`. Queries fast-forward a cached aggregate with the
    # events stored after its version (another replica may have written them).
    # About 40 KB a link with a 5 KB snapshot: 1,024 of them cost some 40 MB.
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "1024",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    # A snapshot is plain JSON data by construction (`domain.snapshot`): written by pydantic-core.
    plain_json_fields: ClassVar[frozenset[str]] = frozenset({"snapshot"})
    # Each round of a race on one chat lets at least one writer through, so a burst of N
    # concurrent shares of one chat needs up to N attempts.
    SAVE_ATTEMPTS = 32

    def __init__(
        self, env: EnvType | None = None, *, max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES
    ) -> None:
        super().__init__(env)
        self.max_snapshot_bytes = max_snapshot_bytes

    # Commands

    def share_chat(self, chat: MirroredChat, user_id: str) -> ShareResult:
        """Copy Link: a new link, or a new snapshot on the chat's live link."""
        return self.run(lambda: self.decide_share(chat, user_id))

    def update_snapshot(self, share_id: str, chat: MirroredChat, user_id: str) -> ShareLinkView:
        """Update and Copy Link: the same link, its snapshot taken anew."""
        return self.run(lambda: self.decide_update(share_id, chat, user_id))

    def delete_link(self, share_id: str, user_id: str, *, is_admin: bool) -> ShareLinkView:
        """The owner's or an admin's Delete this link; the deleted link's last view."""
        return self.run(lambda: self.decide_delete(share_id, user_id, is_admin=is_admin))

    def delete_links_of_chat(
        self, chat_id: str, deleted_by: str = CHAT_DELETION_ACTOR
    ) -> list[ShareLinkView]:
        """The chat was deleted: its live link dies, and it gets no new one. Idempotent."""
        return self.run(lambda: self.decide_delete_chat(chat_id, deleted_by))

    def request_community_share(
        self, chat: MirroredChat, user_id: str, access: str, policy_version: int
    ) -> str:
        """The request's id. The caller has checked that community sharing is on at
        `policy_version`."""
        return self.run(lambda: self.decide_community_share(chat, user_id, access, policy_version))

    def run(self, decide: Callable[[], Decision[T]]) -> T:
        """Decide and save; on a stale save (another writer changed one of the aggregates
        since they were loaded), decide again from a fresh load."""
        for attempt in range(1, self.SAVE_ATTEMPTS + 1):
            decision = None
            try:
                decision = decide()
                if not decision.aggregates:
                    return decision.result
                self.save(*decision.aggregates)
            except (IntegrityError, StaleRead):
                if decision is not None:
                    self.forget(*decision.aggregates)
                # Spread retrying writers apart.
                time.sleep(random.uniform(0, min(0.004 * attempt, 0.05)))
                continue
            return decision.result
        raise TooManyConcurrentChanges(
            f"the aggregates changed {self.SAVE_ATTEMPTS} times while saving this command"
        )

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Record, then cache the saved aggregates at their new versions, so the next command
        on them reads no event at all. (eventsourcing caches after a save only without
        fast-forwarding; a stale cache entry is harmless here, as every load fast-forwards.)"""
        recordings = super()._record(processing_event)
        cache = self.repository.cache
        if cache is not None:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                if isinstance(aggregate, ShareLink | ChatShares):  # requests are never loaded
                    cache.put(aggregate_id, aggregate)
        return recordings

    def forget(self, *aggregates: Aggregate) -> None:
        """Drop the aggregates from the cache: a save found them stale."""
        cache = self.repository.cache
        if cache is not None:
            for aggregate in aggregates:
                with contextlib.suppress(KeyError):
                    cache.get(aggregate.id, evict=True)

    # Queries

    def get_link(self, share_id: str) -> ShareLinkView | None:
        """The live link, or None for unknown and deleted ids alike."""
        link = self._load_fresh(share_link_id(share_id), ShareLink)
        return view_of(link) if link is not None and link.is_live else None

    def live_link_of_chat(self, chat_id: str) -> ShareLinkView | None:
        shares = self._load_fresh(chat_shares_id(chat_id), ChatShares)
        if shares is None or shares.live_share_id is None:
            return None
        return self.get_link(shares.live_share_id)

    # Decisions: load and change in memory, save nothing.
    #
    # They read aggregates from the cache (`_load`), which may be behind the store when another
    # replica wrote since. That is safe because every decision saves a change to each aggregate
    # its outcome depends on, or, for the one it only reads (ChatShares when a link is
    # re-snapshotted), relies on the invariant "link S is live ⇔ its chat's live_share_id is S",
    # which every save keeps: a stale aggregate's save collides on its version, `run` drops it
    # from the cache and decides again from the store. What can never change back (a deleted
    # link, a deleted chat) is believed from the cache at once.

    def decide_share(self, chat: MirroredChat, user_id: str) -> Decision[ShareResult]:
        snapshot = self._snapshot_for_owner(chat, user_id)
        shares = self._load(chat_shares_id(chat.chat_id), ChatShares)
        if shares is not None and shares.chat_deleted:
            raise ChatNotFound(f"chat {chat.chat_id} was deleted")
        if shares is not None and shares.live_share_id is not None:
            link = self._current_live_link(shares)
            link.update_snapshot(chat.chat_version, snapshot)
            return Decision.of(ShareResult(view_of(link), created=False), link)
        shares = shares or ChatShares(chat.chat_id)
        link = ShareLink(new_share_id(), chat.chat_id, chat.owner_id, chat.chat_version, snapshot)
        shares.choose_live_link(link.share_id)
        return Decision.of(ShareResult(view_of(link), created=True), shares, link)

    def decide_update(
        self, share_id: str, chat: MirroredChat, user_id: str
    ) -> Decision[ShareLinkView]:
        link = self._live_link(share_id)
        link.check_owner(user_id)
        if chat.chat_id != link.chat_id:
            raise ValueError(f"link {share_id} is of chat {link.chat_id}, not {chat.chat_id}")
        link.update_snapshot(chat.chat_version, self._snapshot_for_owner(chat, user_id))
        return Decision.of(view_of(link), link)

    def decide_delete(
        self, share_id: str, user_id: str, *, is_admin: bool
    ) -> Decision[ShareLinkView]:
        link = self._live_link(share_id)
        link.delete(user_id, is_admin=is_admin)
        shares = self._load(chat_shares_id(link.chat_id), ChatShares)
        if shares is not None and shares.live_share_id != share_id:
            # The link is live, so its chat names it; one of the two was read stale.
            self.forget(link, shares)
            raise StaleRead(f"chat {link.chat_id} does not name its live link {share_id}")
        if shares is not None:
            shares.clear_live_link(share_id)
        return Decision.of(view_of(link), link, *([] if shares is None else [shares]))

    def decide_delete_chat(
        self, chat_id: str, deleted_by: str = CHAT_DELETION_ACTOR
    ) -> Decision[list[ShareLinkView]]:
        shares = self._load(chat_shares_id(chat_id), ChatShares) or ChatShares(chat_id)
        deleted: list[ShareLink] = []
        if shares.live_share_id is not None:
            link = self._current_live_link(shares)
            link.delete_with_chat(deleted_by)
            shares.clear_live_link(link.share_id)
            deleted.append(link)
        shares.close_chat()
        return Decision.of([view_of(link) for link in deleted], shares, *deleted)

    def decide_community_share(
        self, chat: MirroredChat, user_id: str, access: str, policy_version: int
    ) -> Decision[str]:
        snapshot = self._snapshot_for_owner(chat, user_id)
        request = CommunityShareRequest.request(
            chat.chat_id, chat.owner_id, access, policy_version, snapshot
        )
        return Decision.of(request.request_id, request)

    # Helpers of the decisions

    def _snapshot_for_owner(self, chat: MirroredChat, user_id: str) -> Snapshot:
        if chat.deleted:
            raise ChatNotFound(f"chat {chat.chat_id} was deleted")
        if user_id != chat.owner_id:
            raise NotChatOwner(f"chat {chat.chat_id} is not {user_id}'s")
        snapshot = snapshot_of(chat)
        size = snapshot_size(snapshot)
        if size > self.max_snapshot_bytes:
            raise SnapshotTooLarge(size, self.max_snapshot_bytes)
        return snapshot

    def _live_link(self, share_id: str) -> ShareLink:
        link = self._load(share_link_id(share_id), ShareLink)
        if link is None or not link.is_live:
            raise LinkNotFound(f"no live link {share_id}")
        return link

    def _current_live_link(self, shares: ChatShares) -> ShareLink:
        assert shares.live_share_id is not None
        try:
            return self._live_link(shares.live_share_id)
        except LinkNotFound:
            self.forget(shares)
            raise StaleRead(f"link {shares.live_share_id} died after it was read") from None

    def _load(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """For a decision: a copy of the cached aggregate if there is one (no database read),
        else the stored one. See the note above the decisions."""
        cache = self.repository.cache
        if cache is not None:
            try:
                cached: object = cache.get(aggregate_id)
            except KeyError:
                pass
            else:
                return deepcopy(cached) if isinstance(cached, kind) else None
        return self._load_fresh(aggregate_id, kind)

    def _load_fresh(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate as the store has it now (a cached one is fast-forwarded)."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

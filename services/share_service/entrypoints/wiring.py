"""What share_service's routes use, built once in the lifespan (`bootstrap.py`) and found on the
app's state: the application, its group committer, the chat mirror, the policy view, the view
store; and what every route does after a command (wake the relay, tombstone a deleted link)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from anyio import to_thread
from fastapi import Request

from servicekit.outbox import OutboxRelay
from servicekit.policy import PolicyView
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.view_store import LinkRow, ShareViewStore
from share_service.application.group_commit import GroupCommitter
from share_service.application.link_view import ShareLinkView
from share_service.application.shared_chat import with_tts
from share_service.application.sharing import SharingApplication
from share_service.config import ShareServiceSettings
from share_service.domain.errors import LinkNotFound

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Wiring:
    settings: ShareServiceSettings
    sharing: SharingApplication
    committer: GroupCommitter
    chats: ChatMirrorStore
    policy: PolicyView
    relay: OutboxRelay
    views: ShareViewStore
    community_requests: CommunityRequestStore

    async def in_thread(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """eventsourcing is synchronous: never call it on the event loop."""
        return await to_thread.run_sync(lambda: function(*args, **kwargs))

    async def link(self, share_id: str) -> ShareLinkView:
        link = await self.in_thread(self.sharing.get_link, share_id)
        if link is None:
            raise LinkNotFound(share_id)
        return link

    def after_command(self) -> None:
        self.relay.notify()  # publish now rather than at the relay's next poll

    async def after_delete(self, deleted: ShareLinkView) -> None:
        """Tombstone the view row before the 204 (DESIGN.md "Revocation is synchronous"): the
        very next read, on any replica, is a 404. The projection repeats it harmlessly."""
        await self.views.put_tombstone(_link_row(deleted), deleted.owner_id)
        self.after_command()

    async def after_links_died(self, deleted: Iterable[ShareLinkView]) -> None:
        """Links that died with their chat: dead at once too."""
        for link in deleted:
            await self.views.put_tombstone(_link_row(link), link.owner_id)
        self.after_command()

    async def after_community_request(self, request_id: str, owner_id: str) -> None:
        """The requester can read `pending` right after the 202."""
        await self.community_requests.requested(request_id, owner_id)
        self.after_command()

    async def read_share_bytes(self, share_id: str, min_version: int | None = None) -> bytes | None:
        """The JSON body of `GET /api/v1/shares/{share_id}`, or None for unknown and deleted ids
        alike. With `min_version`, first waits (up to `min_version_wait_seconds`) for the view to
        reach it, then answers with what it has."""
        if min_version is None:
            view = await self.views.read(share_id)
        else:
            wait = self.settings.min_version_wait_seconds
            view = await self.views.wait_for_version(share_id, min_version, wait)
        if view is None or view.body is None:
            return None
        return with_tts(view.body, view.tts_enabled)

    async def read_share(self, share_id: str) -> dict[str, Any] | None:
        """The shared chat as the GET answers it (`tts_enabled` included), or None for unknown
        and deleted ids alike: what the HTML page shows."""
        body = await self.read_share_bytes(share_id)
        return None if body is None else dict(json.loads(body))


def _link_row(link: ShareLinkView) -> LinkRow:
    return LinkRow(link.share_id, link.chat_id, link.version, link.created_at, link.updated_at)


def wiring(request: Request) -> Wiring:
    found: Wiring = request.app.state.wiring
    return found

"""What share_service's routes use, built once in the lifespan (`bootstrap.py`) and found on the
app's state: the application, its group committer, the chat mirror, the policy view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from anyio import to_thread
from fastapi import Request

from servicekit.outbox import OutboxRelay
from servicekit.policy import PolicyView
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.application.group_commit import GroupCommitter
from share_service.application.link_view import ShareLinkView
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
        self.after_command()


def wiring(request: Request) -> Wiring:
    found: Wiring = request.app.state.wiring
    return found

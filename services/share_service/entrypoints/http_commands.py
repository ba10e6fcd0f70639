"""share_service's command routes (INTERFACE.md §3): Copy Link, Update and Copy Link, "Before",
Delete this link, and Share to Community. Thin: contract in → command → answer; domain errors
become HTTP codes in `http_errors`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from servicekit.auth import CurrentUser
from share_service.application.group_commit import chat_key, link_key
from share_service.application.link_view import ShareLinkView
from share_service.domain.chat_tree import MirroredChat
from share_service.domain.errors import ChatNotFound, LinkNotFound, NotChatOwner
from share_service.entrypoints.http_errors import ChatVersionNotSeen, CommunitySharingDisabled
from share_service.entrypoints.wiring import Wiring, wiring

router = APIRouter(prefix="/api/v1", tags=["share links"])
# The mirror stores chat versions as PostgreSQL bigints: a larger one can never be seen.
MAX_CHAT_VERSION = 2**63 - 1


class ChatVersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_version: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_CHAT_VERSION,
        description="Snapshot at least this version of the chat (waits up to 5 s).",
    )


class CommunityShareBody(ChatVersionBody):
    access: Literal["private", "public", "public_full_history"] = Field(
        description="Who may see the upload: only you, the visible messages, or every branch."
    )


class ShareLinkBody(BaseModel):
    share_id: str
    chat_id: str
    url: str
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Counts the link's changes: 1 when created, +1 per snapshot.")


class CommunityShareAccepted(BaseModel):
    request_id: str
    status: Literal["pending"] = "pending"


OptionalChatVersion = Annotated[ChatVersionBody | None, Body()]


def link_body(link: ShareLinkView, public_url: str) -> ShareLinkBody:
    return ShareLinkBody(
        share_id=link.share_id,
        chat_id=link.chat_id,
        url=f"{public_url.rstrip('/')}/s/{link.share_id}",
        created_at=link.created_at,
        updated_at=link.updated_at,
        version=link.version,
    )


async def chat_to_snapshot(app: Wiring, chat_id: str, chat_version: int | None) -> MirroredChat:
    """The mirrored chat, having waited for `chat_version` if one was asked for."""
    if chat_version is None:
        chat = await app.chats.get(chat_id)
    else:
        chat = await app.chats.wait_for_version(
            chat_id, chat_version, app.settings.chat_version_wait_seconds
        )
        if chat is None:
            raise ChatVersionNotSeen(chat_version, app.settings.chat_version_wait_seconds)
    if chat is None or chat.deleted:
        raise ChatNotFound(chat_id)
    return chat


def owned(chat: MirroredChat, user_id: str) -> MirroredChat:
    if chat.owner_id != user_id:
        raise NotChatOwner(chat.chat_id)
    return chat


@router.post(
    "/chats/{chat_id}/share",
    response_model=ShareLinkBody,
    status_code=201,
    responses={200: {"model": ShareLinkBody, "description": "The live link, snapshot taken anew"}},
)
async def share_chat(
    chat_id: str, user: CurrentUser, request: Request, body: OptionalChatVersion = None
) -> JSONResponse:
    """Copy Link: a link to a static snapshot of the chat (201), or the live one re-snapshotted (200)."""
    answer, status = await copy_link(
        wiring(request), chat_id, user.user_id, body.chat_version if body else None
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=status)


async def copy_link(
    app: Wiring, chat_id: str, user_id: str, chat_version: int | None
) -> tuple[ShareLinkBody, int]:
    """Copy Link's work, shared with its lean path (`hot_share`): the answer and its status."""
    chat = owned(await chat_to_snapshot(app, chat_id, chat_version), user_id)
    result = await app.committer.run(
        lambda: app.sharing.decide_share(chat, user_id), chat_key(chat.chat_id)
    )
    app.after_command()
    return link_body(result.link, app.settings.public_url), 201 if result.created else 200


@router.put("/shares/{share_id}/snapshot", response_model=ShareLinkBody)
async def update_snapshot(
    share_id: str, user: CurrentUser, request: Request, body: OptionalChatVersion = None
) -> ShareLinkBody:
    """Update and Copy Link: the same link, its snapshot taken anew."""
    app = wiring(request)
    link = await app.link(share_id)
    if link.owner_id != user.user_id:
        raise NotChatOwner(link.chat_id)
    chat = owned(
        await chat_to_snapshot(app, link.chat_id, body.chat_version if body else None), user.user_id
    )
    updated = await app.committer.run(
        lambda: app.sharing.decide_update(share_id, chat, user.user_id), chat_key(link.chat_id)
    )
    app.after_command()
    return link_body(updated, app.settings.public_url)


@router.get("/chats/{chat_id}/share", response_model=ShareLinkBody)
async def live_link_of_chat(chat_id: str, user: CurrentUser, request: Request) -> ShareLinkBody:
    """The share modal's "Before": the chat's live link, if it has one."""
    app = wiring(request)
    owned(await chat_to_snapshot(app, chat_id, None), user.user_id)
    link = await app.in_thread(app.sharing.live_link_of_chat, chat_id)
    if link is None:
        raise LinkNotFound(chat_id)
    return link_body(link, app.settings.public_url)


@router.delete("/shares/{share_id}", status_code=204, response_class=Response)
async def delete_link(share_id: str, user: CurrentUser, request: Request) -> Response:
    """Delete this link: dead at once, for its owner or an admin."""
    app = wiring(request)
    deleted = await app.committer.run(
        lambda: app.sharing.decide_delete(share_id, user.user_id, is_admin=user.is_admin),
        link_key(share_id),
    )
    await app.after_delete(deleted)
    return Response(status_code=204)


@router.post(
    "/chats/{chat_id}/community-share", status_code=202, response_model=CommunityShareAccepted
)
async def request_community_share(
    chat_id: str, body: CommunityShareBody, user: CurrentUser, request: Request
) -> CommunityShareAccepted:
    """Share to Community: only while the admin has community sharing on."""
    app = wiring(request)
    policy = await app.policy.current()
    if not policy.community_sharing_enabled:
        raise CommunitySharingDisabled()
    chat = owned(await chat_to_snapshot(app, chat_id, body.chat_version), user.user_id)
    request_id = await app.committer.run(
        lambda: app.sharing.decide_community_share(
            chat, user.user_id, body.access, policy.policy_version
        )
    )
    await app.after_community_request(request_id, user.user_id)
    return CommunityShareAccepted(request_id=request_id)

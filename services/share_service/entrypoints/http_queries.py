"""share_service's read routes (INTERFACE.md §3): a shared chat, the caller's own links, and a
community-share request's status. They read the view store only, never the event store.

`GET /api/v1/shares/{share_id}` is the hot route: one primary-key lookup that also reads the
policy's `tts_enabled`, and the stored body sent as it is with the flag spliced in — no parse, no
model, no serialisation per request. No cache anywhere, so a delete is seen by every replica at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

import contracts
from servicekit.auth import CurrentUser, api_user_of
from share_service.adapters.community_request_store import Status
from share_service.domain.errors import CommunityRequestNotFound, LinkNotFound, NotRequester
from share_service.entrypoints.http_commands import ShareLinkBody
from share_service.entrypoints.http_errors import answer_for
from share_service.entrypoints.link_cursor import LinkCursor, parse_cursor
from share_service.entrypoints.wiring import wiring

router = APIRouter(prefix="/api/v1", tags=["shared chats"])

# Readers must never keep a copy: a deleted link has to be gone at the very next read.
NO_STORE = {"Cache-Control": "private, no-store"}
PAGE_SIZE = 50


class SharedChat(BaseModel):
    """The read-only snapshot behind a link (documents the body the route sends ready-made)."""

    share_id: str
    chat_id: str
    owner_id: str
    title: str
    messages: list[contracts.SnapshotMessage] = Field(description="The visible branch, root first.")
    history: contracts.History
    created_at: datetime
    updated_at: datetime
    version: int
    tts_enabled: bool = Field(description="The admin's text-to-speech switch, read now.")


class LinkPage(BaseModel):
    items: list[ShareLinkBody]
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class CommunityShareStatus(BaseModel):
    request_id: str
    status: Status
    community_url: str | None = None
    reason: str | None = None


MIN_VERSION_DOC = {
    "name": "min_version",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1},
    "description": "Wait (up to 2 s) until the view has this version, then answer what it has.",
}


@router.get(
    "/shares/{share_id}",
    response_class=Response,
    responses={200: {"model": SharedChat}, 404: {"description": "Unknown or deleted, alike"}},
    openapi_extra={"parameters": [MIN_VERSION_DOC]},
)
async def read_shared_chat(share_id: str, request: Request) -> Response:
    """A link's read-only snapshot, for any logged-in user of the instance.

    The lean path: FastAPI resolves no dependency and no query model here — each costs time on
    the hottest route, and `CurrentUser`, being synchronous, would even hop to a worker thread.
    The same checks are made by hand: the token as `CurrentUser` checks it, `min_version` as
    `Query(ge=1)` would.
    """
    api_user_of(request)  # 401 or 403, answered by the shared error handlers
    body = await wiring(request).read_share_bytes(share_id, min_version_of(request))
    if body is None:
        not_found = answer_for(LinkNotFound(share_id))  # carries nothing from the request
        not_found.headers.update(NO_STORE)
        return not_found
    return Response(body, media_type="application/json", headers=NO_STORE)


def min_version_of(request: Request) -> int | None:
    raw = request.query_params.get("min_version")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise RequestValidationError(
            [{"loc": ("query", "min_version"), "msg": "must be a whole number of at least 1"}]
        )
    return int(raw)


@router.get("/shares", response_model=LinkPage)
async def my_links(
    user: CurrentUser,
    request: Request,
    owner: Annotated[Literal["me"], Query(description="Only `me`: the caller's own links.")],
    cursor: Annotated[str | None, Query(description="`next` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = PAGE_SIZE,
) -> LinkPage:
    """The caller's live links, newest first."""
    app = wiring(request)
    after = parse_cursor(cursor) if cursor else None
    rows = await app.views.links_of_owner(user.user_id, limit + 1, after)
    page, more = rows[:limit], len(rows) > limit
    public_url = app.settings.public_url.rstrip("/")
    items = [
        ShareLinkBody(
            share_id=row.share_id, chat_id=row.chat_id, url=f"{public_url}/s/{row.share_id}",
            created_at=row.created_at, updated_at=row.updated_at, version=row.version,
        )
        for row in page
    ]  # fmt: skip
    last = page[-1] if page else None
    return LinkPage(
        items=items,
        next=LinkCursor(last.created_at, last.share_id).encode() if more and last else None,
    )


@router.get(
    "/community-shares/{request_id}",
    response_model=CommunityShareStatus,
    response_model_exclude_none=True,
)
async def community_share_status(
    request_id: str, user: CurrentUser, request: Request
) -> CommunityShareStatus:
    """Where a Share to Community request stands, for its requester or an admin."""
    found = await wiring(request).community_requests.get(request_id)
    if found is None:
        raise CommunityRequestNotFound(request_id)
    if found.owner_id != user.user_id and not user.is_admin:
        raise NotRequester(request_id)
    return CommunityShareStatus(
        request_id=found.request_id,
        status=found.status,
        community_url=found.community_url,
        reason=found.reason,
    )

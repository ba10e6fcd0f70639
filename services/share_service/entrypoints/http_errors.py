"""share_service's refusals as HTTP answers, in one place: a status and a sentence saying why.
Bodies carry nothing from the request, so an unknown and a deleted link answer byte-identically."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from share_service.domain.errors import (
    ChatNotFound,
    CommunityRequestNotFound,
    LinkNotFound,
    NotChatOwner,
    NotLinkOwner,
    NotRequester,
    ShareServiceError,
    SnapshotTooLarge,
    TooManyConcurrentChanges,
)


class ChatVersionNotSeen(ShareServiceError):
    """The chat_version asked for has not reached the mirror in time. HTTP 409."""

    def __init__(self, chat_version: int, waited: float) -> None:
        super().__init__(f"chat version {chat_version} not seen within {waited:g} s")
        self.chat_version = chat_version
        self.waited = waited


class CommunitySharingDisabled(ShareServiceError):
    """The admin has community sharing off. HTTP 403."""


ANSWERS: dict[type[ShareServiceError], tuple[int, str]] = {
    LinkNotFound: (404, "No such share link."),
    ChatNotFound: (404, "No such chat."),
    NotChatOwner: (403, "Only the chat's owner can do this."),
    NotLinkOwner: (403, "Only the link's owner or an administrator can do this."),
    CommunityRequestNotFound: (404, "No such community-share request."),
    NotRequester: (403, "Only the requester or an administrator can see this request."),
    CommunitySharingDisabled: (403, "community sharing is disabled"),
    TooManyConcurrentChanges: (503, "The chat is changing too fast; try again."),
}


def answer_for(error: ShareServiceError) -> JSONResponse:
    if isinstance(error, SnapshotTooLarge):
        return JSONResponse(
            {"detail": f"The chat's snapshot is {error.size} bytes, over this instance's limit of "
             f"{error.limit} bytes."},
            status_code=413,
        )  # fmt: skip
    if isinstance(error, ChatVersionNotSeen):
        return JSONResponse(
            {"detail": f"This service has not seen chat version {error.chat_version} yet "
             f"(waited {error.waited:g} s); retry once the chat's events have arrived."},
            status_code=409,
        )  # fmt: skip
    for kind, (status, detail) in ANSWERS.items():
        if isinstance(error, kind):
            headers = {"Retry-After": "1"} if status == 503 else None
            return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    raise error


def install_share_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ShareServiceError)
    async def refused(_: Request, error: ShareServiceError) -> JSONResponse:
        return answer_for(error)

"""What share_service refuses, as exceptions the edges map in one place: HTTP to 404/403/413,
the chat-mirror consumer to its dead-letter topic."""

from __future__ import annotations


class ShareServiceError(Exception):
    """Base of share_service's domain errors."""


class ChatEventRejected(ShareServiceError):
    """A chat event that cannot be applied to the mirror (unknown chat, unknown parent, …).
    The consumer dead-letters it; the mirror is left as it was."""


class ChatNotFound(ShareServiceError):
    """The chat is not in the mirror, or was deleted. HTTP 404."""


class LinkNotFound(ShareServiceError):
    """No live link with this share_id. HTTP 404, the same for unknown and deleted ids."""


class LinkGone(LinkNotFound):
    """The link was deleted: it can be neither updated nor deleted again. HTTP 404 too."""


class CommunityRequestNotFound(ShareServiceError):
    """No community-share request with this id. HTTP 404."""


class NotRequester(ShareServiceError):
    """Only the requester (or an admin) sees a community-share request. HTTP 403."""


class NotChatOwner(ShareServiceError):
    """Only the chat's owner shares it. HTTP 403."""


class NotLinkOwner(ShareServiceError):
    """Only the link's owner (or, to delete, an admin) acts on it. HTTP 403."""


class SnapshotTooLarge(ShareServiceError):
    """The chat's snapshot is over `CHATSHARE_MAX_SNAPSHOT_BYTES`. HTTP 413."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the snapshot is {size} bytes, over the limit of {limit}")
        self.size = size
        self.limit = limit


class TooManyConcurrentChanges(ShareServiceError):
    """Other writers kept changing the same chat's links while this command was being saved.
    HTTP 503: the client may retry."""

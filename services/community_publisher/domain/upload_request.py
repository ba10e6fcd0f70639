"""A request to publish a chat on the community site, and the upload body it becomes
(INTERFACE.md §6): `public_full_history` carries every branch, `private` and `public` only the
visible one. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Access = Literal["private", "public", "public_full_history"]


@dataclass(frozen=True)
class UploadRequest:
    """One `CommunityShareRequested`; its snapshot is the JSON of the contract's `Snapshot`."""

    request_id: str
    chat_id: str
    owner_id: str
    access: Access
    policy_version: int
    snapshot: Mapping[str, Any]


def chat_for_access(snapshot: Mapping[str, Any], access: Access) -> dict[str, Any]:
    """The snapshot cut to what `access` lets the community see."""
    chat: dict[str, Any] = {"title": snapshot["title"], "messages": list(snapshot["messages"])}
    if access == "public_full_history":
        chat["history"] = snapshot["history"]  # every branch, regenerations included
    return chat


def upload_body(request: UploadRequest, instance_id: str) -> dict[str, Any]:
    """The JSON the community site receives for `request`."""
    return {
        "chat": chat_for_access(request.snapshot, request.access),
        "access": request.access,
        "source": {
            "instance_id": instance_id,
            "request_id": request.request_id,
            "owner_id": request.owner_id,
        },
    }

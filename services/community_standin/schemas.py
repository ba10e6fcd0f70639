"""JSON shapes the stand-in accepts and answers: the upload body, control settings and state."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class UploadedChat(BaseModel):
    """The chat part of an upload; `history` only comes with `public_full_history`."""

    model_config = ConfigDict(strict=True, extra="allow")

    title: str
    messages: list[dict[str, Any]]
    history: dict[str, Any] | None = None


class UploadSource(BaseModel):
    """Where an upload comes from: the instance, its request and the chat's owner."""

    model_config = ConfigDict(strict=True, extra="allow")

    instance_id: str
    request_id: str
    owner_id: str


class UploadRequest(BaseModel):
    """Body of `POST /api/v1/chats/upload` (INTERFACE.md §6)."""

    model_config = ConfigDict(strict=True, extra="allow")

    chat: UploadedChat
    access: Literal["private", "public", "public_full_history"]
    source: UploadSource


class UploadAnswer(BaseModel):
    """What the site answers for an accepted upload."""

    id: str
    url: str


class ControlSettings(BaseModel):
    """Body of `POST /_control`; every POST sets all three, missing ones to their default."""

    fail_next: int = Field(default=0, ge=0, description="how many next uploads fail")
    fail_status: int = Field(default=503, ge=400, le=599, description="status they fail with")
    delay_ms: int = Field(default=0, ge=0, le=60_000, description="delay of every upload answer")


class ControlState(ControlSettings):
    """Counters and settings as `GET /_control` reports them."""

    attempts: int = Field(description="upload requests received, failed or accepted")
    accepted: int = Field(description="uploads recorded (idempotent repeats not counted)")


class RecordedUpload(BaseModel):
    """An accepted upload as `GET /api/v1/chats` lists it: what was received, and its answer."""

    id: str
    url: str
    headers: dict[str, str] = Field(description="request headers, names lower-cased")
    body: dict[str, Any] = Field(description="the JSON body exactly as received")


class UploadList(BaseModel):
    """Answer of `GET /api/v1/chats`: accepted uploads, oldest first."""

    items: list[RecordedUpload]

"""The community site's upload API (INTERFACE.md §6) over HTTP: one attempt per call, its
answer classified; retrying is the application's decision."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from community_publisher.config import CommunityPublisherSettings
from community_publisher.domain.upload_attempts import (
    AttemptResult,
    Refused,
    TryAgain,
    accepted,
    is_worth_retrying,
)

UPLOAD_PATH = "/api/v1/chats/upload"
MAX_DETAIL_CHARS = 200


class CommunitySiteClient:
    def __init__(self, client: httpx.AsyncClient, upload_url: str, token: str | None) -> None:
        self.client = client
        self.upload_url = upload_url
        self.token = token

    async def upload(self, request_id: str, body: Mapping[str, Any]) -> AttemptResult:
        # The request id is the idempotency key: a repeat after a lost answer (or a crash) is
        # recognised by the site and not published twice.
        headers = {"Idempotency-Key": request_id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            answer = await self.client.post(self.upload_url, json=body, headers=headers)
        except httpx.TimeoutException as error:
            return TryAgain(f"the community site did not answer in time ({type(error).__name__})")
        except httpx.TransportError as error:
            return TryAgain(f"could not reach the community site ({type(error).__name__}: {error})")
        return read_answer(answer)


def read_answer(answer: httpx.Response) -> AttemptResult:
    """A 2xx with `{"id","url"}` is accepted; 5xx, 408 and 429 may heal; the rest will not."""
    status = answer.status_code
    if answer.is_success:
        try:
            payload = answer.json()
            return accepted(str(payload["id"]), str(payload["url"]))
        except (ValueError, KeyError, TypeError):
            return Refused(f"the community site answered {status} without an id and url")
    reason = f"the community site answered {status}{_detail(answer)}"
    return TryAgain(reason) if is_worth_retrying(status) else Refused(reason)


def _detail(answer: httpx.Response) -> str:
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {detail[:MAX_DETAIL_CHARS]}" if isinstance(detail, str) and detail else ""


@asynccontextmanager
async def open_community_site(
    settings: CommunityPublisherSettings,
) -> AsyncIterator[CommunitySiteClient]:
    """The site's client for the service's lifetime (one connection pool)."""
    timeout = httpx.Timeout(settings.upload_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        upload_url = settings.community_url.rstrip("/") + UPLOAD_PATH
        yield CommunitySiteClient(client, upload_url, settings.community_token)

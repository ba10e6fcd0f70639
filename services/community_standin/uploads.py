"""The community site's own API as the publisher sees it: upload a chat, list what was accepted."""

import asyncio
import json
import secrets
from typing import Any, cast

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from community_standin.dependencies import Settings, SiteState
from community_standin.schemas import RecordedUpload, UploadAnswer, UploadList, UploadRequest
from community_standin.site_state import InjectedFailure

router = APIRouter(prefix="/api/v1/chats", tags=["community site"])


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadAnswer,
    responses={
        200: {"model": UploadAnswer, "description": "Idempotency-Key already accepted"},
        400: {"description": "no Idempotency-Key header"},
        401: {"description": "missing or wrong bearer token"},
    },
)
async def upload_chat(request: Request, site: SiteState, settings: Settings) -> JSONResponse:
    """Accept a chat once per Idempotency-Key, unless told to fail it."""
    delay_seconds = await site.count_attempt()
    try:
        return await take_upload(request, site, settings)
    finally:
        # The answer is held back, not the upload: a client that gives up (times out, or dies)
        # while waiting has been recorded all the same, as on a real site.
        if delay_seconds > 0:
            await asyncio.sleep(delay_seconds)


async def take_upload(request: Request, site: SiteState, settings: Settings) -> JSONResponse:
    require_bearer_token(request, settings.community_token)
    key = request.headers.get("idempotency-key", "").strip()
    if not key:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "an Idempotency-Key header is required")
    body = parse_upload_body(await request.body())
    base_url = str(request.base_url).rstrip("/")
    outcome = await site.take_upload(key, dict(request.headers), body, base_url)
    if isinstance(outcome, InjectedFailure):
        detail = {"detail": "the stand-in was told to fail this upload"}
        return JSONResponse(detail, status_code=outcome.status)
    answer = UploadAnswer(id=outcome.upload.id, url=outcome.upload.url)
    code = status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED
    return JSONResponse(answer.model_dump(), status_code=code)


@router.get("", response_model=UploadList)
async def list_uploads(site: SiteState) -> UploadList:
    """The uploads the site accepted, oldest first, each as received."""
    uploads = await site.accepted_uploads()
    items = [RecordedUpload(id=u.id, url=u.url, headers=u.headers, body=u.body) for u in uploads]
    return UploadList(items=items)


def require_bearer_token(request: Request, token: str) -> None:
    """Refuse the request unless it carries `Bearer <token>`; no token configured, no check."""
    if not token:
        return
    given = request.headers.get("authorization", "").encode()
    if not secrets.compare_digest(given, f"Bearer {token}".encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


def parse_upload_body(raw: bytes) -> dict[str, Any]:
    """The body as received, once it has the upload's shape; 422 otherwise."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        error = {"type": "json_invalid", "loc": ("body",), "msg": "the body is not JSON"}
        raise RequestValidationError([error]) from exc
    try:
        UploadRequest.model_validate(payload)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc
    return cast(dict[str, Any], payload)

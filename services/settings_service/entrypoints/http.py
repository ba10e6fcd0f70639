"""settings_service's HTTP API (INTERFACE.md §4): any user reads the features, the admin
switches them and reads who changed what."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool

from servicekit.auth import AdminUser, CurrentUser
from settings_service.application.settings_app import (
    PolicyState,
    SettingsApplication,
    TooManyConcurrentChanges,
)

router = APIRouter()


def _settings_app(request: Request) -> SettingsApplication:
    settings_app: SettingsApplication = request.app.state.settings_app
    return settings_app


SettingsApp = Annotated[SettingsApplication, Depends(_settings_app)]


class Features(BaseModel):
    community_sharing_enabled: bool = Field(description="Users may share chats to the community.")
    tts_enabled: bool = Field(description="Shared pages offer to read messages aloud.")
    policy_version: int = Field(description="Counts the admin's changes; 0 before the first.")


class Switch(BaseModel):
    enabled: StrictBool = Field(description="On (true) or off (false); a JSON boolean only.")


class CommunitySharingSwitched(BaseModel):
    community_sharing_enabled: bool
    policy_version: int


class TextToSpeechSwitched(BaseModel):
    tts_enabled: bool
    policy_version: int


class SettingChangeItem(BaseModel):
    setting: Literal["community_sharing", "tts"]
    value: bool
    changed_by: str = Field(description="The admin's user id (the token's `sub`).")
    changed_at: datetime
    policy_version: int


class SettingsHistory(BaseModel):
    items: list[SettingChangeItem] = Field(description="Every change, oldest first.")


@router.get("/api/v1/settings/features")
async def read_features(_: CurrentUser, settings_app: SettingsApp, response: Response) -> Features:
    state = await to_thread.run_sync(settings_app.features)
    response.headers["Cache-Control"] = "no-store"  # a change shows on the very next read
    return _features(state)


@router.put("/api/v1/admin/settings/community-sharing")
async def switch_community_sharing(
    switch: Switch, admin: AdminUser, settings_app: SettingsApp
) -> CommunitySharingSwitched:
    state = await to_thread.run_sync(
        settings_app.set_community_sharing, switch.enabled, admin.user_id
    )
    return CommunitySharingSwitched(
        community_sharing_enabled=state.community_sharing_enabled,
        policy_version=state.policy_version,
    )


@router.put("/api/v1/admin/settings/tts")
async def switch_text_to_speech(
    switch: Switch, admin: AdminUser, settings_app: SettingsApp
) -> TextToSpeechSwitched:
    state = await to_thread.run_sync(settings_app.set_tts, switch.enabled, admin.user_id)
    return TextToSpeechSwitched(tts_enabled=state.tts_enabled, policy_version=state.policy_version)


@router.get("/api/v1/admin/settings/history")
async def read_history(_: AdminUser, settings_app: SettingsApp) -> SettingsHistory:
    changes = await to_thread.run_sync(settings_app.history)
    return SettingsHistory(
        items=[
            SettingChangeItem(
                setting=change.setting,
                value=change.value,
                changed_by=change.changed_by,
                changed_at=change.changed_at,
                policy_version=change.policy_version,
            )
            for change in changes
        ]
    )


def install_settings_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TooManyConcurrentChanges)
    async def too_busy(_: Request, error: TooManyConcurrentChanges) -> JSONResponse:
        body = {"detail": "The settings are being changed by someone else; try again."}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


def _features(state: PolicyState) -> Features:
    return Features(
        community_sharing_enabled=state.community_sharing_enabled,
        tts_enabled=state.tts_enabled,
        policy_version=state.policy_version,
    )

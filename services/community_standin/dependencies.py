"""FastAPI dependencies handing routes the state and settings the factory put on `app.state`."""

from typing import Annotated, cast

from fastapi import Depends, Request

from community_standin.config import StandinSettings
from community_standin.site_state import CommunitySiteState


def site_state(request: Request) -> CommunitySiteState:
    """The stand-in's in-memory state."""
    return cast(CommunitySiteState, request.app.state.site)


def standin_settings(request: Request) -> StandinSettings:
    """The settings the app was built with."""
    return cast(StandinSettings, request.app.state.settings)


SiteState = Annotated[CommunitySiteState, Depends(site_state)]
Settings = Annotated[StandinSettings, Depends(standin_settings)]

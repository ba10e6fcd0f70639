"""Builds the community-site stand-in app.

Run with `uvicorn community_standin.app:create_app --factory --port 8090`.
"""

from fastapi import FastAPI

from community_standin.config import StandinSettings
from community_standin.control import control_router, health_router
from community_standin.site_state import CommunitySiteState
from community_standin.uploads import router as uploads_router


def create_app(settings: StandinSettings | None = None) -> FastAPI:
    """A fresh stand-in with empty state; settings come from the environment unless given."""
    app = FastAPI(
        title="chatshare community site stand-in",
        description="Dev-only fake of the community site (INTERFACE.md §6).",
    )
    app.state.settings = settings if settings is not None else StandinSettings()
    app.state.site = CommunitySiteState()
    app.include_router(uploads_router)
    app.include_router(control_router)
    app.include_router(health_router)
    return app

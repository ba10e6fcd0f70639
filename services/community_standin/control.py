"""Test-only knobs of the stand-in (INTERFACE.md §6) and its health endpoints."""

from fastapi import APIRouter

from community_standin.dependencies import SiteState
from community_standin.schemas import ControlSettings, ControlState

control_router = APIRouter(prefix="/_control", tags=["control"])
health_router = APIRouter(tags=["health"])


@control_router.get("", response_model=ControlState)
async def read_control(site: SiteState) -> ControlState:
    """Counters (`attempts`, `accepted`) and the failure/delay settings in force."""
    return await site.report()


@control_router.post("", response_model=ControlState)
async def set_control(site: SiteState, settings: ControlSettings | None = None) -> ControlState:
    """Fail the next `fail_next` uploads with `fail_status`; delay every upload `delay_ms`."""
    return await site.set_control(settings or ControlSettings())


@control_router.post("/reset", response_model=ControlState)
async def reset_site(site: SiteState) -> ControlState:
    """Forget every upload, counter and setting."""
    return await site.reset()


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive."""
    return {"status": "ok"}


@health_router.get("/readyz")
async def readyz() -> dict[str, str]:
    """Ready as soon as it is alive: the stand-in depends on nothing."""
    return {"status": "ok"}

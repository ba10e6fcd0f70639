"""The shared-chat page on a tiny app for its own tests: the page router, real settings and JWT
auth, and a stand-in for the read side. These tests are about HTML, auth and escaping; the real
read path (view store, projection) is tested with Kafka and PostgreSQL elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from servicekit.http import install_error_handlers
from share_service.config import ShareServiceSettings
from share_service.entrypoints.shared_page import router as shared_page_routes

HOSTILE_SCRIPT = "<script>window.__pwned=1</script>"
HOSTILE_IMAGE = '<img src=x onerror="window.__pwned=1">'


def share_body(
    share_id: str = "share-1",
    *,
    title: str = "Planning a trip to Lisbon",
    tts_enabled: bool = False,
    contents: tuple[str, ...] = (
        "What should I see in Lisbon in **two days**?",
        "Day one: *Alfama* and the castle.\n\n- Tram 28\n- `Miradouro` at sunset",
    ),
) -> dict[str, Any]:
    """A GET /api/v1/shares/{id} body: alternating user and assistant messages, root first."""
    messages = []
    for number, content in enumerate(contents, start=1):
        assistant = number % 2 == 0
        messages.append(
            {
                "id": f"m{number}",
                "parent_id": f"m{number - 1}" if number > 1 else None,
                "role": "assistant" if assistant else "user",
                "content": content,
                "model": "llama3.1:8b" if assistant else None,
                "created_at": f"2025-11-26T08:0{number % 10}:00+00:00",
            }
        )
    history = {message["id"]: {**message, "children_ids": []} for message in messages}
    return {
        "share_id": share_id,
        "chat_id": f"chat-of-{share_id}",
        "owner_id": "alice",
        "title": title,
        "messages": messages,
        "history": {"messages": history, "current_id": messages[-1]["id"] if messages else None},
        "created_at": "2025-11-26T08:00:00+00:00",
        "updated_at": "2025-11-26T08:10:00+00:00",
        "version": 1,
        "tts_enabled": tts_enabled,
    }


class SharesStandIn:
    """Answers `read_share` as the read side does: the body, or None for unknown and deleted."""

    def __init__(self, *shares: dict[str, Any]) -> None:
        self.shares = {share["share_id"]: share for share in shares}

    async def read_share(self, share_id: str) -> dict[str, Any] | None:
        return self.shares.get(share_id)

    def delete(self, share_id: str) -> None:
        del self.shares[share_id]


def page_app(shares: SharesStandIn, settings: ShareServiceSettings | None = None) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings or ShareServiceSettings(login_url="/auth")
    app.state.wiring = shares
    install_error_handlers(app)
    app.include_router(shared_page_routes)
    return app

"""The shared-chat page `GET /s/{share_id}` (INTERFACE.md §3): a share's snapshot, read-only, as
server-rendered HTML for a logged-in user (header or `token` cookie); without login, a redirect to
the login page. Chat content is hostile: escaped, and the CSP lets only the page's own script run."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from servicekit.auth import AuthError, login_url_for, page_user_of
from share_service.entrypoints.chat_markdown import ChatMarkdown
from share_service.entrypoints.shared_chat_view import shared_chat_view
from share_service.entrypoints.wiring import wiring

router = APIRouter(tags=["shared chat page"])

PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}
CSP_REST = "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
REFUSALS = {
    403: (
        "Your account is waiting for approval",
        "An administrator of this instance has to approve your account before you can view "
        "shared chats.",
    ),
    404: (
        "This shared chat does not exist",
        "The link may have been deleted by its owner, or it was never valid. Ask the person who "
        "shared it for a new link.",
    ),
}


class SharedPage:
    """The page's templates and markdown renderer, built once per app on first use."""

    def __init__(self) -> None:
        loader = PackageLoader("share_service.entrypoints", "templates")
        self.templates = Environment(
            loader=loader,
            autoescape=True,  # every template, whatever its name: chat text is never markup
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.markdown = ChatMarkdown()
        self.css = Markup(loader.get_source(self.templates, "page.css")[0])
        # Refusal pages carry nothing from the request, so they are rendered once, their style
        # allowed by its hash: an unknown and a deleted link answer byte-identically.
        style_hash = base64.b64encode(hashlib.sha256(self.css.encode()).digest()).decode()
        self.refusal_csp = f"default-src 'none'; style-src 'sha256-{style_hash}'; {CSP_REST}"
        refusal = self.templates.get_template("refusal.html")
        self.refusals = {
            status: refusal.render(
                heading=heading, explanation=explanation, css=self.css, nonce=None
            )
            for status, (heading, explanation) in REFUSALS.items()
        }

    def chat(self, share: Mapping[str, Any]) -> HTMLResponse:
        """CPU-bound for a large snapshot (markdown): call it from a worker thread."""
        nonce = secrets.token_urlsafe(18)
        html = self.templates.get_template("shared_chat.html").render(
            chat=shared_chat_view(share, self.markdown), nonce=nonce, css=self.css
        )
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; {CSP_REST}"
        )
        return HTMLResponse(html, headers={**PAGE_HEADERS, "Content-Security-Policy": csp})

    def refusal(self, status: int) -> HTMLResponse:
        headers = {**PAGE_HEADERS, "Content-Security-Policy": self.refusal_csp}
        return HTMLResponse(self.refusals[status], status_code=status, headers=headers)

    def login_redirect(self, login_url: str) -> RedirectResponse:
        headers = {**PAGE_HEADERS, "Content-Security-Policy": "default-src 'none'"}
        return RedirectResponse(login_url, status_code=302, headers=headers)


async def shared_page(request: Request) -> SharedPage:
    page: SharedPage | None = getattr(request.app.state, "shared_page", None)
    if page is None:
        # Reads its templates from disk. Two first requests may both build one; either will do.
        page = request.app.state.shared_page = await to_thread.run_sync(SharedPage)
    return page


@router.get(
    "/s/{share_id}",
    response_class=HTMLResponse,
    responses={
        302: {"description": "Not logged in: off to the login page, with a way back here."},
        403: {"description": "The account is pending approval.", "content": {"text/html": {}}},
        404: {"description": "No such link, or deleted.", "content": {"text/html": {}}},
    },
)
async def shared_chat_page(share_id: str, request: Request) -> Response:
    """The shared chat, read-only, for any logged-in, non-pending user of the instance."""
    page = await shared_page(request)
    try:
        page_user_of(request)
    except AuthError as refused:
        if refused.status_code == 401:
            settings = request.app.state.settings
            return page.login_redirect(login_url_for(settings, f"/s/{share_id}"))
        return page.refusal(refused.status_code)
    share = await wiring(request).read_share(share_id)
    if share is None:
        return page.refusal(404)
    return await to_thread.run_sync(page.chat, share)

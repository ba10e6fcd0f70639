"""Viewing a shared chat (the seed's "查看共享的聊天"): a logged-in user opens the link and sees
the chat read-only, with a read-aloud button when the admin has TTS on; without login they are
sent to the login page. Chat content is hostile: it shows as text and runs nothing."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from share_service.entrypoints.chat_markdown import ChatMarkdown
from tests.identities import bearer, make_token
from tests.shared_pages import HOSTILE_IMAGE, HOSTILE_SCRIPT, SharesStandIn, page_app, share_body

CSP = re.compile(
    r"default-src 'none'; script-src 'nonce-(?P<nonce>[A-Za-z0-9_-]{22,})'; "
    r"style-src 'nonce-(?P=nonce)'; img-src 'self' data:; base-uri 'none'; "
    r"form-action 'none'; frame-ancestors 'none'"
)


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, as a browser would parse them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def with_attribute(self, attribute: str) -> list[str]:
        return [name for name, attrs in self.tags if attribute in attrs]


def client_for(shares: SharesStandIn) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=page_app(shares))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
def shares() -> SharesStandIn:
    return SharesStandIn(
        share_body("plain"),
        share_body("spoken", tts_enabled=True),
        share_body(
            "hostile",
            title=f"Title {HOSTILE_SCRIPT}",
            tts_enabled=True,
            contents=(f"Look: {HOSTILE_SCRIPT}", f"And {HOSTILE_IMAGE} [x](javascript:alert(1))"),
        ),
    )


@pytest.fixture
def client(shares: SharesStandIn) -> httpx.AsyncClient:
    return client_for(shares)


USER = bearer(make_token("bob", "user"))


@pytest.mark.parametrize(
    "headers",
    [{}, bearer(make_token("bob", expires_in=-60)), bearer(make_token("bob", secret="x" * 40))],
    ids=["no token", "expired", "forged"],
)
async def test_without_a_valid_login_the_page_sends_you_to_log_in_and_back(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await client.get("/s/plain", headers=headers)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/auth?redirect=%2Fs%2Fplain"
    assert answer.headers["cache-control"] == "private, no-store"


async def test_the_token_cookie_logs_you_in(client: httpx.AsyncClient) -> None:
    client.cookies.set("token", make_token("bob", "user"))
    answer = await client.get("/s/plain")
    assert answer.status_code == 200
    assert "Planning a trip to Lisbon" in answer.text


async def test_the_authorization_header_logs_you_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/s/plain", headers=USER)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")


async def test_a_pending_account_gets_a_short_403_page(client: httpx.AsyncClient) -> None:
    answer = await client.get("/s/plain", headers=bearer(make_token("newbie", "pending")))
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "approv" in answer.text
    assert "Lisbon" not in answer.text


async def test_unknown_and_deleted_links_give_the_same_404(
    client: httpx.AsyncClient, shares: SharesStandIn
) -> None:
    unknown = await client.get("/s/never-existed", headers=USER)
    shares.delete("plain")
    deleted = await client.get("/s/plain", headers=USER)
    assert unknown.status_code == deleted.status_code == 404
    assert unknown.content == deleted.content
    assert unknown.headers == deleted.headers
    assert "does not exist" in unknown.text


async def test_the_page_is_private_unindexed_and_runs_only_its_own_script(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/s/spoken", headers=USER)
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["x-robots-tag"] == "noindex"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "private, no-store"
    policy = CSP.fullmatch(answer.headers["content-security-policy"])
    assert policy is not None, answer.headers["content-security-policy"]
    page = Elements(answer.text)
    assert [script.get("nonce") for script in page.named("script")] == [policy["nonce"]]
    assert [style.get("nonce") for style in page.named("style")] == [policy["nonce"]]
    again = await client.get("/s/spoken", headers=USER)
    assert policy["nonce"] not in again.headers["content-security-policy"]


async def test_the_page_reads_on_a_phone(client: httpx.AsyncClient) -> None:
    page = Elements((await client.get("/s/plain", headers=USER)).text)
    viewport = [meta for meta in page.named("meta") if meta.get("name") == "viewport"]
    assert viewport == [{"name": "viewport", "content": "width=device-width, initial-scale=1"}]


async def test_the_visible_branch_shows_root_first_with_roles_and_models(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/s/plain", headers=USER)).text
    question = text.index("What should I see in Lisbon in <strong>two days</strong>?")
    answer = text.index("Day one: <em>Alfama</em>")
    assert question < answer
    assert text.count('class="role">User<') == 1
    assert text.count('class="role">Assistant<') == 1
    assert 'class="model">llama3.1:8b<' in text
    assert "<li>Tram 28</li>" in text
    assert "<form" not in text
    assert "<textarea" not in text


async def test_with_tts_on_there_is_a_read_aloud_button(client: httpx.AsyncClient) -> None:
    page = Elements((await client.get("/s/spoken", headers=USER)).text)
    buttons = [attrs for attrs in page.named("button") if attrs.get("data-action") == "read-aloud"]
    assert len(buttons) == 1
    assert len(page.named("script")) == 1


async def test_with_tts_off_nothing_reads_aloud(client: httpx.AsyncClient) -> None:
    answer = await client.get("/s/plain", headers=USER)
    page = Elements(answer.text)
    assert page.with_attribute("data-action") == []
    assert "read-aloud" not in answer.text
    assert page.named("script") == []


async def test_hostile_content_shows_as_text_and_runs_nothing(client: httpx.AsyncClient) -> None:
    answer = await client.get("/s/hostile", headers=USER)
    page = Elements(answer.text)
    assert len(page.named("script")) == 1  # the page's own read-aloud script, nonce'd
    assert page.named("img") == []
    assert page.with_attribute("onerror") == []
    assert "javascript:" not in " ".join(str(a.get("href")) for a in page.named("a"))
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    assert answer.text.count(escaped) == 3  # <title>, <h1> and the first message
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in answer.text


def test_markdown_links_are_safe_and_images_become_links() -> None:
    html = ChatMarkdown().render(
        "[ok](https://example.org/a) [mail](mailto:a@example.org) [bad](javascript:x) "
        "[data](data:text/html,x) [rel](/api/v1/shares) ![cat](https://example.org/cat.png)"
    )
    page = Elements(html)
    links = page.named("a")
    assert [link["href"] for link in links] == [
        "https://example.org/a",
        "mailto:a@example.org",
        "https://example.org/cat.png",
    ]
    assert {link["rel"] for link in links} == {"noopener noreferrer nofollow"}
    assert page.named("img") == []
    assert "Image: cat" in html

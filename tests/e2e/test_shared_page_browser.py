"""The shared-chat page in a real headless Chromium (Debian's, driven by Playwright): hostile chat
content shows as text and runs nothing, the read-aloud button speaks the messages only when the
admin has TTS on, and the page fits a phone (screenshot in test-artifacts/shared-page.png)."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn

from devstack.ports import free_port
from tests.identities import make_token
from tests.shared_pages import HOSTILE_IMAGE, HOSTILE_SCRIPT, SharesStandIn, page_app, share_body

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:
    pytest.skip(
        "playwright is not installed: `make test` installs it (the pyproject's dev group)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE = {"width": 390, "height": 844}
SCREENSHOT = ROOT / "test-artifacts" / "shared-page.png"

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
        "(or run `apt-get install chromium`)",
        allow_module_level=True,
    )

# Records what the page asks the browser to say, and any CSP violation, before the page's own
# script runs.
SPEECH_AND_VIOLATIONS = """
window.__spoken = [];
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
if (window.speechSynthesis) {
  window.speechSynthesis.speak = (utterance) => window.__spoken.push(utterance.text);
}
"""

SHOWCASE = (
    "How do I list the files in a folder with Python, newest first?",
    "Use `pathlib` and sort by modification time:\n\n"
    "```python\nfrom pathlib import Path\n\n"
    "files = sorted(Path('.').iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)\n```\n\n"
    "| method | recursive |\n|:--|:-:|\n| `iterdir()` | no |\n| `rglob('*')` | yes |\n\n"
    "See the [pathlib docs](https://docs.python.org/3/library/pathlib.html).",
    f"What happens with {HOSTILE_SCRIPT} in a message?",
    f"It is shown as text, like {HOSTILE_IMAGE}, and nothing runs.",
)


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    """The page's router on a real HTTP server: uvicorn in a background thread."""
    shares = SharesStandIn(
        share_body("plain"),
        share_body("spoken", tts_enabled=True),
        share_body("hostile", title=f"Hostile {HOSTILE_SCRIPT}", contents=SHOWCASE[2:]),
        share_body("showcase", title="Listing files, newest first", tts_enabled=True, contents=SHOWCASE),
    )  # fmt: skip
    port = free_port()
    config = uvicorn.Config(page_app(shares), host="127.0.0.1", port=port, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="shared-page-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it listened"
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/s/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


async def open_shared(
    browser: Browser, page_url: str, share_id: str, *, logged_in: bool = True
) -> Page:
    """Opens the link as a phone would, logged in by the `token` cookie as the platform's UI is."""
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    if logged_in:
        await context.add_cookies([{"name": "token", "value": make_token("bob"), "url": page_url}])
    page = await context.new_page()
    await page.add_init_script(SPEECH_AND_VIOLATIONS)
    await page.goto(page_url + share_id)
    return page


async def test_hostile_content_is_visible_text_and_runs_nothing(
    browser: Browser, page_url: str
) -> None:
    page = await open_shared(browser, page_url, "hostile")
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    shown = await page.inner_text("main")
    assert HOSTILE_SCRIPT in shown
    assert HOSTILE_IMAGE in shown
    assert await page.title() == f"Hostile {HOSTILE_SCRIPT} · shared chat"
    assert await page.locator("img").count() == 0
    assert await page.evaluate("window.__violations") == []  # the page's own style is allowed
    await page.context.close()


async def test_with_tts_on_the_button_reads_the_messages_aloud(
    browser: Browser, page_url: str
) -> None:
    page = await open_shared(browser, page_url, "spoken")
    button = page.locator('[data-action="read-aloud"]')
    assert await button.count() == 1
    await button.click()
    spoken: list[str] = await page.evaluate("window.__spoken")
    assert spoken[0] == "What should I see in Lisbon in two days?"  # the text, not the markdown
    assert spoken[1].startswith("Day one: Alfama and the castle.")
    assert "Miradouro at sunset" in spoken[1]
    assert len(spoken) == 2
    assert await button.get_attribute("aria-pressed") == "true"
    assert await page.evaluate("window.__violations") == []  # the page's own script ran
    await page.context.close()


async def test_with_tts_off_nothing_reads_aloud(browser: Browser, page_url: str) -> None:
    page = await open_shared(browser, page_url, "plain")
    assert await page.inner_text("h1") == "Planning a trip to Lisbon"
    assert await page.locator('[data-action="read-aloud"]').count() == 0
    await page.context.close()


async def test_without_login_the_browser_is_sent_to_log_in(browser: Browser, page_url: str) -> None:
    page = await open_shared(browser, page_url, "plain", logged_in=False)
    assert page.url.endswith("/auth?redirect=%2Fs%2Fplain")
    await page.context.close()


async def test_a_dead_link_shows_the_404_page_with_its_style(
    browser: Browser, page_url: str
) -> None:
    page = await open_shared(browser, page_url, "never-existed")
    assert await page.inner_text("h1") == "This shared chat does not exist"
    assert await page.evaluate("window.__violations") == []  # its style is allowed by its hash
    await page.context.close()


async def test_the_page_fits_a_phone(browser: Browser, page_url: str) -> None:
    page = await open_shared(browser, page_url, "showcase")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    await page.context.close()

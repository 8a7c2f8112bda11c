"""The console in a real browser: Playwright driving Debian's Chromium (no browser is downloaded).

Skipped where Chromium is missing; ``.ci/run`` installs it and sets PERSONA_PROXY_REQUIRE_CHROMIUM, so
in CI these tests fail rather than skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("PERSONA_PROXY_REQUIRE_CHROMIUM"):
    raise RuntimeError("PERSONA_PROXY_REQUIRE_CHROMIUM is set but there is no chromium: run .ci/chromium.sh")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/chromium.sh)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Page:
    """A fresh page that records every request it makes and every console message."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 1200})
        self.requests: list[str] = []
        self.messages: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.messages.append(message.text))
        self.page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))
        self.page.goto(url + "/console")

    def sign_in(self, key: str, *, loaded: bool = True) -> None:
        self.page.fill("#key", key)
        self.page.click("#signin-form button")
        if loaded:
            self.page.wait_for_selector("body[data-loaded=yes]", timeout=15_000)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def say(self, text: str) -> str:
        self.page.fill("#try-input", text)
        self.page.press("#try-input", "Enter")
        reply = self.page.locator("#try-log .assistant").last
        self.page.wait_for_function(
            "() => { const r = [...document.querySelectorAll('#try-log .assistant')].pop(); "
            "return r && r.textContent.length > 5; }", timeout=15_000)
        return reply.inner_text()

    def only_to(self, url: str) -> None:
        origin = urlsplit(url).netloc
        assert self.requests and all(urlsplit(r).netloc == origin for r in self.requests), self.requests
        assert not [m for m in self.messages if "Content Security Policy" in m or "page error" in m], self.messages


def polyline_points(page, selector: str) -> list[str]:
    return page.page.eval_on_selector_all(f"{selector} svg polyline", "ps => ps.map(p => p.getAttribute('points'))")


def test_admin_signs_in_and_every_panel_renders_with_data(console, browser, tmp_path):
    console.traffic(tmp_path)
    page = Page(browser, console.url)
    page.sign_in(console.admin_key)
    data_requests = [r for r in page.requests if "/console/api/" in r]
    assert 3 <= len(data_requests) <= 5, data_requests  # overview, usage, fidelity and the stale check
    assert page.text("#who") == "admin"
    routes = page.text("#routes")
    assert "maid" in routes and "gpt-next@canary" in routes and "open-maid@shadow" in routes
    assert "reachable" in routes  # the stale check ran on load
    assert page.page.locator("#timeline svg rect").count() == 1 and "2027-01-14" in page.text("#timeline")
    assert [p for p in polyline_points(page, "#usage-chart") if p.count(",") == 30]  # 30 days, drawn
    assert "maid" in page.text("#usage-table")
    fidelity = polyline_points(page, "#fidelity")
    assert len(fidelity) == 3 and page.page.locator("#fidelity svg line[stroke-dasharray]").count() == 1
    assert "friends" in page.text("#clients") and "family" in page.text("#clients")
    page.page.select_option("#usage-by", "client")
    page.page.wait_for_function("() => document.querySelector('#usage-table').innerText.includes('friends')")
    reply = page.say("早安")
    assert "主人" in reply  # the demo route, streamed through /console/api/try
    assert page.page.locator("#try-log .assistant").count() == 1
    assert any(r.endswith("/console/api/try") for r in page.requests)
    page.only_to(console.url)
    assert not [r for r in page.requests if console.admin_key in r]


def test_a_client_key_sees_its_own_client_only(console, browser, tmp_path):
    console.traffic(tmp_path)
    page = Page(browser, console.url)
    page.sign_in(console.friend_key)
    assert page.text("#who") == "client friends"
    assert not page.page.is_visible("#fidelity-panel") and not page.page.is_visible("#probe")
    body = page.text("body")
    for hidden in ("secret-route", "family", "gpt-next", "canary", "shadow", "莉莉"):
        assert hidden not in body, hidden
    assert "friends" in page.text("#clients") and "600" in page.text("#clients")
    assert [p for p in polyline_points(page, "#usage-chart") if p]
    page.page.select_option("#try-route", "maid-demo")
    assert "主人" in page.say("你好")
    assert any(r.endswith("/v1/chat/completions") for r in page.requests)  # its own key, its own limits
    page.only_to(console.url)


def test_a_wrong_key_is_refused_and_not_kept(console, browser):
    page = Page(browser, console.url)
    page.sign_in("not-a-key", loaded=False)
    page.page.wait_for_function("() => document.querySelector('#signin-error').textContent.length > 0")
    assert "Incorrect key" in page.text("#signin-error")
    assert not page.page.is_visible("#console")
    assert page.page.evaluate("() => sessionStorage.length") == 0
    page.page.reload()
    assert page.page.is_visible("#signin") and not page.page.is_visible("#console")

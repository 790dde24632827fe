"""The WebDriver client against a real headless Chromium, on a small page served over loopback."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from airflow_omnisend.testing.browser import (
    CHROMEDRIVER_ENV,
    CHROMIUM_ENV,
    Browser,
    BrowserError,
    browser_unavailable,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PAGE = b"""<!doctype html><html><head><title>Shop</title></head><body>
<table id="stores"><tr data-store="a"><td data-field="done">3</td>
<td><a data-link="store" href="/stores/a">a</a></td></tr>
<tr data-store="b"><td data-field="done">0</td></tr></table>
<input id="name"><button id="go" onclick="document.getElementById('out').textContent =
 'hello ' + document.getElementById('name').value + ' ' + document.cookie">Go</button>
<p id="out"></p></body></html>"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = browser_unavailable()
    if reason:
        pytest.skip(reason)
    with Browser.start() as started:
        yield started


@pytest.mark.browser
def test_reads_a_table_follows_links_types_clicks_and_sets_cookies(
    browser: Browser, site: str, tmp_path: Path
) -> None:
    browser.get(f"{site}/")
    assert browser.title == "Shop"
    rows = browser.find_all("#stores tr[data-store]")
    assert [r.attribute("data-store") for r in rows] == ["a", "b"]
    assert rows[0].find('td[data-field="done"]').text == "3"
    assert rows[0].find('a[data-link="store"]').property("href") == f"{site}/stores/a"
    assert rows[1].find_all("a") == []

    browser.set_cookie("_token", "abc")
    assert browser.cookies()["_token"] == "abc"
    browser.find("#name").type("Ann")
    browser.find("#go").click()
    browser.wait_for_text("hello Ann _token=abc")
    with pytest.raises(BrowserError, match="no element matches '#missing'"):
        browser.find("#missing")

    shot = browser.screenshot(tmp_path / "page.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser
def test_waiting_for_what_never_shows_names_it(browser: Browser, site: str) -> None:
    browser.get(f"{site}/")
    with pytest.raises(BrowserError, match="waiting for an element '#never'"):
        browser.wait_for_element("#never", timeout=0.5)


def test_a_missing_chromedriver_is_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CHROMEDRIVER_ENV, str(tmp_path / "no-chromedriver"))
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    reason = browser_unavailable()
    assert reason is not None
    assert "chromium and chromedriver not found" in reason
    assert "make browser" in reason
    with pytest.raises(BrowserError, match="chromedriver not found"):
        Browser.start()

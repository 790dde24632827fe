"""A minimal W3C WebDriver client (urllib only) driving a headless Chromium through chromedriver.

The browser tests and ``scripts/screenshot_dashboard.py`` need a real browser - Airflow's UI is a React
app, and the login page sets the ``_token`` cookie only in a browser - but no new Python dependency: this
module speaks the W3C WebDriver protocol (JSON over HTTP) to Debian's ``chromedriver``::

    with Browser.start() as browser:
        browser.get("http://127.0.0.1:8793/omnisend/")
        rows = browser.find_all("#stores tr[data-store]")
        print(rows[0].text, rows[0].attribute("data-store"))
        browser.screenshot("dashboard.png")

:func:`browser_unavailable` says why no browser can run here (``None`` when one can), so tests skip
with that reason. Waiting is on the page's own state (an element present, a URL reached), polled.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_omnisend.exceptions import OmnisendError
from airflow_omnisend.testing.local_airflow_config import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Browser", "BrowserError", "Element", "airflow_login", "browser_unavailable", "find_browser"]

#: the W3C key of an element reference in WebDriver answers
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMEDRIVER_ENV = "AIRFLOW_OMNISEND_CHROMEDRIVER"
CHROMIUM_ENV = "AIRFLOW_OMNISEND_CHROMIUM"
INSTALL_HINT = "install them with `make browser` (Debian: apt-get install chromium chromium-driver)"


class BrowserError(OmnisendError):
    """The browser or chromedriver failed, or a page never reached the state waited for."""


def _which(env: str, names: tuple[str, ...]) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).is_file() else None
    return next((found for name in names if (found := shutil.which(name))), None)


def find_browser() -> tuple[str | None, str | None]:
    """Paths of Chromium and chromedriver (``AIRFLOW_OMNISEND_CHROMIUM`` / ``..._CHROMEDRIVER`` or PATH)."""
    return _which(CHROMIUM_ENV, CHROMIUM_CANDIDATES), _which(CHROMEDRIVER_ENV, ("chromedriver",))


def browser_unavailable() -> str | None:
    """Why no headless browser can run here, or None when Chromium and chromedriver are both found."""
    chromium, driver = find_browser()
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    if missing:
        where = f"{CHROMIUM_ENV}/{CHROMEDRIVER_ENV} or PATH"
        return f"{' and '.join(missing)} not found ({where}); {INSTALL_HINT}"
    return None


@dataclass(frozen=True)
class Element:
    """One element of the current page (a WebDriver element reference)."""

    browser: Browser
    element_id: str

    def _path(self, tail: str) -> str:
        return f"/element/{self.element_id}/{tail}"

    @property
    def text(self) -> str:
        """The rendered text, as a person sees it (hidden text excluded)."""
        return str(self.browser.command("GET", self._path("text")))

    def attribute(self, name: str) -> str | None:
        value = self.browser.command("GET", self._path(f"attribute/{name}"))
        return None if value is None else str(value)

    def property(self, name: str) -> Any:
        """A DOM property (e.g. ``href``: the absolute URL a link goes to)."""
        return self.browser.command("GET", self._path(f"property/{name}"))

    def find_all(self, css: str) -> list[Element]:
        found = self.browser.command("POST", self._path("elements"), {"using": "css selector", "value": css})
        return [Element(self.browser, item[ELEMENT_KEY]) for item in found]

    def find(self, css: str) -> Element:
        found = self.find_all(css)
        if not found:
            raise BrowserError(f"no element matches {css!r} inside element {self.element_id}")
        return found[0]

    def click(self) -> None:
        self.browser.command("POST", self._path("click"), {})

    def clear(self) -> None:
        self.browser.command("POST", self._path("clear"), {})

    def type(self, text: str) -> None:
        """Send keystrokes (what a person typing does; React forms see each key)."""
        self.browser.command("POST", self._path("value"), {"text": text})


class Browser:
    """A chromedriver process and one headless Chromium session on it; :meth:`quit` ends both."""

    def __init__(
        self, driver: subprocess.Popen[bytes], port: int, profile_dir: str, log: IO[bytes] | None = None
    ) -> None:
        self._driver = driver
        self._log = log
        self.port = port
        self._profile_dir = profile_dir
        self.session_id: str | None = None

    @classmethod
    def start(
        cls, *, width: int = 1400, height: int = 1000, timeout: float = 30.0, log_path: Path | None = None
    ) -> Browser:
        """Start chromedriver on a free loopback port and open a headless Chromium session."""
        reason = browser_unavailable()
        if reason:
            raise BrowserError(reason)
        chromium, driver_bin = find_browser()
        port = free_port()
        log = log_path.open("ab") if log_path else None
        driver = subprocess.Popen(
            [str(driver_bin), f"--port={port}", "--allowed-ips=127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        browser = cls(driver, port, tempfile.mkdtemp(prefix="omnisend-chromium-"), log)
        try:
            browser._wait_ready(timeout)
            browser._open_session(str(chromium), width, height)
        except BaseException:
            browser.quit()
            raise
        return browser

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.quit()

    # -- protocol ------------------------------------------------------------------------------------

    def _http(self, method: str, path: str, payload: Any = None, timeout: float = 60.0) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("value", {})
            message = detail.get("message", "") if isinstance(detail, dict) else detail
            raise BrowserError(f"WebDriver {method} {path} answered {exc.code}: {message}") from exc
        return answer.get("value") if isinstance(answer, dict) else answer

    def command(self, method: str, path: str, payload: Any = None) -> Any:
        """One command of the current session (``path`` relative to ``/session/<id>``)."""
        if self.session_id is None:
            raise BrowserError("the browser session is closed")
        return self._http(method, f"/session/{self.session_id}{path}", payload)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._driver.poll() is not None:
                raise BrowserError(f"chromedriver exited with code {self._driver.returncode}")
            with contextlib.suppress(OSError, ValueError):
                if (self._http("GET", "/status", timeout=2.0) or {}).get("ready"):
                    return
            if time.monotonic() >= deadline:
                raise BrowserError(f"chromedriver did not get ready on port {self.port} in {timeout:.0f}s")
            time.sleep(0.1)  # polling cadence; /status answering ready is what is waited on

    def _open_session(self, chromium: str, width: int, height: int) -> None:
        args = [
            "--headless=new",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-first-run",
            f"--window-size={width},{height}",
            f"--user-data-dir={self._profile_dir}",
        ]
        options = {"binary": chromium, "args": args}
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        created = self._http("POST", "/session", {"capabilities": capabilities})
        self.session_id = str(created["sessionId"])

    def quit(self) -> None:
        """End the session, then chromedriver (it ends Chromium with the session), then the profile."""
        if self.session_id is not None:
            with contextlib.suppress(BrowserError, OSError):
                self._http("DELETE", f"/session/{self.session_id}", timeout=15.0)
            self.session_id = None
        if self._driver.poll() is None:
            self._driver.terminate()
            try:
                self._driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._driver.kill()
                self._driver.wait(timeout=10)
        shutil.rmtree(self._profile_dir, ignore_errors=True)
        if self._log is not None:
            self._log.close()

    # -- pages ---------------------------------------------------------------------------------------

    def get(self, url: str) -> None:
        """Load ``url`` and return once the document has loaded (scripts may still render later)."""
        self.command("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return str(self.command("GET", "/url"))

    @property
    def title(self) -> str:
        return str(self.command("GET", "/title"))

    @property
    def page_source(self) -> str:
        return str(self.command("GET", "/source"))

    def find_all(self, css: str) -> list[Element]:
        found = self.command("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, item[ELEMENT_KEY]) for item in found]

    def find(self, css: str) -> Element:
        found = self.find_all(css)
        if not found:
            raise BrowserError(f"no element matches {css!r} on {self.url}")
        return found[0]

    def execute(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page (``return ...`` gives its value back)."""
        return self.command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def set_cookie(self, name: str, value: str, path: str = "/") -> None:
        """Set a cookie for the current page's site (load a page of that site first)."""
        self.command("POST", "/cookie", {"cookie": {"name": name, "value": value, "path": path}})

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.command("GET", "/cookie")}

    def delete_cookies(self) -> None:
        self.command("DELETE", "/cookie")

    def screenshot(self, path: str | Path, *, full_page: bool = True) -> Path:
        """Save a PNG of the page; ``full_page`` first widens the window to the document's height."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if full_page:
            size: Mapping[str, int] = self.execute(
                "return {w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight}"
            )
            rect = self.command("GET", "/window/rect")
            width = max(int(rect["width"]), int(size["w"]))
            self.command("POST", "/window/rect", {"width": width, "height": int(size["h"]) + 120})
        target.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))
        return target

    def wait_for(
        self, what: str, probe: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2
    ) -> Any:
        """Poll ``probe`` until it returns something truthy (WebDriver errors count as not yet); raise
        :class:`BrowserError` naming ``what`` and the page's URL after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while True:
            try:
                result = probe()
            except BrowserError as exc:
                last, result = exc, None
            if result:
                return result
            if time.monotonic() >= deadline:
                hint = f" (last error: {last})" if last else ""
                raise BrowserError(f"timed out after {timeout:.0f}s waiting for {what} on {self.url}{hint}")
            time.sleep(interval)  # polling cadence; the page's state is what is waited on

    def wait_for_element(self, css: str, timeout: float = 30.0) -> Element:
        """The first element matching ``css`` once the page has rendered it."""
        found: list[Element] = self.wait_for(f"an element {css!r}", lambda: self.find_all(css), timeout)
        return found[0]

    def wait_for_text(self, text: str, timeout: float = 30.0) -> None:
        """Wait until ``text`` is part of what the page shows (``document.body.innerText``)."""
        self.wait_for(
            f"the text {text!r}",
            lambda: text in str(self.execute("return document.body ? document.body.innerText : ''")),
            timeout,
        )


def airflow_login(browser: Browser, api_url: str, username: str, password: str, path: str = "/") -> None:
    """Log in through Airflow's own login page (the simple auth manager's form), as a person does: it
    sets the UI's ``_token`` cookie. Starts from the UI's home page (which sends a visitor without a
    session to the login page) and ends on ``path``."""
    base = api_url.rstrip("/")
    browser.get(f"{base}/")
    browser.wait_for_element('input[name="username"]').type(username)
    browser.find('input[name="password"]').type(password)
    browser.find('button[type="submit"]').click()
    browser.wait_for("the _token cookie", lambda: "_token" in browser.cookies())
    browser.wait_for("leaving the login page", lambda: "/auth/login" not in browser.url)
    if path != "/":
        browser.get(f"{base}{path}")

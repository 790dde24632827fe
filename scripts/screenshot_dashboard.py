"""Save a screenshot of the dashboard of a running demo (``make demo DEMO_ARGS=--keep-up``).

    .venv/bin/python scripts/screenshot_dashboard.py http://127.0.0.1:<port>/omnisend/

logs in as the demo's admin (password from ``<home>/airflow-home/simple_auth_manager_passwords.json``)
through Airflow's login page in headless Chromium, opens the store's page (``--store``, default the
demo store; ``--all-stores`` for the list of stores) and saves it to ``docs/images/dashboard.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

from airflow_omnisend.testing.browser import Browser, BrowserError, airflow_login, browser_unavailable
from airflow_omnisend.testing.local_airflow import ADMIN_USER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the dashboard URL the demo printed (http://127.0.0.1:<port>/omnisend/)")
    parser.add_argument("--home", type=Path, default=Path(".demo"), help="the demo's folder (default .demo)")
    parser.add_argument("--store", default="demo", help="the store whose page to take (default demo)")
    parser.add_argument("--all-stores", action="store_true", help="take the all-stores page instead")
    parser.add_argument("--out", type=Path, default=Path("docs/images/dashboard.png"))
    args = parser.parse_args(argv)
    reason = browser_unavailable()
    if reason:
        print(f"screenshot: {reason}", file=sys.stderr)
        return 2
    passwords = args.home.resolve() / "airflow-home" / "simple_auth_manager_passwords.json"
    if not passwords.is_file():
        print(f"screenshot: no {passwords}; give the demo's folder with --home", file=sys.stderr)
        return 2
    parts = urlsplit(args.url)
    api_url = f"{parts.scheme}://{parts.netloc}"
    prefix = parts.path.rstrip("/") or "/omnisend"
    page = f"{prefix}/" if args.all_stores else f"{prefix}/stores/{args.store}"
    password = json.loads(passwords.read_text())[ADMIN_USER]
    try:
        with Browser.start(width=1400, height=900) as browser:
            airflow_login(browser, api_url, ADMIN_USER, password)
            browser.get(f"{api_url}{page}")
            browser.wait_for_element("#periods-chart" if not args.all_stores else "#stores")
            saved = browser.screenshot(args.out)
    except BrowserError as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 1
    print(f"saved {saved} ({api_url}{page})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

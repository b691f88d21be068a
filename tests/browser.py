"""A page opened in a real headless Chromium (Debian's, which `make install` installs), driven by
Playwright: what it logged as errors, what it asked the network for, and a screenshot.

Chromium starts with the flags this machine's closed network needs (no background requests, no
component updates): any request the page itself makes is then the page's, and is reported.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = (
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 900}


def chromium() -> str:
    """The browser `make install` put in place (CHROMIUM overrides), or a failure saying how to get one."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        raise AssertionError(
            f"no Chromium at {path}: `make install` installs Debian's (as root), or set CHROMIUM=<path>"
        )
    return path


@dataclass(frozen=True)
class Opened:
    title: str
    errors: list[str]  # console errors and uncaught page errors
    requests: list[str]  # every URL the page asked for, itself first
    text: str  # the page's visible text


def open_page(page_file: Path, *, screenshot: Path | None = None) -> Opened:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url}"))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot), full_page=False)
            return Opened(title=page.title(), errors=errors, requests=requests, text=page.inner_text("body"))
        finally:
            browser.close()

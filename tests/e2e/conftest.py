"""`live_server`: the real Forcebot app on a real threaded HTTP server, for browser-level tests;
`admin_page`: Debian's Chromium (driven by Playwright) logged in to it.

The server socket is bound first (port 0), so `settings.public_url` (and with it the OAuth
callback URL) names the real port before `create_app` reads it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from shared.auth import create_admin
from shared.config import Settings
from shared.runtime import Runtime
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class LiveServer:
    url: str
    settings: Settings
    runtime: Runtime
    app: Any

    @property
    def callback_url(self) -> str:
        return self.settings.oauth_callback_url


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app served on 127.0.0.1:<free port>; `.url`, `.settings`, `.runtime`, `.app`."""
    from web import create_app

    holder: dict[str, Any] = {}

    def dispatch(environ: Any, start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True, request_handler=_QuietHandler)
    url = f"http://127.0.0.1:{server.server_port}"
    live_settings = settings.with_(public_url=url)
    runtime = Runtime(live_settings)
    holder["app"] = create_app(live_settings, runtime)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield LiveServer(url, live_settings, runtime, holder["app"])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        runtime.close()


@pytest.fixture
def admin_page(live_server: LiveServer) -> Iterator[Callable[[str], Any]]:
    """`admin_page(path)`: a Chromium page that asked for `path`, logged in as the admin on the
    way (the login form sends it back to `path`). Skips without Chromium or Playwright."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with live_server.runtime.Session.begin() as session:
        create_admin(session, ADMIN_EMAIL, ADMIN_PASSWORD)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        def open_page(path: str) -> Any:
            page = browser.new_page()
            page.set_default_timeout(15000)
            page.goto(live_server.url + path)
            page.fill("input[name=email]", ADMIN_EMAIL)
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(live_server.url + path)
            return page

        try:
            yield open_page
        finally:
            browser.close()

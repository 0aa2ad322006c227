"""`live_server`: the real Forcebot app on a real threaded HTTP server, for browser-level tests.

The server socket is bound first (port 0), so `settings.public_url` (and with it the OAuth
callback URL) names the real port before `create_app` reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from shared.config import Settings
from shared.runtime import Runtime


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

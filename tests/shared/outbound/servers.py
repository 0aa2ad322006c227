"""Small loopback HTTP servers for outbound and webhook tests: scripted answers, a log."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: int) -> None:
        self.address_family = family
        self.connections = 0
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.default: tuple[int, dict[str, str], bytes] = (200, {}, b'{"ok": true}')
        self.on_request: Any = None  # called with the request, before it is answered
        super().__init__(address, _Handler)

    def get_request(self) -> Any:
        self.connections += 1
        return super().get_request()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.server.on_request is not None:
            self.server.on_request(self.server.requests[-1])
        status, headers, payload = (
            self.server.script.pop(0) if self.server.script else self.server.default
        )
        self.send_response(status)
        headers = {"Content-Type": "application/json", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class Receiver:
    """A threaded HTTP server on a loopback address; `.script` answers in order."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.server = _Server((host, port), family)
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests

    @property
    def connections(self) -> int:
        return self.server.connections

    def before_answering(self, hook: Any) -> None:
        """Run `hook(request)` while the client waits for the answer (a fault at that moment)."""
        self.server.on_request = hook

    def answer(self, *responses: tuple[int, dict[str, str], bytes]) -> None:
        self.server.script.extend(responses)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

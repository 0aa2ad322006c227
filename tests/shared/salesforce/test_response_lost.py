"""`send` tells a request that never went out from one that went out unanswered.

Real loopback sockets: a refused connection is a plain TransportError (safe to send again);
a read timeout, a connection closed or reset after the request was read, and a truncated
answer are ResponseLost (the server may have applied the request).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from shared.salesforce.errors import ResponseLost, TransportError
from shared.salesforce.http import nothing_sent, send


@contextmanager
def server(mode: str) -> Iterator[tuple[str, threading.Event]]:
    """Accept one connection, read the request, then misbehave as `mode` says."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got_request = threading.Event()
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        got_request.set()
        if mode == "close":
            conn.close()
        elif mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif mode == "truncated":
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{")
            conn.close()
        else:  # "silent": answer nothing until the test is over
            done.wait(10)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/create", got_request
    finally:
        done.set()
        listener.close()
        thread.join(5)


@pytest.mark.parametrize("mode", ["close", "reset", "truncated", "silent"])
def test_a_request_that_went_out_unanswered_is_response_lost(mode: str) -> None:
    seen = []
    with server(mode) as (url, got_request):
        with pytest.raises(ResponseLost) as info:
            send(requests.Session(), "POST", url, timeout=0.5, json={}, on_exchange=seen.append)
        assert got_request.is_set()
    assert info.value.retryable  # an idempotent caller may still send it again
    assert [s["status"] for s in seen] == [None] and seen[0]["error"]


def test_a_refused_connection_is_not_response_lost() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(TransportError) as info:
        send(requests.Session(), "POST", f"http://127.0.0.1:{port}/", timeout=1)
    assert not isinstance(info.value, ResponseLost)
    assert info.value.error_code == "connection_error" and info.value.retryable


def test_connect_timeouts_and_bad_urls_count_as_not_sent() -> None:
    pool_error = MaxRetryError(None, "/", ConnectTimeoutError("connect timed out"))  # type: ignore[arg-type]
    assert nothing_sent(requests.ConnectTimeout(pool_error))
    assert nothing_sent(requests.exceptions.InvalidURL("bad"))
    assert not nothing_sent(requests.ReadTimeout("read timed out"))
    assert not nothing_sent(requests.ConnectionError("Connection aborted."))

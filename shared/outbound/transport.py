"""A requests session that connects to one checked address, whatever DNS says later.

How the pin works: `PinnedAdapter` is a requests `HTTPAdapter` whose urllib3 pools build
`_PinnedHTTPConnection` / `_PinnedHTTPSConnection`. Those override only `_new_conn`, the
one place urllib3 opens the TCP socket, to connect to the address the guard checked instead
of resolving `host` again. Everything else still uses the URL's host name: TLS sends it as
SNI and verifies the certificate against it, and `Host:` carries it. So a DNS answer that
changes between the check and the connect (rebinding) cannot redirect the socket.

The session ignores proxy variables (`trust_env = False`): a proxy would connect on our
behalf to wherever it resolves the name, which would undo the check.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError


def open_socket(
    address: str,
    port: int,
    timeout: Any,
    source_address: Any = None,
    socket_options: Any = None,
) -> socket.socket:
    """Connect a TCP socket to exactly `address` (no name resolution happens here)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in socket_options or ():
            sock.setsockopt(*option)
        if isinstance(timeout, int | float):  # urllib3 may pass its "default" sentinel
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect((address, port))
        return sock
    except BaseException:
        sock.close()
        raise


class _PinnedMixin:
    pinned_address: str = ""

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        try:
            return open_socket(
                self.pinned_address,
                conn.port,
                conn.timeout,
                conn.source_address,
                conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from exc


def _pools(address: str) -> dict[str, type]:
    pinned = {"pinned_address": address}
    http_conn = type("PinnedHTTPConnection", (_PinnedMixin, HTTPConnection), pinned)
    https_conn = type("PinnedHTTPSConnection", (_PinnedMixin, HTTPSConnection), pinned)
    return {
        "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class PinnedAdapter(HTTPAdapter):
    """Every connection of this adapter goes to `address`."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pools(self.address)


def pinned_session(address: str) -> requests.Session:
    """A fresh session (no connection reuse across checks) pinned to `address`."""
    session = requests.Session()
    session.trust_env = False
    adapter = PinnedAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

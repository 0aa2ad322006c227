"""The outbound client against loopback servers: guard, pinning, redirects, retries.

Only loopback is ever connected to. Forbidden non-loopback addresses come from a stubbed
resolver, with the socket layer patched to fail the test if a connect is attempted.
"""

from __future__ import annotations

import socket

import pytest

from shared.outbound import OutboundClient, Policy, Refused
from shared.outbound.client import STRIPPED_MARK
from shared.outbound.guard import AllowList
from shared.salesforce.errors import ServerError

from .servers import Receiver

TOKEN = "00Dxx0000001gEH!AQ4AQFakeAccessTokenForTests"


@pytest.fixture
def allowed():
    """A receiver on 127.0.0.2, the one loopback address the allow-list names."""
    with Receiver("127.0.0.2") as server:
        yield server


@pytest.fixture
def forbidden():
    """A receiver on 127.0.0.1, which is NOT in the allow-list."""
    with Receiver("127.0.0.1") as server:
        yield server


def make_client(**kwargs):
    sleeps = []
    policy = kwargs.pop("policy", None) or Policy(allow=AllowList.parse(["127.0.0.2"]))
    client = OutboundClient(
        policy, secrets=lambda: [TOKEN], sleep=sleeps.append, max_attempts=3, **kwargs
    )
    client.sleeps = sleeps
    return client


def test_allowed_loopback_gets_no_salesforce_credential(allowed):
    seen = []
    client = make_client(on_exchange=seen.append)
    response = client.request(
        "POST",
        allowed.url + "/hook",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Session": TOKEN, "X-Keep": "yes"},
        json={"text": "hello"},
    )
    assert response.status_code == 200
    (request,) = allowed.requests
    lowered = {k.lower(): v for k, v in request["headers"].items()}
    assert "authorization" not in lowered and "x-session" not in lowered
    assert lowered["x-keep"] == "yes"
    assert request["body"] == b'{"text": "hello"}'
    assert seen[0]["request_headers"]["Authorization"] == STRIPPED_MARK
    assert TOKEN not in repr(seen)


def test_an_own_authorization_header_is_kept(allowed):
    make_client().request("GET", allowed.url, headers={"Authorization": "Bearer slack-xyz-123"})
    assert allowed.requests[0]["headers"]["Authorization"] == "Bearer slack-xyz-123"


def test_credential_in_url_or_body_is_refused(allowed):
    client = make_client()
    with pytest.raises(Refused) as info:
        client.request("GET", allowed.url + "/?t=" + TOKEN)
    assert info.value.rule == "credential"
    with pytest.raises(Refused):
        client.request("POST", allowed.url, json={"token": TOKEN})
    assert allowed.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "{forbidden}/x",
        "http://0x7f000001:{port}/x",
        "http://2130706433:{port}/x",
        "http://localhost:{port}/x",
        "https://127.0.0.1:{port}/x",
    ],
)
def test_loopback_not_allowed_is_refused_before_connecting(forbidden, url):
    url = url.format(forbidden=forbidden.url, port=forbidden.port)
    with pytest.raises(Refused) as info:
        make_client().request("GET", url)
    assert info.value.rule == "loopback"
    assert forbidden.connections == 0


def test_ipv6_loopback_is_refused():
    try:
        server = Receiver("::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server:
        with pytest.raises(Refused) as info:
            make_client().request("GET", server.url)
        assert info.value.rule == "loopback"
        assert server.connections == 0


def test_a_name_resolving_to_loopback_is_refused(forbidden):
    policy = Policy(allow=AllowList.parse(["127.0.0.2"]), resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(Refused) as info:
        make_client(policy=policy).request("GET", f"http://evil.test:{forbidden.port}/")
    assert info.value.rule == "loopback"
    assert "evil.test resolves to 127.0.0.1" in str(info.value)
    assert forbidden.connections == 0


def test_redirect_from_allowed_to_forbidden_is_refused(allowed, forbidden):
    allowed.answer((302, {"Location": forbidden.url + "/steal"}, b""))
    with pytest.raises(Refused) as info:
        make_client().request("GET", allowed.url + "/start", follow_redirects=True)
    assert info.value.rule == "loopback"
    assert len(allowed.requests) == 1
    assert forbidden.connections == 0


def test_redirects_are_not_followed_unless_asked(allowed, forbidden):
    allowed.answer((302, {"Location": forbidden.url}, b""))
    response = make_client().request("GET", allowed.url)
    assert response.status_code == 302
    assert forbidden.connections == 0


def test_allowed_redirect_is_followed_and_303_becomes_get(allowed):
    allowed.answer((303, {"Location": "/next"}, b""))
    response = make_client().request(
        "POST", allowed.url + "/first", json={"a": 1}, follow_redirects=True
    )
    assert response.status_code == 200
    assert [(r["method"], r["path"]) for r in allowed.requests] == [
        ("POST", "/first"),
        ("GET", "/next"),
    ]


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if anything opens a TCP connection or resolves a name."""
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise AssertionError(f"connect attempted to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fd00::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:192.168.1.1",
    ],
)
def test_private_answers_are_refused_and_nothing_connects(no_connect, address):
    policy = Policy(resolver=lambda host, port: [address])
    with pytest.raises(Refused) as info:
        make_client(policy=policy).request("GET", "https://internal.test/secret")
    assert info.value.rule in ("private", "metadata")
    assert no_connect == []


def test_connection_goes_to_the_checked_address_not_a_new_lookup(allowed, monkeypatch):
    """DNS rebinding: after the check no name is resolved again; Host keeps the name."""
    answers = iter([["127.0.0.2"]])
    policy = Policy(allow=AllowList.parse(["127.0.0.2"]), resolver=lambda host, port: next(answers))

    def no_lookup(*args, **kwargs):
        raise AssertionError(f"second resolution of {args[0]}")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    response = make_client(policy=policy).request("GET", f"http://rebind.test:{allowed.port}/")
    assert response.status_code == 200
    assert allowed.requests[0]["headers"]["Host"] == f"rebind.test:{allowed.port}"


def test_5xx_is_retried_with_backoff_then_succeeds(allowed):
    allowed.answer((503, {}, b"busy"), (500, {}, b"oops"))
    client = make_client()
    response = client.request("GET", allowed.url)
    assert response.status_code == 200
    assert len(allowed.requests) == 3
    assert len(client.sleeps) == 2


def test_retry_after_is_a_floor(allowed):
    allowed.answer((429, {"Retry-After": "2"}, b""))
    client = make_client()
    assert client.request("GET", allowed.url).status_code == 200
    assert client.sleeps[0] >= 2


def test_other_4xx_fail_at_once(allowed):
    allowed.answer((404, {}, b'{"error": "nope"}'))
    client = make_client()
    response = client.request("GET", allowed.url)
    assert response.status_code == 404
    assert len(allowed.requests) == 1 and client.sleeps == []


def test_retries_run_out_as_a_retryable_error(allowed):
    allowed.answer((500, {}, b""), (502, {}, b""), (503, {}, b""))
    with pytest.raises(ServerError) as info:
        make_client().request("GET", allowed.url)
    assert info.value.retryable and info.value.status == 503
    assert len(allowed.requests) == 3


def test_timeouts_are_retried_then_raised_as_retryable():
    """A listener that accepts and never answers: three sends, then a retryable error."""
    from shared.salesforce.errors import TransportError

    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    client = make_client()
    try:
        with pytest.raises(TransportError) as info:
            client.request("GET", f"http://127.0.0.2:{port}/slow", timeout=0.3)
    finally:
        listener.close()
    assert info.value.retryable and info.value.error_code == "timeout"
    assert len(client.sleeps) == 2

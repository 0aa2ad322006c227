"""shared.linking and shared.salesforce.oauth against the simulator over HTTP."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.linking import LinkFailed, LinkInvalid, complete_link, start_link
from shared.models import Account, OAuthState, Service
from shared.salesforce import oauth
from shared.salesforce.errors import TokenError
from tests.conftest import SIM_CLIENT_ID, SIM_CLIENT_SECRET
from tests.web.linkflow import consent, query


@pytest.fixture
def service_id(runtime, sim):
    with runtime.Session.begin() as session:
        service = Service(
            name="sim",
            client_id=SIM_CLIENT_ID,
            client_secret_enc=runtime.crypto.encrypt(SIM_CLIENT_SECRET),
            login_url=sim.login_url,
        )
        session.add(service)
        session.flush()
        return service.id


def begin(runtime, settings, service_id, name="acme-prod", binding=None):
    with runtime.Session.begin() as session:
        return start_link(
            session,
            runtime.crypto,
            settings.oauth_callback_url,
            service_id,
            name,
            session_binding=binding,
        )


def test_authorization_request_uses_pkce_s256_and_a_long_state():
    request = oauth.authorization_request(
        "https://login.salesforce.com", "key", "https://bot.example/oauth/callback", "api id"
    )
    params = query(request.url)
    assert request.url.startswith("https://login.salesforce.com/services/oauth2/authorize?")
    assert params["state"] == request.state and len(request.state) >= 43
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert params["prompt"] == "consent" and params["scope"] == "api id"


def test_plain_http_only_for_loopback_hosts():
    loopback = oauth.authorization_request("http://127.0.0.1:9", "key", "http://x/cb", "api")
    assert loopback.url.startswith("http://127.0.0.1:9/services/oauth2/authorize?")
    for url in ("http://login.salesforce.com", "http://10.0.0.8", "http://localhost.evil.com"):
        with pytest.raises(TokenError) as info:
            oauth.authorization_request(url, "key", "http://x/cb", "api")
        assert info.value.error == "insecure_transport"
        with pytest.raises(TokenError):
            oauth.exchange_code(url, "key", "secret", "http://x/cb", "code", "v" * 43)
        with pytest.raises(TokenError):
            oauth.revoke_token(url, "token")


def test_state_is_stored_hashed_with_an_encrypted_verifier(runtime, settings, service_id, sim):
    started = begin(runtime, settings, service_id)
    state = query(started.authorize_url)["state"]
    with runtime.Session() as session:
        row = session.scalars(select(OAuthState)).one()
    assert row.state_hash == hashlib.sha256(state.encode()).hexdigest()
    assert state not in (row.state_hash, row.code_verifier_enc)
    assert len(runtime.crypto.decrypt(row.code_verifier_enc)) >= 43
    assert row.expires_at - row.created_at == timedelta(minutes=10)
    assert row.session_binding is None and row.used_at is None


def test_start_link_lists_problems(runtime, settings, service_id, sim):
    with pytest.raises(LinkInvalid) as info:
        begin(runtime, settings, "nope", "")
    assert info.value.problems == [
        "service_id: required, the id of a service",
        "name: required, e.g. acme-prod",
    ]


def test_complete_link_then_replay(runtime, settings, service_id, sim):
    started = begin(runtime, settings, service_id)
    params = query(consent(started.authorize_url))
    result = complete_link(runtime, params, redirect_uri=settings.oauth_callback_url)
    info = sim.control.info()
    assert result.created and result.username == info["username"]
    with runtime.Session() as session:
        account = session.get(Account, result.account_id)
        assert account.status == "active"
        assert (account.organization_id, account.user_id) == (info["org_id"], info["user_id"])
        assert account.identity_url == info["identity_url"]
        assert runtime.crypto.decrypt(account.refresh_token_enc)
    with pytest.raises(LinkFailed) as replay:
        complete_link(runtime, params, redirect_uri=settings.oauth_callback_url)
    assert replay.value.code == "state_reused"
    assert sim.control.counters()["code_grants"] == 1


def test_bound_state_needs_the_same_browser_binding(runtime, settings, service_id, sim):
    started = begin(runtime, settings, service_id, binding="browser-1")
    params = query(consent(started.authorize_url))
    with pytest.raises(LinkFailed) as info:
        complete_link(
            runtime, params, redirect_uri=settings.oauth_callback_url, session_binding="browser-2"
        )
    assert info.value.code == "wrong_browser"
    with runtime.Session() as session:
        assert session.scalars(select(Account)).all() == []


def test_relink_as_another_user_updates_the_named_account(runtime, settings, service_id, sim):
    first = begin(runtime, settings, service_id)
    linked = complete_link(
        runtime, query(consent(first.authorize_url)), redirect_uri=settings.oauth_callback_url
    )
    other = sim.control.add_user("ops@acme.example")
    second = begin(runtime, settings, service_id)
    url = second.authorize_url + "&login_hint=ops%40acme.example"
    relinked = complete_link(runtime, query(consent(url)), redirect_uri=settings.oauth_callback_url)
    assert relinked.account_id == linked.account_id and not relinked.created
    with runtime.Session() as session:
        (account,) = session.scalars(select(Account)).all()
    assert account.username == "ops@acme.example" and account.user_id == other["user_id"]


def test_name_of_another_services_account_is_refused(runtime, settings, service_id, sim):
    complete_link(
        runtime,
        query(consent(begin(runtime, settings, service_id).authorize_url)),
        redirect_uri=settings.oauth_callback_url,
    )
    with runtime.Session.begin() as session:
        other = Service(name="other", client_id="k", client_secret_enc="x", login_url=sim.login_url)
        session.add(other)
        session.flush()
        other_id = other.id
    with pytest.raises(LinkInvalid) as info:
        begin(runtime, settings, other_id)
    assert info.value.problems == ["name: the account 'acme-prod' belongs to another service"]

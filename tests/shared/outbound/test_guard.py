"""The SSRF guard's address rules, numeric spellings and allow-list; no packet leaves."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from shared.config import ConfigError, Settings
from shared.outbound.guard import (
    AllowList,
    Policy,
    Refused,
    address_rule,
    check_url,
    parse_numeric_host,
)


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("fc00::5", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),  # documentation range: Python counts it as private
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:192.168.1.1", "private"),
        ("::10.0.0.1", "private"),  # IPv4-compatible
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ],
)
def test_forbidden_addresses_name_their_rule(address, rule):
    assert address_rule(ipaddress.ip_address(address)) == rule


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert address_rule(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x0a.0.0.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_numeric_spellings_parse_to_the_address(spelling, address):
    assert parse_numeric_host(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "deadbeef.example", "abc", ""])
def test_names_are_not_numeric(host):
    assert parse_numeric_host(host) is None


def _no_dns(host, port):
    raise AssertionError(f"numeric host {host} must not be looked up")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://0x7f000001/", "loopback"),
        ("https://2130706433/", "loopback"),
        ("https://0177.0.0.1/", "loopback"),
        ("https://[::1]:8443/", "loopback"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://metadata.google.internal/", "metadata"),
        ("https://[fd00::1]/", "private"),
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https:///nohost", "no_host"),
    ],
)
def test_check_url_refuses_without_resolving(url, rule):
    with pytest.raises(Refused) as info:
        check_url(url, Policy(resolver=_no_dns))
    assert info.value.rule == rule
    assert f"rule {rule}" in str(info.value)


@pytest.mark.parametrize(
    ("resolved", "rule"),
    [
        (["10.0.0.1"], "private"),
        (["172.16.0.1"], "private"),
        (["192.168.1.1"], "private"),
        (["169.254.169.254"], "metadata"),
        (["fd00::1"], "private"),
        (["::ffff:10.0.0.1"], "private"),
        (["::ffff:169.254.169.254"], "metadata"),
        (["127.0.0.1"], "loopback"),
        (["93.184.216.34", "10.0.0.1"], "private"),  # every answer is checked, not the first
    ],
)
def test_check_url_refuses_names_resolving_to_forbidden_addresses(resolved, rule):
    with pytest.raises(Refused) as info:
        check_url("https://hook.test/x", Policy(resolver=lambda host, port: resolved))
    assert info.value.rule == rule
    assert "hook.test resolves to" in str(info.value)


def test_check_url_returns_the_checked_address_to_connect_to():
    target = check_url(
        "https://api.test:8443/x", Policy(resolver=lambda host, port: ["93.184.216.34"])
    )
    assert (target.host, target.port, target.address, target.host_class) == (
        "api.test",
        8443,
        "93.184.216.34",
        "public",
    )


def test_plain_http_only_to_allowed_hosts():
    public = Policy(resolver=lambda host, port: ["93.184.216.34"])
    with pytest.raises(Refused) as info:
        check_url("http://api.test/", public)
    assert info.value.rule == "plain_http"
    allowed = Policy(allow=AllowList.parse(["api.test"]), resolver=public.resolver)
    assert check_url("http://api.test/", allowed).host_class == "allowed"


def test_allow_list_by_name_and_cidr():
    policy = Policy(
        allow=AllowList.parse(["intranet.test", "10.1.0.0/16", "127.0.0.2"]),
        resolver=lambda host, port: {"intranet.test": ["10.9.9.9"], "b.test": ["10.1.2.3"]}.get(
            host, ["10.2.0.1"]
        ),
    )
    assert check_url("https://intranet.test/", policy).host_class == "allowed"
    assert check_url("https://b.test/", policy).host_class == "allowed"
    assert check_url("http://127.0.0.2:9/", policy).host_class == "allowed"
    with pytest.raises(Refused):
        check_url("https://c.test/", policy)
    with pytest.raises(Refused):
        check_url("https://127.0.0.1/", policy)


def test_loopback_allowed_for_webhooks_only_when_asked():
    with pytest.raises(Refused):
        check_url("http://127.0.0.1:9/", Policy())
    assert check_url("http://127.0.0.1:9/", Policy(allow_loopback=True)).host_class == "loopback"
    with pytest.raises(Refused) as info:
        check_url("https://10.0.0.1/", Policy(allow_loopback=True))
    assert info.value.rule == "private"


def test_webhook_loopback_is_only_for_hosts_named_as_loopback():
    """A public-looking name whose DNS answers 127.0.0.1 is not a "local receiver"."""
    to_loopback = Policy(allow_loopback=True, resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(Refused) as info:
        check_url("https://attacker.test:6379/", to_loopback)
    assert info.value.rule == "loopback"
    to_v6 = Policy(allow_loopback=True, resolver=lambda host, port: ["::1"])
    with pytest.raises(Refused):
        check_url("https://attacker.test/", to_v6)
    assert check_url("http://localhost:9/", to_loopback).host_class == "loopback"
    assert check_url("http://[::1]:9/", to_v6).host_class == "loopback"


@pytest.mark.parametrize("entry", ["0.0.0.0/0", "169.254.0.0/16", "::/0", "meta.test"], ids=str)
def test_a_broad_allow_list_entry_never_opens_the_metadata_service(entry):
    resolver = lambda host, port: ["169.254.169.254"]  # noqa: E731
    policy = Policy(allow=AllowList.parse([entry]), resolver=resolver)
    with pytest.raises(Refused) as info:
        check_url("https://meta.test/latest/", policy)
    assert info.value.rule == "metadata"
    exact = Policy(allow=AllowList.parse(["169.254.169.254"]), resolver=resolver)
    assert check_url("https://meta.test/latest/", exact).host_class == "allowed"


def test_resolver_failure_is_refused():
    def fail(host, port):
        raise socket.gaierror("Name or service not known")

    with pytest.raises(Refused) as info:
        check_url("https://nowhere.test/", Policy(resolver=fail))
    assert info.value.rule == "unresolvable"


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "exa mple.com", "-bad-.test", "1.2.3.4/x"])
def test_allow_hosts_setting_names_the_variable(bad, tmp_path):
    env = {"FORCEBOT_INSTANCE_DIR": str(tmp_path), "FORCEBOT_HTTP_ALLOW_HOSTS": f"ok.test,{bad}"}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith("FORCEBOT_HTTP_ALLOW_HOSTS:")


def test_allow_hosts_setting_parses(tmp_path):
    env = {
        "FORCEBOT_INSTANCE_DIR": str(tmp_path),
        "FORCEBOT_HTTP_ALLOW_HOSTS": " hooks.internal , 10.0.0.0/8,::1 ",
    }
    assert Settings.from_env(env).http_allow_hosts == ("hooks.internal", "10.0.0.0/8", "::1")


def test_a_refused_url_is_named_with_its_secrets_redacted():
    with pytest.raises(Refused) as info:
        check_url("ftp://files.test/x?access_token=00Dxx!secret", Policy(resolver=_no_dns))
    assert "00Dxx!secret" not in info.value.message and "files.test" in info.value.message

"""The SSRF guard: which addresses an outbound request may reach, decided after DNS.

`check_url(url, allow)` parses the URL, resolves its host (every address the resolver
returns is checked, not just the first), and returns a `Target` holding the address to
connect to. It raises `Refused`, whose `.rule` names what refused:

    scheme           not http/https
    plain_http       http:// to a host that is not in FORCEBOT_HTTP_ALLOW_HOSTS
    no_host          a URL without a host
    unresolvable     DNS gave no address
    loopback         127.0.0.0/8, ::1
    private          10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10 (shared), ...
    link_local       169.254/16, fe80::/10
    metadata         cloud metadata endpoints (169.254.169.254, fd00:ec2::254, 100.100.100.200,
                     168.63.129.16); checked before link_local/private so the error says so
    multicast        224/4, ff00::/8
    unspecified      0.0.0.0, ::
    reserved         240/4, 255.255.255.255, documentation/benchmark ranges, anything else
                     Python's `ipaddress` does not call global

IPv4 inside IPv6 (`::ffff:10.0.0.1`, `::10.0.0.1`, 6to4 `2002::/16`, NAT64 `64:ff9b::/96`)
is judged by the embedded IPv4 address. Numeric host spellings that `inet_aton` accepts
(`0x7f000001`, `2130706433`, `0177.0.0.1`, `127.1`) are parsed as the address they denote
before any DNS lookup, so they are judged (and shown in errors) as that address.

An allow-list entry is a host name (exact, case-insensitive), an IP address or a CIDR. A host
name entry allows that name whatever it resolves to; an address/CIDR entry allows a resolved
address inside it. An allowed host may also use plain http.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.salesforce.redact import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The guard refused a URL; `.rule` is one of the names in the module docstring."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (refused by rule {rule})")
        self.rule = rule
        self.message = str(self)


def parse_numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host denotes (any `inet_aton` spelling, or IPv6), else None."""
    text = host.strip().strip("[]")
    if "%" in text:  # an IPv6 zone id (fe80::1%eth0) still names a link-local address
        text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or not all(c in "0123456789abcdefxABCDEFX." for c in text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    # IPv4-compatible (deprecated) ::a.b.c.d, but not :: and ::1 themselves
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def address_rule(address: IPAddress) -> str | None:
    """The rule that refuses `address`, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_rule(embedded)
    if address in METADATA_ADDRESSES:
        return "metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link_local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "private"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class AllowList:
    """FORCEBOT_HTTP_ALLOW_HOSTS, parsed: host names and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Build from entries; raise ValueError naming a malformed one."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            numeric = parse_numeric_host(entry) if "/" not in entry else None
            if numeric is not None:
                networks.append(ipaddress.ip_network(numeric))
            elif "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    raise ValueError(f"{raw!r} is not a CIDR such as 10.0.0.0/8") from None
            elif _is_host_name(entry):
                hosts.add(entry.rstrip("."))
            else:
                raise ValueError(f"{raw!r} is not a host name, address or CIDR")
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def lists_exactly(self, address: IPAddress) -> bool:
        """The address is an entry of its own (a /32 or /128), not just inside a range."""
        return any(n.num_addresses == 1 and address in n for n in self.networks
                   if address.version == n.version)  # fmt: skip

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                candidates.append(embedded)
        return any(a in n for a in candidates for n in self.networks if a.version == n.version)


def _is_host_name(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return (
        all(
            0 < len(label) <= 63
            and label[0] != "-"
            and label[-1] != "-"
            and all(c.isalnum() or c == "-" for c in label)
            for label in labels
        )
        and len(text) <= 253
    )


def system_resolver(host: str, port: int) -> list[str]:
    """Every address getaddrinfo gives for host (IPv4 and IPv6, TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to `address`, while TLS and Host use `host`."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    host_class: str  # "public", "allowed" or (with allow_loopback) "loopback"
    addresses: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Policy:
    """What the guard lets through; webhooks add `allow_loopback` for local receivers."""

    allow: AllowList = field(default_factory=AllowList)
    allow_loopback: bool = False
    resolver: Resolver = system_resolver


def check_url(url: str, policy: Policy) -> Target:
    """Resolve and check `url`; return where to connect, or raise `Refused`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(
            "scheme", f"{redact_url(url)!r}: only https (or http to allowed hosts) is supported"
        )
    try:
        host = parts.hostname
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("no_host", f"{redact_url(url)!r}: {exc}") from None
    if not host:
        raise Refused("no_host", f"{redact_url(url)!r}: the URL has no host")
    host = host.rstrip(".") or host
    numeric = parse_numeric_host(host)
    host_allowed = policy.allow.allows_host(host)
    if numeric is None and host.lower() in METADATA_HOSTS and not host_allowed:
        raise Refused("metadata", f"{host}: a cloud metadata host name")
    if numeric is not None:
        addresses = [numeric]
    else:
        try:
            resolved = policy.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise Refused("unresolvable", f"{host}: could not resolve ({exc})") from None
        addresses = []
        for text in resolved:
            parsed = parse_numeric_host(text)
            if parsed is None:
                raise Refused("unresolvable", f"{host}: resolver returned {text!r}")
            addresses.append(parsed)
    if not addresses:
        raise Refused("unresolvable", f"{host}: no address")
    # Loopback receivers are named as such (localhost, 127.0.0.1, [::1]): a public-looking
    # name that resolves to loopback is refused like any other rebinding to this host.
    named_loopback = host.lower() == "localhost" or (
        numeric is not None and address_rule(numeric) == "loopback"
    )
    classes: list[str] = []
    for address in addresses:
        rule = address_rule(address)
        if rule == "metadata" and not policy.allow.lists_exactly(address):
            # A broad entry (a host name, 169.254.0.0/16, 0.0.0.0/0) never opens the metadata
            # service; only that exact address listed on its own does.
            shown = host if str(address) == host else f"{host} resolves to {address}"
            raise Refused(rule, f"{shown}: a metadata address")
        if host_allowed or policy.allow.allows_address(address):
            classes.append("allowed")
        elif rule is None:
            classes.append("public")
        elif rule == "loopback" and policy.allow_loopback and named_loopback:
            classes.append("loopback")
        else:
            shown = host if str(address) == host else f"{host} resolves to {address}"
            raise Refused(rule, f"{shown}: a {rule.replace('_', '-')} address")
    if scheme == "http" and any(c == "public" for c in classes):
        raise Refused("plain_http", f"{host}: plain http is only allowed to listed hosts")
    host_class = "allowed" if "allowed" in classes else classes[0]
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        address=str(addresses[0]),
        host_class=host_class,
        addresses=tuple(str(a) for a in addresses),
    )

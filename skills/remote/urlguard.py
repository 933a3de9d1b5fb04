"""Where outbound requests may go: public addresses only, unless allow-listed (SSRF, DNS rebinding).

A remote skill's URL (saved by an operator, called with a bearer token and the user's text) and a
media download URL must not reach the bot's own network: loopback, link-local (169.254.169.254, the
cloud metadata service), private, carrier-grade NAT, multicast or reserved addresses are refused
unless the host or its network is on the allow-list (`OUTBOUND_URL_ALLOWLIST`: host names, IPs,
CIDRs). The name is resolved first and every address it resolves to is checked; the request is
then sent to the address that was checked (`pinned`), so a second lookup cannot answer differently
(DNS rebinding). With `require_https_for_token`, a bearer token goes only over https.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


class UrlRefused(ValueError):
    """An outbound URL that may not be called (scheme, address, or a token over plain http)."""


class Unresolvable(UrlRefused):
    """The host name does not resolve (now): nothing to call."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise Unresolvable(f"cannot resolve {host}: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Allowlist:
    """Host names (exact, case-insensitive) and networks that may be private."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str]) -> Allowlist:
        hosts, networks = set(), []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def admits(self, host: str, address: IPAddress) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(address in n for n in self.networks)


def _address(text: str) -> IPAddress:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone id is not part of the address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (not loopback, link-local, private, CGNAT, reserved...)."""
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Checked:
    """A URL that passed: its host, port and the addresses it resolved to (all of them allowed)."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL with the checked address instead of the name, headers, httpx extensions): the request
        goes where the check looked, with the name in Host and in TLS SNI."""
        parts = urlsplit(self.url)
        address = self.addresses[0]
        literal = f"[{address}]" if ":" in address else address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        host_header = self.host if parts.port is None else f"{self.host}:{parts.port}"
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return url, {"Host": host_header}, extensions


def check_url(url: str, allow: Allowlist, *, with_token: bool = False, require_https_for_token: bool = False,
              resolve: Resolver = system_resolver) -> Checked:
    """The URL if it may be called; UrlRefused saying why not."""
    parts = urlsplit(url or "")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("only http:// and https:// URLs with a host")
    if parts.username or parts.password:
        raise UrlRefused("credentials in the URL: use the token field")
    if with_token and require_https_for_token and scheme != "https":
        raise UrlRefused("a bearer token goes only over https (production mode)")
    host = parts.hostname
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UrlRefused(f"bad port: {exc}") from exc
    try:
        addresses = [str(_address(host))]
    except ValueError:
        addresses = list(resolve(host, port))
    if not addresses:
        raise UrlRefused(f"{host} resolves to no address")
    for text in addresses:
        address = _address(text)
        if not is_public(address) and not allow.admits(host, address):
            raise UrlRefused(f"{host} resolves to {address}, a loopback, link-local, private or reserved address "
                             "(allow-list it in OUTBOUND_URL_ALLOWLIST if it is meant)")
    return Checked(url, host, port, tuple(addresses))

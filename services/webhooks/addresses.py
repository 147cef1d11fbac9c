"""Which webhook URLs may be called: server-side request forgery protection (OWASP SSRF prevention cheat sheet).

A webhook URL is chosen by a client, and the service calls it from inside the deployment, where Redis, MinIO and the
cloud's metadata endpoint (169.254.169.254) are reachable. So a URL is refused unless it is ``http``/``https`` and
every address its host resolves to is a public one (``ipaddress``: not loopback, private, link-local, multicast,
reserved, unspecified or shared address space; IPv4-mapped IPv6 is judged by its IPv4 address), or the operator's
allowlist (``ATELIER_WEBHOOK_ALLOWLIST``: host names and CIDRs, comma separated) names the host or the address.

The check runs at submission (a 422 at the door) and again before every delivery attempt (DNS may have changed since:
rebinding), and the delivery connects to the very address that was checked (``delivery.py`` pins it).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from shared.errors import ParamError

SCHEMES = ("http", "https")
MAX_URL_CHARS = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class WebhookRefused(ParamError):
    """A webhook URL that may not be called (422): ``code`` says why, ``message`` names the URL."""

    default_code = "webhook_refused"


@dataclass(frozen=True)
class Allowlist:
    """The operator's exceptions: host names (exact, case-insensitive) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> Allowlist:
        """``"hooks.internal, 10.0.0.0/8, 127.0.0.1"``; an entry that parses as an address or network is one."""
        hosts, networks = set(), []
        for entry in (part.strip() for part in (text or "").split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def names_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def names_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


@dataclass(frozen=True)
class Target:
    """A URL that passed the check, with the addresses it resolved to (the delivery connects to the first)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA), through the system resolver."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def is_public(address: IPAddress) -> bool:
    """True for an address on the public Internet: ``is_global`` excludes loopback, private, link-local, reserved,
    unspecified and shared (100.64/10) space; multicast is excluded separately (some multicast ranges are global)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str, allowlist: Allowlist, *, resolve: Resolver = system_resolver, field: str = "webhook"
              ) -> Target:
    """The ``Target`` of ``url``, or ``WebhookRefused`` naming the URL and what is allowed."""
    shown = url[:100]
    parts = _split(url, field)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise WebhookRefused("webhook_unresolvable", f"{field}={shown!r}: the host {host!r} does not resolve "
                                 f"({exc}); expected a public host name", field=field) from None
        if not addresses:
            raise WebhookRefused("webhook_unresolvable", f"{field}={shown!r}: the host {host!r} has no address",
                                 field=field)
    if not allowlist.names_host(host):
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            if not is_public(address) and not allowlist.names_address(address):
                raise WebhookRefused("webhook_address_refused", f"{field}={shown!r} resolves to {address}, a "
                                     "loopback, private, link-local, multicast or reserved address; expected a public "
                                     "one (an operator may allow it with ATELIER_WEBHOOK_ALLOWLIST)", field=field)
    return Target(url=url, scheme=parts.scheme, host=host, port=port, addresses=tuple(addresses))


def _split(url: str, field: str) -> SplitResult:
    shown = url[:100]
    if len(url) > MAX_URL_CHARS or any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise WebhookRefused("bad_webhook_url", f"{field}={shown!r} is not allowed; expected an http(s) URL of at "
                             f"most {MAX_URL_CHARS} characters without spaces or control characters", field=field)
    try:
        parts: SplitResult | None = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in SCHEMES or not parts.hostname:
        raise WebhookRefused("bad_webhook_url", f"{field}={shown!r} is not allowed; expected an absolute URL with "
                             "scheme http or https and a host, such as https://example.com/hooks", field=field)
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("bad_webhook_url", f"{field}={shown!r} is not allowed: credentials in the URL would be "
                             "stored and logged; put a token in the path or query instead", field=field)
    return parts

"""Where an outgoing webhook may be sent: the check the API makes when a subscription is
created or changed, and the delivery activity makes again before every attempt.

A webhook's URL is written by people who cannot reach what the worker reaches. Sent blindly,
a delivery could read a cloud metadata service or poke an internal admin page on their behalf
(server-side request forgery). So a target's host is resolved and EVERY address it resolves
to is judged (`refusal_for_address`): one bad address refuses the target, since a connection
could go to any of them, and a name that answers a public address one moment and an internal
one the next (DNS rebinding) is refused whenever the internal one shows. The delivery then
connects to an address vetted here (`VettedTarget.addresses`), never to a fresh DNS answer.

Never allowed: link-local, cloud metadata, unspecified, multicast, broadcast and reserved
addresses. Allowed only inside WEBHOOK_ALLOWED_NETWORKS (`settings.parse_networks`): private,
shared (carrier-grade NAT), loopback and other special-purpose addresses. An IPv6 address that
carries an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo) is judged as that IPv4 address.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import httpx

from settings import Network, parse_networks

__all__ = [
    "RESOLVE_TIMEOUT_SECONDS",
    "Network",
    "Resolver",
    "TargetRefused",
    "TargetUnresolved",
    "VettedTarget",
    "parse_networks",
    "refusal_for_address",
    "resolve",
    "vet_target",
]

Address = IPv4Address | IPv6Address
# A host name and port to the addresses they resolve to (`resolve`; tests give their own).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# A host that has not resolved within this long is refused as unresolvable.
RESOLVE_TIMEOUT_SECONDS = 5.0
SETTING = "WEBHOOK_ALLOWED_NETWORKS"
DEFAULT_PORTS = {"http": 80, "https": 443}
EXAMPLE = "https://hooks.example.com/incidents"


@dataclass(frozen=True)
class _Kind:
    """A kind of address: what a refusal calls it, its networks, and whether the setting can allow it."""

    what: str
    networks: tuple[Network, ...]
    allowable: bool


def _kind(what: str, *networks: str, allowable: bool) -> _Kind:
    return _Kind(what, tuple(ip_network(network) for network in networks), allowable)


_METADATA = frozenset(
    ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
# In order: the first kind an address is in names it.
_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
_KINDS = (
    _kind("a link-local address", "169.254.0.0/16", "fe80::/10", allowable=False),
    _kind("an unspecified address", "0.0.0.0/8", "::/128", allowable=False),
    _kind("a multicast address", "224.0.0.0/4", "ff00::/8", allowable=False),
    _kind("a broadcast address", "255.255.255.255/32", allowable=False),
    _kind("a reserved address", "240.0.0.0/4", "100::/64", allowable=False),
    _kind("a loopback address", "127.0.0.0/8", "::1/128", allowable=True),
    _kind("a private address", *_PRIVATE, allowable=True),
    _kind("a shared (carrier-grade NAT) address", "100.64.0.0/10", allowable=True),
    _kind(
        "a special-purpose address (documentation, benchmarking or protocol use)",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:2::/48",
        "2001:db8::/32",
        "3fff::/20",
        "64:ff9b:1::/48",
        allowable=True,
    ),
)
_RESERVED_V6 = _Kind("a reserved address", (), allowable=False)
_METADATA_KIND = _Kind("a cloud metadata address", (), allowable=False)
_NAT64 = ip_network("64:ff9b::/96")
_TEREDO = ip_network("2001::/32")


@dataclass(frozen=True)
class _Refusal:
    address: Address
    kind: _Kind
    # The IPv4 address an IPv6 one carries, when that is what was judged.
    carried: IPv4Address | None = None

    def _shown(self) -> str:
        if self.carried is None:
            return str(self.address)
        mapped = isinstance(self.address, IPv6Address) and self.address.ipv4_mapped is not None
        return f"{f'::ffff:{self.carried}' if mapped else self.address} (the IPv4 address {self.carried})"

    def _fix(self) -> str:
        if self.kind.allowable:
            return f"list its network in {SETTING} to allow it"
        return f"webhooks are never sent there ({SETTING} cannot allow it); give the receiver's own address or name"

    def resolves_to(self) -> str:
        return f"resolves to {self._shown()}, {self.kind.what}; {self._fix()}"

    def literal(self) -> str:
        return f"{self._shown()} is {self.kind.what}; {self._fix()}"


def _carried_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64, 6to4, Teredo's client)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _TEREDO and address.teredo is not None:
        return address.teredo[1]
    return None


def _kind_of(address: Address) -> _Kind | None:
    if address in _METADATA:
        return _METADATA_KIND
    for kind in _KINDS:
        if any(address in network for network in kind.networks):
            return kind
    if isinstance(address, IPv6Address) and address.is_reserved:
        # IETF-reserved IPv6 blocks (::/8 beyond the loopback and unspecified addresses, and
        # unassigned ones): nothing to deliver to there.
        return _RESERVED_V6
    return None


def _judge(address: Address, allowed: Sequence[Network]) -> _Refusal | None:
    carried = _carried_ipv4(address) if isinstance(address, IPv6Address) else None
    kind = _kind_of(carried if carried is not None else address)
    if kind is None:
        return None
    judged = (address,) if carried is None else (address, carried)
    if kind.allowable and any(each in network for network in allowed for each in judged):
        return None
    return _Refusal(address, kind, carried)


def refusal_for_address(ip: IPv4Address | IPv6Address, allowed: Sequence[Network]) -> str | None:
    """Why a webhook may not be sent to `ip` (a sentence that says how to fix it), or None.

    `allowed` (WEBHOOK_ALLOWED_NETWORKS) allows private, loopback and other special-purpose
    addresses inside it; link-local, metadata, unspecified, multicast, broadcast and reserved
    ones are refused whatever it says."""
    refusal = _judge(ip, allowed)
    return refusal.resolves_to() if refusal is not None else None


class TargetRefused(Exception):
    """A webhook URL that may not be delivered to; the message is a sentence for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TargetUnresolved(TargetRefused):
    """The URL's host did not resolve (now): refused when a subscription is saved, tried
    again later by a delivery (DNS may come back)."""


@dataclass(frozen=True)
class VettedTarget:
    """A webhook URL whose every address was judged safe; a delivery connects to `addresses`."""

    url: str
    # The host as sent (ASCII: an international name in its xn-- form), without brackets.
    host: str
    port: int
    scheme: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        """The `Host` header: the host, and the port unless it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS.get(self.scheme) == self.port else f"{host}:{self.port}"


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, in the system resolver's order of preference, each once."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vet_target(url: str, allowed: Sequence[Network], *, resolver: Resolver | None = None) -> VettedTarget:
    """The URL with the addresses a delivery may connect to; `TargetRefused` (a sentence) when
    its scheme is not http(s), its host does not resolve (`TargetUnresolved`), or any address it
    resolves to is refused (`refusal_for_address`)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise TargetRefused(f"{url!r} is not a URL ({error}); give one such as {EXAMPLE}") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise TargetRefused(f"{url!r} is not an http:// or https:// URL; webhooks are sent over HTTP(S) only")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise TargetRefused(f"{url!r} has no host; give one such as {EXAMPLE}")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if not 1 <= port <= 65535:
        raise TargetRefused(f"{url!r} has port {port}, not a number from 1 to 65535")
    literal = _literal(host)
    if literal is not None:
        refusal = _judge(literal, allowed)
        if refusal is not None:
            raise TargetRefused(refusal.literal())
        return VettedTarget(url, host, port, parsed.scheme, (str(literal),))
    found = await _resolve(host, port, resolver or resolve)
    addresses = []
    for text in found:
        address = _literal(text)
        if address is None:
            raise TargetUnresolved(f"{host} resolved to {text!r}, which is no IP address; check the host name")
        refusal = _judge(address, allowed)
        if refusal is not None:
            raise TargetRefused(f"{host} {refusal.resolves_to()}")
        addresses.append(str(address))
    return VettedTarget(url, host, port, parsed.scheme, tuple(addresses))


def _literal(host: str) -> Address | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int, resolver: Resolver) -> Sequence[str]:
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await resolver(host, port)
    except TimeoutError:
        raise TargetUnresolved(
            f"{host} could not be resolved within {RESOLVE_TIMEOUT_SECONDS:g} s; check the host name"
        ) from None
    except (OSError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        reason = reason[:1].lower() + reason[1:]
        raise TargetUnresolved(f"{host} could not be resolved: {reason}; check the host name") from None
    if not found:
        raise TargetUnresolved(f"{host} could not be resolved: no address; check the host name")
    return found

"""Where a webhook may be sent (webhook_targets.py): every kind of address, the setting that
allows private ones, and the vetting of a URL (its scheme, its host's every address)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

import webhook_targets
from settings import SettingsError, load_settings
from webhook_targets import (
    Network,
    TargetRefused,
    TargetUnresolved,
    VettedTarget,
    parse_networks,
    refusal_for_address,
    vet_target,
)

NOTHING: list[Network] = []
EVERYTHING = [ip_network("0.0.0.0/0"), ip_network("::/0")]
LOOPBACK = parse_networks("127.0.0.0/8,::1/128")

NEVER = [
    ("169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"),
    ("192.0.0.192", "a cloud metadata address"),
    ("169.254.1.1", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("0.0.0.0", "an unspecified address"),
    ("0.1.2.3", "an unspecified address"),
    ("::", "an unspecified address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("ff02::1", "a multicast address"),
    ("255.255.255.255", "a broadcast address"),
    ("240.0.0.1", "a reserved address"),
    ("100::1", "a reserved address"),
    ("::a00:5", "a reserved address"),  # IPv4-compatible (deprecated)
    ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("::ffff:169.254.10.10", "a link-local address"),
    ("::ffff:0.0.0.0", "an unspecified address"),
    ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),  # NAT64 of 169.254.169.254
    ("2002:a9fe:a9fe::1", "a cloud metadata address"),  # 6to4 of 169.254.169.254
]
ALLOWABLE = [
    ("10.0.0.5", "a private address", "10.0.0.0/8"),
    ("172.16.0.1", "a private address", "172.16.0.0/12"),
    ("172.31.255.254", "a private address", "172.16.0.0/12"),
    ("192.168.1.10", "a private address", "192.168.0.0/16"),
    ("fd12:3456::1", "a private address", "fc00::/7"),
    ("fc00::1", "a private address", "fc00::/7"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address", "100.64.0.0/10"),
    ("100.127.255.254", "a shared (carrier-grade NAT) address", "100.64.0.0/10"),
    ("127.0.0.1", "a loopback address", "127.0.0.0/8"),
    ("127.8.9.10", "a loopback address", "127.0.0.0/8"),
    ("::1", "a loopback address", "::1/128"),
    ("::ffff:10.0.0.5", "a private address", "10.0.0.0/8"),
    ("::ffff:127.0.0.1", "a loopback address", "127.0.0.0/8"),
    ("64:ff9b::a00:5", "a private address", "10.0.0.0/8"),  # NAT64 of 10.0.0.5
    ("192.0.2.10", "a special-purpose address", "192.0.2.0/24"),
    ("2001:db8::1", "a special-purpose address", "2001:db8::/32"),
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111",
          "::ffff:8.8.8.8", "64:ff9b::808:808"]  # fmt: skip


@pytest.mark.parametrize(("address", "what"), NEVER)
def test_link_local_metadata_unspecified_multicast_and_reserved_addresses_are_always_refused(
    address: str, what: str
) -> None:
    ip = ip_address(address)
    for allowed in (NOTHING, EVERYTHING, [ip_network(ip)]):
        refusal = refusal_for_address(ip, allowed)
        assert refusal is not None, (address, allowed)
        assert what in refusal
        assert "webhooks are never sent there (WEBHOOK_ALLOWED_NETWORKS cannot allow it)" in refusal


@pytest.mark.parametrize(("address", "what", "network"), ALLOWABLE)
def test_private_loopback_and_special_addresses_are_refused_unless_an_allowed_network_holds_them(
    address: str, what: str, network: str
) -> None:
    ip = ip_address(address)
    refusal = refusal_for_address(ip, NOTHING)
    assert refusal is not None
    assert what in refusal
    assert refusal.endswith("; list its network in WEBHOOK_ALLOWED_NETWORKS to allow it")
    assert refusal_for_address(ip, [ip_network(network)]) is None
    assert refusal_for_address(ip, EVERYTHING) is None
    # A network that does not hold it changes nothing.
    assert refusal_for_address(ip, [ip_network("203.0.113.0/24"), ip_network("2001:db8:1::/48")]) == refusal


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_for_address(ip_address(address), NOTHING) is None


def test_the_sentence_names_the_address_and_how_to_allow_it() -> None:
    assert refusal_for_address(ip_address("10.0.0.5"), NOTHING) == (
        "resolves to 10.0.0.5, a private address; list its network in WEBHOOK_ALLOWED_NETWORKS to allow it"
    )
    # An IPv4-mapped address is judged (and named) as the IPv4 address it stands for.
    assert refusal_for_address(ip_address("::ffff:10.0.0.5"), NOTHING) == (
        "resolves to ::ffff:10.0.0.5 (the IPv4 address 10.0.0.5), a private address; "
        "list its network in WEBHOOK_ALLOWED_NETWORKS to allow it"
    )
    assert refusal_for_address(ip_address("169.254.169.254"), EVERYTHING) == (
        "resolves to 169.254.169.254, a cloud metadata address; webhooks are never sent there "
        "(WEBHOOK_ALLOWED_NETWORKS cannot allow it); give the receiver's own address or name"
    )


def test_a_mapped_address_is_allowed_by_its_ipv4_network() -> None:
    assert refusal_for_address(ip_address("::ffff:10.1.2.3"), parse_networks("10.0.0.0/8")) is None
    assert refusal_for_address(ip_address("::ffff:10.1.2.3"), parse_networks("192.168.0.0/16")) is not None


addresses = st.one_of(
    st.integers(min_value=0, max_value=2**32 - 1).map(IPv4Address),
    st.integers(min_value=0, max_value=2**128 - 1).map(IPv6Address),
)
networks = st.one_of(
    st.builds(lambda a, p: ip_network(f"{a}/{p}", strict=False), addresses.filter(lambda a: a.version == 4),
              st.integers(0, 32)),
    st.builds(lambda a, p: ip_network(f"{a}/{p}", strict=False), addresses.filter(lambda a: a.version == 6),
              st.integers(0, 128)),
)  # fmt: skip
LINK_LOCAL = [ip_network("169.254.0.0/16"), ip_network("fe80::/10")]
METADATA = {ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")}


@given(address=addresses, allowed=st.lists(networks, max_size=4))
def test_any_address_is_judged_without_error_and_link_local_and_metadata_never_pass(
    address: IPv4Address | IPv6Address, allowed: list[Network]
) -> None:
    refusal = refusal_for_address(address, allowed)
    assert refusal is None or refusal.startswith(f"resolves to {_shown(address)}")
    carried = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    for judged in (address, carried):
        if judged is not None and (judged in METADATA or any(judged in network for network in LINK_LOCAL)):
            assert refusal is not None
            assert refusal_for_address(address, [*allowed, *EVERYTHING]) is not None
    # Allowing everything leaves only what is never allowed.
    widest = refusal_for_address(address, EVERYTHING)
    assert widest is None or "never sent there" in widest


def _shown(address: IPv4Address | IPv6Address) -> str:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def test_parse_networks_reads_a_comma_separated_list_and_names_a_bad_entry() -> None:
    assert parse_networks("") == []
    assert parse_networks(" 10.0.0.0/8 , ::1 ,, 192.168.1.7/24") == [
        ip_network("10.0.0.0/8"),
        ip_network("::1/128"),
        ip_network("192.168.1.0/24"),  # host bits ignored
    ]
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8' is not a network"):
        parse_networks("10.0.0.0/8,10.0.0.300/8")


def test_a_bad_allowed_network_stops_the_process_with_a_line_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"WEBHOOK_ALLOWED_NETWORKS: .*'intranet' is not a network"):
        load_settings(_env_file=None, webhook_allowed_networks="10.0.0.0/8,intranet")
    settings = load_settings(_env_file=None, webhook_allowed_networks="10.0.0.0/8, fd00::/8")
    assert settings.webhook_networks == [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]
    assert load_settings(_env_file=None).webhook_networks == []
    with pytest.raises(SettingsError, match="WEBHOOK_ATTEMPT_TIMEOUT_SECONDS"):
        load_settings(_env_file=None, webhook_attempt_timeout_seconds=301)
    with pytest.raises(SettingsError, match="WEBHOOK_RETRY_INITIAL_SECONDS is above WEBHOOK_RETRY_MAX_SECONDS"):
        load_settings(_env_file=None, webhook_retry_initial_seconds=60, webhook_retry_max_seconds=30)


# ---------------------------------------------------------------------------- vet_target


async def test_an_ip_literal_url_needs_no_dns_and_is_judged_as_is() -> None:
    async def no_dns(host: str, port: int) -> Sequence[str]:
        raise AssertionError(f"resolved {host}")

    target = await vet_target("http://127.0.0.1:8080/hooks?x=1", LOOPBACK, resolver=no_dns)
    assert target == VettedTarget("http://127.0.0.1:8080/hooks?x=1", "127.0.0.1", 8080, "http", ("127.0.0.1",))
    assert target.host_header == "127.0.0.1:8080"
    v6 = await vet_target("https://[::1]/hooks", LOOPBACK, resolver=no_dns)
    assert (v6.host, v6.port, v6.scheme, v6.addresses, v6.host_header) == ("::1", 443, "https", ("::1",), "[::1]")
    with pytest.raises(TargetRefused) as refused:
        await vet_target("http://10.0.0.5/hooks", LOOPBACK, resolver=no_dns)
    assert refused.value.message == (
        "10.0.0.5 is a private address; list its network in WEBHOOK_ALLOWED_NETWORKS to allow it"
    )
    assert str(refused.value) == refused.value.message
    with pytest.raises(TargetRefused, match=r"169\.254\.169\.254 is a cloud metadata address; webhooks are never sent"):
        await vet_target("http://169.254.169.254/latest/meta-data/", EVERYTHING, resolver=no_dns)
    with pytest.raises(TargetRefused, match=r"::ffff:127\.0\.0\.1 \(the IPv4 address 127\.0\.0\.1\) is a loopback"):
        await vet_target("http://[::ffff:127.0.0.1]/", NOTHING, resolver=no_dns)


async def test_localhost_is_resolved_and_refused_unless_loopback_is_allowed() -> None:
    target = await vet_target("http://localhost:9000/hooks", LOOPBACK)
    assert target.host == "localhost"
    assert target.port == 9000
    assert target.addresses
    assert all(ip_address(address).is_loopback for address in target.addresses)
    assert target.host_header == "localhost:9000"
    with pytest.raises(TargetRefused) as refused:
        await vet_target("http://localhost:9000/hooks", NOTHING)
    assert not isinstance(refused.value, TargetUnresolved)
    assert refused.value.message.startswith("localhost resolves to ")
    assert "a loopback address; list its network in WEBHOOK_ALLOWED_NETWORKS to allow it" in refused.value.message


async def test_an_unresolvable_host_is_refused_with_a_sentence() -> None:
    with pytest.raises(TargetUnresolved) as refused:
        await vet_target("https://no-such-receiver.invalid/hooks", EVERYTHING)
    assert refused.value.message.startswith("no-such-receiver.invalid could not be resolved")
    assert refused.value.message.endswith("; check the host name")
    assert isinstance(refused.value, TargetRefused)


async def test_one_unsafe_address_among_several_refuses_the_host() -> None:
    """DNS rebinding: a name answering a public and an internal address is refused."""

    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "169.254.169.254"]

    with pytest.raises(TargetRefused, match=r"^hooks\.example\.com resolves to 169\.254\.169\.254, a cloud metadata"):
        await vet_target("https://hooks.example.com/in", EVERYTHING, resolver=rebinding)

    async def public(host: str, port: int) -> list[str]:
        assert (host, port) == ("xn--bcher-kva.example", 443)
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    target = await vet_target("https://Bücher.example/in", NOTHING, resolver=public)
    assert target.host == "xn--bcher-kva.example"
    assert target.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert target.host_header == "xn--bcher-kva.example"


async def test_resolver_failures_and_silence_are_unresolved(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(TargetUnresolved, match=r"^hooks\.example\.com could not be resolved: temporary failure"):
        await vet_target("https://hooks.example.com/", NOTHING, resolver=failing)

    async def empty(host: str, port: int) -> list[str]:
        return []

    with pytest.raises(TargetUnresolved, match="could not be resolved: no address"):
        await vet_target("https://hooks.example.com/", NOTHING, resolver=empty)

    async def silent(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    monkeypatch.setattr(webhook_targets, "RESOLVE_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(TargetUnresolved, match=r"could not be resolved within 0\.05 s"):
        await vet_target("https://hooks.example.com/", NOTHING, resolver=silent)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://hooks.example.com/in", "is not an http:// or https:// URL"),
        ("file:///etc/passwd", "is not an http:// or https:// URL"),
        ("hooks.example.com/in", "is not an http:// or https:// URL"),
        ("http:///in", "has no host"),
        ("http://hooks.example.com:99999/in", "has port 99999, not a number from 1 to 65535"),
        ("http://hooks.example.com:0/in", "has port 0"),
    ],
)
async def test_urls_that_are_no_http_target_are_refused(url: str, says: str) -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError(f"resolved {host}")

    with pytest.raises(TargetRefused, match=says) as refused:
        await vet_target(url, EVERYTHING, resolver=no_dns)
    assert not isinstance(refused.value, TargetUnresolved)

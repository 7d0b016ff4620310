"""A real authoritative DNS server (Debian's Knot DNS, ``knotd``) on 127.0.0.1 for the sender
authentication tests, serving SPF, DKIM (keys generated here) and DMARC records of test
domains. ``make check`` installs knot (TEST_PACKAGES); without it the tests that use it fail,
they never skip. Tests that use it get the ``dns`` marker (tests/conftest.py).

The zones are ``co.jp`` and ``ne.jp``: real public suffixes, so the organisational domains of
the test senders come from the public suffix list as they would for real mail. A name outside
them is refused by the server (a server failure for the resolver: ``temperror``).
"""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dkim
import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.clamd import free_port
from tests.tools import require_tool

START_SECONDS = 30.0
# The address SPF authorises for each sending domain (documentation ranges, RFC 5737).
PARTNER_IP = "192.0.2.10"
FORWARDER_IP = "198.51.100.7"
STRANGER_IP = "203.0.113.66"
SELECTOR = "sel1"
# Domains with a DKIM key, and the SPF and DMARC records of each test domain (relative to
# the zone). "dead.example.org" is in no zone: the server refuses it.
SIGNERS = ("partner.co.jp", "relaxed.co.jp", "strict.co.jp", "town.ne.jp", "forwarder.ne.jp")
RECORDS: dict[str, list[tuple[str, str]]] = {
    "co.jp": [
        ("partner", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.partner", "v=DMARC1; p=reject; rua=mailto:dmarc-rua@partner.co.jp"),
        ("soft", f"v=spf1 ip4:{PARTNER_IP} ~all"),
        ("neutral", f"v=spf1 ip4:{PARTNER_IP} ?all"),
        ("broken", "v=spf1 include:dead.example.org -all"),
        ("macro", "v=spf1 exists:%{i}.allow.macro.co.jp -all"),
        ("relaxed", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.relaxed", "v=DMARC1; p=reject; adkim=r; aspf=r"),
        ("strict", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.strict", "v=DMARC1; p=reject; adkim=s; aspf=s"),
        ("quarantined", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.quarantined", "v=DMARC1; p=quarantine"),
        ("bank", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.bank", "v=DMARC1; p=reject; rua=mailto:reports@dmarc-vendor.ne.jp"),
        ("_dmarc.leaky", "v=DMARC1; p=none; rua=mailto:r@collector.ne.jp"),
        # p=reject applied to a quarter of failing mail (RFC 7489 6.6.4).
        ("sampled", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.sampled", "v=DMARC1; p=reject; pct=25; rua=mailto:dmarc@sampled.co.jp"),
    ],
    "ne.jp": [
        ("town", f"v=spf1 ip4:{PARTNER_IP} -all"),
        ("_dmarc.town", "v=DMARC1; p=none; rua=mailto:dmarc@town.ne.jp"),
        ("forwarder", f"v=spf1 ip4:{FORWARDER_IP} -all"),
        ("mx.forwarder", f"v=spf1 ip4:{FORWARDER_IP} -all"),
        # §7.1: dmarc-vendor.ne.jp accepts reports for bank.co.jp.
        ("bank.co.jp._report._dmarc.dmarc-vendor", "v=DMARC1"),
    ],
}
ADDRESSES: dict[str, list[tuple[str, str]]] = {
    "co.jp": [(f"{PARTNER_IP}.allow.macro", "127.0.0.2")],
    "ne.jp": [],
}


@dataclass(frozen=True)
class AuthDns:
    """The running server: its address for ``auth.nameservers`` and the signing keys."""

    nameserver: str
    keys: dict[str, bytes]  # domain -> private key (PEM) of selector SELECTOR

    def sign(self, message: bytes, domain: str) -> bytes:
        """``message`` with a DKIM signature of ``domain`` prepended."""
        signature = dkim.sign(
            message,
            SELECTOR.encode(),
            domain.encode(),
            self.keys[domain],
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
        return bytes(signature) + message


def _key() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode("ascii")


def _txt(text: str) -> str:
    """A TXT value in zone-file syntax, split into strings of at most 255 characters."""
    return " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))


def _zone(origin: str, records: list[tuple[str, str]], addresses: list[tuple[str, str]]) -> str:
    lines = [
        f"$ORIGIN {origin}.",
        "$TTL 60",
        f"@ SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60",
        f"@ NS ns.{origin}.",
        "ns A 127.0.0.1",
    ]
    lines += [f"{name} TXT {_txt(value)}" for name, value in records]
    lines += [f"{name} A {address}" for name, address in addresses]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def auth_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthDns]:
    knotd = require_tool("knotd", debian_package="knot")
    base = tmp_path_factory.mktemp("knot")
    port = free_port()
    keys: dict[str, bytes] = {}
    records = {zone: list(items) for zone, items in RECORDS.items()}
    for domain in SIGNERS:
        private, public = _key()
        keys[domain] = private
        name, _, zone = domain.partition(".")
        records[zone].append((f"{SELECTOR}._domainkey.{name}", f"v=DKIM1; k=rsa; p={public}"))
    zones = ""
    for zone, items in records.items():
        (base / f"{zone}.zone").write_text(_zone(zone, items, ADDRESSES[zone]))
        zones += f'  - domain: {zone}\n    file: "{base / f"{zone}.zone"}"\n'
    config = base / "knot.conf"
    config.write_text(
        f'server:\n  rundir: "{base}"\n  listen: 127.0.0.1@{port}\n'
        "  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"
        f'database:\n  storage: "{base}"\n'
        f'log:\n  - target: "{base / "knot.log"}"\n    any: info\n'
        f'control:\n  listen: "{base / "knot.sock"}"\n'
        f'template:\n  - id: default\n    storage: "{base}"\n    journal-content: none\n'
        f"zone:\n{zones}"
    )
    log = (base / "stdout.log").open("wb")
    process = subprocess.Popen([knotd, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(port):
            if process.poll() is not None:
                pytest.fail(
                    f"knotd exited {process.returncode}: {(base / 'stdout.log').read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"knotd did not answer within {START_SECONDS}s")
            time.sleep(0.05)
        yield AuthDns(f"127.0.0.1:{port}", keys)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _answers(port: int) -> bool:
    query = dns.message.make_query("co.jp.", dns.rdatatype.SOA)
    try:
        reply = dns.query.udp(query, "127.0.0.1", timeout=0.5, port=port)
    except (OSError, dns.exception.Timeout):
        return False
    return bool(reply.answer)

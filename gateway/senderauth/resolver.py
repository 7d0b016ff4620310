"""The project's one DNS resolver: every SPF, DKIM, ARC and DMARC lookup goes through it.

dnspython (ISC licence) with the configured name servers (``auth.nameservers``; empty: the
system's), a bounded least-recently-used cache (``auth.cache_entries``) and a time budget per
message (:meth:`Resolver.budget`): each query may take only what is left of the message's
``auth.timeout_seconds`` (less :data:`CHECKS_SECONDS`), and once that is spent every further
query fails at once.

Threat model: the names asked come from hostile mail (a sender's domain, a DKIM selector, SPF
macros) and the answers from hostile DNS. A name that is not a valid DNS name is answered as
empty; a timeout, a server failure or a refusal is a :class:`DnsTemporaryError`, never an
empty answer: a DNS outage must give ``temperror``, never a silent pass or fail.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
import dns.reversename
from dns.rdatatype import RdataType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# What auth.timeout_seconds keeps back from a message's DNS queries for the checks themselves
# (at most half of it): a DNS outage then gives temperror results before the evaluation runs
# out of time.
CHECKS_SECONDS = 2.0


class DnsTemporaryError(Exception):
    """The question could not be answered now (timeout, SERVFAIL, refused, no server)."""


# Errors in the asked name itself: the name cannot exist, so the answer is empty.
_BAD_NAME = (
    dns.name.EmptyLabel,
    dns.name.LabelTooLong,
    dns.name.NameTooLong,
    dns.name.BadEscape,
    dns.exception.SyntaxError,
    UnicodeError,
)


class Resolver:
    """dnspython's resolver, set up once per configuration and shared by every evaluation."""

    def __init__(
        self, nameservers: tuple[str, ...], timeout_seconds: float, cache_entries: int
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._problem = ""
        if nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [_nameserver(text) for text in nameservers]
        else:
            try:
                resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration as exc:
                resolver = dns.resolver.Resolver(configure=False)
                self._problem = f"no system resolver: {exc}"
        resolver.timeout = timeout_seconds
        resolver.lifetime = timeout_seconds
        resolver.cache = dns.resolver.LRUCache(cache_entries) if cache_entries else None
        self._resolver = resolver

    def budget(self, seconds: float | None = None) -> Lookup:
        """Lookups for one message, all of them within ``seconds`` (default: the configured
        timeout less :data:`CHECKS_SECONDS`, or half of it when it is shorter)."""
        spare = min(CHECKS_SECONDS, self.timeout_seconds / 2)
        allowed = self.timeout_seconds - spare if seconds is None else seconds
        return Lookup(self, time.monotonic() + allowed)

    def _answer(self, name: str, rdtype: RdataType, lifetime: float) -> dns.resolver.Answer | None:
        if self._problem:
            raise DnsTemporaryError(self._problem)
        try:
            qname = dns.name.from_text(name)
        except _BAD_NAME:
            return None
        try:
            return self._resolver.resolve(
                qname, rdtype, search=False, lifetime=lifetime, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.resolver.YXDOMAIN, *_BAD_NAME):
            return None
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(f"{name} {rdtype.name}: {type(exc).__name__}") from exc


class Lookup:
    """The queries of one evaluation, sharing one deadline."""

    def __init__(self, resolver: Resolver, deadline: float) -> None:
        self.resolver = resolver
        self.deadline = deadline
        # Names whose lookup failed temporarily (a DKIM key lookup dkimpy only sees as "no").
        self.failed: set[str] = set()

    def _query(self, name: str, rdtype: RdataType) -> dns.resolver.Answer | None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.failed.add(name.lower())
            raise DnsTemporaryError(f"{name} {rdtype.name}: the time for DNS is spent")
        try:
            return self.resolver._answer(name, rdtype, left)
        except DnsTemporaryError:
            self.failed.add(name.lower())
            raise

    def txt(self, name: str) -> list[str]:
        """Each TXT record of ``name``, its strings joined (RFC 7208 3.3), as text."""
        answer = self._query(name, RdataType.TXT)
        if answer is None or answer.rrset is None:
            return []
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset]

    def addresses(self, name: str, version: int) -> list[IPAddress]:
        """The A (``version`` 4) or AAAA (6) addresses of ``name``."""
        answer = self._query(name, RdataType.A if version == 4 else RdataType.AAAA)
        if answer is None or answer.rrset is None:
            return []
        return [ipaddress.ip_address(rdata.address) for rdata in answer.rrset]

    def mx(self, name: str) -> list[str]:
        """The exchanges of ``name``'s MX records, by preference."""
        answer = self._query(name, RdataType.MX)
        if answer is None or answer.rrset is None:
            return []
        records = sorted(answer.rrset, key=lambda r: r.preference)
        return [r.exchange.to_text(omit_final_dot=True) for r in records]

    def ptr(self, address: IPAddress) -> list[str]:
        """The names of ``address`` (reverse DNS)."""
        answer = self._query(dns.reversename.from_address(str(address)).to_text(), RdataType.PTR)
        if answer is None or answer.rrset is None:
            return []
        return [r.target.to_text(omit_final_dot=True) for r in answer.rrset]

    def dkim_txt(self) -> Callable[..., bytes | None]:
        """A ``dnsfunc`` for dkimpy: the first TXT record of a key name, or None; a temporary
        failure is remembered in :attr:`failed` (dkimpy itself reads it as a missing key)."""
        import dkim

        def lookup(name: bytes, timeout: float = 0) -> bytes | None:
            text = name.decode("ascii", "replace").rstrip(".")
            try:
                records = self.txt(text)
            except DnsTemporaryError as exc:
                raise dkim.DnsTimeoutError(str(exc)) from exc
            return records[0].encode("utf-8") if records else None

        return lookup


def _nameserver(text: str) -> dns.nameserver.Do53Nameserver:
    host, _, port = text.rpartition(":")
    return dns.nameserver.Do53Nameserver(host.strip("[]"), int(port))

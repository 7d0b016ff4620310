"""SPF (RFC 7208): may this client address send mail for this domain?

Why our own evaluator: pyspf, the Python reference, does its own blocking lookups through a
module-global function (``spf.DNSLookup``) and cannot be handed a resolver without patching
that global; it was last released in 2020 and calls dnspython's deprecated ``query``. No other
maintained Python SPF library evaluates a client address through a resolver it is given. The
evaluation is the ``check_host()`` function of RFC 7208 section 4 over the project's resolver
(:mod:`gateway.senderauth.resolver`).

Threat model: the record is written by whoever controls the domain, and every ``include`` is
another stranger's record. The limits of section 4.6.4 bound the work: at most 10 terms that
query DNS (``include``, ``a``, ``mx``, ``ptr``, ``exists``, ``redirect``), at most 2 lookups
that find nothing, at most 10 MX or PTR names per term; a record or macro that breaks the
grammar is ``permerror``; a DNS failure is ``temperror``, never a pass or a fail.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.senderauth.resolver import DnsTemporaryError, IPAddress, Lookup

MAX_DNS_TERMS = 10  # RFC 7208 4.6.4
MAX_VOID_LOOKUPS = 2
MAX_NAMES = 10  # MX exchanges or PTR names looked at per term
_DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_MACRO = re.compile(r"%\{([slodiphvSLODIPHV])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%")
_CIDR = re.compile(r"^(.*?)(?:/(\d{1,2}))?(?://(\d{1,3}))?$")


class SpfResult(StrEnum):
    """The results of RFC 7208 section 2.6, as Authentication-Results writes them."""

    PASS = "pass"  # noqa: S105 - a result, not a password
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class _Error(Exception):
    def __init__(self, result: SpfResult, why: str) -> None:
        super().__init__(why)
        self.result = result


@dataclass
class _Context:
    lookup: Lookup
    ip: IPAddress
    sender: str
    helo: str
    dns_terms: int = 0
    void_lookups: int = 0
    visited: list[str] = field(default_factory=list)

    def count_term(self) -> None:
        self.dns_terms += 1
        if self.dns_terms > MAX_DNS_TERMS:
            raise _Error(SpfResult.PERMERROR, f"more than {MAX_DNS_TERMS} DNS lookups")

    def found(self, answers: list[object]) -> None:
        if not answers:
            self.void_lookups += 1
            if self.void_lookups > MAX_VOID_LOOKUPS:
                raise _Error(SpfResult.PERMERROR, f"more than {MAX_VOID_LOOKUPS} void lookups")


@dataclass(frozen=True, slots=True)
class SpfOutcome:
    result: SpfResult
    why: str = ""


def check_host(lookup: Lookup, ip: IPAddress, domain: str, sender: str, helo: str) -> SpfOutcome:
    """RFC 7208 ``check_host(ip, domain, sender)``; ``helo`` feeds the ``%{h}`` macro."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    context = _Context(lookup, ip, sender, helo)
    try:
        return SpfOutcome(_check(context, domain.rstrip(".").lower()))
    except _Error as exc:
        return SpfOutcome(exc.result, str(exc))


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    return len(domain) <= 253 and len(labels) > 1 and all(_LABEL.fullmatch(x) for x in labels)


def _check(context: _Context, domain: str) -> SpfResult:
    if not _valid_domain(domain):
        return SpfResult.NONE
    try:
        records = [r for r in context.lookup.txt(domain) if _is_spf(r)]
    except DnsTemporaryError as exc:
        raise _Error(SpfResult.TEMPERROR, str(exc)) from exc
    if not records:
        return SpfResult.NONE
    if len(records) > 1:
        raise _Error(SpfResult.PERMERROR, f"{domain}: more than one SPF record")
    context.visited.append(domain)
    mechanisms, redirect = _parse(records[0])
    for qualifier, name, argument in mechanisms:
        if _matches(context, domain, name, argument):
            return SpfResult(_QUALIFIERS[qualifier])
    if redirect is not None:
        context.count_term()
        target = _expand(context, redirect, domain)
        result = _check(context, target)
        if result is SpfResult.NONE:
            raise _Error(SpfResult.PERMERROR, f"redirect to {target}: no SPF record")
        return result
    return SpfResult.NEUTRAL


def _is_spf(record: str) -> bool:
    return record.lower() == "v=spf1" or record.lower().startswith("v=spf1 ")


def _parse(record: str) -> tuple[list[tuple[str, str, str]], str | None]:
    """The mechanisms (qualifier, name, argument) in order, and the redirect target."""
    mechanisms: list[tuple[str, str, str]] = []
    modifiers: dict[str, str] = {}
    for term in record.split(" ")[1:]:
        if not term:
            continue
        modifier = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", term)
        if modifier:
            name = modifier.group(1).lower()
            if name in modifiers and name in ("redirect", "exp"):
                raise _Error(SpfResult.PERMERROR, f"{name}= given twice")
            modifiers[name] = modifier.group(2)
            continue
        qualifier = term[0] if term[0] in _QUALIFIERS else "+"
        body = term[1:] if term[0] in _QUALIFIERS else term
        name, separator, argument = body.partition(":")
        if not separator and "/" in name:
            name, _, rest = name.partition("/")
            argument = "/" + rest
        name = name.lower()
        if name not in {"all", "ip4", "ip6", *_DNS_MECHANISMS}:
            raise _Error(SpfResult.PERMERROR, f"unknown mechanism {name!r}")
        if separator and not argument:
            raise _Error(SpfResult.PERMERROR, f"{name}: empty argument")
        mechanisms.append((qualifier, name, (":" if separator else "") + argument))
    # "all" makes a redirect meaningless (RFC 7208 6.1).
    redirect = modifiers.get("redirect")
    if any(name == "all" for _q, name, _a in mechanisms):
        redirect = None
    return mechanisms, redirect


def _matches(context: _Context, domain: str, name: str, argument: str) -> bool:
    ip = context.ip
    if name == "all":
        if argument:
            raise _Error(SpfResult.PERMERROR, "all takes no argument")
        return True
    if name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(argument.lstrip(":"), strict=False)
        except ValueError as exc:
            raise _Error(SpfResult.PERMERROR, f"{name}{argument}: not a network") from exc
        if (name == "ip4") != (network.version == 4):
            raise _Error(SpfResult.PERMERROR, f"{name}{argument}: wrong address family")
        return ip.version == network.version and ip in network
    context.count_term()
    spec, cidr4, cidr6 = _split_cidr(argument, allow_cidr=name in ("a", "mx"))
    target = _expand(context, spec, domain) if spec else domain
    try:
        if name == "include":
            if not spec:
                raise _Error(SpfResult.PERMERROR, "include needs a domain")
            result = _check(context, target)
            if result in (SpfResult.TEMPERROR, SpfResult.PERMERROR):
                raise _Error(result, f"include:{target}")
            if result is SpfResult.NONE:
                raise _Error(SpfResult.PERMERROR, f"include:{target}: no SPF record")
            return result is SpfResult.PASS
        if name == "exists":
            if not spec:
                raise _Error(SpfResult.PERMERROR, "exists needs a domain")
            found = context.lookup.addresses(target, 4)
            context.found(list(found))
            return bool(found)
        prefix = cidr4 if ip.version == 4 else cidr6
        if name == "a":
            return _in_addresses(context, target, prefix)
        if name == "mx":
            exchanges = context.lookup.mx(target)
            context.found(list(exchanges))
            if len(exchanges) > MAX_NAMES:
                raise _Error(SpfResult.PERMERROR, f"mx:{target}: more than {MAX_NAMES} names")
            return any(_in_addresses(context, host, prefix, void=False) for host in exchanges)
        return _ptr_matches(context, target)
    except DnsTemporaryError as exc:
        raise _Error(SpfResult.TEMPERROR, str(exc)) from exc


def _in_addresses(context: _Context, host: str, prefix: int, *, void: bool = True) -> bool:
    found = context.lookup.addresses(host, context.ip.version)
    if void:
        context.found(list(found))
    network_of = ipaddress.ip_network
    return any(context.ip in network_of(f"{address}/{prefix}", strict=False) for address in found)


def _ptr_matches(context: _Context, target: str) -> bool:
    """``ptr`` (RFC 7208 5.5): a validated reverse name of the client in ``target``."""
    names = context.lookup.ptr(context.ip)[:MAX_NAMES]
    context.found(list(names))
    for host in names:
        if not (host.lower() == target or host.lower().endswith("." + target)):
            continue
        if context.ip in context.lookup.addresses(host, context.ip.version):
            return True
    return False


def _split_cidr(argument: str, *, allow_cidr: bool) -> tuple[str, int, int]:
    text = argument[1:] if argument.startswith(":") else argument
    if not allow_cidr:
        return text, 32, 128
    match = _CIDR.match(text)
    assert match is not None  # every string matches
    spec, four, six = match.group(1), match.group(2), match.group(3)
    cidr4 = int(four) if four else 32
    cidr6 = int(six) if six else 128
    if cidr4 > 32 or cidr6 > 128:
        raise _Error(SpfResult.PERMERROR, f"{argument}: prefix too long")
    return spec, cidr4, cidr6


def _expand(context: _Context, spec: str, domain: str) -> str:
    """A domain-spec with its macros expanded (RFC 7208 7), cut to 253 characters from the
    left; a malformed macro is ``permerror``."""

    def one(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("%%", "%_", "%-"):
            return {"%%": "%", "%_": " ", "%-": "%20"}[text]
        if text == "%":
            raise _Error(SpfResult.PERMERROR, f"bad macro in {spec!r}")
        letter, digits, reverse, delimiters = match.groups()
        value = _macro_value(context, letter.lower(), domain)
        parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            if int(digits) == 0:
                raise _Error(SpfResult.PERMERROR, "macro keeps zero labels")
            parts = parts[-int(digits) :]
        return ".".join(parts)

    expanded = _MACRO.sub(one, spec).rstrip(".").lower()
    while len(expanded) > 253 and "." in expanded:
        expanded = expanded.partition(".")[2]
    if not _valid_domain(expanded):
        raise _Error(SpfResult.PERMERROR, f"{spec!r} does not give a domain")
    return expanded


def _macro_value(context: _Context, letter: str, domain: str) -> str:
    local, _, sender_domain = context.sender.rpartition("@")
    ip = context.ip
    if letter == "i":
        if ip.version == 4:
            return str(ip)
        return ".".join(ip.exploded.replace(":", ""))
    values = {
        "s": context.sender,
        "l": local or "postmaster",
        "o": sender_domain,
        "d": domain,
        "h": context.helo,
        "v": "in-addr" if ip.version == 4 else "ip6",
        "p": "unknown",
    }
    return values[letter]

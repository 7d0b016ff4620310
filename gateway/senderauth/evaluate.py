"""Sender authentication of one incoming message, before the rebuild destroys its signatures.

From the SMTP envelope (client address, HELO, MAIL FROM) and the original bytes: SPF for the
HELO and MAIL FROM identities (:mod:`.spf`), every DKIM signature and the ARC chain (dkimpy,
BSD-like licence), DMARC (the ``dmarc`` library, MIT: alignment, policy) with the
organisational domain from the public suffix list the ``publicsuffixlist`` package ships
(MPL-2.0), all through the project's resolver (:mod:`.resolver`). Then the spoofing checks
that need no DNS: a From display name that shows another address, and a From domain made to
look like one of ours (``smtp.accept_domains``). The result is an
:class:`sanitizers.senderauth.AuthOutcome` with the action the configuration gives it.

When a relay in front is trusted (``auth.trusted_authserv_ids``), its Authentication-Results
header is taken instead of evaluating again.

Threat model: the message and DNS are hostile. A DNS failure gives ``temperror``, never a pass
or a fail; DMARC that fails while SPF or DKIM could not be decided is ``temperror`` too. Every
evaluation is bounded by ``auth.timeout_seconds`` (the resolver's budget) and by the limits
below.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import secrets
import socket
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import authres
import dkim
import dmarc
from publicsuffixlist import PublicSuffixList

from gateway.configuration.config import Config
from gateway.configuration.settings import AuthSettings
from gateway.senderauth.resolver import DnsTemporaryError, Lookup, Resolver
from gateway.senderauth.spf import SpfResult, check_host
from sanitizers.headers import rebuild_headers
from sanitizers.senderauth import (
    AUTH_METHODS,
    AuthAction,
    AuthOutcome,
    MethodResult,
    strongest,
)
from sanitizers.vocabulary import Reason

log = logging.getLogger("mukaika.senderauth")
# dkimpy logs every bad signature as an error: mail from strangers is not our error.
_DKIM_LOG = logging.getLogger("mukaika.senderauth.dkim")
_DKIM_LOG.setLevel(logging.CRITICAL)

MAX_SIGNATURES = 10  # DKIM signatures verified per message (each costs a DNS query)
MAX_FROM_DOMAINS = 5  # distinct From domains evaluated for DMARC
MIN_KEY_BITS = 1024  # shorter RSA keys fail (RFC 8301)
_FORWARDED = "trusted forwarder"
# The policy applied to a failing message outside the ``pct`` sample (RFC 7489 6.6.4).
_LOWER_POLICY = {"reject": "quarantine", "quarantine": "none", "none": "none"}


def _percentile() -> int:
    """0–99, unpredictable: a sender cannot make its mail fall outside the sample."""
    return secrets.randbelow(100)


@dataclass(frozen=True, slots=True)
class Published:
    """A DMARC record that was applied, and how the message fared under it: what an aggregate
    report (RFC 7489 section 7.2) says about one message."""

    domain: str  # where the record was found: the From domain or its organisational domain
    header_from: str
    p: str
    sp: str
    adkim: str
    aspf: str
    pct: int
    rua: tuple[str, ...]
    dkim_aligned: bool
    spf_aligned: bool
    # The message failed but fell outside the record's ``pct`` sample (RFC 7489 6.6.4): the
    # next lower policy applied (reject → quarantine, quarantine → none).
    sampled_out: bool = False


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome for the message, and the DMARC records it was judged under (for the
    aggregate reports)."""

    outcome: AuthOutcome
    published: tuple[Published, ...] = ()


@dataclass(frozen=True, slots=True)
class Transaction:
    """What the SMTP session said: the client's address, its HELO name, the MAIL FROM
    ("" for the null sender)."""

    client: str
    helo: str
    mail_from: str


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The public suffix list the package ships (read once per process)."""
    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """The organisational domain (RFC 7489 3.2): the public suffix and one label more."""
    return str(_suffixes().privatesuffix(domain.lower()) or domain.lower())


class _Psl:
    """The organisational domain as the ``dmarc`` library asks for it."""

    def get_public_suffix(self, domain: str) -> str:
        return organisational_domain(domain)

    def is_public(self, domain: str) -> bool:
        return bool(_suffixes().is_public(domain.lower()))


class Authenticator:
    """Evaluates messages with one configuration; thread-safe (one per gateway process)."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        authserv_id: str,
        protected_domains: tuple[str, ...] = (),
        resolver: Resolver | None = None,
        sample: Callable[[], int] = _percentile,
    ) -> None:
        """``sample``: a number 0–99 per failing message, compared with the record's ``pct``
        (the tests give a fixed one)."""
        self.settings = settings
        self.sample = sample
        self.authserv_id = (settings.authserv_id or authserv_id).lower()
        self.resolver = resolver or Resolver(
            settings.nameservers, settings.timeout_seconds, settings.cache_entries
        )
        self.psl = _Psl()
        self.protected = tuple(sorted({d.lower().rstrip(".") for d in protected_domains}))

    def timed_out(self) -> AuthOutcome:
        """The outcome when the evaluation did not finish in ``auth.timeout_seconds``."""
        results = tuple(
            MethodResult(method, "temperror", comment="timed out")
            for method in ("spf", "dkim", "dmarc")
        )
        return self._decide(results, [Reason.AUTH_TEMPERROR], trusted_from="")

    def evaluate(self, untrusted_raw: bytes, transaction: Transaction) -> Evaluation:
        """Evaluate ``untrusted_raw`` as received in ``transaction`` (blocking: run it in a
        thread; its DNS queries share the ``auth.timeout_seconds`` budget)."""
        headers = BytesHeaderParser(policy=compat32).parsebytes(untrusted_raw)
        spoofing = self._spoofing(headers)
        trusted = self._trusted_header(headers)
        lookup = self.resolver.budget()
        if trusted is not None:
            reported = self._trusted_results(trusted, lookup)
            return Evaluation(
                self._decide(reported, spoofing, trusted_from=str(trusted.authserv_id))
            )
        results: list[MethodResult] = []
        published: list[Published] = []
        spf_mailfrom = self._spf(lookup, transaction, results)
        count = len(headers.get_all("DKIM-Signature") or [])
        signatures = self._dkim(lookup, untrusted_raw, count, results)
        arc_sealer = self._arc(lookup, headers, untrusted_raw, results)
        results += self._dmarc(lookup, headers, spf_mailfrom, signatures, arc_sealer, published)
        outcome = self._decide(tuple(results), spoofing, trusted_from="")
        return Evaluation(outcome, tuple(published))

    # -- SPF ----------------------------------------------------------------------------

    def _spf(
        self, lookup: Lookup, transaction: Transaction, results: list[MethodResult]
    ) -> tuple[str, SpfResult]:
        """SPF of the HELO and MAIL FROM identities (RFC 7208 2.3, 2.4); returns the domain
        and result DMARC uses (MAIL FROM, or HELO for the null sender)."""
        try:
            ip = ipaddress.ip_address(transaction.client.strip("[]"))
        except ValueError:
            results.append(MethodResult("spf", "none", comment="no client address"))
            return "", SpfResult.NONE
        helo = transaction.helo.strip().rstrip(".").lower()
        helo_result = SpfResult.NONE
        if helo:
            helo_result = check_host(lookup, ip, helo, f"postmaster@{helo}", helo).result
            results.append(MethodResult("spf", helo_result.value, (("smtp.helo", helo),)))
        sender = transaction.mail_from.strip("<>")
        if not sender:
            return helo, helo_result
        domain = sender.rpartition("@")[2].rstrip(".").lower()
        outcome = check_host(lookup, ip, domain, sender, helo)
        results.append(MethodResult("spf", outcome.result.value, (("smtp.mailfrom", sender),)))
        return domain, outcome.result

    # -- DKIM and ARC -------------------------------------------------------------------

    def _dkim(
        self, lookup: Lookup, untrusted_raw: bytes, count: int, results: list[MethodResult]
    ) -> list[tuple[str, str]]:
        """Each of the ``count`` DKIM signatures (up to :data:`MAX_SIGNATURES`); returns
        (d=, result) of each."""
        checked: list[tuple[str, str]] = []
        dnsfunc = lookup.dkim_txt()
        for index in range(min(count, MAX_SIGNATURES)):
            verifier = dkim.DKIM(untrusted_raw, logger=_DKIM_LOG, minkey=MIN_KEY_BITS)
            try:
                valid = verifier.verify(idx=index, dnsfunc=dnsfunc)
                result = "pass" if valid else "fail"
            except dkim.DKIMException as exc:
                # A signature that parsed but does not verify (a body hash mismatch) fails;
                # one that does not parse is a permanent error.
                valid = False
                result = "fail" if getattr(verifier, "domain", None) else "permerror"
                log.debug("DKIM signature %d: %s", index, exc)
            domain = _text(getattr(verifier, "domain", None))
            selector = _text(getattr(verifier, "selector", None))
            if not valid and f"{selector}._domainkey.{domain}".lower() in lookup.failed:
                result = "temperror"
            properties = (("header.d", domain), ("header.s", selector)) if domain else ()
            results.append(MethodResult("dkim", result, properties))
            checked.append((domain.lower(), result))
        if not count:
            results.append(MethodResult("dkim", "none"))
        return checked

    def _arc(
        self, lookup: Lookup, headers: Message, untrusted_raw: bytes, results: list[MethodResult]
    ) -> str:
        """The ARC chain (RFC 8617); returns the latest sealer's domain when it passes."""
        if not headers.get_all("ARC-Seal"):
            return ""
        try:
            verdict, sets, _why = dkim.arc_verify(
                untrusted_raw, logger=_DKIM_LOG, dnsfunc=lookup.dkim_txt(), minkey=MIN_KEY_BITS
            )
        except (dkim.DKIMException, ValueError, IndexError):
            verdict, sets = dkim.CV_Fail, []
        sealer = _text(sets[0].get("as-domain")).lower() if sets else ""
        failed_lookup = any(
            f"{_text(s.get('as-selector'))}._domainkey.{_text(s.get('as-domain'))}".lower()
            in lookup.failed
            for s in sets
        )
        result = _text(verdict) or "fail"
        if result != "pass" and failed_lookup:
            result = "temperror"
        properties = (("header.d", sealer),) if sealer else ()
        results.append(MethodResult("arc", result, properties))
        return sealer if result == "pass" else ""

    # -- DMARC --------------------------------------------------------------------------

    def _dmarc(
        self,
        lookup: Lookup,
        headers: Message,
        spf: tuple[str, SpfResult],
        signatures: list[tuple[str, str]],
        arc_sealer: str,
        published: list[Published],
    ) -> list[MethodResult]:
        domains = _from_domains(headers)
        if not domains:
            return [MethodResult("dmarc", "permerror", comment="no From domain")]
        auth_results: list[dmarc.AuthResult] = []
        spf_domain, spf_result = spf
        if spf_domain:
            auth_results.append(dmarc.SPF(spf_domain, _SPF_RESULTS[spf_result]))
        auth_results += [
            dmarc.DKIM(domain, _DKIM_RESULTS.get(result, dmarc.DKIMResult.PERMFAIL))
            for domain, result in signatures
            if domain
        ]
        undecided = spf_result is SpfResult.TEMPERROR or any(
            result == "temperror" for _d, result in signatures
        )
        return [
            self._dmarc_of(lookup, domain, auth_results, undecided, arc_sealer, published)
            for domain in domains[:MAX_FROM_DOMAINS]
        ]

    def _dmarc_of(
        self,
        lookup: Lookup,
        domain: str,
        auth_results: list[dmarc.AuthResult],
        undecided: bool,
        arc_sealer: str,
        published: list[Published],
    ) -> MethodResult:
        from_property = (("header.from", domain),)
        try:
            found = self._dmarc_record(lookup, domain)
        except DnsTemporaryError:
            return MethodResult("dmarc", "temperror", from_property)
        if found is None:
            return MethodResult("dmarc", "none", from_property)
        record, org_domain = found
        try:
            policy = dmarc.DMARCPolicy(
                record, domain, org_domain=org_domain, publicsuffix=self.psl, strict=False
            )
        except dmarc.RecordSyntaxError:
            return MethodResult("dmarc", "permerror", from_property, "bad record")
        with contextlib.suppress(dmarc.PolicyError):  # a failure is read from the result
            policy.verify(auth_results=auth_results)
        evaluated = policy.result
        assert evaluated is not None
        applied = _policy_name(policy.policy, org_domain)
        passed = evaluated.result is dmarc.DMARCResult.PASS
        pct = _pct(policy.policy)
        sampled_out = not passed and not undecided and pct < 100 and self.sample() >= pct
        published.append(_published(policy, domain, org_domain, evaluated, sampled_out))
        if passed:
            return MethodResult("dmarc", "pass", from_property, f"p={applied}")
        if undecided:
            return MethodResult("dmarc", "temperror", from_property, f"p={applied}")
        comment = f"p={applied}"
        if sampled_out:
            comment = f"p={_LOWER_POLICY[applied]} sampled out of p={applied} pct={pct}"
        if arc_sealer and arc_sealer in self.settings.arc_trusted_sealers:
            comment += f" {_FORWARDED} {arc_sealer}"
        return MethodResult("dmarc", "fail", from_property, comment)

    def _dmarc_record(self, lookup: Lookup, domain: str) -> tuple[str, str | None] | None:
        """The DMARC record of ``domain``, else of its organisational domain (RFC 7489
        6.6.3), with the organisational domain when it came from there."""
        records = _dmarc_records(lookup.txt(f"_dmarc.{domain}"))
        if len(records) == 1:
            return records[0], None
        organisational = self.psl.get_public_suffix(domain)
        if organisational == domain or self.psl.is_public(organisational):
            return None
        records = _dmarc_records(lookup.txt(f"_dmarc.{organisational}"))
        return (records[0], organisational) if len(records) == 1 else None

    # -- a relay in front ---------------------------------------------------------------

    def _trusted_header(self, headers: Message) -> authres.AuthenticationResultsHeader | None:
        """The first Authentication-Results header of a trusted relay (the topmost: the
        relay that handed us the message added it last)."""
        if not self.settings.trusted_authserv_ids:
            return None
        for value in headers.get_all("Authentication-Results") or []:
            try:
                unfolded = str(value).replace("\r\n", "").replace("\n", "")
                parsed = authres.parse_value(unfolded)
            except Exception:  # noqa: BLE001, S112 - a header that does not parse is not trusted
                continue
            if str(parsed.authserv_id).lower() in self.settings.trusted_authserv_ids:
                return parsed
        return None

    def _trusted_results(
        self, header: authres.AuthenticationResultsHeader, lookup: Lookup
    ) -> tuple[MethodResult, ...]:
        results: list[MethodResult] = []
        for item in header.results:
            method, result = str(item.method).lower(), str(item.result).lower()
            if method not in AUTH_METHODS:
                continue
            properties = tuple(
                (f"{p.type}.{p.name}".lower(), str(p.value)) for p in item.properties
            )
            comment = ""
            if method == "dmarc" and result == "fail":
                comment = self._published_policy(lookup, dict(properties).get("header.from", ""))
            results.append(MethodResult(method, result, properties, comment))
        return tuple(results)

    def _published_policy(self, lookup: Lookup, domain: str) -> str:
        """``p=…`` of ``domain``'s DMARC record, for a failure a trusted relay reported."""
        try:
            found = self._dmarc_record(lookup, domain.lower()) if domain else None
            if found is None:
                return "p=none"
            record, org_domain = found
            policy = dmarc.DMARCPolicy(record, domain, org_domain=org_domain, strict=False)
        except (DnsTemporaryError, dmarc.RecordSyntaxError):
            return "p=unknown"
        return f"p={_policy_name(policy.policy, org_domain)}"

    # -- spoofing without DNS -----------------------------------------------------------

    def _spoofing(self, headers: Message) -> list[Reason]:
        reasons: list[Reason] = []
        rebuilt = rebuild_headers(headers, ("From",))
        if Reason.DISPLAY_NAME_ADDRESS in rebuilt.findings:
            reasons.append(Reason.DISPLAY_NAME_ADDRESS)
        if any(self._looks_like_ours(domain) for domain in _from_domains(headers)):
            reasons.append(Reason.LOOKALIKE_SENDER)
        return reasons

    def _looks_like_ours(self, domain: str) -> bool:
        """``domain`` is not one of ours but imitates one: the same after folding look-alike
        characters and separators (``clty.examp1e.lg.jp``, ``city-example.lg.jp``), or the
        same organisation name under another suffix (``example.co.jp`` for
        ``city.example.lg.jp``)."""
        for ours in self.protected:
            if domain == ours or domain.endswith("." + ours):
                return False
        for ours in self.protected:
            if _skeleton(domain) == _skeleton(ours):
                return True
            mine, theirs = self.psl.get_public_suffix(ours), self.psl.get_public_suffix(domain)
            if mine != theirs and mine.split(".")[0] == theirs.split(".")[0]:
                return True
        return False

    # -- the decision -------------------------------------------------------------------

    def _decide(
        self, results: tuple[MethodResult, ...], spoofing: list[Reason], *, trusted_from: str
    ) -> AuthOutcome:
        reasons: list[Reason] = []
        actions: list[AuthAction] = []
        temporary: list[AuthAction] = []  # actions a DNS failure led to
        settings = self.settings
        for item in results:
            if item.method == "dmarc" and item.result == "fail":
                reason, action = {
                    "p=reject": (Reason.DMARC_REJECT, settings.dmarc_reject_action),
                    "p=quarantine": (Reason.DMARC_QUARANTINE, settings.dmarc_quarantine_action),
                }.get(item.comment.split(" ")[0], (Reason.DMARC_FAIL, settings.dmarc_fail_action))
                reasons.append(reason)
                if _FORWARDED not in item.comment:
                    actions.append(action)
            if item.result == "temperror" and Reason.AUTH_TEMPERROR not in reasons:
                reasons.append(Reason.AUTH_TEMPERROR)
                temporary.append(settings.temperror_action)
        for reason in spoofing:
            reasons.append(reason)
            actions.append(AuthAction.WARN)
        action = strongest(actions + temporary)
        return AuthOutcome(
            authserv_id=self.authserv_id,
            results=results,
            action=action,
            reasons=tuple(dict.fromkeys(reasons)),
            trusted_from=trusted_from,
            temporary=action is not strongest(actions),
        )


_SPF_RESULTS = {
    SpfResult.PASS: dmarc.SPFResult.PASS,
    SpfResult.FAIL: dmarc.SPFResult.FAIL,
    SpfResult.SOFTFAIL: dmarc.SPFResult.SOFTFAIL,
    SpfResult.NEUTRAL: dmarc.SPFResult.NEUTRAL,
    SpfResult.NONE: dmarc.SPFResult.NONE,
    SpfResult.TEMPERROR: dmarc.SPFResult.TEMPFAIL,
    SpfResult.PERMERROR: dmarc.SPFResult.PERMFAIL,
}
_DKIM_RESULTS = {
    "pass": dmarc.DKIMResult.PASS,
    "fail": dmarc.DKIMResult.FAIL,
    "temperror": dmarc.DKIMResult.TEMPFAIL,
}
# Characters that read alike in a domain name, folded to one (after NFKC and lower case).
_ALIKE = str.maketrans(
    {"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "-": "", "_": "", ".": ""}
)


def _skeleton(domain: str) -> str:
    try:
        text = domain.encode("ascii").decode("idna") if "xn--" in domain else domain
    except UnicodeError:
        text = domain
    folded = unicodedata.normalize("NFKC", text).lower().translate(_ALIKE)
    return folded.replace("rn", "m").replace("vv", "w")


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return "" if value is None else str(value)


def _from_domains(headers: Message) -> list[str]:
    """The distinct domains of the From header's addresses, in order."""
    values = [str(v) for v in headers.get_all("From") or []]
    domains: list[str] = []
    for _name, address in getaddresses(values):
        domain = address.rpartition("@")[2].strip().rstrip(".").lower()
        if "@" in address and domain and domain not in domains:
            domains.append(domain)
    return domains


def _dmarc_records(texts: list[str]) -> list[str]:
    return [t for t in texts if t.replace(" ", "").lower().startswith("v=dmarc1;")]


def _policy_name(policy: dmarc.Policy, org_domain: str | None) -> str:
    """The policy that applies: ``sp`` for a sub-domain when given, else ``p``."""
    chosen = policy.p
    if org_domain and policy.sp is not dmarc.DMARCDisposition.UNSPECIFIED:
        chosen = policy.sp
    return str(chosen.value) if chosen is not dmarc.DMARCDisposition.UNSPECIFIED else "none"


def _pct(record: dmarc.Policy) -> int:
    """The record's ``pct`` (100 when absent or out of range)."""
    return record.pct if 0 <= record.pct <= 100 else 100


def _published(
    policy: dmarc.DMARCPolicy,
    domain: str,
    org_domain: str | None,
    evaluated: dmarc.Result,
    sampled_out: bool,
) -> Published:
    record = policy.policy

    def value(setting: object, default: str) -> str:
        text = getattr(setting, "value", None)
        return str(text) if text else default

    return Published(
        domain=org_domain or domain,
        header_from=domain,
        p=value(record.p, "none"),
        sp=value(record.sp, value(record.p, "none")),
        adkim=value(record.adkim, "r"),
        aspf=value(record.aspf, "r"),
        pct=_pct(record),
        rua=tuple(str(uri) for uri in record.rua),
        dkim_aligned=evaluated.dkim is dmarc.DMARCResult.PASS,
        spf_aligned=evaluated.spf is dmarc.DMARCResult.PASS,
        sampled_out=sampled_out,
    )


def authenticator_for(config: Config) -> Authenticator | None:
    """The configuration's authenticator, None when ``[auth]`` is off."""
    if not config.auth.enabled:
        return None
    return Authenticator(
        config.auth,
        authserv_id=config.smtp.hostname or socket.getfqdn(),
        protected_domains=config.smtp.accept_domains,
    )


def authenticate(
    untrusted_raw: bytes, config: Config, transaction: Transaction
) -> AuthOutcome | None:
    """One evaluation as the command line runs it (None when ``[auth]`` is off)."""
    authenticator = authenticator_for(config)
    if authenticator is None:
        return None
    return authenticator.evaluate(untrusted_raw, transaction).outcome

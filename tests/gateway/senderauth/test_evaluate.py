"""Sender authentication against a real authoritative DNS server on loopback (tests/authdns.py):
SPF, DKIM with real keys, DMARC alignment and policies, ARC through a forwarder, trusted relays,
spoofing warnings, and DNS failures that must give temperror, never a pass or a fail."""

from __future__ import annotations

import ipaddress

import dkim
import pytest

from gateway.configuration.settings import AuthSettings
from gateway.senderauth.evaluate import Authenticator, Transaction
from gateway.senderauth.resolver import Resolver
from gateway.senderauth.spf import SpfResult, check_host
from sanitizers.senderauth import AuthAction, AuthOutcome
from sanitizers.vocabulary import Reason
from tests.authdns import FORWARDER_IP, PARTNER_IP, SELECTOR, STRANGER_IP, AuthDns
from tests.clamd import free_port


def mail(sender: str, *, subject: str = "test", body: str = "本文です。\r\n") -> bytes:
    return (
        f"From: {sender}\r\nTo: staff@city.example.lg.jp\r\nSubject: {subject}\r\n"
        "Date: Thu, 03 Dec 2026 10:00:00 +0900\r\nMessage-ID: <t1@example.jp>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.encode()


def authenticator(dns: AuthDns | str, **settings: object) -> Authenticator:
    nameserver = dns if isinstance(dns, str) else dns.nameserver
    settings.setdefault("timeout_seconds", 5)
    auth = AuthSettings(enabled=True, nameservers=(nameserver,), **settings)  # type: ignore[arg-type]
    return Authenticator(
        auth, authserv_id="mx.city.example.lg.jp", protected_domains=("city.example.lg.jp",)
    )


def evaluate(
    checker: Authenticator, raw: bytes, *, ip: str = PARTNER_IP, mail_from: str = "", helo: str = ""
) -> AuthOutcome:
    return checker.evaluate(raw, Transaction(client=ip, helo=helo, mail_from=mail_from)).outcome


def results(outcome: AuthOutcome) -> set[str]:
    return {f"{r.method}={r.result}" for r in outcome.results}


def test_mail_signed_with_a_real_key_from_an_authorised_address_passes(auth_dns: AuthDns) -> None:
    raw = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    outcome = evaluate(authenticator(auth_dns), raw, mail_from="info@partner.co.jp")
    assert results(outcome) == {"spf=pass", "dkim=pass", "dmarc=pass"}
    assert outcome.action is AuthAction.NONE
    assert outcome.reasons == ()
    header = outcome.header_value()
    assert header.startswith("mx.city.example.lg.jp; spf=pass smtp.mailfrom=info@partner.co.jp")
    assert f"dkim=pass header.d=partner.co.jp header.s={SELECTOR}" in header
    assert "dmarc=pass (p=reject) header.from=partner.co.jp" in header


def test_a_changed_body_fails_dkim(auth_dns: AuthDns) -> None:
    raw = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    changed = raw.replace("本文です".encode(), "振込先が変わりました".encode())
    outcome = evaluate(
        authenticator(auth_dns), changed, ip=STRANGER_IP, mail_from="x@partner.co.jp"
    )
    assert {"dkim=fail", "spf=fail", "dmarc=fail"} <= results(outcome)


def test_every_signature_is_verified_not_only_the_first(auth_dns: AuthDns) -> None:
    signed = auth_dns.sign(auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp"), "town.ne.jp")
    outcome = evaluate(authenticator(auth_dns), signed, mail_from="info@partner.co.jp")
    dkim_domains = [dict(r.properties)["header.d"] for r in outcome.results if r.method == "dkim"]
    assert dkim_domains == ["town.ne.jp", "partner.co.jp"]
    assert [r.result for r in outcome.results if r.method == "dkim"] == ["pass", "pass"]


@pytest.mark.parametrize(
    ("domain", "ip", "expected"),
    [
        ("partner.co.jp", PARTNER_IP, "pass"),
        ("partner.co.jp", STRANGER_IP, "fail"),
        ("soft.co.jp", STRANGER_IP, "softfail"),
        ("neutral.co.jp", STRANGER_IP, "neutral"),
        ("broken.co.jp", STRANGER_IP, "temperror"),  # include: of a name the server refuses
        ("macro.co.jp", PARTNER_IP, "pass"),  # exists:%{i}.allow.macro.co.jp
        ("macro.co.jp", STRANGER_IP, "fail"),
        ("nothing.co.jp", STRANGER_IP, "none"),
    ],
)
def test_spf_results_of_the_mail_from_identity(
    auth_dns: AuthDns, domain: str, ip: str, expected: str
) -> None:
    outcome = evaluate(authenticator(auth_dns), mail(f"a@{domain}"), ip=ip, mail_from=f"a@{domain}")
    spf = [r for r in outcome.results if r.method == "spf"]
    assert [(r.result, dict(r.properties)) for r in spf] == [
        (expected, {"smtp.mailfrom": f"a@{domain}"})
    ]


def test_spf_of_the_helo_identity_and_the_null_sender(auth_dns: AuthDns) -> None:
    outcome = evaluate(
        authenticator(auth_dns),
        mail("a@forwarder.ne.jp"),
        ip=FORWARDER_IP,
        helo="mx.forwarder.ne.jp",
    )
    assert [(r.result, r.properties) for r in outcome.results if r.method == "spf"] == [
        ("pass", (("smtp.helo", "mx.forwarder.ne.jp"),))
    ]


def test_dmarc_relaxed_alignment_passes_for_a_sub_domain_of_the_signer(auth_dns: AuthDns) -> None:
    raw = auth_dns.sign(mail("news@mail.relaxed.co.jp"), "relaxed.co.jp")
    outcome = evaluate(authenticator(auth_dns), raw, ip=STRANGER_IP, mail_from="b@elsewhere.co.jp")
    assert "dkim=pass" in results(outcome)
    assert "dmarc=pass" in results(outcome)


def test_dmarc_strict_alignment_fails_for_a_sub_domain_of_the_signer(auth_dns: AuthDns) -> None:
    raw = auth_dns.sign(mail("news@mail.strict.co.jp"), "strict.co.jp")
    outcome = evaluate(authenticator(auth_dns), raw, ip=PARTNER_IP, mail_from="b@strict.co.jp")
    assert {"dkim=pass", "spf=pass", "dmarc=fail"} <= results(outcome)
    assert outcome.reasons == (Reason.DMARC_REJECT,)  # the organisational domain's p=reject


@pytest.mark.parametrize(
    ("sender", "reason", "action"),
    [
        ("ceo@partner.co.jp", Reason.DMARC_REJECT, AuthAction.REJECT),
        ("ceo@quarantined.co.jp", Reason.DMARC_QUARANTINE, AuthAction.HOLD),
        ("mayor@town.ne.jp", Reason.DMARC_FAIL, AuthAction.WARN),
    ],
)
def test_a_forged_from_gets_the_action_of_its_domains_policy(
    auth_dns: AuthDns, sender: str, reason: Reason, action: AuthAction
) -> None:
    outcome = evaluate(authenticator(auth_dns), mail(sender), ip=STRANGER_IP, mail_from=sender)
    assert "dmarc=fail" in results(outcome)
    assert outcome.reasons == (reason,)
    assert outcome.action is action


def test_the_actions_are_the_configured_ones(auth_dns: AuthDns) -> None:
    checker = authenticator(auth_dns, dmarc_reject_action="hold", dmarc_fail_action="none")
    forged = evaluate(
        checker, mail("ceo@partner.co.jp"), ip=STRANGER_IP, mail_from="a@partner.co.jp"
    )
    assert forged.action is AuthAction.HOLD
    town = evaluate(checker, mail("mayor@town.ne.jp"), ip=STRANGER_IP, mail_from="a@town.ne.jp")
    assert town.action is AuthAction.NONE
    assert town.reasons == (Reason.DMARC_FAIL,)


@pytest.mark.parametrize(
    ("percentile", "reason", "action", "sampled_out"),
    [
        (0, Reason.DMARC_REJECT, AuthAction.REJECT, False),
        (24, Reason.DMARC_REJECT, AuthAction.REJECT, False),
        (25, Reason.DMARC_QUARANTINE, AuthAction.HOLD, True),
        (99, Reason.DMARC_QUARANTINE, AuthAction.HOLD, True),
    ],
)
def test_pct_applies_the_policy_to_its_sample_and_the_next_lower_one_to_the_rest(
    auth_dns: AuthDns, percentile: int, reason: Reason, action: AuthAction, sampled_out: bool
) -> None:
    checker = authenticator(auth_dns)
    checker.sample = lambda: percentile
    evaluation = checker.evaluate(
        mail("ceo@sampled.co.jp"),
        Transaction(client=STRANGER_IP, helo="", mail_from="ceo@sampled.co.jp"),
    )
    assert evaluation.outcome.reasons == (reason,)
    assert evaluation.outcome.action is action
    [published] = evaluation.published
    assert (published.pct, published.sampled_out) == (25, sampled_out)
    dmarc_result = next(r for r in evaluation.outcome.results if r.method == "dmarc")
    assert ("sampled out of p=reject pct=25" in dmarc_result.comment) is sampled_out


def test_pct_never_samples_out_passing_mail(auth_dns: AuthDns) -> None:
    checker = authenticator(auth_dns)
    checker.sample = lambda: 99
    evaluation = checker.evaluate(
        mail("info@sampled.co.jp"),
        Transaction(client=PARTNER_IP, helo="", mail_from="info@sampled.co.jp"),
    )
    assert "dmarc=pass" in results(evaluation.outcome)
    assert not evaluation.published[0].sampled_out


def test_arc_chain_of_a_trusted_forwarder_overrides_the_dmarc_failure(auth_dns: AuthDns) -> None:
    original = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    # The forwarder (a mailing list) saw a valid signature, then added a footer.
    seen = (
        b"Authentication-Results: mx.forwarder.ne.jp; spf=pass smtp.mailfrom=info@partner.co.jp;"
        b" dkim=pass header.d=partner.co.jp; dmarc=pass header.from=partner.co.jp\r\n" + original
    )
    footered = seen + "--\r\nML フッター\r\n".encode()
    seal = dkim.arc_sign(
        footered,
        SELECTOR.encode(),
        b"forwarder.ne.jp",
        auth_dns.keys["forwarder.ne.jp"],
        b"mx.forwarder.ne.jp",
    )
    forwarded = b"".join(seal) + footered
    args = {"ip": FORWARDER_IP, "mail_from": "list-bounce@forwarder.ne.jp"}
    trusting = authenticator(auth_dns, arc_trusted_sealers=("forwarder.ne.jp",))
    outcome = evaluate(trusting, forwarded, **args)  # type: ignore[arg-type]
    assert {"arc=pass", "dkim=fail", "dmarc=fail"} <= results(outcome)
    assert outcome.action is AuthAction.NONE  # overridden: a trusted forwarder vouches
    assert "trusted forwarder forwarder.ne.jp" in outcome.header_value()
    untrusting = evaluate(authenticator(auth_dns), forwarded, **args)  # type: ignore[arg-type]
    assert untrusting.action is AuthAction.REJECT


def test_dns_down_gives_temperror_and_the_temperror_action(auth_dns: AuthDns) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # nothing listens there
    raw = auth_dns.sign(mail("info@partner.co.jp"), "partner.co.jp")
    for action in ("none", "hold", "reject"):
        checker = authenticator(nowhere, temperror_action=action, timeout_seconds=0.5)
        outcome = evaluate(checker, raw, mail_from="info@partner.co.jp")
        assert results(outcome) == {"spf=temperror", "dkim=temperror", "dmarc=temperror"}
        assert outcome.reasons == (Reason.AUTH_TEMPERROR,)
        assert outcome.action is AuthAction(action)


def test_a_spent_time_budget_gives_temperror_not_a_result(auth_dns: AuthDns) -> None:
    lookup = authenticator(auth_dns).resolver.budget(0)
    outcome = check_host(lookup, ipaddress.ip_address(PARTNER_IP), "partner.co.jp", "a@x", "")
    assert outcome.result is SpfResult.TEMPERROR


def test_a_trusted_relays_results_are_taken_instead_of_evaluating(auth_dns: AuthDns) -> None:
    relayed = (
        b"Authentication-Results: mx.city.example.lg.jp;\r\n"
        b" spf=fail smtp.mailfrom=a@partner.co.jp; dkim=none;"
        b" dmarc=fail header.from=partner.co.jp\r\n" + mail("ceo@partner.co.jp")
    )
    checker = authenticator(auth_dns, trusted_authserv_ids=("mx.city.example.lg.jp",))
    # The client is the relay itself (Postfix on loopback): evaluating here would be wrong.
    outcome = evaluate(checker, relayed, ip="127.0.0.1", mail_from="a@partner.co.jp")
    assert outcome.trusted_from == "mx.city.example.lg.jp"
    assert results(outcome) == {"spf=fail", "dkim=none", "dmarc=fail"}
    assert outcome.action is AuthAction.REJECT  # p=reject looked up for the reported failure


def test_an_untrusted_authentication_results_header_is_never_believed(auth_dns: AuthDns) -> None:
    spoofed = (
        b"Authentication-Results: mx.city.example.lg.jp; spf=pass smtp.mailfrom=a@partner.co.jp;"
        b" dkim=pass header.d=partner.co.jp; dmarc=pass header.from=partner.co.jp\r\n"
        + mail("ceo@partner.co.jp")
    )
    outcome = evaluate(
        authenticator(auth_dns), spoofed, ip=STRANGER_IP, mail_from="a@partner.co.jp"
    )
    assert outcome.trusted_from == ""
    assert "dmarc=fail" in results(outcome)


@pytest.mark.parametrize(
    "sender",
    [
        '"soumu@city.example.lg.jp" <attacker@partner.co.jp>',
        "=?UTF-8?B?" + "c291bXXvvKBjaXR5LmV4YW1wbGUubGcuanA=" + "?= <attacker@partner.co.jp>",
    ],
)
def test_a_display_name_with_another_address_is_warned(auth_dns: AuthDns, sender: str) -> None:
    raw = auth_dns.sign(mail(sender), "partner.co.jp")
    outcome = evaluate(authenticator(auth_dns), raw, mail_from="attacker@partner.co.jp")
    assert "dmarc=pass" in results(outcome)
    assert outcome.reasons == (Reason.DISPLAY_NAME_ADDRESS,)
    assert outcome.action is AuthAction.WARN


@pytest.mark.parametrize(
    "domain",
    ["city.examp1e.lg.jp", "clty.example.lg.jp", "city-example.lg.jp", "example.co.jp"],
)
def test_a_look_alike_sender_domain_is_warned(auth_dns: AuthDns, domain: str) -> None:
    outcome = evaluate(authenticator(auth_dns), mail(f"kacho@{domain}"), ip=STRANGER_IP)
    assert Reason.LOOKALIKE_SENDER in outcome.reasons
    assert outcome.action is AuthAction.WARN


@pytest.mark.parametrize("domain", ["city.example.lg.jp", "ka.city.example.lg.jp", "town.ne.jp"])
def test_our_own_and_unrelated_domains_are_not_look_alikes(auth_dns: AuthDns, domain: str) -> None:
    outcome = evaluate(authenticator(auth_dns), mail(f"kacho@{domain}"), ip=STRANGER_IP)
    assert Reason.LOOKALIKE_SENDER not in outcome.reasons


def test_the_resolver_caches_answers(auth_dns: AuthDns) -> None:
    resolver = Resolver((auth_dns.nameserver,), 5, 100)
    assert resolver.budget().txt("partner.co.jp")
    cache = resolver._resolver.cache
    assert cache is not None
    assert len(cache.data) == 1


def test_a_body_line_that_looks_like_a_signature_is_not_one(auth_dns: AuthDns) -> None:
    body = "DKIM-Signature: v=1; a=rsa-sha256; d=evil.co.jp; s=x; h=from; bh=; b=\r\n" * 20
    raw = auth_dns.sign(mail("info@partner.co.jp", body=body), "partner.co.jp")
    outcome = evaluate(authenticator(auth_dns), raw, mail_from="info@partner.co.jp")
    assert [r.result for r in outcome.results if r.method == "dkim"] == ["pass"]

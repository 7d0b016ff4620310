"""Rules: matching by recipient, sender and network; order; exceptions and their expiry."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.configuration.rules import Rule, RuleSet
from sanitizers.policy import AttachmentAction, LinkMode, Policy
from sanitizers.senderauth import AuthOutcome, MethodResult


def rule(name: str, **fields: Any) -> Rule:
    return Rule.model_validate({"name": name, **fields})


def names(rules: RuleSet, recipient: str, sender: str = "a@b.jp", client: str = "") -> list[str]:
    indexes = rules.matching(sender=sender, recipient=recipient, client=client)
    return [rules.rules[i].name for i in indexes]


@pytest.mark.parametrize(
    ("selector", "address", "expected"),
    [
        ("keiri@city.example.lg.jp", "keiri@city.example.lg.jp", True),
        ("keiri@city.example.lg.jp", "KEIRI@City.Example.LG.JP", True),
        ("keiri@city.example.lg.jp", "<keiri@city.example.lg.jp>", True),
        ("keiri@city.example.lg.jp", "soumu@city.example.lg.jp", False),
        ("city.example.lg.jp", "anyone@city.example.lg.jp", True),
        ("city.example.lg.jp", "x@sub.city.example.lg.jp", False),
        ("*.city.example.lg.jp", "x@sub.city.example.lg.jp", True),
        ("*.city.example.lg.jp", "x@city.example.lg.jp", False),
        ("*.city.example.lg.jp", "x@evilcity.example.lg.jp", False),
        ("city.example.lg.jp", "", False),  # the null sender matches nothing
    ],
)
def test_address_and_domain_selectors(selector: str, address: str, expected: bool) -> None:
    r = rule("r", recipients=[selector])
    assert r.matches(sender="x@other.jp", recipient=address, client="") is expected
    s = rule("s", senders=[selector])
    assert s.matches(sender=address, recipient="x@other.jp", client="") is expected


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("192.0.2.7", True),
        ("192.0.2.7:40000", True),
        ("::ffff:192.0.2.7", True),
        ("[2001:db8::5]:25", True),
        ("198.51.100.1", False),
        ("", False),
        ("not-an-ip", False),
    ],
)
def test_network_selector(client: str, expected: bool) -> None:
    r = rule("net", networks=["192.0.2.0/24", "2001:db8::/32"])
    assert r.matches(sender="a@b.jp", recipient="c@d.jp", client=client) is expected


def test_all_given_criteria_must_match_and_none_matches_everything() -> None:
    r = rule("all", recipients=["city.example.lg.jp"], senders=["bank.jp"], networks=["10.0.0.0/8"])
    ok = {"sender": "x@bank.jp", "recipient": "y@city.example.lg.jp", "client": "10.1.2.3"}
    assert r.matches(**ok)
    assert not r.matches(**(ok | {"sender": "x@other.jp"}))
    assert not r.matches(**(ok | {"recipient": "y@other.lg.jp"}))
    assert not r.matches(**(ok | {"client": "11.1.2.3"}))
    assert rule("any").matches(sender="", recipient="z@z.jp", client="")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recipients", ["a@"]),
        ("recipients", [""]),
        ("senders", ["bad domain.jp"]),
        ("networks", ["192.0.2.1/24"]),  # host bits set: a typo, not a network
        ("networks", ["300.0.0.0/8"]),
    ],
)
def test_bad_selectors_are_errors(field: str, value: list[str]) -> None:
    with pytest.raises(ValidationError):
        rule("bad", **{field: value})


def test_every_matching_rule_applies_and_a_later_rule_wins_per_key() -> None:
    rules = RuleSet(
        Policy(),
        [
            rule(
                "general", policy={"body": {"links": "defang"}, "output": {"subject_tag": "[外部]"}}
            ),
            rule(
                "finance",
                recipients=["keiri@city.example.lg.jp"],
                policy={"body": {"links": "drop"}, "attachments": {"by_kind": {"pdf": "remove"}}},
            ),
            rule(
                "other", recipients=["soumu@city.example.lg.jp"], policy={"body": {"links": "keep"}}
            ),
        ],
    )
    assert names(rules, "keiri@city.example.lg.jp") == ["general", "finance"]
    (group,) = rules.groups(sender="a@b.jp", recipients=["keiri@city.example.lg.jp"], client="")
    assert group.policy.body.links == LinkMode.DROP  # finance is later: it wins
    assert group.policy.output.subject_tag == "[外部]"  # from general, not overridden
    by_kind = group.policy.attachments.by_kind
    assert by_kind["pdf"] == AttachmentAction.REMOVE
    assert by_kind["ooxml"] == AttachmentAction.SANITIZE  # by_kind merges per kind
    assert group.rules == ("general", "finance")


def test_order_matters_later_rule_overrides_earlier() -> None:
    first = rule("a", policy={"body": {"links": "drop"}})
    second = rule("b", policy={"body": {"links": "keep"}})
    for order, expected in (([first, second], LinkMode.KEEP), ([second, first], LinkMode.DROP)):
        (group,) = RuleSet(Policy(), order).groups(sender="", recipients=["x@y.jp"], client="")
        assert group.policy.body.links == expected


def test_recipients_with_different_rules_form_groups() -> None:
    rules = RuleSet(
        Policy(),
        [
            rule(
                "finance",
                recipients=["keiri@city.example.lg.jp", "zaimu@city.example.lg.jp"],
                policy={"limits": {"max_parts": 10}},
            ),
        ],
    )
    groups = rules.groups(
        sender="a@b.jp",
        recipients=[
            "soumu@city.example.lg.jp",
            "keiri@city.example.lg.jp",
            "zaimu@city.example.lg.jp",
        ],
        client="",
    )
    assert [g.recipients for g in groups] == [
        ("soumu@city.example.lg.jp",),
        ("keiri@city.example.lg.jp", "zaimu@city.example.lg.jp"),
    ]
    assert groups[0].policy == Policy()
    assert groups[1].policy.limits.max_parts == 10


def exception_rule(expires: date) -> Rule:
    return rule(
        "exc",
        recipients=["keiri@city.example.lg.jp"],
        exception=True,
        approved_by="情報政策課長",
        reason="取引先の帳票",
        expires=expires.isoformat(),
        policy={"attachments": {"by_kind": {"ooxml": "keep_if_clean"}}},
    )


def test_an_exception_applies_until_its_expiry_day_inclusive_then_is_skipped() -> None:
    today = [date(2027, 3, 31)]
    rules = RuleSet(Policy(), [exception_rule(date(2027, 3, 31))], lambda: today[0])
    (group,) = rules.groups(sender="", recipients=["keiri@city.example.lg.jp"], client="")
    assert group.exceptions == ("exc",)
    assert group.policy.attachments.by_kind["ooxml"] == AttachmentAction.KEEP_IF_CLEAN
    assert rules.expired() == []
    today[0] = date(2027, 4, 1)
    (group,) = rules.groups(sender="", recipients=["keiri@city.example.lg.jp"], client="")
    assert group.exceptions == ()
    assert group.rules == ()
    assert group.policy == Policy()
    assert [r.name for r in rules.expired()] == ["exc"]


def test_effective_policies_are_cached_per_rule_combination() -> None:
    rules = RuleSet(Policy(), [rule("a", policy={"body": {"links": "drop"}})])
    first = rules.groups(sender="", recipients=["x@y.jp"], client="")[0].policy
    second = rules.groups(sender="", recipients=["z@y.jp"], client="")[0].policy
    assert first is second


def test_a_rule_with_auth_matches_only_those_results() -> None:
    rule = Rule.model_validate({"name": "spoofed", "auth": ["DMARC=fail", "spf=softfail"]})
    assert rule.auth == ("dmarc=fail", "spf=softfail")

    def outcome(*results: tuple[str, str]) -> AuthOutcome:
        return AuthOutcome("mx.example.lg.jp", tuple(MethodResult(m, r) for m, r in results))

    where = {"sender": "a@b.jp", "recipient": "c@example.lg.jp", "client": "192.0.2.1"}
    assert rule.matches(**where, auth=outcome(("spf", "pass"), ("dmarc", "fail")))
    assert rule.matches(**where, auth=outcome(("spf", "softfail"), ("dmarc", "pass")))
    assert not rule.matches(**where, auth=outcome(("spf", "pass"), ("dmarc", "pass")))
    assert not rule.matches(**where)  # not evaluated: an auth criterion never matches


@pytest.mark.parametrize("entry", ["dmarc", "dmarc=maybe", "bimi=pass", "=fail", ""])
def test_a_bad_auth_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="expected method=result"):
        Rule.model_validate({"name": "x", "auth": [entry]})

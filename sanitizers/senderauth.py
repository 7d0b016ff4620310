"""Sender authentication as data: what the gateway found (SPF, DKIM, DMARC, ARC) and what it
decided, handed to the pure pipeline, which writes it into the rebuilt message.

The pipeline does no DNS: ``gateway/senderauth`` evaluates, this module carries the outcome
(through the spool and the process pool as JSON) and renders the ``Authentication-Results``
header (RFC 8601). Threat model: every value here may come from the message or from DNS
(domains, selectors, addresses); a value is written into the header only when it is a plain
token of the characters RFC 8601 values use, anything else is left out, so no value can break
the header or add another one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sanitizers.vocabulary import Reason


class AuthAction(StrEnum):
    """What an authentication result does to a message (settings ``auth.*_action``)."""

    REJECT = "reject"  # 550 5.7.1 at the end of DATA (after a 250: held, never a bounce)
    HOLD = "hold"  # held: the recipients get a notice, not the mail
    WARN = "warn"  # delivered with a subject tag and a warning at the top of the body
    NONE = "none"  # delivered; the result is recorded


# The methods evaluated and the results RFC 8601 names for them (rules match these).
AUTH_METHODS = ("spf", "dkim", "dmarc", "arc")
AUTH_RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")
# Strongest first: several findings give the strongest action among them.
_STRENGTH = (AuthAction.REJECT, AuthAction.HOLD, AuthAction.WARN, AuthAction.NONE)
# A property value or result keyword written into the header: a domain, an address, a
# selector, an IP address.
_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+:=/-]{0,253}")
_KEYWORD = re.compile(r"[a-z][a-z0-9.-]{0,40}")
_COMMENT = re.compile(r"[A-Za-z0-9 ._=@:/+,!-]{1,200}")  # no parentheses, semicolons, quotes


def strongest(actions: list[AuthAction]) -> AuthAction:
    """The strongest of ``actions`` (reject over hold over warn over none)."""
    return min(actions, key=_STRENGTH.index, default=AuthAction.NONE)


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One method's result, as RFC 8601 writes it: ``dkim=pass header.d=example.jp``."""

    method: str  # spf, dkim, dmarc, arc
    result: str  # pass, fail, softfail, neutral, none, temperror, permerror, policy
    properties: tuple[tuple[str, str], ...] = ()  # ("smtp.mailfrom", "example.jp")
    comment: str = ""  # why, in ASCII (e.g. the DMARC policy: "p=reject")

    def text(self) -> str:
        """The resinfo, with every unsafe value left out."""
        if not (_KEYWORD.fullmatch(self.method) and _KEYWORD.fullmatch(self.result)):
            return ""
        words = [f"{self.method}={self.result}"]
        if self.comment and _COMMENT.fullmatch(self.comment):
            words.append(f"({self.comment})")
        words += [
            f"{name}={value}"
            for name, value in self.properties
            if _KEYWORD.fullmatch(name) and _VALUE.fullmatch(value)
        ]
        return " ".join(words)


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    """The evaluation of one message: each method's result, the action it leads to and the
    reasons for it (``reasons`` name what is wrong even when the action is ``none``)."""

    authserv_id: str
    results: tuple[MethodResult, ...] = ()
    action: AuthAction = AuthAction.NONE
    reasons: tuple[Reason, ...] = ()
    # The relay in front whose Authentication-Results were taken instead of evaluating.
    trusted_from: str = ""
    # The action comes only from a DNS failure (temperror): a "reject" is then answered 451.
    temporary: bool = False

    def header_value(self) -> str:
        """The value of our ``Authentication-Results`` header (RFC 8601 section 2.2)."""
        resinfo = [text for text in (result.text() for result in self.results) if text]
        authserv = self.authserv_id if _VALUE.fullmatch(self.authserv_id) else "invalid"
        return "; ".join([authserv, *(resinfo or ["none"])])

    def result_of(self, method: str) -> str:
        """The first result of ``method`` ("none" when it was not evaluated)."""
        return next((r.result for r in self.results if r.method == method), "none")

    def matches(self, selector: str) -> bool:
        """Whether ``method=result`` (a rule's ``auth`` entry) is among the results."""
        method, _, result = selector.partition("=")
        return any(r.method == method and r.result == result for r in self.results)

    def after_acceptance(self) -> AuthOutcome:
        """The outcome for a message already answered 250: reject becomes hold (a bounce
        would go to the possibly forged sender)."""
        if self.action is not AuthAction.REJECT:
            return self
        return AuthOutcome(
            self.authserv_id,
            self.results,
            AuthAction.HOLD,
            self.reasons,
            self.trusted_from,
            self.temporary,
        )

    def released(self) -> AuthOutcome:
        """The outcome for a copy an operator released: the same results in its
        Authentication-Results, and a hold or reject turned into a warning, so the recipient
        is still told that the sender may be forged."""
        if self.action not in (AuthAction.REJECT, AuthAction.HOLD):
            return self
        return AuthOutcome(
            self.authserv_id,
            self.results,
            AuthAction.WARN,
            self.reasons,
            self.trusted_from,
            self.temporary,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON for the spool, the report and the audit line."""
        data: dict[str, Any] = {
            "authserv_id": self.authserv_id,
            "action": self.action.value,
            "reasons": [reason.value for reason in self.reasons],
            "results": [
                {
                    "method": r.method,
                    "result": r.result,
                    "properties": dict(r.properties),
                    **({"comment": r.comment} if r.comment else {}),
                }
                for r in self.results
            ],
        }
        if self.trusted_from:
            data["trusted_from"] = self.trusted_from
        if self.temporary:
            data["temporary"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthOutcome:
        """The inverse of :meth:`to_dict`."""
        return cls(
            authserv_id=str(data["authserv_id"]),
            results=tuple(
                MethodResult(
                    str(r["method"]),
                    str(r["result"]),
                    tuple((str(k), str(v)) for k, v in dict(r.get("properties", {})).items()),
                    str(r.get("comment", "")),
                )
                for r in data.get("results", [])
            ),
            action=AuthAction(data.get("action", "none")),
            reasons=tuple(Reason(code) for code in data.get("reasons", [])),
            trusted_from=str(data.get("trusted_from", "")),
            temporary=bool(data.get("temporary", False)),
        )

"""A quarantined original shown as text: its headers decoded, its text as the pipeline renders
it, and each part with its type, hash, action and reason.

The original is hostile. It is never shown as HTML and nothing in it is loaded: the pipeline
(:func:`sanitizers.pipeline.sanitize_message`) rebuilds it with the effective policy of its
recipients and the holds lifted (as a release would), and the console shows the text of that
rebuild and its report; a message still held (a limit) is rendered again text-only, every file
removed unparsed. Sender authentication as it was found before the 250 is applied as a release
applies it (a spoofing warning at the top of the text). Header values are decoded by the
standard library and cleaned of control and bidi characters; the templates escape everything.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Final

from gateway.configuration.config import Config, rule_set
from gateway.evidence.quarantine import QuarantineEntry
from sanitizers.errors import TemporaryFailure
from sanitizers.pipeline import sanitize_message
from sanitizers.release import ReleaseTerms
from sanitizers.report import PartReport, Report
from sanitizers.safetext import log_text
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import Verdict

SHOWN_HEADERS: Final = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "Return-Path",
    "Received",
    "Authentication-Results",
    "X-Mailer",
    "User-Agent",
)
MAX_HEADER_CHARS: Final = 2000
MAX_TEXT_CHARS: Final = 200_000
MAX_HEADERS_SHOWN: Final = 100


@dataclass(frozen=True)
class Rendering:
    headers: list[tuple[str, str]]
    text: str
    report: Report | None
    problem: str


def decoded_headers(untrusted_raw: bytes) -> list[tuple[str, str]]:
    """The headers worth reading, decoded, cleaned and bounded, in their order."""
    try:
        parsed = BytesHeaderParser(policy=default_policy).parsebytes(untrusted_raw)
        items = parsed.items()
    except Exception:  # noqa: BLE001 - a header the stdlib cannot read is shown as missing
        return []
    shown = {name.lower() for name in SHOWN_HEADERS}
    headers: list[tuple[str, str]] = []
    for name, value in items:
        if name.lower() not in shown:
            continue
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - an undecodable header value
            text = "?"
        headers.append((log_text(name, 100), log_text(text, MAX_HEADER_CHARS)))
        if len(headers) >= MAX_HEADERS_SHOWN:
            break
    return headers


def body_text(rebuilt: bytes) -> str:
    """The text part of a message the pipeline rebuilt (it has exactly one)."""
    parsed = email.message_from_bytes(rebuilt, policy=default_policy)
    body = parsed.get_body(("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return str(text)[:MAX_TEXT_CHARS]


def render(untrusted_raw: bytes, entry: QuarantineEntry, config: Config) -> Rendering:
    """The original of ``entry`` as text (see the module docstring)."""
    headers = decoded_headers(untrusted_raw)
    rules = rule_set(config)
    groups = rules.groups(
        sender=entry.mail_from, recipients=list(entry.rcpt_to), client=entry.client
    )
    policy = groups[0].policy if groups else config.policy
    auth = None if entry.auth is None else AuthOutcome.from_dict(entry.auth).released()
    try:
        result = sanitize_message(
            untrusted_raw,
            policy,
            reference=entry.id,
            release=ReleaseTerms(lift_holds=True),
            auth=auth,
        )
        if result.verdict is Verdict.HOLD:
            text_only = sanitize_message(
                untrusted_raw,
                policy,
                reference=entry.id,
                release=ReleaseTerms(lift_holds=True, text_only=True),
                auth=auth,
            )
            text = body_text(text_only.message) if text_only.verdict is not Verdict.HOLD else ""
        else:
            text = body_text(result.message)
    except TemporaryFailure as exc:
        return Rendering(headers, "", None, str(exc))
    return Rendering(headers, text, result.report, "")


def part_rows(report: Report | None) -> list[PartReport]:
    return [] if report is None else list(report.parts)

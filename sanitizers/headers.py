"""Rebuild the allowlisted headers of a message from their decoded meaning, never their bytes.

Threat model: header values are hostile. Encoded-words may decode to CR/LF (header
injection), to address syntax (a display name that decodes to ``admin@city.lg.jp``), or to
bidi controls; raw 8-bit bytes may be in any charset; a header may appear twice with different
values. Each allowed header is read once (the first occurrence; a repeat is a finding),
decoded by :mod:`sanitizers.charsets`, checked against its grammar (addresses, message ids,
dates) and later re-encoded from scratch by :mod:`sanitizers.compose`. Anything that does not
fit its grammar is dropped and recorded, never passed through.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from email.message import Message
from email.utils import format_datetime, getaddresses, parsedate_to_datetime

from sanitizers.charsets import decode_header
from sanitizers.mime import first_raw_header, raw_header_count
from sanitizers.vocabulary import Reason

ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender", "bcc"})
ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
# Address literals are ASCII: a local part and a domain of printable non-space characters.
_ADDR_SPEC = re.compile(r"^[!#-'*+\-/-9=?A-Z^-~.]{1,64}@[A-Za-z0-9.\-\[\]:]{1,255}$")
_MSG_ID = re.compile(r"<[!-;=?-~]{1,250}>")
_MAX_IDS = 50
_MAX_VALUE_CHARS = 2000
# Bidi embedding, override and isolate controls: they make text display in another order than
# it is stored ("請求書\u202efdp.exe" shows as "請求書exe.pdf"). No Japanese text needs them.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Controls and bidi overrides that could disguise what a reader sees.
_DISPLAY_UNSAFE = re.compile("[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(slots=True)
class RebuiltHeaders:
    """Clean header values in allowlist order, ready for re-encoding."""

    # (canonical name, value); address headers carry a list of (display name, address).
    fields: list[tuple[str, str | list[tuple[str, str]]]] = field(default_factory=list)
    findings: list[Reason] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    subject: str | None = None
    from_: str | None = None
    message_id: str | None = None


def display_safe(text: str, limit: int = 200) -> str:
    """Text as it may be shown to a reader: no controls or bidi overrides, bounded length."""
    cleaned = _DISPLAY_UNSAFE.sub("", text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def rebuild_headers(message: Message, allowlist: tuple[str, ...]) -> RebuiltHeaders:
    """Read, check and normalise each allowlisted header of ``message``."""
    rebuilt = RebuiltHeaders()
    for name in allowlist:
        untrusted_value = first_raw_header(message, name)
        if untrusted_value is None:
            continue
        if raw_header_count(message, name) > 1:
            rebuilt.findings.append(Reason.MALFORMED)
            rebuilt.notes.append(f"{name} appears more than once: the first one is used")
        key = name.lower()
        if key in ADDRESS_HEADERS:
            _add_addresses(rebuilt, name, untrusted_value)
        elif key in ID_HEADERS:
            _add_ids(rebuilt, name, untrusted_value)
        elif key == "date":
            _add_date(rebuilt, name, untrusted_value)
        else:
            _add_text(rebuilt, name, untrusted_value)
    return rebuilt


def _note_lossy(rebuilt: RebuiltHeaders, name: str, lossy: bool) -> None:
    if lossy:
        rebuilt.findings.append(Reason.LOSSY_DECODE)
        rebuilt.notes.append(f"{name}: some bytes could not be decoded")


def _add_text(rebuilt: RebuiltHeaders, name: str, untrusted_value: str) -> None:
    decoded = decode_header(untrusted_value)
    _note_lossy(rebuilt, name, decoded.lossy)
    text = BIDI_CONTROLS.sub("", decoded.text)
    if text != decoded.text:
        rebuilt.notes.append(f"{name}: bidi override controls removed")
    value = " ".join(text.split())[:_MAX_VALUE_CHARS]
    if name.lower() == "subject":
        rebuilt.subject = display_safe(value)
    rebuilt.fields.append((name, value))


def _add_addresses(rebuilt: RebuiltHeaders, name: str, untrusted_value: str) -> None:
    """Split into mailboxes BEFORE decoding encoded-words, so a decoded name can never turn
    into an address or a separator; then decode each display name on its own."""
    mailboxes: list[tuple[str, str]] = []
    for untrusted_name, untrusted_addr in getaddresses([untrusted_value.replace("\n", " ")]):
        addr = untrusted_addr.strip()
        if not _ADDR_SPEC.match(addr):
            if addr or untrusted_name:
                rebuilt.findings.append(Reason.MALFORMED)
                rebuilt.notes.append(f"{name}: an address that is not an address was dropped")
            continue
        decoded = decode_header(untrusted_name)
        _note_lossy(rebuilt, name, decoded.lossy)
        display = display_safe(" ".join(decoded.text.split()))
        if _looks_like_another_address(display, addr):
            # A display name that looks like another address is how From is forged for eyes.
            rebuilt.findings.append(Reason.MALFORMED)
            rebuilt.notes.append(f"{name}: a display name that looked like an address was dropped")
            display = ""
        mailboxes.append((display, addr))
    if not mailboxes:
        return
    if name.lower() == "from":
        first_name, first_addr = mailboxes[0]
        rebuilt.from_ = f"{first_name} <{first_addr}>" if first_name else first_addr
    rebuilt.fields.append((name, mailboxes))


def _looks_like_another_address(display: str, addr: str) -> bool:
    """Whether a display name reads as an address other than ``addr``. Judged after
    compatibility folding (NFKC), as a reader sees it: a full-width ＠ or small ﹫ reads as @."""
    folded = unicodedata.normalize("NFKC", display)
    return "@" in folded and folded.strip("\"' <>").lower() != addr.lower()


def _add_ids(rebuilt: RebuiltHeaders, name: str, untrusted_value: str) -> None:
    ids = _MSG_ID.findall(untrusted_value)[:_MAX_IDS]
    ids = [token for token in ids if "@" in token]
    if not ids:
        rebuilt.findings.append(Reason.MALFORMED)
        rebuilt.notes.append(f"{name}: no valid message id, dropped")
        return
    if name.lower() == "message-id":
        ids = ids[:1]
        rebuilt.message_id = ids[0]
    rebuilt.fields.append((name, " ".join(ids)))


def _add_date(rebuilt: RebuiltHeaders, name: str, untrusted_value: str) -> None:
    try:
        when = parsedate_to_datetime(" ".join(untrusted_value.split()))
        value = format_datetime(when)
    except (TypeError, ValueError, IndexError, OverflowError):
        rebuilt.findings.append(Reason.MALFORMED)
        rebuilt.notes.append(f"{name}: not a valid date, dropped")
        return
    rebuilt.fields.append((name, value))

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
from dataclasses import dataclass, field, replace
from email.message import Message
from email.utils import format_datetime, getaddresses, parsedate_to_datetime

from sanitizers.charsets import Decoded, decode_header, decode_raw_runs, header_bytes, join_decoded
from sanitizers.mime import first_raw_header, raw_header_count
from sanitizers.safetext import display_text
from sanitizers.vocabulary import Reason

ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender", "bcc"})
ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
# Address literals are ASCII: a local part and a domain of printable non-space characters.
_ADDR_SPEC = re.compile(r"^[!#-'*+\-/-9=?A-Z^-~.]{1,64}@[A-Za-z0-9.\-\[\]:]{1,255}$")
_MSG_ID = re.compile(r"<[!-;=?-~]{1,250}>")
_MAX_IDS = 50
_MAX_VALUE_CHARS = 2000
_SUBJECT_LIMIT = 200
# Raw text in an address header: ISO-2022-JP from an escape to the return to ASCII, or 8-bit
# bytes, each with the byte after it when that can be a Shift_JIS trail byte (0x40-0x7E holds
# "@", "[", "\\" and "]": 表 is 0x95 0x5C).
_RAW_RUN = re.compile(
    rb"\x1b(?:\$[@B]|\(I)[^\x1b]*(?:\x1b\([BJ])?|(?:[\x81-\x9f\xe0-\xfc][\x40-\x7e\x80-\xfc]|[\x80-\xff])+"
)
# Between two raw runs, only spaces and the specials of RFC 5322 phrases: one name's text.
_BETWEEN_RUNS = re.compile(rb'[ \t,;:"()<>\[\]\\.]*')
# Closing specials and what opens each.
_CLOSERS = {b")": b"(", b">": b"<", b"]": b"[", b'"': b'"'}
# Placeholders for raw runs while addresses are split: Unicode plane 15 private use, which
# getaddresses reads as ordinary atom characters.
_PLACEHOLDER = 0xF0000
_MAX_RAW_RUNS = 256
_PLACEHOLDERS = re.compile(f"([{chr(_PLACEHOLDER)}-{chr(_PLACEHOLDER + _MAX_RAW_RUNS - 1)}])")


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


def _note_removed(rebuilt: RebuiltHeaders, name: str, removed: frozenset[str]) -> None:
    if "bidi" in removed:
        rebuilt.notes.append(f"{name}: bidi controls removed")


def _note_lossy(rebuilt: RebuiltHeaders, name: str, lossy: bool) -> None:
    if lossy:
        rebuilt.findings.append(Reason.LOSSY_DECODE)
        rebuilt.notes.append(f"{name}: some bytes could not be decoded")


def _add_text(rebuilt: RebuiltHeaders, name: str, untrusted_value: str) -> None:
    decoded = decode_header(untrusted_value)
    _note_lossy(rebuilt, name, decoded.lossy)
    _note_removed(rebuilt, name, decoded.removed)
    value = decoded.text[:_MAX_VALUE_CHARS]
    if name.lower() == "subject":
        rebuilt.subject = display_text(value, _SUBJECT_LIMIT)
    rebuilt.fields.append((name, value))


def _raw_spans(raw: bytes) -> list[tuple[int, int]]:
    """Where the raw runs of an address header are, each one name's raw text: runs with only
    spaces and phrase specials between them are one (a sender that writes raw 8-bit names
    does not quote them: 山田,太郎 and 山田"太郎 are names, not two mailboxes or an open
    quote), and a ``)``, ``>``, ``]`` or ``"`` right after a run that opened it between its
    pieces is the run's too (山田(太郎)). Bytes inside runs are not read as specials."""
    spans: list[tuple[int, int, bytes]] = []  # (start, end, the specials between pieces)
    for match in _RAW_RUN.finditer(raw):
        start, end, between = *match.span(), b""
        if spans and _BETWEEN_RUNS.fullmatch(raw, spans[-1][1], start):
            previous = spans.pop()
            start, between = previous[0], previous[2] + raw[previous[1] : start]
        spans.append((start, end, between))
    closed: list[tuple[int, int]] = []
    for start, end, between in spans:
        while end < len(raw) and _opened(between, raw[end : end + 1]):
            between += raw[end : end + 1]
            end += 1
        closed.append((start, end))
    return closed


def _opened(between: bytes, closer: bytes) -> bool:
    """Whether ``between`` opened what ``closer`` closes and has not closed it."""
    opener = _CLOSERS.get(closer)
    if opener is None:
        return False
    if opener == closer:
        return between.count(closer) % 2 == 1
    return between.count(opener) > between.count(closer)


def _protect_raw_runs(untrusted_value: str) -> tuple[str, list[Decoded], bool]:
    """The header value with each raw run (see :func:`_raw_spans`) replaced by one
    placeholder character, the decoded runs (decoded together), and whether the value had
    characters that are not bytes."""
    raw, lossy = header_bytes(untrusted_value)
    text: list[str] = []
    runs: list[bytes] = []
    position = 0
    for start, end in _raw_spans(raw):
        if len(runs) == _MAX_RAW_RUNS - 1:
            break
        text += (raw[position:start].decode("ascii"), chr(_PLACEHOLDER + len(runs)))
        runs.append(raw[start:end])
        position = end
    rest = raw[position:]
    if rest.isascii():
        text.append(rest.decode("ascii"))
    else:  # more runs than the limit: the rest is one last run, part of a name at most
        text.append(chr(_PLACEHOLDER + len(runs)))
        runs.append(rest)
    return "".join(text), decode_raw_runs(raw, runs), lossy


def _display_name(untrusted_name: str, runs: list[Decoded]) -> Decoded:
    """A display name whose placeholders are its decoded raw runs; the ASCII between them may
    hold encoded-words."""
    parts: list[Decoded] = []
    for index, piece in enumerate(_PLACEHOLDERS.split(untrusted_name)):
        if index % 2:
            parts.append(runs[ord(piece) - _PLACEHOLDER])
        elif piece.strip(" "):
            decoded = decode_header(piece)  # its outer spaces are dropped: put them back
            before = " " * (len(piece) - len(piece.lstrip(" ")))
            after = " " * (len(piece) - len(piece.rstrip(" ")))
            parts.append(replace(decoded, text=before + decoded.text + after))
        elif piece:
            parts.append(Decoded(piece, "us-ascii", lossy=False, detected=False))
    return join_decoded(parts)


def _add_addresses(rebuilt: RebuiltHeaders, name: str, untrusted_value: str) -> None:
    """Split into mailboxes BEFORE decoding, so a decoded name can never turn into an address
    or a separator: raw 8-bit and raw ISO-2022-JP runs (whose bytes may be ``@``, ``<``, ``"``
    or a backslash) stand as one placeholder character each while the value is split; then
    each display name is decoded on its own."""
    mailboxes: list[tuple[str, str]] = []
    protected, runs, not_bytes = _protect_raw_runs(untrusted_value)
    _note_lossy(rebuilt, name, not_bytes)
    for untrusted_name, untrusted_addr in getaddresses([protected]):
        addr = untrusted_addr.strip()
        if not _ADDR_SPEC.match(addr):
            if addr or untrusted_name:
                rebuilt.findings.append(Reason.MALFORMED)
                rebuilt.notes.append(f"{name}: an address that is not an address was dropped")
            continue
        decoded = _display_name(untrusted_name, runs)
        _note_lossy(rebuilt, name, decoded.lossy)
        _note_removed(rebuilt, name, decoded.removed)
        display = display_text(decoded.text, _SUBJECT_LIMIT)
        if _looks_like_another_address(display, addr):
            # A display name that looks like another address is how From is forged for eyes.
            rebuilt.findings.append(Reason.DISPLAY_NAME_ADDRESS)
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

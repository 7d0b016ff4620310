"""Password candidates in the text of a password mail (the second mail of PPAP).

Japanese business mail sends an encrypted ZIP, then its password in a second mail, written
in a handful of ways: 「パスワード：Abc123」, "PW: Abc123", 【パスワード】Abc123, パスワードは
「Abc123」です, or the password alone on its line under a line that says what it is. This
module reads a decoded text and returns the strings that may be the password, most likely
first, bounded in number and length; which of them opens the file is for the sanitizer to
find out (:meth:`sanitizers.cdr.registry.Registry.unlock`).

Threat model: the text is the sender's. A candidate is only ever tried as a password on a
file from the same sender; it is never shown, logged or stored. A mail full of lines that
look like passwords costs at most ``limit`` candidates, each at most :data:`MAX_LENGTH`
characters; only the first :data:`MAX_LINES` lines are read.

Each line is read in NFKC form, so full-width letters, digits and punctuation (ＰＷ：ａｂｃ１２３,
half-width ﾊﾟｽﾜｰﾄﾞ) count as their ASCII or standard forms; a candidate that NFKC changed is
offered in both forms, normalised first (a sender typing in full-width mode meant ASCII).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final

MAX_LENGTH: Final = 128
MAX_LINES: Final = 2000
_MIN_ALONE: Final = 4  # a shorter line alone is rarely a password and often a greeting
_MAX_ALONE: Final = 64

# What introduces a password (read in NFKC, case-insensitive).
_LABEL: Final = (
    r"(?:解凍|開封|展開)?(?:用の?)?(?:パスワード|パスワ-ド|暗証番号|パス|キー)"
    r"|pass\s?word|passwd|passcode|pwd|pw|pass"
)
# The label, then brackets or a separator: パスワード：x, PW=x, 【パスワード】x, パスワードは x.
_LABELLED: Final = re.compile(
    rf"(?:^|[^a-z])(?:{_LABEL})\s*(?:[(\[【〔<][^)\]】〕>]{{0,20}}[)\]】〕>])?\s*"
    r"(?:[:=]|は|】|\]|->|→)\s*(?P<value>.+)",
    re.IGNORECASE,
)
_MENTION: Final = re.compile(rf"(?:^|[^a-z])(?:{_LABEL})(?:[^a-z]|$)", re.IGNORECASE | re.MULTILINE)
_QUOTES: Final = {
    "「": "」",
    "『": "』",
    "【": "】",
    '"': '"',
    "'": "'",
    "(": ")",
    "<": ">",
    "[": "]",
}
# Words that end a value written in running text: パスワードは abc123です。 (ASCII
# punctuation may belong to the password: the token as written is offered too).
_TAIL: Final = re.compile(r"(?:です|となります|になります|でございます)?[。、]*$")
_ALONE: Final = re.compile(r"[\x21-\x7e]+")
_NOT_A_PASSWORD: Final = re.compile(r"://|@|^[-=_*#~.]+$|^[>|]")


def password_candidates(text: str, limit: int) -> tuple[str, ...]:
    """Up to ``limit`` distinct candidates from ``text``: labelled values first (in the
    order they appear), then lines that hold one token alone. A text that never names a
    password (no label word anywhere) offers none: an ordinary mail from the same sender
    must not use up the attempts of a held one."""
    if _MENTION.search(unicodedata.normalize("NFKC", text[: MAX_LINES * 200])) is None:
        return ()
    found: dict[str, None] = {}
    for candidate in _candidates(text):
        if 0 < len(candidate) <= MAX_LENGTH and candidate not in found:
            found[candidate] = None
            if len(found) >= limit:
                break
    return tuple(found)


def _candidates(text: str) -> Iterator[str]:
    lines = text.splitlines()[:MAX_LINES]
    alone: list[str] = []
    for raw_line in lines:
        line = raw_line.strip()
        normal = unicodedata.normalize("NFKC", line).strip()
        match = _LABELLED.search(normal)
        if match is not None:
            for value in _values(match.group("value")):
                yield value
                original = _original_form(line, value)
                if original:
                    yield original
            continue
        if _looks_alone(normal):
            alone.append(normal)
            if normal != line:
                alone.append(line)
    yield from alone


def _looks_alone(line: str) -> bool:
    """A line that is one printable ASCII token of password length, not an address, a link,
    a quote mark or a rule."""
    return (
        _MIN_ALONE <= len(line) <= _MAX_ALONE
        and _ALONE.fullmatch(line) is not None
        and _NOT_A_PASSWORD.search(line) is None
        and any(character.isalnum() for character in line)
    )


def _values(untrusted_value: str) -> list[str]:
    """The password in what follows the label: inside quotes when quoted, else the first
    token without the polite ending of the sentence, then (when that differs) the token as
    it was."""
    value = untrusted_value.strip()
    closing = _QUOTES.get(value[:1])
    if closing is not None:
        end = value.find(closing, 1)
        if end > 1:
            return [value[1:end]]
    tokens = value.split()
    if not tokens:
        return []
    token = tokens[0]
    trimmed = _TAIL.sub("", token)
    return [v for v in dict.fromkeys((trimmed, token)) if v]


def _original_form(line: str, normal_value: str) -> str:
    """The value as written (before NFKC) when NFKC changed it, if it can be found."""
    if normal_value in line:
        return ""
    for token in re.split(r"[\s「」『』【】:：=＝]+", line):
        if token and unicodedata.normalize("NFKC", token) == normal_value:
            return token
    return ""

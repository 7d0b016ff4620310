"""Serialise the rebuilt message: every header and every part written anew by this module.

Nothing here copies bytes from the original mail: it receives decoded, checked values and
writes a 7-bit-safe message (RFC 5322 lines of at most 78 characters where the content allows,
never over 998; headers RFC 2047 encoded; file names RFC 2231 encoded; bodies base64 or
7bit ISO-2022-JP). Output is deterministic: the same values give the same bytes, which makes
re-sanitizing a sanitized message a no-op.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from sanitizers.charsets import decode_header_bytes, encode_iso2022jp
from sanitizers.safetext import SURROGATES, has_unsafe

_ATOM_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$")
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&\-^_.+]{0,126}/[a-z0-9][a-z0-9!#$&\-^_.+]{0,126}$")
_CHARSET_PARAM = re.compile(r"\bcharset=\"?([a-z0-9_.:-]{1,40})\"?")
# Lone surrogates (UTF-7 "+2D0-" and broken UTF-16 decode to them): no encoding can write them.
_LONE_SURROGATE = re.compile(f"[{SURROGATES[0]}-{SURROGATES[-1]}]")
# Lines where mail readers start decoding a file embedded in plain text (uuencode, yEnc,
# BinHex: Thunderbird and Becky! show such a block as an attachment). The pipeline cuts such
# blocks out of bodies (sanitizers/inline_files.py); this guard covers any other text (a
# lookalike line that starts no decodable block): a leading space disarms it, the text stays
# readable and a second pass finds nothing to change.
_INLINE_FILE = re.compile(
    r"^(?=begin(?:-base64)?[ \t]+[0-7]{1,4}[ \t]|=ybegin[ \t]"
    r"|\(This file must be converted with BinHex)",
    re.MULTILINE | re.IGNORECASE,
)
# UTF-8 bytes per encoded-word: 45 bytes give 60 base64 characters, inside the 75 allowed.
_WORD_BYTES = 45
# Runs of ASCII and of other characters, written in encoded-words of their own when needed.
_SCRIPT_RUNS: Final = re.compile("[\x00-\x7f]+|[^\x00-\x7f]+")


def scrub_surrogates(text: str) -> tuple[str, bool]:
    """``text`` with each lone surrogate replaced by U+FFFD, and whether there was any. Every
    string composed into output passes here first (the pipeline reports a change as lossy)."""
    scrubbed = _LONE_SURROGATE.sub("\ufffd", text)
    return scrubbed, scrubbed != text


@dataclass(frozen=True, slots=True)
class OutAttachment:
    """A file that survived sanitizing, to be attached to the rebuilt message."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Body:
    """The text body and the charset the policy asks for."""

    text: str
    charset: str  # "utf-8" or "iso-2022-jp"


def compose(
    headers: list[tuple[str, str | list[tuple[str, str]]]],
    extra_headers: list[tuple[str, str]],
    body: Body,
    attachments: list[OutAttachment],
) -> bytes:
    """The whole message: rebuilt headers, our X-Mukaika headers, then the MIME body."""
    header_lines = [encode_header(name, value, body.charset) for name, value in headers]
    header_lines += [encode_header(name, value, "utf-8") for name, value in extra_headers]
    header_lines.append("MIME-Version: 1.0")
    text_headers, text_payload = _text_part(body)
    if not attachments:
        head = "\r\n".join(header_lines + text_headers)
        return (head + "\r\n\r\n").encode("ascii") + text_payload
    boundary = _boundary(text_payload, attachments)
    parts = [("\r\n".join(text_headers) + "\r\n\r\n").encode("ascii") + text_payload]
    parts += [_attachment_part(item) for item in attachments]
    head_lines = [*header_lines, f'Content-Type: multipart/mixed; boundary="{boundary}"']
    head_bytes = "\r\n".join(head_lines).encode("ascii")
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    closing = f"\r\n--{boundary}--\r\n".encode("ascii")
    return head_bytes + b"\r\n\r\n" + delimiter.lstrip(b"\r\n") + delimiter.join(parts) + closing


def encode_header(name: str, value: str | list[tuple[str, str]], charset: str) -> str:
    """One header field, folded; structured (address list) or unstructured text."""
    if isinstance(value, list):
        rendered = [_mailbox(display, addr, charset) for display, addr in value]
        return _fold(name, ",\r\n ".join(rendered) if len(rendered) > 1 else rendered[0])
    if _needs_encoding(value):
        return _fold(name, "\r\n ".join(encoded_words(value, charset)))
    return _fold(name, value)


def encoded_words(text: str, charset: str) -> list[str]:
    """RFC 2047 B encoded-words, each at most 75 characters, never splitting a character,
    written so that they read back as ``text`` without doubt (a second pass then finds
    nothing to report). Short text can read two ways in one word (会a in UTF-8 is also two
    CP932 kanji, Ω alone also an EUC-JP kanji): then its ASCII and non-ASCII runs go in
    words of their own (whitespace between words is dropped when read), each non-ASCII run
    in the first of UTF-8, ISO-2022-JP and ISO-8859-1 that reads back alone without doubt.
    When no form reads back so, the plain form is written (and reported again next pass)."""
    plain = _iso2022jp_words(text) if charset == "iso-2022-jp" else None
    plain = plain or _utf8_words(text)
    if _reads_back(plain, text):
        return plain
    words = _run_words(text)
    return words if _reads_back(words, text) else plain


def _reads_back(words: list[str], text: str) -> bool:
    """Whether the decoder reads ``words`` as ``text``, in no doubt."""
    decoded = decode_header_bytes(" ".join(words).encode("ascii"))
    return decoded.text == text and not decoded.lossy


def _run_words(text: str) -> list[str]:
    """Each run of ASCII characters in US-ASCII words, each other run in the first charset
    whose words read back as the run (UTF-8 when none does)."""
    words: list[str] = []
    for run in _SCRIPT_RUNS.findall(text):
        if run.isascii():
            words += [_b_word(piece, "ascii", "US-ASCII") for piece in _chunks(run)]
            continue
        utf8 = _utf8_words(run)
        forms = (utf8, _iso2022jp_words(run), _latin1_words(run))
        words += next((form for form in forms if form and _reads_back(form, run)), utf8)
    return words


def _latin1_words(text: str) -> list[str] | None:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return [_b_word(piece, "latin-1", "ISO-8859-1") for piece in _chunks(text)]


def _utf8_words(text: str) -> list[str]:
    return [_b_word(piece, "utf-8", "UTF-8") for piece in _chunks(text)]


def _chunks(text: str) -> list[str]:
    """``text`` in pieces of at most ``_WORD_BYTES`` UTF-8 bytes, never splitting a character."""
    pieces: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES and chunk:
            pieces.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        pieces.append("".join(chunk))
    return pieces


def _iso2022jp_words(text: str) -> list[str] | None:
    words: list[str] = []
    chunk = ""
    for char in text:
        candidate = encode_iso2022jp(chunk + char)
        if candidate is None:
            return None
        if len(base64.b64encode(candidate)) > 75 - len("=?ISO-2022-JP?B??=") and chunk:
            words.append(_b_word(chunk, "iso-2022-jp", "ISO-2022-JP"))
            chunk = char
        else:
            chunk += char
    if chunk:
        words.append(_b_word(chunk, "iso-2022-jp", "ISO-2022-JP"))
    return words


def _b_word(text: str, codec: str, label: str) -> str:
    data = encode_iso2022jp(text) if codec == "iso-2022-jp" else text.encode(codec)
    assert data is not None  # the caller checked the text is representable
    return f"=?{label}?B?{base64.b64encode(data).decode('ascii')}?="


def _needs_encoding(value: str) -> bool:
    """Non-ASCII, controls, text that would read as an encoded-word, or an unfoldable word."""
    if not value.isascii() or "=?" in value:
        return True
    if has_unsafe(value):
        return True
    return any(len(word) > 900 for word in value.split(" "))


def _mailbox(display: str, addr: str, charset: str) -> str:
    if not display:
        return addr
    if _needs_encoding(display):
        phrase = " ".join(encoded_words(display, charset))
    elif _ATOM_PHRASE.match(display):
        phrase = display
    else:
        escaped = display.replace("\\", "\\\\").replace('"', '\\"')
        phrase = f'"{escaped}"'
    return f"{phrase} <{addr}>"


def _fold(name: str, value: str) -> str:
    """Fold at spaces so lines stay near 78 characters (existing CRLF-SP folds are kept)."""
    lines: list[str] = []
    current = f"{name}:"
    for segment in value.split("\r\n "):
        for word in segment.split(" "):
            if len(current) + 1 + len(word) > 78 and current.strip() and current != f"{name}:":
                lines.append(current)
                current = " " + word
            else:
                current = f"{current} {word}"
        lines.append(current)
        current = ""
    return "\r\n".join(line if i == 0 else " " + line.lstrip(" ") for i, line in enumerate(lines))


# A JIS X 0208 kanji: beside it, an IBM-extension kanji is always written in ISO-2022-JP.
_A_KANJI: Final = "一"
_LONE_SHARED_CODE: Final = "an IBM-extension kanji alone whose ISO-2022-JP code is an au emoji"


def iso2022jp_misfit(text: str) -> str | None:
    """Why ``text`` cannot go out as a 7-bit ISO-2022-JP body (then it goes out as UTF-8), or
    ``None`` when it can."""
    if _iso2022jp_lines(text) is not None:
        return None
    if encode_iso2022jp(text.replace("\r\n", "\n").replace("\r", "\n")) is not None:
        return "a line too long for 7-bit ISO-2022-JP"
    return _outside_iso2022jp(text) or _LONE_SHARED_CODE


def header_iso2022jp_misfit(value: str | list[tuple[str, str]]) -> str | None:
    """Why :func:`encode_header` writes this header's text (or one of its display names) in
    UTF-8 encoded-words although ISO-2022-JP was asked for, or ``None`` when it does not."""
    texts = [display for display, _addr in value] if isinstance(value, list) else [value]
    for text in texts:
        if text and _needs_encoding(text) and _iso2022jp_words(text) is None:
            return _outside_iso2022jp(text) or _LONE_SHARED_CODE
    return None


def _outside_iso2022jp(text: str) -> str | None:
    """The first character (in code point order) of ``text`` that ISO-2022-JP lacks (each is
    tried beside a kanji: an IBM-extension kanji alone may not be written, see
    :func:`sanitizers.charsets.encode_iso2022jp`, but it is in ISO-2022-JP)."""
    for char in sorted(set(text)):
        if not char.isascii() and encode_iso2022jp(_A_KANJI + char) is None:
            return f"U+{ord(char):04X} is not in ISO-2022-JP"
    return None


def _iso2022jp_lines(text: str) -> list[bytes] | None:
    """The body's lines in ISO-2022-JP, or ``None`` when a character or a line does not fit."""
    encoded = encode_iso2022jp(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = encoded.split(b"\n") if encoded is not None else []
    if encoded is None or any(len(line) > 996 for line in lines):
        return None
    return lines


def _text_part(body: Body) -> tuple[list[str], bytes]:
    text = body.text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INLINE_FILE.sub(" ", text)
    if body.charset == "iso-2022-jp":
        lines = _iso2022jp_lines(text)
        if lines is not None:
            return (
                [
                    "Content-Type: text/plain; charset=ISO-2022-JP",
                    "Content-Transfer-Encoding: 7bit",
                ],
                b"\r\n".join(lines),
            )
    data = text.replace("\n", "\r\n").encode("utf-8")
    return (
        ["Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: base64"],
        _base64_lines(data),
    )


def _base64_lines(data: bytes) -> bytes:
    encoded = base64.encodebytes(data)  # 76-character lines, each ending in LF
    return encoded[:-1].replace(b"\n", b"\r\n")


def _boundary(text_payload: bytes, attachments: list[OutAttachment]) -> str:
    digest = hashlib.sha256(text_payload)
    for item in attachments:
        digest.update(item.data)
    boundary = f"=_mukaika_{digest.hexdigest()[:32]}"
    # Parts are base64 (no "=_" inside) or 7-bit text; a text that contains the boundary
    # would need base64, which the digest makes practically impossible, but check anyway.
    assert boundary.encode("ascii") not in text_payload
    return boundary


def _attachment_part(item: OutAttachment) -> bytes:
    mime, _, params = item.content_type.lower().partition(";")
    content_type = mime.strip()
    if not _MIME_TYPE.match(content_type):
        content_type = "application/octet-stream"
    charset = _CHARSET_PARAM.search(params)
    if charset and content_type.startswith("text/"):
        content_type += f"; charset={charset.group(1)}"
    name = item.filename or "attachment"
    if _TOKEN.match(name) and len(name) <= 60:
        type_param, disp_param = f'name="{name}"', f'filename="{name}"'
    else:
        type_param = 'name="' + " ".join(encoded_words(name, "utf-8")) + '"'
        disp_param = _rfc2231("filename", name)
    head = "\r\n".join(
        [
            _fold("Content-Type", f"{content_type}; {type_param}"),
            _fold("Content-Disposition", f"attachment; {disp_param}"),
            "Content-Transfer-Encoding: base64",
        ]
    )
    return (head + "\r\n\r\n").encode("ascii") + _base64_lines(item.data)


def _rfc2231(param: str, value: str) -> str:
    """``param*0*=UTF-8''…`` continuations, split between percent escapes."""
    encoded = quote(value.encode("utf-8"), safe="")
    pieces: list[str] = []
    while encoded:
        cut = min(60, len(encoded))
        while cut < len(encoded) and "%" in encoded[cut - 2 : cut]:
            cut -= 1
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]
    if len(pieces) == 1:
        return f"{param}*=UTF-8''{pieces[0]}"
    first = f"{param}*0*=UTF-8''{pieces[0]}"
    rest = [f"{param}*{i}*={piece}" for i, piece in enumerate(pieces[1:], 1)]
    return ";\r\n ".join([first, *rest])

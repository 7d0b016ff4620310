"""Parse untrusted mail into a flat, classified list of parts, within named limits.

Threat model: the input is hostile MIME built to confuse parsers (duplicate or conflicting
headers, broken boundaries and encodings), to exhaust resources (huge headers and lines,
thousands of parts, deep nesting) or to smuggle content past a text-only policy. Every
ambiguity is decided one deterministic way here and recorded as a finding; every resource has
a named limit whose breach raises :class:`LimitExceeded`. Nothing is decoded implicitly by the
standard library: transfer encodings, charsets and parameters are decoded by our own code so
that a failure is seen, never silently replaced.

The tree comes from :mod:`sanitizers.mimesplit` (which checks the size, header, line, parts,
depth and time limits while it splits); here it is classified. Header fields are compat32
``Message`` objects holding raw values (8-bit bytes as surrogates we can recover); bodies stay
views of the message until a leaf is decoded, one at a time, in C (``binascii``).
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from sanitizers.alternatives import MAX_POINTER_CHARS, text_loses
from sanitizers.charsets import Decoded, decode_body
from sanitizers.errors import LimitExceeded
from sanitizers.html_text import html_to_text
from sanitizers.mimeparams import parse_header_params
from sanitizers.mimesplit import Part, read_header_block, split
from sanitizers.policy import Limits, LinkMode
from sanitizers.vocabulary import Reason

_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_BASE64_ALLOWED = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\n\r\x0b\x0c"
)
# An RFC 822 comment: parentheses, nested up to three levels, with quoted pairs inside.
_COMMENT = re.compile(r"\((?:[^()\\]|\\.|\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\))*\)", re.S)
_KNOWN_ENCODINGS = frozenset({"7bit", "8bit", "binary", "base64", "quoted-printable"})
# A text alternative longer than this (decoded bytes) is judged without decoding its charset
# (which the pipeline does once, later): it is too long to be a pointer to the HTML version
# (at most MAX_POINTER_CHARS characters of up to 4 bytes, with as much room again for
# whitespace), so only blankness matters.
_JUDGED_TEXT_BYTES = 8 * MAX_POINTER_CHARS
# Base64 bodies are checked for stray characters this much at a time (a bounded copy).
_CHECK_CHUNK = 1 << 20


@dataclass(slots=True)
class Leaf:
    """One non-multipart part, classified, with its payload still encoded."""

    path: str
    part: Part
    content_type: str
    params: dict[str, Decoded]
    disposition: str
    filename: str | None
    depth: int
    # "body" (inline text), "attachment", "alternative" (a losing alternative), "signature"…
    role: str
    findings: list[Reason] = field(default_factory=list)
    # The file name as the sender wrote it (``filename`` is it made safe to show).
    untrusted_filename: str | None = None
    notes: list[str] = field(default_factory=list)

    def decoded_payload(self) -> bytes:
        """The payload with its transfer encoding undone; problems become findings."""
        return _decoded_payload(self.part, self)

    @property
    def attached_headers(self) -> Message | None:
        """The header fields of the mail attached in this ``message/*`` part, if any."""
        children = self.part.children
        return children[0].headers if children else None


@dataclass(slots=True)
class ParsedMail:
    """The top-level header fields and the leaves in document order."""

    headers: Message
    leaves: list[Leaf]
    defects: list[str]


def parse_headers_only(untrusted_raw: bytes, limits: Limits) -> Message:
    """Just the header block (bounded), for a notice about a message too large to parse."""
    return read_header_block(untrusted_raw, limits)


def parse(
    untrusted_raw: bytes, limits: Limits, deadline: float, *, prefer_plain: bool = True
) -> ParsedMail:
    """Split and classify every part, or raise LimitExceeded."""
    root = split(untrusted_raw, limits, deadline)
    _check_deadline(deadline)
    walker = _Walker(deadline, prefer_plain)
    walker.walk(root)
    return ParsedMail(headers=root.headers, leaves=walker.leaves, defects=walker.defects)


def header_params(message: Message, name: str) -> tuple[str, dict[str, Decoded], list[str]]:
    """The first ``name`` header parsed into value and parameters (empty when absent)."""
    untrusted_value = first_raw_header(message, name)
    if untrusted_value is None:
        return "", {}, []
    return parse_header_params(untrusted_value)


def first_raw_header(message: Message, name: str) -> str | None:
    """The raw value of the first header called ``name`` (raw bytes kept as surrogates)."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def raw_header_count(message: Message, name: str) -> int:
    wanted = name.lower()
    return sum(1 for key, _ in message.raw_items() if key.lower() == wanted)


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise LimitExceeded(Reason.LIMIT_TIME, "time budget spent")


def _encoding_token(untrusted_value: str) -> str:
    """The mechanism token of a Content-Transfer-Encoding value, lower-case, without RFC 822
    comments (``base64 (sent by X)`` is base64) or surrounding space."""
    return _COMMENT.sub(" ", str(untrusted_value)).strip().lower()


def _decoded_payload(part: Part, leaf: Leaf | None) -> bytes:
    """The body with its transfer encoding undone (empty for a part that holds parts);
    problems become findings of ``leaf`` (when there is one)."""
    encoding = _transfer_encoding(part.headers, leaf)
    body = part.body
    if body is None:
        return b""
    if encoding == "base64":
        return _decode_base64(body, leaf)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    return bytes(body)


def _transfer_encoding(message: Message, leaf: Leaf | None) -> str:
    values = {
        _encoding_token(value)
        for key, value in message.raw_items()
        if key.lower() == "content-transfer-encoding"
    }
    if not values:
        return "7bit"
    if len(values) > 1 and leaf is not None:
        leaf.findings.append(Reason.MALFORMED)
        leaf.notes.append("conflicting Content-Transfer-Encoding: the first one is used")
    encoding = _encoding_token(first_raw_header(message, "content-transfer-encoding") or "")
    if encoding not in _KNOWN_ENCODINGS:
        if leaf is not None:
            leaf.findings.append(Reason.MALFORMED)
            leaf.notes.append("unknown Content-Transfer-Encoding: payload taken as is")
        return "binary"
    return encoding


def _decode_base64(untrusted_body: memoryview, leaf: Leaf | None) -> bytes:
    if _only_base64_alphabet(untrusted_body):
        try:
            return binascii.a2b_base64(untrusted_body)
        except binascii.Error:
            pass
    # Broken padding or stray characters: keep the alphabet, drop a dangling sixth bit group,
    # pad, and say so. One deterministic reading of a broken encoding.
    cleaned = _BASE64_JUNK.sub(b"", untrusted_body)
    cleaned = cleaned[: len(cleaned) - (len(cleaned) % 4 == 1)]
    cleaned += b"=" * (-len(cleaned) % 4)
    if leaf is not None:
        leaf.findings.append(Reason.MALFORMED)
        leaf.notes.append("invalid base64 repaired")
    return binascii.a2b_base64(cleaned)


def _only_base64_alphabet(untrusted_body: memoryview) -> bool:
    """Whether nothing outside the alphabet, padding and whitespace occurs (checked in
    bounded slices, so a large body is not copied whole)."""
    return not any(
        bytes(untrusted_body[start : start + _CHECK_CHUNK]).translate(None, _BASE64_ALLOWED)
        for start in range(0, len(untrusted_body), _CHECK_CHUNK)
    )


class _Walker:
    """Iterative depth-first walk that classifies leaves (the splitter bounded the tree)."""

    def __init__(self, deadline: float, prefer_plain: bool) -> None:
        self.deadline = deadline
        self.prefer_plain = prefer_plain
        self.leaves: list[Leaf] = []
        self.defects: list[str] = []
        self.count = 0

    def walk(self, root: Part) -> None:
        stack: list[tuple[Part, str, int, str]] = [(root, "1", 0, "body")]
        while stack:
            part, path, depth, role = stack.pop()
            self.count += 1
            if self.count % 64 == 0:
                _check_deadline(self.deadline)
            self.defects.extend(f"{path}: {defect}" for defect in part.defects)
            self.defects.extend(f"{path}: {note}" for note in part.type_notes)
            children = list(self._children(part, path, depth, role))
            stack.extend(reversed(children))

    def _children(
        self, part: Part, path: str, depth: int, role: str
    ) -> Iterator[tuple[Part, str, int, str]]:
        if raw_header_count(part.headers, "content-type") > 1:
            self.defects.append(f"{path}: duplicate Content-Type, the first one is used")
        content_type, params, children = part.content_type, part.params, part.children
        if content_type.startswith("multipart/") and children is not None:
            yield from self._multipart_children(content_type, params, children, path, depth, role)
            return
        if content_type == "message/rfc822" and children is not None and role != "attachment":
            # An attached mail: its own parts are walked, its headers shown by the pipeline.
            self._add_leaf(part, path, depth, "attached_message")
            for index, inner in enumerate(children, 1):
                yield inner, f"{path}.{index}", depth + 1, "body"
            return
        if content_type.startswith("multipart/"):
            self.defects.append(f"{path}: multipart without its boundary, read as text")
            content_type, params = "text/plain", {}
        self._add_leaf(part, path, depth, role, content_type, params)

    def _multipart_children(
        self,
        content_type: str,
        params: dict[str, Decoded],
        payload: list[Part],
        path: str,
        depth: int,
        role: str,
    ) -> Iterator[tuple[Part, str, int, str]]:
        subtype = content_type.split("/", 1)[1]
        if subtype == "alternative":
            winner = _choose_alternative(payload, self.prefer_plain)
            for index, child in enumerate(payload, 1):
                child_role = role if index - 1 == winner else "alternative"
                yield child, f"{path}.{index}", depth + 1, child_role
            return
        if subtype == "related":
            root = _related_root(payload, params)
            for index, child in enumerate(payload, 1):
                child_role = role if index - 1 == root else "attachment"
                yield child, f"{path}.{index}", depth + 1, child_role
            return
        if subtype == "signed":
            for index, child in enumerate(payload, 1):
                yield child, f"{path}.{index}", depth + 1, role if index == 1 else "attachment"
            return
        for index, child in enumerate(payload, 1):
            yield child, f"{path}.{index}", depth + 1, role

    def _add_leaf(
        self,
        part: Part,
        path: str,
        depth: int,
        role: str,
        content_type: str | None = None,
        params: dict[str, Decoded] | None = None,
    ) -> None:
        content_type = part.content_type if content_type is None else content_type
        params = part.params if params is None else params
        disposition, disp_params, defects = header_params(part.headers, "content-disposition")
        self.defects.extend(f"{path}: {d}" for d in defects)
        name = disp_params.get("filename") or params.get("name")
        filename = name.text if name is not None else None
        leaf = Leaf(
            path=path,
            part=part,
            content_type=content_type,
            params=params,
            disposition=disposition,
            filename=filename,
            depth=depth,
            role=_leaf_role(role, content_type, disposition, filename),
            untrusted_filename=name.untrusted_text or name.text if name is not None else None,
        )
        if name is not None and name.lossy:
            leaf.findings.append(Reason.LOSSY_DECODE)
        self.leaves.append(leaf)


def _leaf_role(role: str, content_type: str, disposition: str, filename: str | None) -> str:
    """Body text stays body only when it is inline text without a file name."""
    if role not in ("body", "alternative"):
        return role
    if disposition == "attachment" or filename or not content_type.startswith("text/"):
        return "attachment" if role == "body" else role
    return role


def _choose_alternative(payload: list[Part], prefer_plain: bool) -> int:
    """Index of the alternative to read: a useful text/plain when preferred (see
    :mod:`sanitizers.alternatives`), else the last HTML (or related HTML), else the last
    text, else the first part."""
    types = [child.content_type for child in payload]
    richest = next(
        (
            index
            for index in range(len(types) - 1, -1, -1)
            if types[index] in ("text/html", "multipart/related", "multipart/mixed")
        ),
        None,
    )
    if prefer_plain:
        rich = payload[richest] if richest is not None else None
        for index, content_type in enumerate(types):
            if content_type == "text/plain" and not _plain_loses(payload[index], rich):
                return index
    if richest is not None:
        return richest
    for index in range(len(types) - 1, -1, -1):
        if types[index].startswith("text/"):
            return index
    return 0


def _plain_loses(plain: Part, rich: Part | None) -> bool:
    """Whether a text/plain alternative gives way to the rich one: judged on its decoded text."""
    data = _decoded_payload(plain, None)
    if len(data) > _JUDGED_TEXT_BYTES:
        return not data.strip()
    return text_loses(_decoded_text(plain, data), lambda: _html_text(rich))


def _decoded_text(part: Part, data: bytes) -> str:
    charset = part.params.get("charset")
    return decode_body(data, charset.text if charset else None).text


def _html_text(rich: Part | None) -> str | None:
    """The text of an HTML alternative (or of the HTML root of a related or mixed one)."""
    if rich is None:
        return None
    if rich.content_type != "text/html":
        children = rich.children
        if not children:
            return None
        root = children[_related_root(children, rich.params)]
        if root.content_type != "text/html":
            return None
        rich = root
    return html_to_text(_decoded_text(rich, _decoded_payload(rich, None)), LinkMode.DROP)


def _related_root(payload: list[Part], params: dict[str, Decoded]) -> int:
    start = params.get("start")
    if start is not None:
        for index, child in enumerate(payload):
            if (first_raw_header(child.headers, "content-id") or "").strip() == start.text.strip():
                return index
    return 0

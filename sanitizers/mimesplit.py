"""Split untrusted mail bytes into a tree of MIME parts at C speed, within named limits.

Intent: the per-line work of a MIME parser runs in C. Boundaries and line ends are found with
``bytes.find`` on the raw message, each header block is read on its own (one short loop per
header line), and a leaf's body is never copied: it is a ``memoryview`` span of the message,
decoded later, one leaf at a time, by :mod:`sanitizers.mime`. Memory is the message plus
one small node per part.

Threat model: the input is hostile MIME built to confuse parsers or to exhaust resources. The
limits are checked here, while the tree is built: the message size and longest line before
anything else, every header block (``max_header_bytes``), the number of nodes
(``max_parts``, every node built counts, nested ones included), nesting (``max_depth``) and
the time budget; a breach raises :class:`LimitExceeded` with its ``limit_*`` reason. Nothing
else is raised on any input. Work is linear in the message for each nesting level.

One reading for one input: the structure is the one the standard library's compat32 parser
reads (the pipeline's parser until issue 13, kept in the tests as the oracle), so that the
mail users already received reads the same: lines end at CR LF, LF or a lone CR; a header
block ends at its first line that is neither a field nor a continuation (a blank line is
consumed, anything else starts the body, a defect); a boundary line is ``--boundary``, an
optional ``--``, optional blanks, the line end; the line end before a boundary belongs to the
boundary; repeated boundary lines make no empty parts; a part ends at the next boundary line
of its multipart or of any enclosing one; ``message/*`` (but ``message/delivery-status``,
whose header blocks carry no body) holds one message. The structure is split by the standard
library's reading of the first Content-Type and its boundary (a value it cannot read is
text/plain), the reading mail was split by before and the adversarial suite pins; each part
also carries the reading of :mod:`sanitizers.mimeparams`, which the classification uses (a
multipart split as text or a message part holding a message is then a leaf). Defects are named
as the standard library names the same conditions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32
from typing import Final

from sanitizers.charsets import Decoded
from sanitizers.errors import LimitExceeded
from sanitizers.mimeparams import parse_header_params
from sanitizers.policy import Limits
from sanitizers.vocabulary import Reason

__all__ = ["Part", "check_raw_limits", "first_content_type", "read_header_block", "split"]

_HEADER_END: Final = re.compile(rb"\r?\n\r?\n")
# A header line: a field name and colon, a continuation, or a Unix "From " line.
_HEADER_LINE: Final = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
_TRAILING_EOL: Final = re.compile(r"[\r\n]+\Z")
_MULTIPART_ENCODINGS: Final = frozenset({"7bit", "8bit", "binary"})
_DEADLINE_EVERY: Final = 64
_CR, _LF, _SPACE, _TAB = 13, 10, 32, 9


@dataclass(slots=True, eq=False)
class Part:
    """One node of the tree. A leaf has a ``body`` (still transfer-encoded) and no children;
    a multipart whose boundary was found, or a ``message/*``, has ``children`` and no body;
    ``message/delivery-status`` has neither."""

    headers: Message
    # The type as sanitizers.mimeparams reads the first Content-Type (what the part is
    # classified by), else the default type.
    content_type: str
    params: dict[str, Decoded]
    # What is wrong with the structure (named as the standard library names it).
    defects: list[str]
    # What is wrong with the Content-Type parameters (from mimeparams).
    type_notes: list[str]
    # The type the structure was split by: the standard library's reading (see the module).
    split_as: str
    body: memoryview | None = None
    children: list[Part] | None = None


def check_raw_limits(untrusted_raw: bytes, limits: Limits) -> None:
    """Limits that are checked on the raw bytes, before any parsing."""
    if len(untrusted_raw) > limits.max_message_bytes:
        raise LimitExceeded(Reason.LIMIT_SIZE, f"{len(untrusted_raw)} bytes")
    head_end = _HEADER_END.search(untrusted_raw, 0, limits.max_header_bytes + 4)
    if head_end is None and len(untrusted_raw) > limits.max_header_bytes:
        raise LimitExceeded(Reason.LIMIT_HEADER, f"over {limits.max_header_bytes} bytes")
    # A line may be at most max_line_bytes long (its CR counts, its LF does not): jump a
    # window ahead and look back for a newline inside it (memrchr speed, linear).
    longest, position, size = limits.max_line_bytes, 0, len(untrusted_raw)
    while size - position > longest:
        newline = untrusted_raw.rfind(b"\n", position, position + longest + 1)
        if newline < 0:
            raise LimitExceeded(Reason.LIMIT_LINE, f"a line over {longest} bytes")
        position = newline + 1


def split(untrusted_raw: bytes, limits: Limits, deadline: float) -> Part:
    """The tree of ``untrusted_raw``, or LimitExceeded. Bodies are views of ``untrusted_raw``."""
    check_raw_limits(untrusted_raw, limits)
    splitter = _Splitter(untrusted_raw, limits, deadline)
    root = splitter.message(0, len(untrusted_raw), 0, "text/plain")
    if root.split_as.startswith("multipart/") and root.children is None:
        root.defects.append("MultipartInvariantViolationDefect")
    return root


def read_header_block(untrusted_raw: bytes, limits: Limits) -> Message:
    """Only the first header block (at most ``max_header_bytes`` of it): for the notice about
    a message that could not be split whole."""
    head = untrusted_raw[: limits.max_header_bytes]
    return _read_headers(head, 0, len(head), len(head)).headers


def _line_end(raw: bytes, start: int, end: int) -> int:
    """The end (after its line break) of the line starting at ``start``: CR LF, LF or a lone
    CR end a line; the last line may have none."""
    newline = raw.find(b"\n", start, end)
    stop = end if newline < 0 else newline + 1
    carriage = raw.find(b"\r", start, stop)
    if carriage >= 0 and carriage != newline - 1:
        return carriage + 1
    return stop


@dataclass(slots=True)
class _Head:
    """A header block read: its fields, where the body starts, what is wrong with it."""

    headers: Message
    body_start: int
    defects: list[str]
    # A "From " line closing the block before its blank line: the body's first line (the
    # blank line is dropped), so the body is not one span of the message.
    moved: bytes | None = None


def _read_headers(
    raw: bytes, start: int, end: int, max_bytes: int, lead: bytes | None = None
) -> _Head:
    """The header block at ``start`` (after ``lead``, a line moved from the block before)."""
    lines: list[tuple[str, int]] = []
    if lead is not None:
        lines.append((lead.decode("ascii", "surrogateescape"), -1))
    taken = 0 if lead is None else len(lead)
    position = start
    defects: list[str] = []
    while position < end:
        stop = _line_end(raw, position, end)
        if stop - start + taken > max_bytes:
            raise LimitExceeded(Reason.LIMIT_HEADER, f"over {max_bytes} bytes")
        line = raw[position:stop].decode("ascii", "surrogateescape")
        if not _HEADER_LINE.match(line):
            if line[0] in "\r\n":
                position = stop
            else:
                defects.append("MissingHeaderBodySeparatorDefect")
            break
        lines.append((line, position))
        position = stop
    headers = Message(policy=compat32)
    head = _Head(headers, position, defects)
    moved = _store_fields(headers, lines, defects)
    if moved is not None:
        line, offset = lines[moved]
        if offset + len(line) == position:  # no blank line dropped: one span still
            head.body_start = offset
        else:
            head.moved = raw[offset : offset + len(line)]
    return head


def _store_fields(headers: Message, lines: list[tuple[str, int]], defects: list[str]) -> int | None:
    """Fields from header lines: a continuation joins the field before it (kept folded),
    the value loses its leading blanks and trailing line breaks. A Unix "From " line is the
    envelope when first, the body's first line when last (its index is returned), else
    ignored."""
    name = ""
    folded: list[str] = []
    last = len(lines) - 1
    for number, (line, _) in enumerate(lines):
        if line[0] in " \t":
            if not name:
                defects.append("FirstHeaderLineIsContinuationDefect")
                continue
            folded.append(line)
            continue
        if name:
            _store_field(headers, folded)
            name, folded = "", []
        if line.startswith("From "):
            if number == 0:
                headers.set_unixfrom(_TRAILING_EOL.sub("", line))
                continue
            if number == last:
                return number
            defects.append("MisplacedEnvelopeHeaderDefect")
            continue
        colon = line.find(":")
        if colon == 0:
            defects.append("InvalidHeaderDefect")
            continue
        name, folded = line[:colon], [line]
    if name:
        _store_field(headers, folded)
    return None


def _store_field(headers: Message, folded: list[str]) -> None:
    name, value = folded[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(folded[1:])
    headers.set_raw(name, value.rstrip("\r\n"))


@dataclass(slots=True)
class _BoundaryLine:
    start: int  # first byte of the "--boundary" line
    stop: int  # after its line break
    closing: bool


class _Splitter:
    """One message's split: the raw bytes, the limits, the node count."""

    def __init__(self, untrusted_raw: bytes, limits: Limits, deadline: float) -> None:
        self.raw = untrusted_raw
        self.view = memoryview(untrusted_raw)
        self.limits = limits
        self.deadline = deadline
        self.count = 0

    def message(
        self, start: int, end: int, depth: int, default_type: str, lead: bytes | None = None
    ) -> Part:
        """The message (or part) in ``raw[start:end]``, after ``lead`` (a line moved there
        from the header block before): its header block, then its body."""
        self.count += 1
        if self.count > self.limits.max_parts:
            raise LimitExceeded(Reason.LIMIT_PARTS, f"over {self.limits.max_parts} parts")
        if depth > self.limits.max_depth:
            raise LimitExceeded(Reason.LIMIT_DEPTH, f"over {self.limits.max_depth} levels")
        if self.count % _DEADLINE_EVERY == 0 and time.monotonic() > self.deadline:
            raise LimitExceeded(Reason.LIMIT_TIME, "time budget spent")
        head = _read_headers(self.raw, start, end, self.limits.max_header_bytes, lead)
        headers = head.headers
        headers.set_default_type(default_type)
        content_type, params, notes = first_content_type(headers)
        split_as = headers.get_content_type()
        part = Part(headers, content_type or default_type, params, head.defects, notes, split_as)
        main_type = split_as.split("/", 1)[0]
        if split_as == "message/delivery-status":
            return part
        if main_type == "message":
            inner = self.message(head.body_start, end, depth + 1, "text/plain", head.moved)
            part.children = [inner]
        elif main_type == "multipart":
            self._multipart(part, head, end, depth)
        else:
            part.body = self._text(head, end)
        return part

    def _text(self, head: _Head, end: int) -> memoryview:
        """The body from the end of ``head`` to ``end`` as a view (a copy only when a line
        was moved into it)."""
        if head.moved is None:
            return self.view[head.body_start : end]
        return memoryview(head.moved + self.raw[head.body_start : end])

    def _multipart(self, part: Part, head: _Head, end: int, depth: int) -> None:
        # The boundary as the standard library reads it (the first ``boundary`` parameter,
        # trailing blanks dropped).
        boundary = part.headers.get_boundary()
        if boundary is None:
            part.defects.append("NoBoundaryInMultipartDefect")
            part.body = self._text(head, end)
            return
        encoding = part.headers.get("content-transfer-encoding", "8bit")
        if str(encoding).lower() not in _MULTIPART_ENCODINGS:
            part.defects.append("InvalidMultipartContentTransferEncodingDefect")
        try:
            separator = b"--" + boundary.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:  # decoded to non-ASCII: no line of the body can match
            separator = b""
        if b"\r" in separator or b"\n" in separator:  # a folded value: no single line matches
            separator = b""
        found = self._boundary_line(separator, head.body_start, end) if separator else None
        if found is None or found.closing:
            part.defects.append("StartBoundaryNotFoundDefect")
            part.body = self._text(head, end if found is None else found.start)
            return
        default_type = "message/rfc822" if part.split_as == "multipart/digest" else "text/plain"
        children: list[Part] = []
        part.children = children
        while True:
            # Boundary lines in a row make no empty parts between them.
            position = found.stop
            following = self._boundary_line(separator, position, end)
            while following is not None and following.start == position:
                position = following.stop
                following = self._boundary_line(separator, position, end)
            stop = end if following is None else following.start
            child = self.message(position, stop, depth + 1, default_type)
            children.append(child)
            _drop_final_line_break(child)
            if following is None:
                part.defects.append("CloseBoundaryNotFoundDefect")
                return
            if following.closing:
                return  # the epilogue is never read
            found = following

    def _boundary_line(self, separator: bytes, start: int, end: int) -> _BoundaryLine | None:
        """The first boundary line in ``raw[start:end]`` (``start`` is a line start)."""
        raw = self.raw
        at = raw.find(separator, start, end)
        while at >= 0:
            if at == start or raw[at - 1] in (_LF, _CR):
                position = at + len(separator)
                closing = raw.startswith(b"--", position, end)
                if closing:
                    position += 2
                while position < end and raw[position] in (_SPACE, _TAB):
                    position += 1
                if position == end:
                    return _BoundaryLine(at, position, closing)
                if raw[position] == _LF:
                    return _BoundaryLine(at, position + 1, closing)
                if raw[position] == _CR:
                    crlf = position + 1 < end and raw[position + 1] == _LF
                    return _BoundaryLine(at, position + 2 if crlf else position + 1, closing)
            at = raw.find(separator, at + 1, end)
        return None


def first_content_type(headers: Message) -> tuple[str, dict[str, Decoded], list[str]]:
    """The first Content-Type: its value (empty when absent or not ``type/subtype``), its
    parameters and notes on them."""
    for key, value in headers.raw_items():
        if key.lower() == "content-type":
            content_type, params, defects = parse_header_params(str(value))
            if "/" not in content_type:
                content_type = ""
            return content_type, params, defects
    return "", {}, []


def _drop_final_line_break(part: Part) -> None:
    """The line break before a boundary line belongs to the boundary: it leaves the body that
    ends there (the innermost last one, through attached messages)."""
    while part.children is not None and not part.split_as.startswith("multipart/"):
        part = part.children[-1]
    body = part.body
    if body is None or part.split_as.startswith("multipart/"):
        return
    ending = body[-2:].tobytes()
    if ending == b"\r\n":
        part.body = body[:-2]
    elif ending[-1:] in (b"\r", b"\n"):
        part.body = body[:-1]

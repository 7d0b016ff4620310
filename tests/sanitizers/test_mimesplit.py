"""sanitizers.mimesplit: the bytes-level MIME splitter reads mail as the stdlib compat32 parser
did (the oracle, tests/sanitizers/feedparser_oracle.py), keeps bodies as views of the message,
checks every limit while it splits and raises nothing but LimitExceeded on any input."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanitizers.errors import LimitExceeded
from sanitizers.mimesplit import Part, read_header_block, split
from sanitizers.policy import Limits
from sanitizers.vocabulary import Reason
from tests.sanitizers.feedparser_oracle import feedparser_split

LIMITS = Limits()
FOREVER = float("inf")


def shape(part: Part) -> tuple[object, ...]:
    """Everything the pipeline reads of a tree, comparable across splitters."""
    return (
        part.content_type,
        part.split_as,
        part.headers.get_unixfrom(),
        tuple(part.headers.raw_items()),
        tuple(part.defects),
        tuple(part.type_notes),
        None if part.body is None else part.body.tobytes(),
        None if part.children is None else tuple(shape(child) for child in part.children),
    )


def same_as_stdlib(raw: bytes, limits: Limits = LIMITS) -> Part:
    tree = split(raw, limits, FOREVER)
    assert shape(tree) == shape(feedparser_split(raw, limits, FOREVER))
    return tree


def outcome(splitter: Callable[[bytes, Limits, float], Part], raw: bytes, limits: Limits) -> object:
    try:
        return shape(splitter(raw, limits, FOREVER))
    except LimitExceeded as exc:
        return exc.reason


def bodies(part: Part) -> list[bytes]:
    if part.children is None:
        return [b"" if part.body is None else part.body.tobytes()]
    return [body for child in part.children for body in bodies(child)]


# --- the reading, case by case (each also checked against the stdlib) ------------------------

MIXED = (
    b"From: a@example.jp\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\none\r\n"
    b"--XX\r\n\r\ntwo\r\n\r\n--XX--\r\nepilogue\r\n"
)


def test_parts_split_at_boundary_lines_and_lose_the_line_break_before_them() -> None:
    tree = same_as_stdlib(MIXED)
    assert bodies(tree) == [b"one", b"two\r\n"]
    assert [child.content_type for child in tree.children or []] == ["text/plain"] * 2


def test_bodies_are_views_of_the_message_not_copies() -> None:
    tree = split(MIXED, LIMITS, FOREVER)
    body = (tree.children or [])[0].body
    assert isinstance(body, memoryview)
    assert body.obj is MIXED


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"])
def test_every_line_end_reads_alike(newline: bytes) -> None:
    tree = same_as_stdlib(MIXED.replace(b"\r\n", newline))
    assert bodies(tree) == [b"one", b"two" + newline]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"Subject: a\rX-Other: b\r\n\r\nbody", id="lone-cr-ends-a-header-line"),
        pytest.param(b"From sender Mon\r\nSubject: a\r\n\r\nbody", id="unix-from-first"),
        pytest.param(b"Subject: a\r\nFrom x\r\nTo: b\r\n\r\nbody", id="unix-from-misplaced"),
        pytest.param(b"Subject: a\r\nFrom x\r\n\r\nbody", id="unix-from-last-moves-to-body"),
        pytest.param(b"Subject: a\r\nFrom x\r\nbody", id="unix-from-last-no-blank-line"),
        pytest.param(
            b"Content-Type: message/rfc822\r\nFrom x\r\n\r\nContent-Type: text/html\r\n\r\nb",
            id="unix-from-last-becomes-the-attached-envelope",
        ),
        pytest.param(
            b"Content-Type: multipart/mixed; boundary=X\r\nFrom x\r\n\r\n--X\r\n\r\nb\r\n--X--",
            id="unix-from-last-before-a-preamble",
        ),
        pytest.param(b" folded first\r\nSubject: a\r\n\r\nbody", id="continuation-first"),
        pytest.param(b"Subject: a\r\n: no name\r\n\r\nbody", id="empty-field-name"),
        pytest.param(b"Subject: a\r\nnot a header\r\nbody", id="no-blank-line"),
        pytest.param(b"Subject: a\r\n folded\r\n\tagain  \r\n\r\nbody", id="folded-value"),
        pytest.param(b"Subject: a\xe3\x81\x82\r\n\r\n", id="eight-bit-header"),
        pytest.param(b"Subject: only headers", id="no-line-end-at-all"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\r\n\r\nbody", id="no-headers"),
    ],
)
def test_header_blocks_read_as_the_stdlib_reads_them(raw: bytes) -> None:
    same_as_stdlib(raw)


def multipart_of(boundary_param: str, body: bytes, subtype: str = "mixed") -> bytes:
    head = f"Content-Type: multipart/{subtype}; {boundary_param}\r\n\r\n".encode()
    return head + body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            multipart_of("boundary=XX", b"--XX\r\n--XX\r\n\r\nonly\r\n--XX--\r\n"),
            [b"only"],
            id="repeated-boundary-lines-make-no-empty-part",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"text\r\n--XX--\r\nmore\r\n"),
            [b"text\r\n"],
            id="closing-line-first-reads-the-preamble-as-text",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"--XX\r\n\r\nopen end\r\n"),
            [b"open end"],
            id="no-closing-line",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"--XX \t\r\n\r\nblanks\r\n--XX-- \r\n"),
            [b"blanks"],
            id="blanks-after-the-boundary",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"--XXY\r\n\r\nnot a boundary\r\n--XX\r\n\r\nb\r\n--XX--"),
            [b"b"],
            id="longer-boundary-is-not-the-boundary",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"x--XX\r\n--XX\r\n\r\nb\r\n--XX--"),
            [b"b"],
            id="boundary-inside-a-line-is-text",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"--XX\r\n\r\nend"),
            [b"end"],
            id="last-line-without-line-end",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"--XX"),
            [b""],
            id="boundary-at-end-of-input",
        ),
        pytest.param(multipart_of("charset=x", b"--XX\r\n\r\na\r\n"), [], id="no-boundary"),
        pytest.param(
            multipart_of('boundary="XX\r\n YY"', b"--XX\r\n YY\r\n\r\na\r\n--XX\r\n YY--\r\n"),
            [],
            id="folded-boundary-matches-no-line",
        ),
        pytest.param(
            multipart_of("boundary*=utf-8''%E3%81%82", b"--\xe3\x81\x82\r\n\r\na\r\n"),
            [],
            id="non-ascii-boundary-matches-no-line",
        ),
        pytest.param(
            multipart_of("boundary=XX", b"--XX\r\n\r\nSubject: in\r\n\r\nb\r\n--XX--", "digest"),
            [b"b"],
            id="digest-parts-are-messages",
        ),
    ],
)
def test_boundaries_read_as_the_stdlib_reads_them(raw: bytes, expected: list[bytes]) -> None:
    tree = same_as_stdlib(raw)
    if expected:
        assert bodies(tree) == expected
    if tree.content_type == "multipart/digest":
        assert [child.content_type for child in tree.children or []] == ["message/rfc822"]


def test_nested_multipart_ends_at_an_enclosing_boundary() -> None:
    inner = b"Content-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\n\r\ninner\r\n"
    raw = multipart_of("boundary=OUT", b"--OUT\r\n" + inner + b"--OUT\r\n\r\nouter\r\n--OUT--")
    tree = same_as_stdlib(raw)
    assert bodies(tree) == [b"inner", b"outer"]


def test_inner_multipart_reusing_the_outer_boundary() -> None:
    inner = b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\r\ninner\r\n--XX--\r\n"
    same_as_stdlib(multipart_of("boundary=XX", b"--XX\r\n" + inner + b"--XX--\r\n"))


def test_attached_message_loses_the_line_break_before_the_next_boundary() -> None:
    attached = b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nattached\r\n"
    tree = same_as_stdlib(multipart_of("boundary=XX", b"--XX\r\n" + attached + b"--XX--"))
    assert bodies(tree) == [b"attached"]


def test_delivery_status_has_no_body() -> None:
    status = b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
    tree = split(multipart_of("boundary=XX", b"--XX\r\n" + status + b"--XX--"), LIMITS, FOREVER)
    child = (tree.children or [])[0]
    assert child.body is None
    assert child.children is None


def test_header_block_read_alone_for_the_notice() -> None:
    headers = read_header_block(b"Subject: s\r\nFrom: f\r\n\r\nbody" + b"x" * 100, LIMITS)
    assert headers["subject"] == "s"
    assert headers["from"] == "f"


# --- limits --------------------------------------------------------------------------------


def limited(**values: int) -> Limits:
    return Limits.model_validate(values)


def nested_messages(depth: int) -> bytes:
    return b"Content-Type: message/rfc822\r\n\r\n" * depth + b"\r\nend"


def nested_multiparts(depth: int) -> bytes:
    raw = b"\r\nend\r\n"
    for level in range(depth):
        boundary = f"B{level}".encode()
        head = b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"
        raw = head + b"--" + boundary + b"\r\n" + raw + b"--" + boundary + b"--\r\n"
    return raw


def assert_limit(reason: Reason, raw: bytes, limits: Limits, deadline: float = FOREVER) -> None:
    with pytest.raises(LimitExceeded) as caught:
        split(raw, limits, deadline)
    assert caught.value.reason is reason


def test_every_header_block_is_limited_not_only_the_first() -> None:
    big_part = b"X-Pad: " + b"a" * 900 + b"\r\n"
    part = b"Content-Type: text/plain\r\n" + big_part * 2 + b"\r\nbody\r\n"
    raw = multipart_of("boundary=XX", b"--XX\r\n" + part + b"--XX--\r\n")
    split(raw, limited(max_header_bytes=2000), FOREVER)
    assert_limit(Reason.LIMIT_HEADER, raw, limited(max_header_bytes=1500))


@pytest.mark.parametrize("build", [nested_messages, nested_multiparts], ids=["message", "multi"])
def test_depth_is_limited_without_recursing_past_it(build: Callable[[int], bytes]) -> None:
    split(build(16), limited(max_depth=16), FOREVER)
    assert_limit(Reason.LIMIT_DEPTH, build(17), limited(max_depth=16))
    assert_limit(Reason.LIMIT_DEPTH, build(20_000), limited(max_depth=200))


def test_parts_are_limited_nested_ones_included() -> None:
    inner = b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody\r\n"
    raw = multipart_of("boundary=XX", (b"--XX\r\n" + inner) * 5 + b"--XX--\r\n")
    split(raw, limited(max_parts=11), FOREVER)  # the multipart, 5 parts, 5 attached mails
    assert_limit(Reason.LIMIT_PARTS, raw, limited(max_parts=10))


def test_time_is_limited_while_splitting() -> None:
    raw = multipart_of("boundary=XX", b"--XX\r\n\r\nx\r\n" * 200 + b"--XX--\r\n")
    assert_limit(Reason.LIMIT_TIME, raw, LIMITS, deadline=time.monotonic() - 1)


@pytest.mark.parametrize(
    ("reason", "raw", "limits"),
    [
        (Reason.LIMIT_SIZE, b"Subject: x\r\n\r\n" + b"a" * 200, limited(max_message_bytes=100)),
        (Reason.LIMIT_LINE, b"Subject: x\r\n\r\n" + b"a" * 200, limited(max_line_bytes=100)),
    ],
    ids=["size", "line"],
)
def test_raw_limits_come_first(reason: Reason, raw: bytes, limits: Limits) -> None:
    assert_limit(reason, raw, limits)


# --- properties ----------------------------------------------------------------------------

# RFC 2046 bchars (no trailing space): boundaries of any shape mailers use.
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
# Body lines never start with "-": a line that happens to be a boundary is another test.
LINE = st.text("あ漢字abcXYZ 0123=+/\t", max_size=30).map(lambda s: s.encode())
NEWLINE = st.sampled_from([b"\r\n", b"\n"])


@dataclass
class Leaf:
    content_type: str
    lines: list[bytes]


@dataclass
class Multi:
    subtype: str
    boundary: str
    children: list[Node]
    preamble: list[bytes]


@dataclass
class Attached:
    inner: Node


Node = Leaf | Multi | Attached

LEAVES = st.builds(
    Leaf,
    st.sampled_from(["text/plain", "text/html", "application/pdf", "image/png"]),
    st.lists(LINE, max_size=4),
)


def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    multi = st.builds(
        Multi,
        st.sampled_from(["mixed", "alternative", "related", "signed"]),
        st.text(BCHARS, min_size=1, max_size=20),
        st.lists(children, min_size=1, max_size=4),
        st.lists(LINE, max_size=2),
    )
    return multi | st.builds(Attached, children)


TREES = st.recursive(LEAVES, extend, max_leaves=12)


def render(node: Node, newline: bytes, serial: list[int]) -> bytes:
    if isinstance(node, Leaf):
        head = b"Content-Type: " + node.content_type.encode() + newline
        return head + newline + newline.join(node.lines)
    if isinstance(node, Attached):
        inner = render(node.inner, newline, serial)
        return b"Content-Type: message/rfc822" + newline + newline + b"Subject: s" + newline + inner
    serial[0] += 1
    # A serial number keeps nested boundaries distinct (none is a line of another's part).
    boundary = f"{node.boundary}_{serial[0]}".encode()
    out = f'Content-Type: multipart/{node.subtype}; boundary="'.encode() + boundary + b'"'
    out += newline + newline + b"".join(line + newline for line in node.preamble)
    for child in node.children:
        out += b"--" + boundary + newline + render(child, newline, serial) + newline
    return out + b"--" + boundary + b"--" + newline


def expected_bodies(node: Node, newline: bytes) -> list[bytes]:
    if isinstance(node, Leaf):
        return [newline.join(node.lines)]
    if isinstance(node, Attached):
        return expected_bodies(node.inner, newline)
    return [body for child in node.children for body in expected_bodies(child, newline)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TREES, NEWLINE)
def test_any_nesting_and_boundaries_round_trip_as_the_stdlib_reads_them(
    tree: Node, newline: bytes
) -> None:
    raw = b"Subject: t" + newline + render(tree, newline, [0])
    split_tree = same_as_stdlib(raw)
    assert bodies(split_tree) == expected_bodies(tree, newline)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    TREES,
    NEWLINE,
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=8), st.integers(0, 8))),
)
def test_mangled_mail_reads_as_the_stdlib_reads_it_or_hits_the_same_limit(
    tree: Node, newline: bytes, edits: list[tuple[int, bytes, int]]
) -> None:
    raw = bytearray(render(tree, newline, [0]))
    for position, inserted, deleted in edits:
        at = position % (len(raw) + 1)
        raw[at : at + deleted] = inserted
    small = Limits(max_parts=20, max_depth=4, max_header_bytes=512, max_line_bytes=200)
    assert outcome(split, bytes(raw), small) == outcome(feedparser_split, bytes(raw), small)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_nothing_but_limits(raw: bytes) -> None:
    with contextlib.suppress(LimitExceeded):
        split(raw, LIMITS, FOREVER)

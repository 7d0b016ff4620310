"""The promises every adversarial test checks on the pipeline's output: it parses, carries
only rebuilt headers, has no HTML and no active content (an SVG only as a verified rebuild),
is 7-bit, and holds no byte of a part that was removed. One place, so the MIME, file and
fuzz tests check the same thing."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from email.message import Message

from sanitizers.cdr import svg
from sanitizers.cdr.disarmer import RemoveAll
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Verdict
from tests.mailfactory import parse

POLICY = Policy()
ALLOWED_HEADERS = {h.lower() for h in POLICY.output.headers} | {
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "x-mukaika-verdict",
    "x-mukaika-summary",
    "x-mukaika-reference",
}
ACTIVE_TYPES = ("text/html", "application/javascript", "text/javascript")


def forms(secret: bytes) -> list[bytes]:
    """The ways a removed part's bytes could reappear: raw and base64 (at any alignment)."""
    found = [secret]
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + secret)[4:-4]
        if len(encoded) >= 8:
            found.append(encoded)
    return found


def sanitize(raw: bytes, policy: Policy = POLICY) -> SanitizeResult:
    """The pipeline with every attachment removed (the text-only policy): fast, in-process."""
    return sanitize_message(raw, policy, disarmer=RemoveAll())


def assert_safe(result: SanitizeResult, secrets: Iterable[bytes] = ()) -> Message:
    """Every output promise; ``secrets`` are bytes of parts that must not cross."""
    assert result.verdict in (Verdict.DELIVER, Verdict.HOLD), result.verdict
    return assert_safe_message(result.message, secrets)


def assert_safe_message(data: bytes, secrets: Iterable[bytes] = ()) -> Message:
    """The promises on the bytes alone (what the LGWAN-side MTA receives)."""
    assert data.isascii(), "the output is 7-bit"
    # Only CRLF line ends: the LGWAN-side MTA can never be handed a smuggling sequence.
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r"), "bare CR or LF"
    assert b"\x00" not in data
    assert max(map(len, data.split(b"\r\n"))) <= 998, "a line over RFC 5322's limit"
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        assert b"\r" not in line
        assert b"\n" not in line
        if line[:1] not in (b" ", b"\t"):
            name = line.partition(b":")[0].decode().lower()
            assert name in ALLOWED_HEADERS, f"header {name!r} crossed"
    message = parse(data)
    assert not message.defects, message.defects
    for part in message.walk():
        assert part.get_content_type() not in ACTIVE_TYPES
        if part.get_content_type() == "image/svg+xml":  # only a verified SVG rebuild crosses
            drawing = part.get_payload(decode=True)
            assert isinstance(drawing, bytes)
            assert svg.find_dangerous(drawing) == set()
            assert not re.search(rb"<(\w+:)?script|\son\w+\s*=|foreignObject", drawing, re.I)
        assert not part.get_content_type().startswith("message/")
        if part.get_content_maintype() == "multipart":
            continue
        decoded = part.get_payload(decode=True) or b""
        for secret in secrets:
            for form in forms(secret):
                assert form not in decoded, f"bytes of a removed part crossed: {form!r}"
                assert form not in data, f"bytes of a removed part crossed: {form!r}"
    return message


def text_of(message: Message) -> str:
    """All text/plain content of the output."""
    pieces = []
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            pieces.append(str(part.get_content()))  # type: ignore[attr-defined]
    return "\n".join(pieces)


def assert_deterministic(raw: bytes, policy: Policy = POLICY) -> SanitizeResult:
    """Two runs agree (apart from timings) and the output is a fixed point of its body."""
    first = sanitize(raw, policy)
    second = sanitize(raw, policy)
    assert first.message == second.message
    assert first.verdict == second.verdict
    return first

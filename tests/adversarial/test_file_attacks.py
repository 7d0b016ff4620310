"""Hostile attachments through the whole pipeline with the shipped CDR (isolated child):
bombs, traversal, encryption, malformed containers, filename tricks, EICAR with clamd.

Covered elsewhere at the sanitizer level (not repeated): tests/sanitizers/cdr/test_zip.py
contract cases dotdot/absolute/drive-letter/backslash-dotdot, overlapping-entries, overlap-bomb,
ratio-bomb, nested-too-deep, test_encrypted_entry_holds_the_part;
tests/sanitizers/cdr/test_pdf.py cycle, cycle-with-js, test_stream_bomb_is_limit_size,
test_deep_page_tree_is_limit_depth; tests/sanitizers/cdr/test_images.py pixel-bomb-1x/2x;
tests/sanitizers/cdr/test_ole.py and test_ooxml.py encrypted-package, rels-cycle, deep-xml;
tests/gateway/processing/test_scanner.py test_eicar_is_malware_and_never_reaches_inner,
test_eicar_inside_a_zip_is_found.
Here the same threats arrive as mail, and the output is checked with the shared invariants."""

from __future__ import annotations

import base64
import bz2
import io
import quopri
import struct
import zipfile
import zlib
from pathlib import Path
from urllib.parse import quote

import pikepdf
import pytest

from gateway.processing.scanner import ClamdClient, ScanningDisarmer
from sanitizers.cdr.isolation import default_disarmer
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Action, Reason, Verdict
from tests.adversarial.invariants import assert_safe, text_of
from tests.clamd import EICAR
from tests.corpus import require_corpus
from tests.mailfactory import CRLF, headers, leaf, mail, multipart

POLICY = Policy()
BOMBS = "recursive-extractor/RecursiveExtractor.Tests/TestData/Bombs"
ARCHIVES = "recursive-extractor/RecursiveExtractor.Tests/TestData/TestDataArchives"


def attach(data: bytes, filename: str, content_type: str = "application/octet-stream") -> bytes:
    disposition = f"attachment; filename*=utf-8''{quote(filename)}"
    part = leaf(content_type, data, cte="base64", extra=[("Content-Disposition", disposition)])
    return mail(multipart("mixed", [leaf("text/plain; charset=utf-8", b"see attached"), part]))


def run(raw: bytes, disarmer: object | None = None) -> SanitizeResult:
    return sanitize_message(raw, POLICY, disarmer=disarmer)  # type: ignore[arg-type]


def attachment_report(result: SanitizeResult):  # type: ignore[no-untyped-def]
    (part,) = [p for p in result.report.parts if p.path != "1.1"]
    return part


def assert_not_crossed(result: SanitizeResult, data: bytes) -> None:
    """Whatever happened, the original file bytes did not cross unchanged."""
    assert_safe(result)
    out = result.message
    assert base64.b64encode(data)[:64] not in out


def corpus_file(relative: str) -> bytes:
    path = require_corpus() / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the corpus")
    return path.read_bytes()


# --- archives -------------------------------------------------------------------------------


def _nested_zip(levels: int) -> bytes:
    data = b"innermost"
    for level in range(levels):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"level{level}.zip" if level else "a.txt", data)
        data = out.getvalue()
    return data


def test_recursive_zip_bomb_in_code_is_bounded() -> None:
    data = _nested_zip(30)
    result = run(attach(data, "nested.zip", "application/zip"))
    part = attachment_report(result)
    assert part.action in (Action.REMOVED, Action.HELD)
    assert part.reason in (Reason.LIMIT_DEPTH, Reason.LIMIT_SIZE, Reason.LIMIT_RATIO)
    assert_not_crossed(result, data)


def test_overlapping_entry_bomb_from_the_corpus() -> None:
    """David Fifield's zbsm.zip: overlapping entries, 42 KB declaring 5.5 GB."""
    data = corpus_file(f"{BOMBS}/zbsm.zip")
    result = run(attach(data, "zbsm.zip", "application/zip"))
    part = attachment_report(result)
    assert part.action in (Action.REMOVED, Action.HELD)
    assert part.reason.value.startswith(("limit_", "malformed", "archive"))
    assert_not_crossed(result, data)


def test_recursive_10gb_zip_bomb_from_the_corpus() -> None:
    data = bz2.decompress(corpus_file(f"{BOMBS}/10GB.zip.bz2"))  # 10 MB of nested zips
    result = run(attach(data, "10GB.zip", "application/zip"))
    part = attachment_report(result)
    assert part.action in (Action.REMOVED, Action.HELD)
    assert part.reason.value.startswith("limit_")
    assert_not_crossed(result, data)


@pytest.mark.parametrize("name", ["zip-slip.zip", "zip-slip-win.zip"])
def test_path_traversal_archives_from_the_corpus(name: str) -> None:
    data = corpus_file(f"{BOMBS}/{name}")
    result = run(attach(data, name, "application/zip"))
    assert_not_crossed(result, data)
    for attachment in _output_zips(result):
        for entry in attachment.namelist():
            assert ".." not in entry.split("/")
            assert not entry.startswith(("/", "\\"))
            assert ":" not in entry
            assert "\\" not in entry


def _output_zips(result: SanitizeResult) -> list[zipfile.ZipFile]:
    from tests.mailfactory import parse

    found = []
    for part in parse(result.message).walk():
        if part.get_content_type() == "application/zip":
            found.append(zipfile.ZipFile(io.BytesIO(part.get_payload(decode=True))))
    return found


@pytest.mark.parametrize("name", ["TestDataEncryptedAES.zip", "TestDataEncryptedZipCrypto.zip"])
def test_encrypted_archives_from_the_corpus_are_never_passed_opaque(name: str) -> None:
    data = corpus_file(f"{ARCHIVES}/{name}")
    result = run(attach(data, name, "application/zip"))
    part = attachment_report(result)
    assert part.action in (Action.REMOVED, Action.HELD)
    assert part.reason is Reason.ENCRYPTED_ARCHIVE
    assert_not_crossed(result, data)


def test_encrypted_flag_set_by_hand_in_code() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("secret.exe", b"MZ" + b"\x00" * 100)
    data = bytearray(out.getvalue())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        flags = struct.unpack_from("<H", data, at + offset)[0]
        struct.pack_into("<H", data, at + offset, flags | 1)
    result = run(attach(bytes(data), "a.zip", "application/zip"))
    assert attachment_report(result).action in (Action.REMOVED, Action.HELD)
    assert_not_crossed(result, bytes(data))


# --- PDF ------------------------------------------------------------------------------------


def _pdf_reference_loop() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    a = pdf.make_indirect(pikepdf.Dictionary())
    b = pdf.make_indirect(pikepdf.Dictionary(Next=a))
    a.Next = b
    pdf.Root.Loop = a
    pdf.Root.OpenAction = pdf.make_indirect(
        pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"), Next=b)
    )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _pdf_stream_bomb() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    bomb = zlib.compress(b"\x00" * (200 * 1024 * 1024), 9)
    stream = pikepdf.Stream(pdf, bomb)
    stream.Filter = pikepdf.Name.FlateDecode
    pdf.pages[0].Contents = pdf.make_indirect(stream)
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


@pytest.mark.parametrize(
    "builder", [_pdf_reference_loop, _pdf_stream_bomb], ids=["reference-loop", "stream-bomb"]
)
def test_pdf_loops_and_bombs_in_mail(builder) -> None:  # type: ignore[no-untyped-def]
    data = builder()
    result = run(attach(data, "doc.pdf", "application/pdf"))
    part = attachment_report(result)
    assert part.action in (Action.SANITIZED, Action.REMOVED, Action.HELD)
    assert_not_crossed(result, data)
    assert b"app.alert" not in result.message


# --- malformed Office -----------------------------------------------------------------------

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _ooxml(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


MALFORMED_OFFICE = {
    "ole-truncated": (OLE_MAGIC + b"\x00" * 40, "a.doc"),
    "ole-bad-sector-chain": (OLE_MAGIC + b"\xff" * 4000, "a.xls"),
    "ooxml-no-content-types": (_ooxml({"word/document.xml": b"<w:document/>"}), "a.docx"),
    "ooxml-garbage-xml": (
        _ooxml({"[Content_Types].xml": b"<Types", "word/vbaProject.bin": OLE_MAGIC}),
        "a.docm",
    ),
    "ooxml-truncated": (_ooxml({"[Content_Types].xml": b"<Types/>"})[:-30], "a.docx"),
    "ooxml-billion-laughs": (
        _ooxml(
            {
                "[Content_Types].xml": b'<?xml version="1.0"?><!DOCTYPE t ['
                b'<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                b"<Types>&c;</Types>"
            }
        ),
        "a.xlsx",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_OFFICE.values()), ids=list(MALFORMED_OFFICE))
def test_malformed_office_files_are_removed_or_rebuilt(case: tuple[bytes, str]) -> None:
    data, name = case
    result = run(attach(data, name))
    part = attachment_report(result)
    # A package that can be read is rebuilt part by part; anything else is removed.
    assert part.action in (Action.REMOVED, Action.HELD, Action.SANITIZED), part
    if part.action is Action.SANITIZED:
        assert "openxmlformats" in (part.detected_type or "")
    assert_not_crossed(result, data)


# --- images ---------------------------------------------------------------------------------


def _png_header_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compressobj(9)
    data = rows.compress(b"\x00" * (1 + width * 3) * 64) + rows.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(60_000, 60_000), (1, 2_000_000_000)])
def test_image_decompression_bomb_in_mail(width: int, height: int) -> None:
    data = _png_header_bomb(width, height)
    result = run(attach(data, "photo.png", "image/png"))
    part = attachment_report(result)
    assert part.action in (Action.REMOVED, Action.HELD)
    assert part.reason in (Reason.LIMIT_SIZE, Reason.LIMIT_PIXELS, Reason.MALFORMED)
    assert_not_crossed(result, data)


# --- filename tricks ------------------------------------------------------------------------

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200 + b"PE\x00\x00"
TRICKS = {
    "rlo": "invoice\u202efdp.exe",
    "trailing-dots": "invoice.pdf...",
    "trailing-space-dot": "invoice.exe. .",
    "clsid": "readme.txt.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}",
    "double-extension": "請求書.pdf.exe",
    "nul-in-name": "invoice.pdf\x00.exe",
    "path-in-name": "../../Startup/run.exe",
    "windows-device": "CON.pdf",
    "long-name": "a" * 300 + ".exe",
}


@pytest.mark.parametrize("name", list(TRICKS.values()), ids=list(TRICKS))
def test_filename_tricks_never_reach_the_output(name: str) -> None:
    result = run(attach(EXE, name, "application/pdf"))
    out = assert_safe(result)
    part = attachment_report(result)
    assert part.action in (Action.REMOVED, Action.HELD)
    for piece in out.walk():
        filename = piece.get_filename()
        if filename:
            assert "\u202e" not in filename
            assert not filename.rstrip().endswith(".")
            assert "{" not in filename
            assert "/" not in filename
    assert base64.b64encode(EXE)[:40] not in result.message


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*0*=utf-8''%E2%80%AE; filename*1=fdp.exe",
        "attachment; filename=\"safe.txt\"; filename*=utf-8''evil.exe",
        "attachment; filename*=utf-8''safe.txt; filename=\"evil.exe\"",
        "attachment; filename*=iso-2022-jp''%1B%24B%40%41%1B%28B.exe",
        'attachment; filename="=?utf-8?b?'
        + base64.b64encode("a\u202etxt.exe".encode()).decode()
        + '?="',
    ],
)
def test_rfc2231_filename_tricks(disposition: str) -> None:
    part = leaf(
        "application/octet-stream", EXE, cte="base64", extra=[("Content-Disposition", disposition)]
    )
    result = run(mail(multipart("mixed", [leaf("text/plain", b"x"), part])))
    out = assert_safe(result)
    assert attachment_report(result).action in (Action.REMOVED, Action.HELD)
    assert all("\u202e" not in (p.get_filename() or "") for p in out.walk())


# --- names that lie and text that is not text (issue 11), through the isolated CDR --------

RTF_PACKAGE = b"{\\rt{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105000002000000}}}"
LIES = {
    "rtf-package-doc-dot": (RTF_PACKAGE, "invoice.doc."),
    "rtf-package-only-extension": (RTF_PACKAGE, ".doc"),
    "rtf-package-dots-spaces": (RTF_PACKAGE, "a.doc. . ."),
    "svg-script-txt": (
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
        "a.txt",
    ),
    "hta-trailing-space": (b"<hta:application/><script>x()</script>", "x.hta "),
    "rdp-as-text": (b"full address:s:evil.example\r\nalternate shell:s:cmd\r\n", "x.txt"),
    "iqy-dot": (b"WEB\r\n1\r\nhttp://evil.example/q\r\n", "x.iqy."),
    "spreadsheetml-dde": (
        b'<?xml version="1.0"?><?mso-application progid="Excel.Sheet"?>'
        b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>',
        "x.xls.",
    ),
}


@pytest.mark.parametrize("case", list(LIES.values()), ids=list(LIES))
def test_active_text_under_a_lying_name_never_crosses(case: tuple[bytes, str]) -> None:
    data, name = case
    result = run(attach(data, name, "text/plain"))
    assert_not_crossed(result, data)
    disarmed = (Action.SANITIZED,) if data.startswith(b"<svg") else ()  # rebuilt without script
    assert attachment_report(result).action in (Action.REMOVED, Action.HELD, *disarmed)


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(out, "PNG")
    return out.getvalue()


def test_a_rebuilt_png_named_html_arrives_as_png() -> None:
    result = run(attach(_png(), "請求書.html", "text/html"))
    out = assert_safe(result)
    assert [p.get_filename() for p in out.walk() if p.get_filename()] == ["請求書.png"]


def test_an_archive_entry_is_named_in_the_notice() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as built:
        built.writestr("readme.txt", "hello")
        built.writestr("tool.exe", EXE)
    result = run(attach(archive.getvalue(), "files.zip"))
    assert "圧縮ファイル内: tool.exe" in text_of(assert_safe(result))


def test_lone_surrogates_everywhere_through_the_isolated_cdr() -> None:
    word = "=?utf-7?Q?+2D0-?="
    part = leaf(
        "text/plain; charset=utf-7",
        b"+2D0-",
        extra=[("Content-Disposition", f'attachment; filename="{word}.txt"')],
    )
    raw = mail(
        multipart("mixed", [leaf("text/plain; charset=utf-7", b"a +2D0- b"), part]),
        ("From", f"{word} <a@example.jp>"),
        ("Subject", word),
    )
    result = run(raw)
    assert_safe(result)
    assert Reason.LOSSY_DECODE in result.report.reason_codes()


# --- EICAR in every transfer encoding, clamd configured -------------------------------------


def _encode(cte: str, data: bytes) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", CRLF)
    if cte == "quoted-printable":
        return quopri.encodestring(data).replace(b"\n", CRLF)
    if cte == "x-uuencode":
        import binascii

        lines = b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))
        return b"begin 644 eicar.com\r\n" + lines.replace(b"\n", CRLF) + b"`\r\nend\r\n"
    return data


@pytest.mark.parametrize(
    "cte", ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "BASE64"]
)
def test_eicar_in_every_transfer_encoding_is_malware(clamd_socket: Path, cte: str) -> None:
    disarmer = ScanningDisarmer(default_disarmer(POLICY), ClamdClient(f"unix:{clamd_socket}", 10.0))
    body = _encode(cte.lower(), EICAR)
    part = (
        headers(
            ("Content-Type", "application/octet-stream; name=eicar.com"),
            ("Content-Disposition", "attachment; filename=eicar.com"),
            ("Content-Transfer-Encoding", cte),
        )
        + CRLF
        + body
    )
    result = run(mail(multipart("mixed", [leaf("text/plain", b"x"), part])), disarmer)
    assert_safe(result, [EICAR])
    report = attachment_report(result)
    assert report.action in (Action.REMOVED, Action.HELD)
    if cte.lower() != "x-uuencode":  # not a transfer encoding the pipeline decodes
        assert report.reason is Reason.MALWARE


def test_eicar_in_a_zip_in_mail_is_malware(clamd_socket: Path) -> None:
    disarmer = ScanningDisarmer(default_disarmer(POLICY), ClamdClient(f"unix:{clamd_socket}", 10.0))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/readme.com", EICAR)
    result = run(attach(out.getvalue(), "a.zip", "application/zip"), disarmer)
    assert attachment_report(result).reason is Reason.MALWARE
    assert_safe(result, [EICAR])


def test_eicar_as_the_text_body_is_reported(clamd_socket: Path) -> None:
    """The text body is text, not a file: it is kept (the LGWAN side receives text); the
    verdict stays deliver. Recorded here so a change of policy is a visible decision."""
    disarmer = ScanningDisarmer(default_disarmer(POLICY), ClamdClient(f"unix:{clamd_socket}", 10.0))
    result = run(mail(leaf("text/plain", EICAR + CRLF)), disarmer)
    assert_safe(result)
    assert result.verdict in (Verdict.DELIVER, Verdict.HOLD)

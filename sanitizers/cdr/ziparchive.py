"""ZIP sanitizer: inspect a ZIP in memory, disarm every entry, build a new ZIP from the results.

Threat model: the archive is hostile. It may be a bomb (a huge declared or real uncompressed
size, an extreme compression ratio, entries whose data overlap so one compressed stream is
inflated many times, archives nested in archives), name files so that extracting them writes
outside the target folder (``../``, ``/etc``, ``C:\\``, backslashes) or so that two entries
share a name and different tools extract different files (CVE-2013-4787), hide a payload
behind encryption the gateway cannot see through, or simply carry a macro document, a script
or an executable inside.

What is done, all in memory (``zipfile`` over ``BytesIO``; nothing is written to disk), by
the one member loop every archive kind goes through
(:func:`sanitizers.cdr.archive.disarm_archive`, fed by :class:`ZipReader`):

1. the end-of-central-directory count is checked before ``zipfile`` lists the entries, then
   every entry is checked before any is decompressed: count (``limit_entries``), declared
   total size (``limit_size``), declared ratio (``limit_ratio``), names (``path_traversal``
   for ``..``, absolute and drive-letter names; ``malformed`` for duplicate names, compared
   case-insensitively and after NFC normalisation, as Windows and macOS do), the local
   headers (``malformed`` when two entries' data overlap or a local header is missing),
   encryption (the whole part is ``held`` with ``encrypted_archive``, awaiting a password:
   :meth:`ZipSanitizer.decrypt` opens ZipCrypto and WinZip AES entries with a candidate, and
   the plain ZIP it builds in memory goes through every step below), unsupported
   compression methods (``unsupported_archive``);
2. each entry is read with a bounded read that never yields more than its declared size
   (``zipfile`` also checks the CRC), its kind is detected from its content and name, and it
   goes through the registry with the policy's action for that kind, one level deeper
   (nested ZIPs deeper than ``CdrPolicy.zip_max_depth`` are removed with ``limit_depth``);
3. a new ZIP (deflate, UTF-8 names, fixed permissions, no comments or extra fields) is built
   from the entries that came back ``kept``/``sanitized``/``converted``; the outcome's
   ``children`` lists every entry's outcome, and ``removed`` the union of what was removed
   inside plus ``entry`` when whole entries were dropped. If no entry survives, the archive
   is removed with the reason of its first entry.

Names: entries without the UTF-8 flag are decoded as UTF-8 when valid, else as CP932 (ZIPs
made by Japanese Windows), else as CP437 (the ZIP default), so 日本語 names survive; backslashes
count as folder separators; each component is cleaned like an attachment's name
(:func:`sanitizers.filenames.clean_component`: no bidi or other invisible controls, no
trailing dots or spaces, forbidden characters as ``_``), and a kept or rebuilt entry is named
after what it was rebuilt as (:func:`sanitizers.filenames.delivered_name`).

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
from typing import ClassVar
from unicodedata import normalize

from sanitizers.cdr.archive import (
    ArchiveReader,
    Member,
    check_depth,
    check_layout,
    check_name,
    clean_name,
    disarm_archive,
    verify_zip,
)
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.vocabulary import Reason

_EOCD = b"PK\x05\x06"
_SUPPORTED_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_AES_METHOD = 99
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


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
    for charset in ("utf-8", "cp932"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return info.filename


def _is_encrypted(info: zipfile.ZipInfo) -> bool:
    """ZipCrypto sets the encryption flag; WinZip AES also names method 99."""
    return bool(info.flag_bits & _ENCRYPTED_FLAG) or info.compress_type == _AES_METHOD


def _stamp(date_time: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
    """An entry's time, clamped to the years a ZIP can store."""
    year, month, day, hour, minute, second = date_time[:6]
    return (min(max(year, 1980), 2107), month, day, hour, minute, second)


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

    def decrypt(self, untrusted_data: bytes, password: str, ctx: CdrContext) -> bytes | None:
        """The entries of an encrypted ZIP (ZipCrypto or WinZip AES) read with ``password``,
        as a plain stored ZIP under their own names, which :meth:`rebuild` then checks and
        disarms like any other; ``None`` when the password does not open the first
        encrypted entry. Bounded like :meth:`rebuild`: entry count and declared and read
        sizes are checked before and while reading; nothing touches the disk."""
        import pyzipper

        limits = ctx.policy
        secret = password.encode("utf-8")
        try:
            archive = pyzipper.AESZipFile(io.BytesIO(untrusted_data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise SanitizeError(Reason.MALFORMED, str(exc)[:200]) from exc
        out = io.BytesIO()
        with archive, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as plain:
            infos = archive.infolist()
            if len(infos) > limits.zip_max_entries:
                raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{len(infos)} entries")
            if sum(info.file_size for info in infos) > limits.zip_max_total_bytes:
                raise LimitExceeded(Reason.LIMIT_SIZE, "declared size")
            seen: set[str] = set()
            total = 0
            first = True
            for info in infos:
                name = check_name(entry_name(info))
                key = normalize("NFC", clean_name(name)).casefold() + ("/" if info.is_dir() else "")
                if key in seen:
                    raise SanitizeError(Reason.MALFORMED, f"duplicate name {name!r}"[:200])
                seen.add(key)
                if info.is_dir():
                    continue
                try:
                    with archive.open(info, pwd=secret) as handle:
                        data = handle.read(info.file_size + 1)
                except (RuntimeError, zipfile.BadZipFile, zlib.error, LZMAError, OSError) as exc:
                    # A wrong password fails its check value, or (ZipCrypto's one-byte check
                    # passes for 1 in 256 wrong ones) its CRC or its decompression.
                    if first and _is_encrypted(info):
                        return None
                    raise SanitizeError(Reason.MALFORMED, f"{name!r}: {exc}"[:200]) from exc
                except (NotImplementedError, ValueError, EOFError) as exc:
                    raise SanitizeError(
                        Reason.UNSUPPORTED_ARCHIVE, f"{name!r}: {exc}"[:200]
                    ) from exc
                first = first and not _is_encrypted(info)
                total += len(data)
                if len(data) > info.file_size or total > limits.zip_max_total_bytes:
                    raise LimitExceeded(Reason.LIMIT_SIZE, f"{name!r} larger than declared")
                entry = zipfile.ZipInfo(name, date_time=_stamp(info.date_time))
                plain.writestr(entry, data)
        return out.getvalue()

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        verify_zip(data, ctx)


class ZipReader(ArchiveReader):
    """A ZIP read for the shared archive mechanism (:mod:`sanitizers.cdr.archive`), by the
    ZIP sanitizer and by the archive sanitizer given a ZIP (its own output, sanitized again):
    the end record's count first, then the local headers (no two entries sharing data).
    Encrypted entries make it held for a password (:meth:`ZipSanitizer.decrypt`)."""

    decryptable: ClassVar[bool] = True

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
                encrypted=_is_encrypted(info),
                supported=info.compress_type in _SUPPORTED_METHODS,
                date_time=_stamp(info.date_time),
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
            raise SanitizeError(
                Reason.MALFORMED, f"{member.untrusted_name!r}: {exc}"[:200]
            ) from exc

    def close(self) -> None:
        self._archive.close()

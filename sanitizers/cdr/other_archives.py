"""The sanitizer of kind ``archive``: 7z, RAR, LZH, tar and gzip/bzip2/xz, told apart by their
signatures and read by their own module, then disarmed and rebuilt as a ZIP by the shared
archive mechanism (:mod:`sanitizers.cdr.archive`, with the ZIP limits).

Threat model: :mod:`sanitizers.cdr.archive`. The content decides the format, never the name;
a format not listed here (ARJ, CAB, ACE, zstd, cpio…) is ``unsupported_archive`` (removed).
Each format's library is imported only when an archive of that format is seen.
"""

from __future__ import annotations

from typing import ClassVar, Final

from sanitizers.cdr.archive import (
    ArchiveReader,
    WrongPassword,
    check_depth,
    disarm_archive,
    plain_zip,
    verify_zip,
)
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Reason

_STREAMS: Final = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"))
_SEVENZIP: Final = b"7z\xbc\xaf\x27\x1c"


def open_reader(untrusted_data: bytes, filename: str, limits: CdrPolicy) -> ArchiveReader:
    """The reader for the archive's format, by its signature."""
    from sanitizers.cdr import lzharchive, tararchive, ziparchive

    if untrusted_data.startswith(b"PK\x03\x04"):  # its own output, sanitized again
        return ziparchive.ZipReader(untrusted_data, limits.zip_max_entries)
    if untrusted_data.startswith(_SEVENZIP):
        from sanitizers.cdr.sevenzip import SevenZipReader

        return SevenZipReader(untrusted_data, limits.zip_max_total_bytes)
    if untrusted_data.startswith((b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")):
        from sanitizers.cdr.rararchive import RarReader

        return RarReader(untrusted_data)
    if lzharchive.is_lzh(untrusted_data):
        return lzharchive.LzhReader(untrusted_data)
    if tararchive.is_tar(untrusted_data):
        return tararchive.TarReader(untrusted_data, limits.zip_max_entries)
    for signature, name in _STREAMS:
        if untrusted_data.startswith(signature):
            content = tararchive.decompress_stream(untrusted_data, name, limits)
            if tararchive.is_tar(content):
                return tararchive.TarReader(content, limits.zip_max_entries)
            member = tararchive.stream_member_name(filename, name)
            return tararchive.SingleFileReader(content, member, len(untrusted_data))
    raise SanitizeError(Reason.UNSUPPORTED_ARCHIVE, "not 7z, RAR, LZH, tar, gzip, bzip2 or xz")


class ArchiveSanitizer(CdrSanitizer):
    """Rebuilds 7z, RAR, LZH, tar and compressed files as ZIPs of their disarmed members."""

    kind: ClassVar[str] = "archive"

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        check_depth(ctx)
        reader = open_reader(untrusted_data, filename, ctx.policy)
        try:
            return disarm_archive(reader, len(untrusted_data), filename, ctx)
        finally:
            reader.close()

    def decrypt(self, untrusted_data: bytes, password: str, ctx: CdrContext) -> bytes | None:
        """An encrypted 7z read with ``password`` (data or names encrypted), as a plain ZIP
        of its files that CDR then disarms like any ZIP; ``None`` when the password does not
        open it. The other formats keep every password wrong (an encrypted RAR stays
        held)."""
        if not untrusted_data.startswith(_SEVENZIP):
            return None
        check_depth(ctx)
        from sanitizers.cdr.sevenzip import SevenZipReader

        reader = SevenZipReader(untrusted_data, ctx.policy.zip_max_total_bytes, password)
        try:
            return plain_zip(reader, len(untrusted_data), ctx)
        except WrongPassword:
            return None
        finally:
            reader.close()

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        verify_zip(data, ctx)

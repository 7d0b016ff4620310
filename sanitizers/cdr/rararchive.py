"""RAR archives (RAR 4 and 5), read with rarfile and Debian's ``unar`` for the shared archive
mechanism (:mod:`sanitizers.cdr.archive`).

Threat model: :mod:`sanitizers.cdr.archive`; this is the only module that imports rarfile.
What is particular to RAR:

* rarfile parses the headers in Python; stored members are read by rarfile itself, compressed
  ones by ``unar`` (the only tool allowed: ``unrar`` is not free software, and ``7z`` or
  ``bsdtar`` are not installed by the project), which rarfile runs on a temporary copy of the
  archive and reads from a pipe; rarfile checks each member's CRC;
* any encrypted member, or an encrypted list of names, holds the part
  (``encrypted_archive``) and no unlock is offered: rarfile gives the password to ``unar``
  on its command line, where other local users could read it (``/proc/*/cmdline``);
* names: RAR 5 and Unicode-flagged RAR 4 names are Unicode; other RAR 4 names are the
  creator's bytes, decoded as UTF-8, else CP932;
* links (RAR 5 redirections, RAR 4 Unix symlinks) are special members (dropped, never
  followed); a later volume of a multi-volume set is ``unsupported_archive``, a first volume
  whose members go on in the next is ``malformed`` (one part cannot be read alone).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Final

import rarfile

from sanitizers.cdr.archive import (
    OLDEST,
    ArchiveReader,
    DateTime,
    EncryptedArchive,
    Member,
    decode_name,
)
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Reason

_FAULTS: Final = (rarfile.Error, EOFError, OSError, ValueError, KeyError, IndexError, TypeError)


def _use_unar_only() -> None:
    """rarfile may run unrar, unar, 7z or bsdtar; only Debian main's unar is allowed."""
    rarfile.tool_setup(unrar=False, unar=True, bsdtar=False, sevenzip=False, sevenzip2=False)


def _name(info: rarfile.RarInfo) -> str:
    raw = info.orig_filename
    if isinstance(raw, bytes) and not info.flags & rarfile.RAR_FILE_UNICODE:
        return decode_name(raw)  # a RAR 4 name in its creator's code page
    return str(info.filename)


def _date_time(info: rarfile.RarInfo) -> DateTime:
    stamp = info.date_time
    if not isinstance(stamp, tuple) or len(stamp) < 6:
        return OLDEST
    return (stamp[0], stamp[1], stamp[2], stamp[3], stamp[4], stamp[5])


class RarReader(ArchiveReader):
    """A RAR archive in memory (a temporary copy only while ``unar`` reads a member)."""

    def __init__(self, untrusted_data: bytes) -> None:
        self._data = untrusted_data
        self._archive: rarfile.RarFile | None = None

    def members(self) -> Sequence[Member]:
        try:
            self._archive = rarfile.RarFile(io.BytesIO(self._data))
            if self._archive.needs_password():
                raise EncryptedArchive
            infos = self._archive.infolist()
        except rarfile.PasswordRequired as exc:
            raise EncryptedArchive from exc
        except rarfile.NeedFirstVolume as exc:
            raise SanitizeError(Reason.UNSUPPORTED_ARCHIVE, "a later volume of a RAR set") from exc
        except _FAULTS as exc:
            raise SanitizeError(Reason.MALFORMED, f"rar: {exc}"[:200]) from exc
        return [
            Member(
                untrusted_name=_name(info),
                size=0 if info.is_symlink() else info.file_size,
                packed=info.compress_size,
                key=info,
                is_dir=info.is_dir(),
                encrypted=info.needs_password(),
                special="symlink" if info.is_symlink() and not info.is_dir() else "",
                date_time=_date_time(info),
            )
            for info in infos
        ]

    def read(self, member: Member, limit: int) -> bytes:
        assert self._archive is not None
        assert isinstance(member.key, rarfile.RarInfo)
        _use_unar_only()
        try:
            with self._archive.open(member.key) as handle:
                return bytes(handle.read(limit))
        except _FAULTS as exc:
            raise SanitizeError(
                Reason.MALFORMED, f"{member.untrusted_name!r}: {exc}"[:200]
            ) from exc

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()

"""RAR archives (RAR 4 and 5), read with rarfile and Debian's ``unar`` for the shared archive
mechanism (:mod:`sanitizers.cdr.archive`).

Threat model: :mod:`sanitizers.cdr.archive`; this is the only module that imports rarfile.
What is particular to RAR:

* rarfile parses the headers in Python; stored members are read by rarfile itself, compressed
  ones by ``unar`` (the only tool allowed: ``unrar`` is not free software, and ``7z`` or
  ``bsdtar`` are not installed by the project), read from a pipe; rarfile checks each
  member's CRC. ``unar`` reads archives from a path only, so the archive is copied once into
  an anonymous in-memory file (``memfd``: never on disk, gone with the process, even a killed
  one) that both open as ``/proc/<pid>/fd/<n>``; in the isolated child, whose file-size limit
  is 0, the soft limit is raised to the archive's size for that write alone (its hard limit is
  ``max_file_bytes``: :mod:`sanitizers.cdr.isolation`);
* any encrypted member, or an encrypted list of names, holds the part
  (``encrypted_no_unlock``): the recipient is told it is held and cannot be unlocked here, and
  an operator may release the mail (the RAR itself is then removed). No unlock is offered,
  because rarfile gives the password to ``unar`` on its command line, where other local users
  could read it (``/proc/*/cmdline``), so no password is ever asked for;
* names: RAR 5 and Unicode-flagged RAR 4 names are Unicode; other RAR 4 names are the
  creator's bytes, decoded as UTF-8, else CP932;
* links (RAR 5 redirections, RAR 4 Unix symlinks) are special members (dropped, never
  followed); a later volume of a multi-volume set is ``unsupported_archive``, a first volume
  whose members go on in the next is ``malformed`` (one part cannot be read alone).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    """rarfile may run unrar, unar, 7z or bsdtar; only Debian main's unar is allowed, on the
    archive itself (rarfile's "extract hack" would write a one-member copy to a disk file)."""
    rarfile.USE_EXTRACT_HACK = False
    rarfile.tool_setup(unrar=False, unar=True, bsdtar=False, sevenzip=False, sevenzip2=False)


@contextmanager
def _file_writes_allowed(size: int) -> Iterator[None]:
    """Raise the soft file-size limit to ``size`` (never above the hard limit) meanwhile."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY or soft >= size:
        yield
        return
    resource.setrlimit(resource.RLIMIT_FSIZE, (min(size, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _memory_file(untrusted_data: bytes) -> int:
    """An anonymous in-memory file holding ``untrusted_data``; the caller closes it."""
    fd = os.memfd_create("mukaika-rar", os.MFD_CLOEXEC)
    try:
        with _file_writes_allowed(len(untrusted_data)):
            view = memoryview(untrusted_data)
            while view:
                view = view[os.write(fd, view) :]
    except OSError:
        os.close(fd)
        raise
    return fd


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
    """A RAR archive in an anonymous in-memory file that rarfile and ``unar`` both read."""

    def __init__(self, untrusted_data: bytes) -> None:
        self._data = untrusted_data
        self._fd: int | None = None
        self._archive: rarfile.RarFile | None = None

    def members(self) -> Sequence[Member]:
        try:
            self._fd = _memory_file(self._data)
        except OSError as exc:  # no memfd, or beyond the file-size limit
            raise SanitizeError(Reason.ERROR, f"rar copy: {exc}"[:200]) from exc
        try:
            self._archive = rarfile.RarFile(f"/proc/{os.getpid()}/fd/{self._fd}")
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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

"""7z archives, read with py7zr for the shared archive mechanism (:mod:`sanitizers.cdr.archive`).

Threat model: :mod:`sanitizers.cdr.archive`; py7zr is the only module that imports py7zr.
What is particular to 7z, all in memory (py7zr over ``BytesIO``, its writer factory
collecting the output; nothing is written to disk):

* the list of names may itself be encrypted (``-mhe``), and the data of any folder may be: the
  part is held (``encrypted_archive``, :class:`sanitizers.cdr.archive.EncryptedArchive`);
  given a password (PPAP unlock), the same reader decrypts, and since 7z keeps no password
  check value, any fault while reading the header or the data is a wrong password
  (:class:`sanitizers.cdr.archive.WrongPassword`): the file stays held;
* members of a solid folder share one compressed stream, so their compressed size is not
  their own: their declared total is held to ``zip_max_ratio`` against the whole archive
  before anything is decompressed;
* the data is decompressed in one pass (a solid folder can only be read from its start), into
  buffers that refuse to grow past each member's declared size or the archive's
  ``zip_max_total_bytes`` (a member that lies about its size stops the pass: ``limit_size``);
  py7zr checks each member's CRC;
* symbolic links, junctions and sockets are special members (dropped, never followed).
"""

from __future__ import annotations

import io
import lzma
import zlib
from collections.abc import Sequence
from typing import ClassVar, Final, NoReturn

import py7zr
import py7zr.exceptions
import py7zr.io
from py7zr.helpers import get_sanitized_output_path

from sanitizers.cdr.archive import (
    OLDEST,
    ArchiveReader,
    DateTime,
    EncryptedArchive,
    Member,
    WrongPassword,
)
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.vocabulary import Reason

# What py7zr raises on hostile input, besides its own errors.
_FAULTS: Final = (
    lzma.LZMAError,
    zlib.error,
    py7zr.exceptions.ArchiveError,
    py7zr.exceptions.UnsupportedCompressionMethodError,
    py7zr.exceptions.DecompressionError,
    py7zr.exceptions.CrcError,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    NotImplementedError,
    UnicodeError,
)


class _Overflow(Exception):
    """A member wrote more than it may (raised inside py7zr's extraction, caught here)."""


class _Buffer(py7zr.io.Py7zIO):
    """Where py7zr writes one member: refuses to hold more than ``limit`` bytes, and counts
    every byte against the archive's shared budget."""

    def __init__(self, limit: int, budget: list[int]) -> None:
        self._data = bytearray()
        self._limit = limit
        self._budget = budget

    def write(self, s: bytes | bytearray) -> int:
        self._budget[0] -= len(s)
        if len(self._data) + len(s) > self._limit or self._budget[0] < 0:
            raise _Overflow
        self._data += s
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return bytes(self._data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return len(self._data)

    @property
    def data(self) -> bytes:
        return bytes(self._data)


class _Collector(py7zr.io.WriterFactory):
    """Gives py7zr a bounded buffer per member, keyed by the name py7zr writes it under."""

    def __init__(self, limits: dict[str, int], budget: int) -> None:
        self._limits = limits
        self._budget = [budget]
        self.buffers: dict[str, _Buffer] = {}

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        limit = self._limits.get(filename)
        if limit is None:
            raise _Overflow  # a file that was not listed
        buffer = _Buffer(limit, self._budget)
        self.buffers[filename] = buffer
        return buffer


def _date_time(entry: py7zr.py7zr.ArchiveFile) -> DateTime:
    try:
        stamp = entry.lastwritetime
        if stamp is None:
            return OLDEST
        moment = stamp.as_datetime()
        return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    except (OverflowError, OSError, ValueError):
        return OLDEST


def _special(entry: py7zr.py7zr.ArchiveFile) -> str:
    if entry.is_symlink or entry.is_junction:
        return "symlink"
    if entry.is_socket:
        return "socket"
    return ""


class SevenZipReader(ArchiveReader):
    """A 7z archive in memory; its data decompressed once, on the first read (with
    ``password``, decrypted)."""

    decryptable: ClassVar[bool] = True

    def __init__(self, untrusted_data: bytes, max_total_bytes: int, password: str | None = None):
        self._data = untrusted_data
        self._max_total = max_total_bytes
        self._password = password
        self._archive: py7zr.SevenZipFile | None = None
        self._members: list[Member] = []
        # What py7zr may write for each non-folder entry (links write their target text).
        self._sizes: dict[str, int] = {}
        self._contents: dict[str, bytes] | None = None

    def members(self) -> Sequence[Member]:
        try:
            self._archive = py7zr.SevenZipFile(io.BytesIO(self._data), password=self._password)
            encrypted = self._archive.needs_password() and self._password is None
            for entry in self._archive.files:
                special = "" if entry.is_directory else _special(entry)
                if not entry.is_directory:
                    self._sizes[entry.filename] = entry.uncompressed
                self._members.append(
                    Member(
                        untrusted_name=entry.filename,
                        size=0 if special else entry.uncompressed,
                        packed=None,
                        key=entry.filename,
                        is_dir=entry.is_directory,
                        encrypted=encrypted,
                        special=special,
                        date_time=_date_time(entry),
                    )
                )
        except py7zr.exceptions.PasswordRequired as exc:
            raise EncryptedArchive from exc
        except (py7zr.exceptions.Bad7zFile, *_FAULTS) as exc:
            self._fault(exc)
        return self._members

    def _fault(self, exc: BaseException) -> NoReturn:
        if self._password is not None:
            raise WrongPassword from exc
        raise SanitizeError(Reason.MALFORMED, f"7z: {exc}"[:200]) from exc

    def _extract(self) -> dict[str, bytes]:
        assert self._archive is not None
        # The key py7zr gives each entry's writer (names are already checked: no traversal).
        keys = {get_sanitized_output_path(name, None).as_posix(): name for name in self._sizes}
        limits = {key: self._sizes[name] for key, name in keys.items()}
        collector = _Collector(limits, self._max_total)
        try:
            self._archive.extract(factory=collector)
        except _Overflow as exc:
            if self._password is not None:  # a wrong key decompresses into noise
                raise WrongPassword from exc
            raise LimitExceeded(Reason.LIMIT_SIZE, "7z member larger than declared") from exc
        except (py7zr.exceptions.Bad7zFile, *_FAULTS) as exc:
            self._fault(exc)
        return {
            name: collector.buffers[key].data
            for key, name in keys.items()
            if key in collector.buffers
        }

    def read(self, member: Member, limit: int) -> bytes:
        if self._contents is None:
            self._contents = self._extract()
        content = self._contents.get(str(member.key))
        if content is None:
            if member.size == 0:
                return b""  # an empty member has no stream to write
            raise SanitizeError(Reason.MALFORMED, f"{member.untrusted_name!r} was not extracted")
        return content[:limit]

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()

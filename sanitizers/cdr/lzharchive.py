"""LZH/LHA archives, read with lhafile for the shared archive mechanism
(:mod:`sanitizers.cdr.archive`).

Threat model: :mod:`sanitizers.cdr.archive`; this is the only module that imports lhafile.
What is particular to LZH, still common in Japanese offices (LHA, Lhaplus, Explzh):

* lhafile parses the level 0, 1 and 2 headers in Python (it accepts the methods ``-lh0-``,
  stored, and ``-lh5-``, ``-lh6-``, ``-lh7-``; others, ``-lzs-``, ``-lh1-``…, make the archive
  ``unsupported_archive``); its C decoder is never used: it decodes to the end of the input
  whatever size the header declares (a few bytes can describe gigabytes) and crashes the
  process when its output cannot be written. :mod:`sanitizers.cdr.lzhdecode` decodes instead,
  never past the declared size, which the shared mechanism has checked; each member's CRC-16
  is checked (``malformed`` otherwise), and a stored member must be as long as it says;
* names are the creator's bytes (lhafile hands them over as Latin-1): decoded as UTF-8 when
  valid, else as CP932 (Shift_JIS names from Japanese Windows), with ``\\`` and the level-2
  folder separator as folder separators; the MS-DOS attributes and the comment are dropped.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import Final

import lhafile

from sanitizers.cdr import lzhdecode
from sanitizers.cdr.archive import OLDEST, ArchiveReader, DateTime, Member, decode_name
from sanitizers.errors import SanitizeError
from sanitizers.vocabulary import Reason

_DIRECTORY: Final = b"-lhd-"
_STORED: Final = b"-lh0-"
# lhafile raises these on hostile input (its parser unpacks fields without checking lengths).
_FAULTS: Final = (
    lhafile.BadLhafile,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    UnboundLocalError,
    OverflowError,
    UnicodeError,
    struct.error,
)


def is_lzh(untrusted_data: bytes) -> bool:
    """An LZH header: ``-lh?-`` or ``-lz?-`` at offset 2."""
    method = untrusted_data[2:7]
    return len(method) == 5 and method[:3] in (b"-lh", b"-lz") and method[4:5] == b"-"


def _date_time(info: lhafile.LhaInfo) -> DateTime:
    moment = info.date_time
    try:
        return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    except AttributeError:
        return OLDEST


class LzhReader(ArchiveReader):
    """An LZH archive in memory."""

    def __init__(self, untrusted_data: bytes) -> None:
        self._data = untrusted_data
        self._archive: lhafile.LhaFile | None = None

    def members(self) -> Sequence[Member]:
        try:
            self._archive = lhafile.LhaFile(io.BytesIO(self._data))
            infos = list(self._archive.infolist())
        except RuntimeError as exc:  # lhafile's "Unsupported file is contained"
            raise SanitizeError(Reason.UNSUPPORTED_ARCHIVE, f"lzh: {exc}"[:200]) from exc
        except _FAULTS as exc:
            raise SanitizeError(Reason.MALFORMED, f"lzh: {exc}"[:200]) from exc
        return [
            Member(
                untrusted_name=decode_name(info.filename.encode("latin-1")),
                size=info.file_size,
                packed=info.compress_size,
                key=info,
                is_dir=info.compress_type == _DIRECTORY,
                date_time=_date_time(info),
            )
            for info in infos
        ]

    def read(self, member: Member, limit: int) -> bytes:
        info = member.key
        assert isinstance(info, lhafile.LhaInfo)
        packed = self._data[info.file_offset : info.file_offset + info.compress_size]
        if info.compress_type == _STORED:
            if len(packed) != info.file_size:
                raise SanitizeError(Reason.MALFORMED, f"{member.untrusted_name!r}: stored size")
            data = packed
        else:
            data = lzhdecode.decode(info.compress_type, packed, min(info.file_size, limit))
        if lzhdecode.crc16(data) != info.CRC:
            raise SanitizeError(Reason.MALFORMED, f"{member.untrusted_name!r}: bad CRC")
        return data

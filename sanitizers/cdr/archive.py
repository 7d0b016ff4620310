"""The one mechanism every archive kind goes through: limits, names, the member loop, the ZIP.

Threat model: the archive is hostile, whatever its format (ZIP, 7z, RAR, LZH, tar,
gzip/bzip2/xz). It may be a bomb (a huge declared or real uncompressed size, an extreme
compression ratio, archives nested in archives), name files so that extracting them writes
outside the target folder (``../``, ``/etc``, ``C:\\``, backslashes) or so that two members
share a name and different tools extract different files, hide a payload behind encryption,
carry links and devices instead of files, or simply carry a macro document, a script or an
executable inside.

A format module supplies an :class:`ArchiveReader` (the members as the archive declares them,
and a bounded read of one member); :func:`disarm_archive` does the rest, the same way for
ZIP, 7z, RAR, LZH and tar (a ZIP's and a 7z's password hook turn their plaintext into a plain
ZIP that comes through here again), with the limits of
:class:`sanitizers.cdr.settings.CdrPolicy` (``zip_*``: every archive kind reuses the ZIP
limits):

1. before any member is read: nesting depth (``limit_depth``), member count
   (``limit_entries``), encryption (the part is ``held``: ``encrypted_archive`` awaiting a
   password when the format can be unlocked, else ``encrypted_no_unlock``), declared
   total size (``limit_size``), per-member declared ratio, and for members whose compressed
   size is not their own (solid 7z, tar inside gzip) the ratio of their total to the whole
   archive (``limit_ratio``), names (``path_traversal`` for ``..``, absolute and drive-letter
   names; ``malformed`` for duplicates, compared case-insensitively and after NFC
   normalisation, as Windows and macOS do), compression methods the reader cannot read
   (``unsupported_archive``);
2. each member is read with a bounded read that never yields more than its declared size, its
   kind is detected from its content and name, and it goes through the registry with the
   policy's action for that kind, one level deeper; links, devices and other special members
   are never followed or created: they are dropped as entries (``unsupported_type``);
3. a new ZIP (deflate, UTF-8 names, fixed permissions, no comments or extra fields) is built
   from the members that came back ``kept``/``sanitized``/``converted``, whatever the input
   format was (a 7z, RAR, LZH or tar is delivered as a ZIP). ``children`` lists every
   member's outcome, and ``removed`` the union of what was removed inside plus ``entry`` when
   whole members were dropped. If no member survives, the archive is removed with the reason
   of its first member.

Names: raw names are decoded as UTF-8 when valid, else as CP932 (archives made by Japanese
Windows: LZH, ZIP and tar from Japanese tools), else as CP437; backslashes count as folder
separators; each component is cleaned like an attachment's name
(:func:`sanitizers.filenames.clean_component`), and a kept or rebuilt member is named after
what it was rebuilt as (:func:`sanitizers.filenames.delivered_name`).
"""

from __future__ import annotations

import io
import itertools
import re
import struct
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar, Final
from unicodedata import normalize

from sanitizers.cdr.base import CdrContext, CdrOutcome
from sanitizers.errors import LimitExceeded, SanitizeError
from sanitizers.filenames import clean_component, delivered_name
from sanitizers.filetype import TypeInfo, detect
from sanitizers.vocabulary import Action, Reason, RemovedItem

ZIP_TYPE: Final = "application/zip"
ARCHIVE_KINDS: Final = frozenset({"zip", "archive"})
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_PASSED: Final = frozenset({Action.KEPT, Action.SANITIZED, Action.CONVERTED})
_MAX_NAME: Final = 240
OLDEST: Final = (1980, 1, 1, 0, 0, 0)
_LOCAL: Final = b"PK\x03\x04"

DateTime = tuple[int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class Member:
    """One member as its archive declares it, before anything is read.

    ``packed`` is the member's own compressed size, ``None`` when it shares a compressed
    stream with others (solid 7z, a tar inside gzip). ``special`` names a member that is not
    a plain file (``symlink``, ``device``…): it is never read. ``key`` is the reader's handle."""

    untrusted_name: str
    size: int
    packed: int | None
    key: object
    is_dir: bool = False
    encrypted: bool = False
    supported: bool = True
    special: str = ""
    date_time: DateTime = OLDEST


class ArchiveReader(ABC):
    """One format's view of an archive: its members, and a bounded read of one of them.

    Readers turn every failure of their library on hostile input into
    ``SanitizeError(MALFORMED)``; ``read`` never returns more than ``limit`` bytes.
    ``decryptable``: the format's sanitizer can open it with a password (PPAP unlock), so an
    encrypted archive is held for one (``encrypted_archive``); otherwise it is held with
    ``encrypted_no_unlock``: no password is asked for, only an operator's release ends the
    hold."""

    decryptable: ClassVar[bool] = False

    @abstractmethod
    def members(self) -> Sequence[Member]:
        """Every member, in archive order (checked against the limits before any read)."""

    @abstractmethod
    def read(self, member: Member, limit: int) -> bytes:
        """The member's data, at most ``limit`` bytes (more means it lied about its size)."""

    def close(self) -> None:  # noqa: B027 - most readers hold nothing to release
        """Release what the reader holds (a temporary file, a handle)."""


class EncryptedArchive(Exception):
    """Raised by a reader whose archive (or its list of names) is encrypted: the part is
    held (``encrypted_archive``), never opened or guessed at."""


class WrongPassword(Exception):
    """Raised by a reader given a password that does not open its archive (formats without
    a password check value fail while decrypting: a corrupt header, stream or CRC)."""


def decode_name(raw: bytes) -> str:
    """A raw member name as its creator meant it: UTF-8, else CP932, else CP437."""
    for charset in ("utf-8", "cp932"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp437")


def check_name(untrusted_name: str) -> str:
    """The name with ``/`` separators; raises ``path_traversal`` for names that escape."""
    name = untrusted_name.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name) or "\x00" in name:
        raise SanitizeError(Reason.PATH_TRAVERSAL, repr(untrusted_name)[:120])
    if any(part == ".." for part in name.split("/")):
        raise SanitizeError(Reason.PATH_TRAVERSAL, repr(untrusted_name)[:120])
    return name


def clean_name(name: str) -> str:
    """A name safe to show and to extract on Windows and POSIX: every folder component made
    safe by :func:`sanitizers.filenames.clean_component` (bidi and other invisible controls,
    trailing dots and spaces, NTFS streams, forbidden characters, device names); no empty
    components."""
    parts = [clean_component(part)[:_MAX_NAME] for part in name.split("/")]
    return "/".join(part for part in parts if part) or "file"


def check_layout(data: bytes, infos: list[zipfile.ZipInfo]) -> None:
    """Every ZIP entry has its own local header and data; no two entries share bytes (an
    overlapping-entry bomb inflates one stream many times)."""
    spans: list[tuple[int, int, str]] = []
    for info in infos:
        start = info.header_offset
        header = data[start : start + 30]
        if len(header) < 30 or header[:4] != _LOCAL:
            raise SanitizeError(Reason.MALFORMED, f"no local header for {info.filename!r}"[:200])
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        end = start + 30 + name_len + extra_len + info.compress_size
        if end > len(data):
            raise SanitizeError(Reason.MALFORMED, f"{info.filename!r} runs past the end"[:200])
        spans.append((start, end, info.filename))
    spans.sort()
    for (_s1, end1, name1), (start2, _e2, name2) in itertools.pairwise(spans):
        if start2 < end1:
            raise SanitizeError(
                Reason.MALFORMED, f"overlapping entries {name1!r} and {name2!r}"[:200]
            )


def _check_members(members: Sequence[Member], archive_bytes: int, ctx: CdrContext) -> None:
    """Everything that can be decided from the declarations, before a byte is decompressed."""
    limits = ctx.policy
    declared = sum(member.size for member in members)
    if declared > limits.zip_max_total_bytes:
        raise LimitExceeded(Reason.LIMIT_SIZE, f"{declared} bytes uncompressed")
    shared = sum(m.size for m in members if m.packed is None and not m.is_dir)
    shared_ratio = shared / max(archive_bytes, 1)
    if shared >= limits.zip_ratio_min_bytes and shared_ratio > limits.zip_max_ratio:
        raise LimitExceeded(Reason.LIMIT_RATIO, f"solid data ratio {shared_ratio:.0f}")
    names: set[str] = set()
    for member in members:
        name = check_name(member.untrusted_name)
        # Windows compares names case-insensitively, macOS after Unicode normalisation.
        key = normalize("NFC", clean_name(name)).casefold() + ("/" if member.is_dir else "")
        if key in names:
            raise SanitizeError(Reason.MALFORMED, f"duplicate name {name!r}"[:200])
        names.add(key)
        if not member.supported:
            raise SanitizeError(Reason.UNSUPPORTED_ARCHIVE, f"{name!r}: compression method"[:200])
        if member.packed is not None:
            ratio = member.size / max(member.packed, 1)
            if member.size >= limits.zip_ratio_min_bytes and ratio > limits.zip_max_ratio:
                raise LimitExceeded(Reason.LIMIT_RATIO, f"{name!r} ratio {ratio:.0f}"[:200])


def _detect(untrusted_data: bytes, name: str) -> TypeInfo:
    """What a member is: archives declare no content types, so its content and name decide."""
    return detect(untrusted_data, "application/octet-stream", name)


def check_depth(ctx: CdrContext) -> None:
    """An archive nested deeper than ``zip_max_depth`` is not opened (``limit_depth``)."""
    if ctx.depth > ctx.policy.zip_max_depth:
        raise LimitExceeded(Reason.LIMIT_DEPTH, f"archive nested {ctx.depth} deep")


def disarm_archive(
    reader: ArchiveReader, archive_bytes: int, filename: str, ctx: CdrContext
) -> CdrOutcome:
    """Check, read and disarm every member of ``reader``'s archive; rebuild it as a ZIP."""
    from sanitizers.policy import AttachmentAction, Policy

    entries = ctx.entries
    if entries is None:
        raise SanitizeError(Reason.ERROR, "no registry for the archive's entries")
    policy = ctx.full_policy or Policy(cdr=ctx.policy)
    limits = ctx.policy
    try:
        members = _checked_members(reader, archive_bytes, ctx)
    except EncryptedArchive:
        if reader.decryptable:
            return CdrOutcome(action=Action.HELD, reason=Reason.ENCRYPTED_ARCHIVE, detail=filename)
        return CdrOutcome(
            action=Action.HELD,
            reason=Reason.ENCRYPTED_NO_UNLOCK,
            detail=f"{filename}: cannot be opened with a password here",
        )
    children: list[tuple[str, CdrOutcome]] = []
    passed: list[tuple[Member, str, CdrOutcome]] = []
    total = 0
    for member in members:
        if member.is_dir:
            continue
        name = clean_name(check_name(member.untrusted_name))
        if member.special:
            children.append((name, CdrOutcome.drop(Reason.UNSUPPORTED_TYPE, member.special)))
            continue
        untrusted_entry = _read_bounded(reader, member, name, total, limits.zip_max_total_bytes)
        total += len(untrusted_entry)
        folder, _, base = name.rpartition("/")
        info_type = _detect(untrusted_entry, base)
        kind = info_type.kind
        if kind in ARCHIVE_KINDS and ctx.depth + 1 > limits.zip_max_depth:
            child = CdrOutcome.drop(Reason.LIMIT_DEPTH, f"archive nested {ctx.depth + 1}")
        else:
            action = policy.attachments.action_for(kind)
            if ctx.keep_if_clean and action != AttachmentAction.REMOVE:
                action = AttachmentAction.KEEP_IF_CLEAN
            child = entries.disarm(
                untrusted_entry,
                base,
                kind,
                action,
                policy,
                depth=ctx.depth + 1,
                passwords=ctx.passwords,
            )
        children.append((name, child))
        if child.action == Action.HELD:
            return CdrOutcome(
                action=Action.HELD,
                reason=child.reason,
                detail=f"{name}: {child.detail}"[:200],
                children=tuple(children),
            )
        if child.action in _PASSED and child.data is not None:
            # Named after what it was rebuilt as, like a mail attachment.
            new_base = delivered_name(
                child.filename or base,
                child.content_type or info_type.detected_mime,
                None if child.content_type else info_type.kind,
            )
            passed.append((member, f"{folder}/{new_base}" if folder else new_base, child))
    if ctx.keep_if_clean:
        return _rebuilt_or_drop(filename, children, passed)
    return _build(filename, children, passed)


def _checked_members(
    reader: ArchiveReader, archive_bytes: int, ctx: CdrContext
) -> Sequence[Member]:
    """The reader's members, checked against every limit that the declarations decide;
    :class:`EncryptedArchive` when any member is encrypted."""
    members = reader.members()
    if len(members) > ctx.policy.zip_max_entries:
        raise LimitExceeded(Reason.LIMIT_ENTRIES, f"{len(members)} entries")
    if any(member.encrypted for member in members):
        raise EncryptedArchive
    _check_members(members, archive_bytes, ctx)
    return members


def _read_bounded(
    reader: ArchiveReader, member: Member, name: str, total: int, limit: int
) -> bytes:
    """One member's data, refused when it is larger than declared or takes the archive's
    running ``total`` past ``limit``."""
    untrusted_entry = reader.read(member, member.size + 1)
    if len(untrusted_entry) > member.size or total + len(untrusted_entry) > limit:
        raise LimitExceeded(Reason.LIMIT_SIZE, f"{name!r} larger than declared")
    return untrusted_entry


def plain_zip(reader: ArchiveReader, archive_bytes: int, ctx: CdrContext) -> bytes:
    """The plain files of a reader opened with a password, as a stored ZIP under their own
    (checked) names: the plaintext that CDR then reads again from the start, like any ZIP.
    Bounded by the same declarations and limits as :func:`disarm_archive`; links and other
    special members are left out (they would be dropped there too). A reader that finds the
    password wrong raises :class:`WrongPassword`."""
    members = _checked_members(reader, archive_bytes, ctx)
    out = io.BytesIO()
    total = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as plain:
        for member in members:
            if member.is_dir or member.special:
                continue
            name = check_name(member.untrusted_name)
            data = _read_bounded(reader, member, name, total, ctx.policy.zip_max_total_bytes)
            total += len(data)
            year, *rest = member.date_time
            stamp = (min(max(year, 1980), 2107), *rest)
            plain.writestr(zipfile.ZipInfo(name, date_time=stamp), data)  # type: ignore[arg-type]
    return out.getvalue()


def _rebuilt_or_drop(
    filename: str,
    children: list[tuple[str, CdrOutcome]],
    passed: list[tuple[Member, str, CdrOutcome]],
) -> CdrOutcome:
    """keep_if_clean: when every member passed and was clean, the archive rebuilt from its
    verified members (never the sender's bytes: a comment, data before the first member or
    between members is read by no one); else removed."""
    clean = len(passed) == len(children) > 0 and all(
        child.reason == Reason.CLEAN and not child.removed for _name, child in children
    )
    if not clean:
        reasons = [c.reason for _n, c in children if c.reason != Reason.CLEAN]
        return CdrOutcome(
            action=Action.REMOVED,
            reason=reasons[0] if reasons else Reason.EMPTY,
            detail="keep_if_clean: not every entry is clean",
            children=tuple(children),
        )
    return _build(filename, children, passed)


def _build(
    filename: str,
    children: list[tuple[str, CdrOutcome]],
    passed: list[tuple[Member, str, CdrOutcome]],
) -> CdrOutcome:
    removed: set[RemovedItem] = set()
    for _name, child in children:
        removed.update(child.removed)
        if child.action not in _PASSED:
            removed.add(RemovedItem.ENTRY)
    if children and not passed:
        first = children[0][1]
        return CdrOutcome(
            action=Action.REMOVED,
            reason=first.reason,
            detail="no entry survived",
            removed=tuple(sorted(removed)),
            children=tuple(children),
        )
    if not children:
        return CdrOutcome.drop(Reason.EMPTY, "no files in the archive")
    out = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as new:
        for member, name, child in passed:
            unique = name
            counter = 1
            while unique.casefold() in used:  # a rename (.gif→.png, .7z→.zip) may collide
                stem = PurePosixPath(name)
                unique = str(stem.with_name(f"{stem.stem}_{counter}{stem.suffix}"))
                counter += 1
            used.add(unique.casefold())
            year, *rest = member.date_time
            stamp = (min(max(year, 1980), 2107), *rest)
            entry = zipfile.ZipInfo(unique, date_time=stamp)  # type: ignore[arg-type]
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            assert child.data is not None
            new.writestr(entry, child.data)
    reasons = [c.reason for _n, c in children if c.reason != Reason.CLEAN]
    return CdrOutcome(
        action=Action.SANITIZED,
        reason=reasons[0] if reasons else Reason.CLEAN,
        data=out.getvalue(),
        filename=filename,
        content_type=ZIP_TYPE,
        removed=tuple(sorted(removed)),
        children=tuple(children),
    )


def verify_zip(data: bytes, ctx: CdrContext) -> None:
    """Independently re-check a rebuilt ZIP (the output of every archive kind): no more
    entries than allowed, only stored/deflated unencrypted entries, clean unique names, no
    overlapping data, every CRC right."""
    limits = ctx.policy
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > limits.zip_max_entries:
                raise SanitizeError(Reason.VERIFY_FAILED, "too many entries")
            seen: set[str] = set()
            for info in infos:
                if info.flag_bits & 0x1 or info.compress_type not in (
                    zipfile.ZIP_DEFLATED,
                    zipfile.ZIP_STORED,
                ):
                    raise SanitizeError(Reason.VERIFY_FAILED, f"entry {info.filename!r}")
                name = check_name(info.filename)
                if clean_name(name) != name or name.casefold() in seen:
                    raise SanitizeError(Reason.VERIFY_FAILED, f"name {name!r}"[:200])
                seen.add(name.casefold())
            check_layout(data, infos)
            bad = archive.testzip()
            if bad is not None:
                raise SanitizeError(Reason.VERIFY_FAILED, f"bad CRC in {bad!r}")
    except zipfile.BadZipFile as exc:
        raise SanitizeError(Reason.VERIFY_FAILED, str(exc)[:200]) from exc
    except SanitizeError as exc:
        if exc.reason == Reason.VERIFY_FAILED:
            raise
        raise SanitizeError(Reason.VERIFY_FAILED, exc.detail) from exc

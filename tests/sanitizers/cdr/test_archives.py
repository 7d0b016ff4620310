"""Archives other than ZIP (7z, RAR, LZH, tar, gzip/bzip2/xz): the contract, the shared limits
for every format, hostile variants built in code, and corpus samples."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from sanitizers.cdr.base import CdrContext, CdrOutcome
from sanitizers.cdr.other_archives import ArchiveSanitizer
from sanitizers.cdr.registry import Registry
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.policy import AttachmentAction, AttachmentPolicy, Policy
from sanitizers.vocabulary import Action, Reason
from tests.corpus import require_corpus
from tests.sanitizers.cdr.archive_fixtures import (
    EXE,
    RAR4_FILE_ENCRYPTED,
    RAR4_HEADERS_ENCRYPTED,
    archive_findings,
    lh5,
    lzh,
    rar4,
    sevenzip,
    special,
    tar,
)
from tests.sanitizers.cdr.contract import Case, CdrContract

TEXT = "会議資料です。よろしくお願いします。\n"
SANITIZE = {
    k: AttachmentAction.SANITIZE for k in ("pdf", "image", "zip", "archive", "text", "html")
}


def _policy(cdr: CdrPolicy | None = None) -> Policy:
    return Policy(cdr=cdr or CdrPolicy(), attachments=AttachmentPolicy(by_kind=SANITIZE))


def _run(
    data: bytes, filename: str, cdr: CdrPolicy | None = None, keep: bool = False
) -> CdrOutcome:
    policy = _policy(cdr)
    ctx = CdrContext(policy=policy.cdr, keep_if_clean=keep, full_policy=policy, entries=Registry())
    return ArchiveSanitizer().run(data, filename, ctx)


def _names(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# Every format, built from (name, data) members, so one test covers the whole class.
BUILDERS: dict[str, tuple[str, Callable[[list[tuple[str, bytes]]], bytes]]] = {
    "7z": ("a.7z", sevenzip),
    "rar4": ("a.rar", lambda ms: rar4([(n.encode("cp932"), d) for n, d in ms])),
    "lzh": ("a.lzh", lambda ms: lzh([(n.encode("cp932"), d) for n, d in ms])),
    "tar": ("a.tar", tar),
    "tar.gz": ("a.tar.gz", lambda ms: tar(ms, "gz")),
    "tar.bz2": ("a.tar.bz2", lambda ms: tar(ms, "bz2")),
    "tar.xz": ("a.tar.xz", lambda ms: tar(ms, "xz")),
}
FORMATS = sorted(BUILDERS)


class TestArchiveContract(CdrContract):
    kind = "archive"
    keep_if_clean_rebuilds = True

    def policy(self) -> Policy:
        return _policy(self.cdr_policy())

    def hostile_cases(self) -> Sequence[Case]:
        sjis_exe = lzh(
            [("請求書.exe".encode("cp932"), EXE), ("資料.txt".encode("cp932"), TEXT.encode())]
        )
        return [
            Case("lzh-sjis-exe", sjis_exe, "a.lzh", frozenset({"entry"}), text=(TEXT,)),
            Case(
                "7z-exe",
                sevenzip([("setup.exe", EXE), ("note.txt", TEXT.encode())]),
                "b.7z",
                frozenset({"entry"}),
                text=(TEXT,),
            ),
            Case(
                "rar-traversal",
                rar4([(b"..\\..\\Startup\\evil.txt", b"x"), (b"ok.txt", b"ok")]),
                "c.rar",
                action=Action.REMOVED,
                reason=Reason.PATH_TRAVERSAL,
            ),
            Case(
                "rar-encrypted-data",
                rar4([(b"report.docm", EXE)], file_flags=RAR4_FILE_ENCRYPTED),
                "g.rar",
                action=Action.HELD,
                reason=Reason.ENCRYPTED_NO_UNLOCK,
            ),
            Case(
                "rar-encrypted-names",
                rar4([(b"setup.exe", EXE)], main_flags=RAR4_HEADERS_ENCRYPTED),
                "h.rar",
                action=Action.HELD,
                reason=Reason.ENCRYPTED_NO_UNLOCK,
            ),
            Case(
                "tar-traversal",
                tar([("../../etc/cron.d/x", b"x")]),
                "d.tar",
                action=Action.REMOVED,
                reason=Reason.PATH_TRAVERSAL,
            ),
            Case(
                "tar-symlink-and-device",
                tar(
                    [
                        special("passwd", tarfile.SYMTYPE, "/etc/passwd"),
                        special("sda", tarfile.BLKTYPE),
                        ("note.txt", TEXT.encode()),
                    ]
                ),
                "e.tar",
                frozenset({"entry"}),
                text=(TEXT,),
            ),
            Case(
                "tgz-exe",
                tar([("bin/setup.exe", EXE), ("note.txt", TEXT.encode())], "gz"),
                "f.tgz",
                frozenset({"entry"}),
                text=(TEXT,),
            ),
            Case(
                "gz-exe",
                gzip.compress(EXE),
                "setup.exe.gz",
                action=Action.REMOVED,
                reason=Reason.EXECUTABLE,
            ),
        ]

    def clean_cases(self) -> Sequence[Case]:
        return [
            Case("7z-text", sevenzip([("資料/メモ.txt", TEXT.encode())]), "ok.7z", text=(TEXT,)),
            Case(
                "lzh-text",
                lzh([("資料.txt".encode("cp932"), TEXT.encode())]),
                "ok.lzh",
                text=(TEXT,),
            ),
            Case(
                "rar-text",
                rar4([("報告.txt".encode("cp932"), TEXT.encode())]),
                "ok.rar",
                text=(TEXT,),
            ),
            Case(
                "tar-bz2-text",
                tar([("a/メモ.txt", TEXT.encode())], "bz2"),
                "ok.tar.bz2",
                text=(TEXT,),
            ),
            Case("xz-text", lzma.compress(TEXT.encode()), "memo.txt.xz", text=(TEXT,)),
        ]

    def bomb_cases(self) -> Sequence[Case]:
        return [
            Case(
                "7z-bomb",
                sevenzip([("zeros.bin", bytes(30_000_000))]),
                "bomb.7z",
                action=Action.REMOVED,
            ),
            Case("gzip-bomb", gzip.compress(bytes(30_000_000)), "bomb.gz", action=Action.REMOVED),
            Case("bzip2-bomb", bz2.compress(bytes(30_000_000)), "bomb.bz2", action=Action.REMOVED),
        ]

    def dangerous_items(self, data: bytes) -> set[str]:
        return archive_findings(data)

    def assert_parses(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None

    def extract_text(self, data: bytes) -> str:
        return "".join(
            content.decode("utf-8-sig", "replace")
            for name, content in _names(data).items()
            if name.endswith(".txt")
        )


# --- the shared limits hold for every format ------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_rebuilt_as_zip_with_japanese_names(fmt: str) -> None:
    filename, build = BUILDERS[fmt]
    outcome = _run(build([("資料/メモ.txt", TEXT.encode()), ("請求書.exe", EXE)]), filename)
    assert (outcome.action, outcome.content_type) == (Action.SANITIZED, "application/zip")
    assert outcome.data is not None
    assert _names(outcome.data) == {"資料/メモ.txt": TEXT.encode()}
    fates = {name: child.reason for name, child in outcome.children}
    assert fates == {"資料/メモ.txt": Reason.CLEAN, "請求書.exe": Reason.EXECUTABLE}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_refuses_traversal(fmt: str) -> None:
    filename, build = BUILDERS[fmt]
    outcome = _run(build([("ok.txt", b"ok"), ("../evil.txt", b"x")]), filename)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.PATH_TRAVERSAL)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_keeps_the_entry_limit(fmt: str) -> None:
    filename, build = BUILDERS[fmt]
    data = build([(f"{n}.txt", b"x") for n in range(4)])
    outcome = _run(data, filename, CdrPolicy(zip_max_entries=3))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_ENTRIES)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_keeps_the_size_limit(fmt: str) -> None:
    filename, build = BUILDERS[fmt]
    data = build([("a.txt", b"abc" * 400), ("b.txt", b"xyz" * 400)])
    outcome = _run(data, filename, CdrPolicy(zip_max_total_bytes=2000))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_refuses_duplicate_names(fmt: str) -> None:
    filename, build = BUILDERS[fmt]
    outcome = _run(build([("a.txt", b"one"), ("A.TXT", b"two")]), filename)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED)


def test_every_format_has_a_builder() -> None:
    """The parametrized tests above cover each reader of sanitizers.cdr.other_archives."""
    assert {"7z", "rar4", "lzh", "tar", "tar.gz", "tar.bz2", "tar.xz"} <= set(BUILDERS)


# --- format specifics -------------------------------------------------------------------------


def test_lzh_shift_jis_exe_is_named_and_removed() -> None:
    data = lzh([("請求書.exe".encode("cp932"), EXE), ("表示.txt".encode("cp932"), TEXT.encode())])
    outcome = _run(data, "見積.lzh")
    fates = {name: (child.action, child.reason) for name, child in outcome.children}
    # 表 is 0x95 0x5C in Shift_JIS: its second byte is not a folder separator.
    assert fates == {
        "請求書.exe": (Action.REMOVED, Reason.EXECUTABLE),
        "表示.txt": (Action.SANITIZED, Reason.CLEAN),
    }
    assert outcome.data is not None
    assert list(_names(outcome.data)) == ["表示.txt"]


def test_encrypted_7z_is_held() -> None:
    outcome = _run(sevenzip([("a.txt", b"secret")], password="secret"), "p.7z")
    assert (outcome.action, outcome.reason) == (Action.HELD, Reason.ENCRYPTED_ARCHIVE)


def test_7z_with_encrypted_names_is_held() -> None:
    import py7zr

    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w", password="secret", header_encryption=True) as archive:
        archive.writestr(b"hidden", "a.txt")
    outcome = _run(out.getvalue(), "p.7z")
    assert (outcome.action, outcome.reason) == (Action.HELD, Reason.ENCRYPTED_ARCHIVE)


def test_7z_bomb_is_stopped_before_decompression() -> None:
    outcome = _run(sevenzip([("zeros.bin", bytes(30_000_000))]), "bomb.7z")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_RATIO)


def test_gzip_bomb_is_stopped_while_decompressing() -> None:
    outcome = _run(gzip.compress(bytes(30_000_000)), "bomb.gz")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_RATIO)


def test_gzip_beyond_the_size_limit() -> None:
    data = gzip.compress(bytes(range(256)) * 40)
    outcome = _run(data, "a.bin.gz", CdrPolicy(zip_max_total_bytes=5000))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)


def test_truncated_gzip_is_malformed() -> None:
    data = gzip.compress(TEXT.encode() * 100)
    outcome = _run(data[: len(data) // 2], "a.txt.gz")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED)


def test_single_compressed_file_is_named_after_the_stream() -> None:
    outcome = _run(bz2.compress(TEXT.encode()), "議事録.txt.bz2")
    assert outcome.data is not None
    assert _names(outcome.data) == {"議事録.txt": TEXT.encode()}


def test_tar_links_and_devices_are_dropped_never_followed() -> None:
    data = tar(
        [
            special("passwd", tarfile.SYMTYPE, "/etc/passwd"),
            special("hard", tarfile.LNKTYPE, "note.txt"),
            special("tty", tarfile.CHRTYPE),
            special("pipe", tarfile.FIFOTYPE),
            ("note.txt", TEXT.encode()),
        ]
    )
    outcome = _run(data, "a.tar")
    fates = {name: child.reason for name, child in outcome.children}
    assert fates == {
        "passwd": Reason.UNSUPPORTED_TYPE,
        "hard": Reason.UNSUPPORTED_TYPE,
        "tty": Reason.UNSUPPORTED_TYPE,
        "pipe": Reason.UNSUPPORTED_TYPE,
        "note.txt": Reason.CLEAN,
    }
    assert outcome.data is not None
    assert list(_names(outcome.data)) == ["note.txt"]


def test_nested_archives_are_rebuilt_to_the_configured_depth() -> None:
    inner = tar([("deep.txt", TEXT.encode())], "gz")
    data = sevenzip([("inner.tar.gz", inner)])
    outcome = _run(data, "outer.7z")
    assert outcome.data is not None
    names = _names(outcome.data)
    assert list(names) == ["inner.tar.zip"]
    assert _names(names["inner.tar.zip"]) == {"deep.txt": TEXT.encode()}
    too_deep = _run(data, "outer.7z", CdrPolicy(zip_max_depth=0))
    assert too_deep.children[0][1].reason == Reason.LIMIT_DEPTH


def test_unknown_archive_format_is_unsupported() -> None:
    outcome = _run(b"`\xea" + bytes(100), "a.arj")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.UNSUPPORTED_ARCHIVE)


def test_archive_kind_is_sanitized_by_default() -> None:
    assert Policy().attachments.action_for("archive") == AttachmentAction.SANITIZE


# --- corpus samples ---------------------------------------------------------------------------

TESTDATA = "recursive-extractor/RecursiveExtractor.Tests/TestData"


def _corpus(relative: str) -> bytes:
    path: Path = require_corpus() / relative
    if not path.is_file():
        pytest.skip(f"{relative} not in the corpus")
    return path.read_bytes()


@pytest.mark.corpus
@pytest.mark.parametrize(
    "relative",
    [
        f"{TESTDATA}/TestDataArchives/TestData.7z",
        f"{TESTDATA}/TestDataArchives/TestData.rar",  # RAR 5, compressed: read by unar
        f"{TESTDATA}/TestDataArchives/TestData.rar4",
        f"{TESTDATA}/TestDataArchives/TestData.tar.xz",
        "ichitaro/src/test/resources/extractor/lha/test.lzh",
    ],
)
def test_corpus_archives_are_rebuilt(relative: str) -> None:
    outcome = _run(_corpus(relative), Path(relative).name)
    assert outcome.action == Action.SANITIZED, outcome
    assert outcome.data is not None
    assert archive_findings(outcome.data) == set()
    assert all(child.action != Action.REMOVED for _n, child in outcome.children), outcome.children


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("relative", "action", "reason"),
    [
        (
            f"{TESTDATA}/TestDataArchives/TestDataEncrypted.7z",
            Action.HELD,
            Reason.ENCRYPTED_ARCHIVE,
        ),
        (
            f"{TESTDATA}/TestDataArchives/TestDataEncrypted.rar",
            Action.HELD,  # held for an operator: RAR is never unlocked here
            Reason.ENCRYPTED_NO_UNLOCK,
        ),
        (
            f"{TESTDATA}/TestDataArchives/TestDataEncrypted.rar4",
            Action.HELD,  # held for an operator: RAR is never unlocked here
            Reason.ENCRYPTED_NO_UNLOCK,
        ),
        (
            f"{TESTDATA}/TestDataArchives/EncryptedWithPlainNames.rar4",
            Action.HELD,  # held for an operator: RAR is never unlocked here
            Reason.ENCRYPTED_NO_UNLOCK,
        ),
        (f"{TESTDATA}/Bombs/zip-slip.tar", Action.REMOVED, Reason.PATH_TRAVERSAL),
        (f"{TESTDATA}/Bombs/10GB.7z.bz2", Action.REMOVED, Reason.LIMIT_RATIO),
        (f"{TESTDATA}/Bombs/10GB.rar.bz2", Action.REMOVED, Reason.LIMIT_RATIO),
        (f"{TESTDATA}/Bombs/10GB.gz.bz2", Action.REMOVED, Reason.LIMIT_RATIO),
        (f"{TESTDATA}/TestDataArchives/TestData.arj", Action.REMOVED, Reason.UNSUPPORTED_ARCHIVE),
        ("py7zr/tests/data/data_corrupted.7z", Action.REMOVED, Reason.MALFORMED),
        ("py7zr/tests/data/symlink.7z", Action.REMOVED, Reason.UNSUPPORTED_TYPE),
    ],
)
def test_corpus_hostile_archives(relative: str, action: Action, reason: Reason) -> None:
    outcome = _run(_corpus(relative), Path(relative).name)
    assert (outcome.action, outcome.reason) == (action, reason), outcome


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("relative", "password"),
    [
        (f"{TESTDATA}/TestDataArchives/TestDataEncrypted.7z", "TestData"),
        ("py7zr/tests/data/filename_encryption.7z", "hello"),
        ("py7zr/tests/data/encrypted_1.7z", "secret"),
    ],
)
def test_corpus_encrypted_7z_opens_with_its_password_and_is_rebuilt(
    relative: str, password: str
) -> None:

    data = _corpus(relative)
    policy = _policy(None)
    ctx = CdrContext(policy=policy.cdr, full_policy=policy, entries=Registry())
    assert ArchiveSanitizer().decrypt(data, "not-" + password, ctx) is None
    plain = ArchiveSanitizer().decrypt(data, password, ctx)
    assert plain is not None
    outcome = _run(plain, Path(relative).name)
    assert outcome.children, outcome  # its members were read and judged one by one
    for _name, child in outcome.children:
        assert child.action is not Action.HELD
        assert child.reason not in (Reason.MALFORMED, Reason.ERROR), child


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["TestData.rar", "TestData.rar4"])
def test_compressed_rar_is_read_by_unar_in_the_isolated_child(name: str) -> None:
    """The gateway's path: a real limited child (file-size limit 0) hands unar an in-memory
    copy of the archive; compressed RAR data arrives disarmed, not removed."""
    from sanitizers.cdr.isolation import IsolatedDisarmer

    data = _corpus(f"{TESTDATA}/TestDataArchives/{name}")
    with IsolatedDisarmer(CdrPolicy()) as disarmer:
        outcome = disarmer.disarm(data, name, "archive", AttachmentAction.SANITIZE, _policy())
    assert (outcome.action, outcome.reason) == (Action.SANITIZED, Reason.CLEAN), outcome
    assert outcome.data is not None
    assert len(_names(outcome.data)) == 3


def test_7z_links_are_dropped_never_followed(tmp_path: Path) -> None:
    import py7zr

    (tmp_path / "note.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    out = io.BytesIO()
    with py7zr.SevenZipFile(out, "w") as archive:
        archive.write(tmp_path / "note.txt", "note.txt")
        archive.write(tmp_path / "passwd", "passwd")
    outcome = _run(out.getvalue(), "links.7z")
    fates = {name: child.reason for name, child in outcome.children}
    assert fates == {"note.txt": Reason.CLEAN, "passwd": Reason.UNSUPPORTED_TYPE}
    assert outcome.data is not None
    assert _names(outcome.data) == {"note.txt": TEXT.encode()}


def test_corrupt_7z_data_is_malformed_not_an_error() -> None:
    data = bytearray(sevenzip([("a.txt", bytes(range(256)) * 64)]))
    data[40] ^= 0xFF  # inside the packed stream, which starts after the 32-byte start header
    outcome = _run(bytes(data), "bad.7z")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED), outcome


def test_lzh_lh5_members_are_decoded() -> None:
    """-lh5- (what LHA and Lhaplus write by default), decoded without lhafile's C decoder;
    the fixture itself is checked against lhafile's."""
    import lhafile

    data = lzh([("議事録.txt".encode("cp932"), TEXT.encode() * 50)], b"-lh5-")
    oracle = lhafile.LhaFile(io.BytesIO(data))
    assert oracle.read(oracle.infolist()[0].filename) == TEXT.encode() * 50
    outcome = _run(data, "議事録.lzh")
    assert outcome.data is not None
    assert _names(outcome.data) == {"議事録.txt": TEXT.encode() * 50}


def test_lzh_member_lying_about_its_size_stops_at_the_declared_size() -> None:
    """Under a megabyte of one-bit Huffman codes decodes to 2 GB; the member declares
    1,000 bytes. Decoding stops there (its CRC then fails): in the isolated child, not a
    crash from decoding the whole stream as lhafile's C decoder does."""
    from sanitizers.cdr.isolation import IsolatedDisarmer

    bomb = lh5([65] + [("run", 256)] * (65535 * 120 - 1))
    name = b"bomb.txt"
    body = (
        b"-lh5-"
        + struct.pack("<II", len(bomb), 1000)
        + struct.pack("<HH", 0, 0x5821)
        + bytes([0x20, 0, len(name)])
        + name
        + struct.pack("<H", 0)
    )
    data = bytes([len(body), sum(body) & 0xFF]) + body + bomb + b"\x00"
    with IsolatedDisarmer(CdrPolicy()) as disarmer:
        outcome = disarmer.disarm(data, "bomb.lzh", "archive", AttachmentAction.SANITIZE, _policy())
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED), outcome


def test_lzh_match_before_the_start_is_malformed() -> None:
    stream = lh5([("run", 10)])  # repeats a byte that was never written
    name = b"a.txt"
    body = (
        b"-lh5-"
        + struct.pack("<II", len(stream), 11)
        + struct.pack("<HH", 0, 0x5821)
        + bytes([0x20, 0, len(name)])
        + name
        + struct.pack("<H", 0)
    )
    data = bytes([len(body), sum(body) & 0xFF]) + body + stream + b"\x00"
    outcome = _run(data, "a.lzh")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALFORMED), outcome

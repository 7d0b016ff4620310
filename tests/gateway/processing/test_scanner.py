"""The malware scan against a real clamd (Debian's clamav-daemon) with a signature database
built here: no download, no freshclam. ``make check`` installs clamd (TEST_PACKAGES); without
it these tests fail, they never skip."""

from __future__ import annotations

import io
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from gateway.configuration.config import validate
from gateway.configuration.settings import ScannerSettings, parse_clamd_address
from gateway.processing.scanner import ClamdClient, ScanningDisarmer, scanning
from sanitizers.cdr.base import CdrOutcome
from sanitizers.errors import TemporaryFailure
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action, Reason
from tests.clamd import EICAR, MARKER, START_SECONDS, pings, write_database
from tests.tools import require_tool


class _Recorder:
    """An inner disarmer that records what reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        self.seen.append(filename)
        return CdrOutcome(action=Action.SANITIZED, reason=Reason.CLEAN, data=untrusted_data)


def _disarm(disarmer: ScanningDisarmer, data: bytes, name: str = "a.bin") -> CdrOutcome:
    return disarmer.disarm(data, name, "other", AttachmentAction.SANITIZE, Policy())


def test_ping(clamd_socket: Path) -> None:
    assert ClamdClient(f"unix:{clamd_socket}", 5.0).ping()


def test_eicar_is_malware_and_never_reaches_inner(clamd_socket: Path) -> None:
    inner = _Recorder()
    disarmer = ScanningDisarmer(inner, ClamdClient(f"unix:{clamd_socket}", 10.0))
    outcome = _disarm(disarmer, EICAR, "eicar.com")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.MALWARE)
    assert outcome.detail.startswith("Mukaika.Test.EICAR")
    assert inner.seen == []


def test_tcp_loopback(clamd_tcp: str) -> None:
    client = ClamdClient(clamd_tcp, 10.0)
    assert client.ping()
    assert client.scan(EICAR).signature is not None
    assert client.scan(b"clean text").signature is None


def test_eicar_inside_a_zip_is_found(clamd_socket: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/readme.com", EICAR)
    disarmer = ScanningDisarmer(_Recorder(), ClamdClient(f"unix:{clamd_socket}", 10.0))
    outcome = _disarm(disarmer, out.getvalue(), "a.zip")
    assert outcome.reason == Reason.MALWARE


def test_hold_on_hit(clamd_socket: Path) -> None:
    client = ClamdClient(f"unix:{clamd_socket}", 10.0)
    disarmer = ScanningDisarmer(_Recorder(), client, on_hit="hold")
    outcome = _disarm(disarmer, b"prefix " + MARKER + b" suffix")
    assert (outcome.action, outcome.reason) == (Action.HELD, Reason.MALWARE)
    assert outcome.detail.startswith("Mukaika.Test.Marker")


def test_clean_passes_to_inner(clamd_socket: Path) -> None:
    inner = _Recorder()
    disarmer = ScanningDisarmer(inner, ClamdClient(f"unix:{clamd_socket}", 10.0))
    outcome = _disarm(disarmer, "ただの文書です".encode() * 1000, "memo.txt")
    assert outcome.action == Action.SANITIZED
    assert inner.seen == ["memo.txt"]


def test_chunked_stream_larger_than_one_chunk(clamd_socket: Path) -> None:
    client = ClamdClient(f"unix:{clamd_socket}", 10.0)
    data = bytes(300_000) + MARKER  # the signature lies in the fifth 64 KiB chunk
    assert client.scan(data).signature is not None


def test_too_large_for_the_scanner_is_removed(clamd_socket: Path) -> None:
    client = ClamdClient(f"unix:{clamd_socket}", 10.0, max_bytes=1000)
    outcome = _disarm(ScanningDisarmer(_Recorder(), client), bytes(2000))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)


def test_clamd_stream_limit_is_removed_not_deferred(clamd_socket: Path) -> None:
    # clamd is started with StreamMaxLength 2M; the client is configured more loosely.
    client = ClamdClient(f"unix:{clamd_socket}", 10.0, max_bytes=10_000_000)
    outcome = _disarm(ScanningDisarmer(_Recorder(), client), bytes(3_000_000))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_SIZE)


def test_unreachable_is_temporary_failure(tmp_path: Path) -> None:
    disarmer = ScanningDisarmer(_Recorder(), ClamdClient(f"unix:{tmp_path}/none.sock", 1.0))
    with pytest.raises(TemporaryFailure):
        _disarm(disarmer, b"hello")


def test_stopped_clamd_is_temporary_failure(tmp_path: Path) -> None:
    """clamd that went away mid-service (its socket file left behind) defers, never passes."""
    path = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the file stays; nobody listens
    inner = _Recorder()
    disarmer = ScanningDisarmer(inner, ClamdClient(f"unix:{path}", 1.0))
    with pytest.raises(TemporaryFailure):
        _disarm(disarmer, b"hello")
    assert inner.seen == []


def test_silent_clamd_times_out_as_temporary_failure(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        client = ClamdClient(f"unix:{path}", 0.3)
        started = time.monotonic()
        with pytest.raises(TemporaryFailure):
            client.scan(b"hello")
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_garbage_reply_is_temporary_failure(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "liar.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2)
            conn.recv(65536)
            conn.sendall(b"stream: maybe\0")

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        with pytest.raises(TemporaryFailure):
            ClamdClient(f"unix:{path}", 2.0).scan(b"x")
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.clamd
def test_stopping_the_real_clamd_defers(tmp_path: Path) -> None:
    """Start a second real clamd, scan, stop it, and scan again: TemporaryFailure."""
    clamd = require_tool("clamd", debian_package="clamav-daemon")
    write_database(tmp_path / "db")
    sock = tmp_path / "c.sock"
    (tmp_path / "c.conf").write_text(
        f"LocalSocket {sock}\nDatabaseDirectory {tmp_path / 'db'}\nForeground yes\n"
        f"LogFile {tmp_path / 'c.log'}\nTemporaryDirectory {tmp_path}\n"
    )
    process = subprocess.Popen(
        [clamd, "-c", str(tmp_path / "c.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = ClamdClient(f"unix:{sock}", 2.0)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not (sock.exists() and pings(client)):
            assert process.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert client.scan(b"clean").signature is None
    finally:
        process.terminate()
        process.wait(timeout=10)
    with pytest.raises(TemporaryFailure):
        ScanningDisarmer(_Recorder(), client).disarm(
            b"x", "a", "other", AttachmentAction.SANITIZE, Policy()
        )


@pytest.mark.parametrize(
    "address",
    ["unix:/run/clamav/clamd.ctl", "/tmp/x.sock", "127.0.0.1:3310", "[::1]:3310", "localhost:3310"],
)
def test_addresses_accepted(address: str) -> None:
    parse_clamd_address(address)
    assert ScannerSettings(address=address).address == address


@pytest.mark.parametrize("address", ["10.0.0.5:3310", "clamd.example.jp:3310", "127.0.0.1", "x"])
def test_addresses_refused(address: str) -> None:
    with pytest.raises(ValueError, match="clamd address"):
        parse_clamd_address(address)


def test_settings_section_is_validated() -> None:
    from gateway.configuration.config import ConfigError

    config = validate({"scanner": {"enabled": True, "on_hit": "hold"}}, "test.toml")
    assert config.scanner.on_hit == "hold"
    assert not ScannerSettings().enabled
    with pytest.raises(ConfigError, match=r"scanner\.on_hit"):
        validate({"scanner": {"on_hit": "ignore"}}, "test.toml")
    with pytest.raises(ConfigError, match=r"scanner\.typo"):
        validate({"scanner": {"typo": 1}}, "test.toml")


def test_scanning_is_off_by_default() -> None:
    inner = _Recorder()
    assert scanning(inner, ScannerSettings()) is inner
    wrapped = scanning(inner, ScannerSettings(enabled=True, address="unix:/x.sock"))
    assert isinstance(wrapped, ScanningDisarmer)

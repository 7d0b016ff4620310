"""A real clamd (Debian's clamav-daemon) for the tests, with a signature database built here:
no download, no freshclam. ``make check`` installs clamd (TEST_PACKAGES); without it the tests
that use it fail, they never skip. Tests that use it get the ``clamd`` marker
(tests/conftest.py)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.processing.scanner import ClamdClient
from sanitizers.errors import TemporaryFailure
from tests.tools import require_tool

# The EICAR anti-virus test string, assembled so this file itself is not flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MARKER = b"MUKAIKA-CLAMD-TEST-MARKER-7f3a91"
START_SECONDS = 60.0


def write_database(directory: Path) -> None:
    directory.mkdir()
    digest = hashlib.md5(EICAR, usedforsecurity=False).hexdigest()
    (directory / "mukaika.hdb").write_text(f"{digest}:{len(EICAR)}:Mukaika.Test.EICAR\n")
    (directory / "mukaika.ndb").write_text(f"Mukaika.Test.Marker:0:*:{MARKER.hex()}\n")


@pytest.fixture(scope="session")
def clamd_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    clamd = require_tool("clamd", debian_package="clamav-daemon")
    base = tmp_path_factory.mktemp("clamd")
    write_database(base / "db")
    sock = base / "clamd.sock"
    config = base / "clamd.conf"
    port = free_port()
    (base / "tcp_port").write_text(str(port))
    config.write_text(
        f"LocalSocket {sock}\nTCPSocket {port}\nTCPAddr 127.0.0.1\n"
        f"DatabaseDirectory {base / 'db'}\nForeground yes\n"
        f"LogFile {base / 'clamd.log'}\nTemporaryDirectory {base}\nStreamMaxLength 2M\n"
        "MaxThreads 4\nSelfCheck 0\n"
    )
    log = (base / "stdout.log").open("wb")
    process = subprocess.Popen([clamd, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"clamd exited {process.returncode}: {(base / 'stdout.log').read_text()}"
                )
            if sock.exists():
                try:
                    if ClamdClient(f"unix:{sock}", 2.0).ping():
                        break
                except TemporaryFailure:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"clamd did not answer within {START_SECONDS}s")
            time.sleep(0.1)
        yield sock
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def clamd_tcp(clamd_socket: Path) -> str:
    """The same clamd's loopback TCP address (``host:port``)."""
    address = f"127.0.0.1:{(clamd_socket.parent / 'tcp_port').read_text()}"
    deadline = time.monotonic() + 10
    while not pings(ClamdClient(address, 2.0)):
        if time.monotonic() > deadline:
            pytest.fail(f"clamd does not answer on {address}")
        time.sleep(0.1)
    return address


def pings(client: ClamdClient) -> bool:
    try:
        return client.ping()
    except TemporaryFailure:
        return False

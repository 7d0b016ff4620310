"""``mukaika serve`` killed with SIGKILL leaves no process behind.

A real ``mukaika serve`` starts its sanitizer pool; a mail with a ZIP attachment makes a pool
worker start its isolated CDR child (through a second fork server). The descendants are listed
from /proc before the kill; after it, every one of them must exit within a generous bound (the
test does not time anything; the bound only keeps a regression from hanging the suite).
A worker stuck in C code that holds the GIL must go too: the kernel delivers that kill.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.e2e.servekit import write_serve_config

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

MUKAIKA = Path(sys.executable).parent / "mukaika"
CDR_SERVER = b"sanitizers.cdr.registry"  # in the command line of the CDR fork server


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid``, or None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(root: int) -> dict[int, int]:
    """Every living descendant of ``root``: pid -> start time (to tell a reused pid apart)."""
    parents: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] != "Z":
                parents[int(entry)] = (stat[0], stat[2])
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def alive(pid: int, started: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z" and stat[2] == started


def cdr_child_started(tree: dict[int, int]) -> bool:
    """A process forked by the CDR fork server exists: an isolated CDR child."""
    for pid in tree:
        stat = _stat(pid)
        if stat is not None and CDR_SERVER in _cmdline(pid) and CDR_SERVER in _cmdline(stat[0]):
            return True
    return False


def mail_with_zip() -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.com"
    message["To"] = "staff@example.lg.jp"
    message["Subject"] = "zip"
    message.set_content("see the attachment")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("note.txt", "hello")
    message.add_attachment(
        archive.getvalue(), maintype="application", subtype="zip", filename="note.zip"
    )
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    assert MUKAIKA.exists(), f"the mukaika command is not installed beside {sys.executable}"
    config = write_serve_config(tmp_path)
    process = subprocess.Popen(
        [str(MUKAIKA), "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)  # only if the test failed: leave nothing behind
        process.kill()
        process.wait(30)
        assert process.stdout is not None
        process.stdout.close()


def wait_for(predicate: object, within: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def test_sigkill_of_serve_leaves_no_pool_or_cdr_process(serve: subprocess.Popen[bytes]) -> None:
    import smtplib

    assert serve.stdout is not None
    line = b""
    while not line.startswith(b"mukaika: listening on "):
        line = serve.stdout.readline()
        assert line, "mukaika serve exited before listening"
    port = int(line.rsplit(b":", 1)[1])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("sender@example.com", ["staff@example.lg.jp"], mail_with_zip())

    assert wait_for(lambda: cdr_child_started(descendants(serve.pid)), within=120), (
        "the ZIP attachment never reached an isolated CDR child"
    )
    tree = descendants(serve.pid)
    assert len(tree) >= 4  # fork server, pool worker, CDR fork server, CDR child at least

    os.kill(serve.pid, signal.SIGKILL)
    serve.wait(30)

    def all_gone() -> bool:
        return not any(alive(pid, started) for pid, started in tree.items())

    left = "" if wait_for(all_gone, within=60) else _describe(tree)
    assert not left, f"still running after the gateway was killed:\n{left}"


def _describe(tree: dict[int, int]) -> str:
    return "\n".join(
        f"{pid}: {_cmdline(pid)[:120]!r}" for pid, started in tree.items() if alive(pid, started)
    )


def test_sigkill_reaches_a_worker_holding_the_gil_in_c_code(tmp_path: Path) -> None:
    """A worker inside C code that never releases the GIL (a catastrophic regex) cannot run
    the lifeline's thread; the kernel's own signal must still end it."""
    pidfile = tmp_path / "worker.pid"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.gil_holder", str(pidfile)],
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: pidfile.exists() and pidfile.read_text(), within=120), (
            "the worker never started its task"
        )
        worker = int(pidfile.read_text())
        stat = _stat(worker)
        assert stat is not None
        started = stat[2]
        assert worker in descendants(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
        gone = wait_for(lambda: not alive(worker, started), within=60)
        if not gone:
            os.kill(worker, signal.SIGKILL)
        assert gone, "the worker stuck in C code outlived the gateway's SIGKILL"
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)  # only if the test failed: leave nothing behind
        process.kill()
        process.wait(30)

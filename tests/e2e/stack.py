"""The whole product for the browser tests, as operators run it: ``mukaika serve`` and
``mukaika console`` as processes of their own on one configuration and data directory, and a
recording SMTP server standing in for the LGWAN-side MTA (in a thread of the test process).

The console's client address comes from ``[console] trusted_proxies`` (127.0.0.1 here), so a
test can act as a screen-transfer server forwarding for many staff (X-Forwarded-For).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

from tests.gateway.relaykit import Delivered, Sink, free_port
from tests.paths import ROOT

# Generous bounds for a loaded machine; nothing is timed against them.
START_SECONDS = 120.0
WAIT_SECONDS = 180.0
CONTACT = "情報政策課 内線1234"


class SinkThread:
    """A recording SMTP server (tests.gateway.relaykit.Sink) on its own event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sink = asyncio.run_coroutine_threadsafe(Sink().start(), self.loop).result(30)

    @property
    def port(self) -> int:
        return self.sink.port

    @property
    def messages(self) -> list[Delivered]:
        return list(self.sink.messages)

    def wait_for(self, count: int) -> list[Delivered]:
        """The first ``count`` messages, once that many have arrived."""
        until(lambda: len(self.sink.messages) >= count, f"{count} delivered message(s)")
        return self.messages[:count]

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sink.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def until(predicate: Callable[[], object], what: str, within: float = WAIT_SECONDS) -> None:
    """Wait until ``predicate()`` holds (a bound against hanging, not a timed assertion)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.05)


@dataclass
class Process:
    """A ``mukaika`` command running in the background, its output kept in a file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(30)


def mukaika(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """One ``mukaika`` command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _start(args: list[str], log: Path) -> Process:
    handle = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    handle.close()
    return Process(popen, log)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


@dataclass
class Stack:
    """serve, console and the recording MTA on one data directory."""

    root: Path
    config: Path
    data_dir: Path
    smtp_port: int
    console_url: str
    sink: SinkThread
    processes: list[Process] = field(default_factory=list)
    # The outbound direction, when the stack runs it: its listener and the recording
    # smarthost standing in for the prefecture's security cloud.
    outbound_port: int = 0
    smarthost: SinkThread | None = None

    def send(self, raw: bytes, sender: str, recipients: list[str], *, port: int = 0) -> None:
        """Send over SMTP to the Internet-facing listener (or ``port``: the outbound one)."""

        async def sending() -> None:
            client = aiosmtplib.SMTP(
                hostname="127.0.0.1", port=port or self.smtp_port, start_tls=False, timeout=60
            )
            async with client:
                await client.sendmail(sender, recipients, raw)

        asyncio.run(sending())

    def user(self, name: str, role: str, *addresses: str, password: str, tenant: str = "") -> None:
        args = ["user", "add", name, "--role", role, "--config", str(self.config)]
        for address in addresses:
            args += ["--address", address]
        if tenant:
            args += ["--tenant", tenant]
        done = mukaika(*args, stdin=password + "\n")
        assert done.returncode == 0, done.stderr

    def totp_secret(self, name: str) -> str:
        """A new TOTP secret of ``name`` (``mukaika user totp``), for pyotp to make codes."""
        done = mukaika("user", "totp", name, "--config", str(self.config))
        assert done.returncode == 0, done.stderr
        (line,) = [line for line in done.stdout.splitlines() if "secret:" in line]
        return line.split("secret:", 1)[1].strip()

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.processes)


def outbound_config(port: int, smarthost_port: int, more: str) -> str:
    """The [outbound] table of a stack that runs the outbound direction, then ``more`` (its
    other keys, then tables such as [[outbound.groups]])."""
    return f"""
[outbound]
enabled = true
listen = "127.0.0.1:{port}"
client_networks = ["127.0.0.0/8"]
relay_host = "127.0.0.1"
relay_port = {smarthost_port}
tls = "none"
{more}
"""


def write_config(
    root: Path, smtp_port: int, console_port: int, relay_port: int, extra: str = ""
) -> Path:
    """The stack's configuration; ``extra`` is TOML appended to it (tables after [console])."""
    config = root / "mukaika.toml"
    config.write_text(
        f"""
[service]
data_dir = "{root / "data"}"
display_timezone = "Asia/Tokyo"
shutdown_grace_seconds = 5.0
[smtp]
listen_host = "127.0.0.1"
listen_port = {smtp_port}
hostname = "gw.test"
accept_domains = ["example.lg.jp"]
min_free_disk_bytes = 0
[worker]
processes = 1
[delivery]
relay_host = "127.0.0.1"
relay_port = {relay_port}
[console]
listen = "127.0.0.1:{console_port}"
public_url = "http://127.0.0.1:{console_port}/"
contact = "{CONTACT}"
trusted_proxies = ["127.0.0.1"]
{extra}""",
        encoding="utf-8",
    )
    return config


@contextlib.contextmanager
def running_stack(
    root: Path, extra: Callable[[int], str] | None = None, outbound: str | None = None
) -> Iterator[Stack]:
    """serve and console started on a fresh data directory; stopped after. ``extra`` makes
    more configuration from the recording MTA's port; ``outbound``: run the outbound direction
    too, with these further [outbound] settings."""
    sink = SinkThread()
    smarthost = SinkThread() if outbound is not None else None
    smtp_port, console_port = free_port(), free_port()
    outbound_port = free_port() if smarthost is not None else 0
    more = "" if extra is None else extra(sink.port)
    if smarthost is not None:
        more += outbound_config(outbound_port, smarthost.port, outbound or "")
    config = write_config(root, smtp_port, console_port, sink.port, more)
    stack = Stack(
        root,
        config,
        root / "data",
        smtp_port,
        f"http://127.0.0.1:{console_port}",
        sink,
        outbound_port=outbound_port,
        smarthost=smarthost,
    )
    try:
        serve = _start(["serve", "--config", str(config)], root / "serve.log")
        stack.processes.append(serve)
        until(lambda: _listening(smtp_port) or serve.popen.poll() is not None, "serve")
        assert serve.popen.poll() is None, serve.output()
        console = _start(["console", "--config", str(config)], root / "console.log")
        stack.processes.append(console)
        until(lambda: _listening(console_port) or console.popen.poll() is not None, "console")
        assert console.popen.poll() is None, console.output()
        yield stack
    finally:
        for process in reversed(stack.processes):
            process.stop()
        sink.close()
        if smarthost is not None:
            smarthost.close()

"""A real ``mukaika serve`` for end-to-end tests: its configuration, and the running process
with its log."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.gateway.relaykit import free_port
from tests.paths import ROOT


def write_serve_config(tmp_path: Path) -> Path:
    """A gateway on a free port, one sanitizer process, relaying to a port nobody listens on."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[service]
data_dir = "{tmp_path / "data"}"
[smtp]
listen_port = 0
hostname = "gw.test"
accept_domains = ["example.lg.jp"]
min_free_disk_bytes = 0
[worker]
processes = 1
[delivery]
relay_port = {free_port()}
"""
    )
    return config


@dataclass
class Serve:
    process: asyncio.subprocess.Process
    port: int
    log: list[str] = field(default_factory=list)

    async def wait_log(self, text: str, within: float = 20.0) -> str:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            for line in self.log:
                if text in line:
                    self.log.remove(line)
                    return line
            await asyncio.sleep(0.02)
        raise AssertionError(f"{text!r} not logged; log:\n" + "\n".join(self.log))


@contextlib.asynccontextmanager
async def serve(config: Path) -> AsyncIterator[Serve]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--config",
        str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[str] = []

    async def collect(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            lines.append(line.decode("utf-8", "replace").rstrip())

    readers = [asyncio.create_task(collect(process.stderr))]
    try:
        out = await asyncio.wait_for(process.stdout.readline(), 60)
        assert out.startswith(b"mukaika: listening on "), (out, lines)
        port = int(out.rsplit(b":", 1)[1])
        readers.append(asyncio.create_task(collect(process.stdout)))
        yield Serve(process, port, lines)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
        await asyncio.gather(*readers, return_exceptions=True)

"""SMTP servers for the relay benchmark: a bare aiosmtpd discard server and a recording sink.

* ``--mode discard``: aiosmtpd with a handler that answers ``250`` and keeps nothing — the
  Python protocol ceiling of the relay benchmark (aiosmtpd as shipped, one process).
* ``--mode record``: the same, but it notes ``(Message-ID, time.monotonic(), size)`` of every
  message at the end of its DATA; this is the stand-in LGWAN-side MTA that ``mukaika serve``
  delivers to. Records are appended to ``--out`` as tab-separated lines every 100 ms (and
  at exit), so a benchmark can follow deliveries while it runs.

Listens on 127.0.0.1 only, on ``--port`` (0: any free port); prints ``PORT <n>`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class Discard:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK discarded"


class Record:
    def __init__(self) -> None:
        self.records: list[tuple[str, float, int]] = []

    def flush(self, out: Path) -> None:
        if not self.records:
            return
        lines = "".join(f"{mid}\t{t:.6f}\t{n}\n" for mid, t, n in self.records)
        self.records = []
        with out.open("a") as handle:
            handle.write(lines)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.monotonic()
        content = envelope.original_content or b""
        head = content[: content.find(b"\r\n\r\n") + 2]
        found = _MESSAGE_ID.search(head)
        mid = found.group(1).decode("ascii", "replace") if found else ""
        self.records.append((mid, now, len(content)))
        return "250 2.0.0 OK recorded"


async def serve(mode: str, port: int, out: Path | None) -> None:
    handler: Any = Record() if mode == "record" else Discard()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.bench", enable_SMTPUTF8=True, data_size_limit=0),
        "127.0.0.1",
        port,
        backlog=1024,
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if out is not None and isinstance(handler, Record):
        out.write_text("")  # noqa: ASYNC240 - once, before any client connects
        while not stop.is_set():
            handler.flush(out)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        handler.flush(out)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["discard", "record"], default="discard")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    asyncio.run(serve(args.mode, args.port, args.out))


if __name__ == "__main__":
    main()

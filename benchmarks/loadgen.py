"""A bounded asyncio SMTP load generator, for loopback only (127.0.0.0/8: 127.0.0.1, and the
other loopback addresses the cluster benchmark's nodes listen on).

What it does: ``connections`` concurrent SMTP sessions send messages until ``count``
messages are sent or ``duration`` seconds have passed, whichever comes first. Each session
says EHLO once, then per message MAIL FROM, RCPT TO, DATA and the dot-stuffed message, and
waits for every reply (no pipelining). Every message gets a unique ``Message-ID`` (its first
header line is replaced), so a recording sink can match deliveries to sends.

Closed loop (default): each session sends its next message as soon as the previous one is
answered. Open loop (``rate``): message *i* is due at ``start + i / rate`` and is sent by the
next free session at or after that time (late sends are counted).

Per message it records the monotonic time of the final dot (written) and of the reply, and
the reply code. ``time.monotonic`` is CLOCK_MONOTONIC, one clock for every process of the
host, so a sink in another process can compute final-dot-to-delivered latency.

The client is deliberately lean (asyncio streams, bytes prepared once) so that it is not the
bottleneck; its own CPU use is reported beside every result.

``python -m benchmarks.loadgen --port 2525 --connections 8 --count 1000`` (sends html_30k mail).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import latency_summary

LOOPBACK = "127.0.0.1"
_FIRST_LINE = re.compile(rb"\A[^\r\n]*\r\n")


@dataclass
class Sent:
    """One message's fate on the client side."""

    message_id: str
    t_dot: float
    t_reply: float
    code: int
    late_s: float = 0.0


@dataclass
class LoadResult:
    sent: list[Sent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    client_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        accepted = [s for s in self.sent if 200 <= s.code < 300]
        wall = max(self.finished - self.started, 1e-9)
        return {
            "attempted": len(self.sent),
            "accepted": len(accepted),
            "refused": len(self.sent) - len(accepted),
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "seconds": round(wall, 3),
            "accepted_per_s": round(len(accepted) / wall, 1),
            "accept_latency": latency_summary([s.t_reply - s.t_dot for s in accepted]),
            "late_sends": sum(1 for s in self.sent if s.late_s > 0.05),
            "client_cpu_s": round(self.client_cpu_s, 3),
        }


def prepare(raw: bytes) -> bytes:
    """CRLF line ends, dot-stuffed, ending with CRLF; the first line is the Message-ID slot."""
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    if data[:11].lower() == b"message-id:":
        data = _FIRST_LINE.sub(b"", data, count=1)
    return data


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("connection closed by server")
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    async def command(self, text: str) -> tuple[int, str]:
        self.writer.write(text.encode("ascii") + b"\r\n")
        return await self.reply()

    async def close(self) -> None:
        try:
            self.writer.write(b"QUIT\r\n")
            await asyncio.wait_for(self.reply(), 2)
        except (OSError, ConnectionError, TimeoutError, ValueError):
            pass
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def _open(host: str, port: int, timeout: float) -> _Session:  # noqa: ASYNC109
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    session = _Session(reader, writer)
    code, text = await asyncio.wait_for(session.reply(), timeout)
    if code != 220:
        raise ConnectionError(f"greeting {text!r}")
    code, text = await asyncio.wait_for(session.command("EHLO loadgen.example"), timeout)
    if code != 250:
        raise ConnectionError(f"EHLO {text!r}")
    return session


async def run_load(
    port: int,
    messages: list[bytes],
    *,
    connections: int = 8,
    count: int = 1000,
    duration: float | None = None,
    rate: float | None = None,
    mail_from: str = "sender@example.com",
    rcpt_to: str = "staff@city.example.lg.jp",
    host: str = LOOPBACK,
    timeout: float = 60.0,  # noqa: ASYNC109 - per command, not for the whole run
    tag: str = "lg",
) -> LoadResult:
    """Send up to ``count`` messages (cycling ``messages``) over ``connections`` sessions."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("the load generator sends to loopback addresses (127.0.0.0/8) only")
    bodies = [prepare(m) for m in messages]
    result = LoadResult()
    counter = itertools.count()
    cpu0 = time.process_time()
    result.started = start = time.monotonic()
    stop_at = start + duration if duration else float("inf")

    async def worker(wid: int) -> None:
        session: _Session | None = None
        try:
            while True:
                i = next(counter)
                if i >= count or time.monotonic() >= stop_at:
                    return
                late = 0.0
                if rate:
                    due = start + i / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        late = -delay
                    if time.monotonic() >= stop_at:
                        return
                mid = f"<{tag}-{i}@loadgen.invalid>"
                body = b"Message-ID: " + mid.encode() + b"\r\n" + bodies[i % len(bodies)]
                try:
                    if session is None:
                        session = await _open(host, port, timeout)
                    sent = await asyncio.wait_for(
                        _transaction(session, body, mail_from, rcpt_to), timeout
                    )
                    sent.message_id, sent.late_s = mid, late
                    result.sent.append(sent)
                    if sent.code == 421:
                        await session.close()
                        session = None
                except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    result.sent.append(Sent(mid, time.monotonic(), time.monotonic(), 0, late))
                    if session is not None:
                        session.writer.close()
                    session = None
                    await asyncio.sleep(0.05)
        finally:
            if session is not None:
                await session.close()

    await asyncio.gather(*(worker(w) for w in range(connections)))
    result.finished = max((s.t_reply for s in result.sent), default=time.monotonic())
    result.client_cpu_s = time.process_time() - cpu0
    return result


async def _transaction(session: _Session, body: bytes, mail_from: str, rcpt_to: str) -> Sent:
    code, _ = await session.command(f"MAIL FROM:<{mail_from}>")
    if code != 250:
        now = time.monotonic()
        return Sent("", now, now, code)
    code, _ = await session.command(f"RCPT TO:<{rcpt_to}>")
    if code not in (250, 251):
        await session.command("RSET")
        now = time.monotonic()
        return Sent("", now, now, code)
    code, _ = await session.command("DATA")
    if code != 354:
        now = time.monotonic()
        return Sent("", now, now, code)
    session.writer.write(body)
    session.writer.write(b".\r\n")
    await session.writer.drain()
    t_dot = time.monotonic()
    code, _ = await session.reply()
    return Sent("", t_dot, time.monotonic(), code)


def main() -> None:
    from benchmarks import generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--rate", type=float, help="open loop: messages per second")
    parser.add_argument("--class", dest="cls", default="html_30k", help="generator class or mix")
    parser.add_argument("--rcpt", default="staff@city.example.lg.jp")
    args = parser.parse_args()
    if args.cls == "mix":
        samples = generate.generate_mix(100)
    else:
        samples = generate.generate_class(args.cls, 20)
    result = asyncio.run(
        run_load(
            args.port,
            [s.raw for s in samples],
            connections=args.connections,
            count=args.count,
            duration=args.duration,
            rate=args.rate,
            rcpt_to=args.rcpt,
        )
    )
    print(result.summary())


if __name__ == "__main__":
    main()

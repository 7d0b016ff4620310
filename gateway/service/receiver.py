"""One receiving process: an SMTP listener of its own on the gateway's port, spooling to the
shared spool; everything that is one per gateway is asked of the gateway process.

Started by :mod:`gateway.service.receivers` as ``python -m gateway.service.receiver --channel
FD --lifeline FD``. The channel is a Unix socket to the gateway process carrying one JSON
array per line. The gateway sends ``["start", config, host, port, log_level]`` once, then
``["admit", n, refusal-or-null]`` (its answer to our ``["admit", n, client]``), ``["stress",
on]``, ``["store", up]`` (whether the store answers: while not, new mail gets 451) and
``["drain", seconds]``. We send ``["ready"]``, ``["admit", n, client]``,
``["release", client]``, ``["queued", queue_id]`` (a message is durable and answered 250),
``["received"]`` and ``["rejected", reason]`` (the gateway counts them in its metrics).

Threat model: clients are hostile (the SMTP module's limits apply unchanged); the gateway
process is trusted. Nothing here decides a limit alone: every session is admitted by the
gateway's counts, and stress mode is switched by it. This process dies with the gateway (the
lifeline, :mod:`sanitizers.lifeline`): a SIGKILL of the gateway leaves no listener behind, and
a message not yet answered 250 was never acknowledged. SIGHUP and SIGINT are the gateway
process's business (a reload, Ctrl-C in a terminal reaching the whole process group) and are
ignored here; SIGTERM, or the end of the channel, drains like the gateway's own stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from gateway.configuration.config import Config
from gateway.observation.logtext import use_safe_formatter
from gateway.queue.spool import Spool
from gateway.receiving.smtp import Received, SmtpServer
from gateway.service.accepting import authenticating_for, spool_received
from sanitizers import lifeline

log = logging.getLogger("mukaika.receiver")

# The longest line on the channel: the start message carries the whole configuration.
CHANNEL_LIMIT = 64 * 1024 * 1024
# Threads for spool writes: enough that concurrent sessions share directory flushes.
DISK_THREADS = 32


class Channel:
    """JSON lines to the gateway process."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def send(self, *message: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class RemoteAdmission:
    """Sessions counted by the gateway process (``gateway.receiving.smtp.Admission``)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._numbers = itertools.count()
        self._waiting: dict[int, tuple[asyncio.Future[str | None], str]] = {}

    async def admit(self, client: str) -> str | None:
        number = next(self._numbers)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting[number] = (future, client)
        self.channel.send("admit", number, client)
        return await future

    def answer(self, number: int, refusal: str | None) -> None:
        future, client = self._waiting.pop(number)
        if future.cancelled():  # the session went away meanwhile: give its count back
            if refusal is None:
                self.release(client)
            return
        future.set_result(refusal)

    def release(self, client: str) -> None:
        self.channel.send("release", client)


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listener of its own on the gateway's port (SO_REUSEPORT: the kernel spreads new
    connections over the receivers' listeners)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve(channel_fd: int) -> None:
    """Run until drained: told by the gateway, SIGTERM, or the channel's end."""
    reader, writer = await asyncio.open_unix_connection(
        sock=socket.socket(fileno=channel_fd), limit=CHANNEL_LIMIT
    )
    channel = Channel(writer)
    kind, config_data, host, port, log_level = json.loads(await reader.readline())
    assert kind == "start"
    logging.basicConfig(level=log_level, stream=sys.stderr)
    use_safe_formatter()
    if log_level > logging.DEBUG:
        logging.getLogger("mail.log").setLevel(logging.WARNING)
    config = Config.model_validate(config_data)
    spool = Spool(Path(config.service.data_dir) / "spool", config.spool.group_commit_seconds)
    disk = ThreadPoolExecutor(DISK_THREADS, thread_name_prefix="mukaika-spool")

    authenticating = authenticating_for(config)

    async def accept(received: Received) -> str:
        queue_id = await spool_received(spool, received, disk, authenticating=authenticating)
        channel.send("queued", queue_id)
        channel.send("received")
        return queue_id

    admission = RemoteAdmission(channel)
    smtp = SmtpServer(
        config.smtp,
        accept,
        spool.free_bytes,
        on_reject=lambda reason: channel.send("rejected", reason.value),
        admission=admission,
    )
    await smtp.start(sock=listening_socket(host, port, socket.SOMAXCONN))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    grace = [config.service.shutdown_grace_seconds]
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    channel.send("ready")

    async def follow() -> None:
        while line := await reader.readline():
            message = json.loads(line)
            if message[0] == "admit":
                admission.answer(int(message[1]), message[2])
            elif message[0] == "stress":
                smtp.tracker.set_stress(bool(message[1]))
            elif message[0] == "store":
                smtp.set_store_up(bool(message[1]))
            elif message[0] == "drain":
                grace[0] = float(message[1])
                break
        stop.set()

    following = asyncio.create_task(follow(), name="mukaika-receiver-channel")
    await stop.wait()
    await smtp.drain(grace[0])
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    disk.shutdown(wait=True)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.service.receiver")
    parser.add_argument("--channel", type=int, required=True, metavar="FD")
    parser.add_argument("--lifeline", type=int, required=True, metavar="FD")
    args = parser.parse_args(argv)
    lifeline.hold(Connection(args.lifeline, writable=False))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve(args.channel))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The receiving processes, seen from the gateway process: start them, count for them, keep
them running, drain them.

Intent: SMTP sessions cost most of the CPU per message, so ``smtp.receivers`` processes (one
per core by default) each run a listener on the same port (``SO_REUSEPORT``: the kernel spreads
new connections) and spool what they receive (:mod:`gateway.service.receiver`). Everything that
is one per gateway stays here, in one place: the connection counts overall and per client and
stress mode (:class:`gateway.receiving.smtp.ConnectionLimits`, asked for every session), the
metrics (receivers report, this process counts: one scrape shows the whole gateway), the
schedule, sanitizing and delivery (told of each message a receiver has made durable; the
spool's rescan finds any message whose notice was lost), the audit log, reload on SIGHUP.

Threat model: a receiver may die at any time (a bug, the OOM killer, SIGKILL). What it answered
250 is in the spool already; what it had not answered was never acknowledged. Its sessions'
counts are given back and it is started again. When the gateway process dies, its receivers
die with it (the lifeline): no listener is left accepting mail nobody will deliver.

The port is held by this process (bound, never listening) for the life of the gateway, so a
restarted receiver finds it free of strangers, and ``listen_port = 0`` names one port for all.
Before that, a plain bind checks that nobody else (another gateway on the same spool) listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.configuration.config import Config
from gateway.observation.ports import MetricsPort
from gateway.queue.spool import is_queue_id
from gateway.receiving.smtp import ConnectionLimits
from sanitizers import lifeline
from sanitizers.vocabulary import SmtpRefusal

log = logging.getLogger("mukaika.receivers")

# A receiver that died is started again after this pause (so a receiver that cannot start at
# all costs a log line a second, not a busy loop).
RESTART_PAUSE_SECONDS = 1.0
# How long a receiver has to start and listen.
START_SECONDS = 60.0
# After the grace period of a stop, how long a receiver has to exit before it is killed.
EXIT_SECONDS = 5.0


def receiver_count(configured: int) -> int:
    """``smtp.receivers``: 0 means one per CPU core this process may run on."""
    return configured or len(os.sched_getaffinity(0))


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold ``host``:``port`` for the receivers: OSError when someone listens there already."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:  # no SO_REUSEPORT: fails if taken
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        address = probe.getsockname()  # the port chosen for port 0
    held = socket.socket(family, kind, proto)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(address)
    except BaseException:
        held.close()
        raise
    return held


@dataclass(slots=True)
class _Receiver:
    index: int
    process: asyncio.subprocess.Process
    writer: asyncio.StreamWriter
    reader: asyncio.StreamReader
    ready: asyncio.Future[None]
    admitted: Counter[str] = field(default_factory=Counter)  # its sessions, by client

    def send(self, *message: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class ReceiverPool:
    """``count`` receiving processes for one gateway."""

    def __init__(
        self,
        config: Config,
        count: int,
        *,
        on_queued: Callable[[str], None],
        metrics: MetricsPort,
    ) -> None:
        self.config = config
        self.count = count
        self.on_queued = on_queued
        self.metrics = metrics
        self.limits = ConnectionLimits(config.smtp, self._broadcast_stress)
        self.store_up = True  # told to every receiver, a restarted one too
        self._receivers: dict[int, _Receiver] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: socket.socket | None = None
        self._address: tuple[str, int] = ("", 0)
        self._stopping = False

    def stopping(self) -> bool:
        """A drain has begun: receivers that exit now are not started again."""
        return self._stopping

    @property
    def pids(self) -> list[int]:
        """The receivers' process ids (for tests and operators)."""
        return [r.process.pid for r in self._receivers.values()]

    async def start(self) -> tuple[str, int]:
        """Hold the port, start every receiver and wait until each listens."""
        smtp = self.config.smtp
        self._held = reserve_port(smtp.listen_host, smtp.listen_port)
        sockname = self._held.getsockname()
        self._address = (str(sockname[0]), int(sockname[1]))
        try:
            for index in range(self.count):
                await self._start_one(index)
        except BaseException:
            await self.drain(0)
            raise
        return self._address

    async def _start_one(self, index: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        line = lifeline.lifeline()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.service.receiver",
                "--channel",
                str(theirs.fileno()),
                "--lifeline",
                str(line.fileno()),
                pass_fds=(theirs.fileno(), line.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()  # a failed start (EAGAIN, ENOMEM) retried each second leaks nothing
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        receiver = _Receiver(
            index, process, writer, reader, asyncio.get_running_loop().create_future()
        )
        self._receivers[index] = receiver
        receiver.send(
            "start",
            self.config.model_dump(mode="json"),
            *self._address,
            logging.getLogger().getEffectiveLevel(),
        )
        task = asyncio.create_task(self._follow(receiver), name=f"mukaika-receiver-{index}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        done, _ = await asyncio.wait(
            {receiver.ready, task}, timeout=START_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if receiver.ready not in done or receiver.ready.exception() is not None:
            del self._receivers[index]  # so its follower does not start it again
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise OSError(f"receiver {index} did not start listening on {self._address}")
        if self.limits.stressed:
            receiver.send("stress", True)
        if not self.store_up:
            receiver.send("store", False)
        log.info("receiver %d (pid %d) listening", index, process.pid)

    async def _follow(self, receiver: _Receiver) -> None:
        """Serve one receiver's requests until its channel ends; then restart it."""
        try:
            while line := await receiver.reader.readline():
                self._handle(receiver, json.loads(line))
        except (ValueError, LookupError, TypeError, ConnectionError) as exc:
            log.error("receiver %d: bad channel (%s): stopping it", receiver.index, exc)
            with contextlib.suppress(ProcessLookupError):
                receiver.process.kill()
        code = await receiver.process.wait()
        receiver.writer.close()
        for client, sessions in receiver.admitted.items():
            for _ in range(sessions):
                self.limits.release(client)
        receiver.admitted.clear()
        if not receiver.ready.done():
            receiver.ready.set_exception(OSError(f"receiver exited with {code}"))
        if self._stopping or self._receivers.get(receiver.index) is not receiver:
            return
        del self._receivers[receiver.index]
        log.error(
            "receiver %d (pid %d) exited with %d; starting another in %gs",
            receiver.index,
            receiver.process.pid,
            code,
            RESTART_PAUSE_SECONDS,
        )
        while True:
            await asyncio.sleep(RESTART_PAUSE_SECONDS)
            if self.stopping():
                return
            try:
                await self._start_one(receiver.index)
                return
            except OSError as exc:
                log.error("receiver %d could not start again: %s", receiver.index, exc)

    def _handle(self, receiver: _Receiver, message: list[Any]) -> None:
        kind = message[0]
        if kind == "admit":
            client = str(message[2])
            refusal = self.limits.admit_now(client)
            if refusal is None:
                receiver.admitted[client] += 1
            receiver.send("admit", message[1], refusal)
        elif kind == "release":
            client = str(message[1])
            if receiver.admitted[client] > 0:
                receiver.admitted[client] -= 1
                if not receiver.admitted[client]:
                    del receiver.admitted[client]
                self.limits.release(client)
        elif kind == "queued":
            if is_queue_id(str(message[1])):
                self.on_queued(str(message[1]))
        elif kind == "received":
            self.metrics.received()
        elif kind == "rejected":
            self.metrics.rejected(SmtpRefusal(message[1]))
        elif kind == "ready" and not receiver.ready.done():
            receiver.ready.set_result(None)

    def set_store_up(self, up: bool) -> None:
        """Every receiver answers new mail 451 while the store does not answer."""
        self.store_up = up
        for receiver in self._receivers.values():
            receiver.send("store", up)

    def _broadcast_stress(self, stressed: bool) -> None:
        for receiver in self._receivers.values():
            receiver.send("stress", stressed)

    async def drain(self, grace_seconds: float) -> None:
        """Every receiver refuses new sessions (421), lets transactions finish within the
        grace period, and exits; one that does not is killed. Then the port is let go.

        A receiver whose restart was under way when the drain began appears only later: the
        drain goes round until no receiver is left undrained and no follower is still running,
        so none is left listening."""
        self._stopping = True
        drained: set[int] = set()
        while True:
            receivers = [r for r in self._receivers.values() if id(r) not in drained]
            followers = set(self._tasks)
            if not receivers and not followers:
                break
            for receiver in receivers:
                receiver.send("drain", grace_seconds)
            for receiver in receivers:
                drained.add(id(receiver))
                await self._stopped(receiver, grace_seconds + EXIT_SECONDS)
            await asyncio.gather(*followers, return_exceptions=True)
        self._receivers.clear()
        if self._held is not None:
            self._held.close()
            self._held = None

    @staticmethod
    async def _stopped(receiver: _Receiver, within: float) -> None:
        try:
            await asyncio.wait_for(receiver.process.wait(), within)
        except TimeoutError:
            log.error("receiver %d did not stop: killed", receiver.index)
            with contextlib.suppress(ProcessLookupError):
                receiver.process.kill()
            await receiver.process.wait()

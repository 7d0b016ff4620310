"""Test kit for the relay: a recording aiosmtpd sink (the LGWAN MTA stand-in) with injectable
faults, fakes for quarantine/audit/metrics/sanitizer, a raw SMTP client, and config helpers."""

from __future__ import annotations

import asyncio
import contextlib
import email
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.configuration.config import Config
from gateway.processing.pool import SanitizerCrashed
from gateway.service.assembly import Gateway, Parts
from sanitizers.errors import TemporaryFailure
from sanitizers.notice import NoticeContext
from sanitizers.policy import Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import Report, SanitizeResult
from sanitizers.senderauth import AuthOutcome
from sanitizers.vocabulary import Verdict

# --- the LGWAN MTA stand-in ---------------------------------------------------------------


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def parsed(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SinkHandler:
    """Records what it is given. ``fault`` changes its answers:
    None, "4xx", "5xx", "drop" (close before the final reply), "slow" (wait ``delay``)."""

    def __init__(self) -> None:
        self.messages: list[Delivered] = []
        self.fault: str | None = None
        self.delay = 0.0
        self.refuse_rcpt: set[str] = set()
        self.sessions = 0
        self.arrived = asyncio.Event()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.fault == "4xx":
            return "451 4.3.0 Try again later"
        if self.fault == "5xx":
            return "554 5.6.0 Message refused"
        if self.fault == "drop":
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            return "250 never sent"
        if self.fault == "slow":
            await asyncio.sleep(self.delay)
        assert isinstance(envelope.original_content, bytes)
        self.messages.append(
            Delivered(envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content)
        )
        self.arrived.set()
        return "250 2.0.0 OK"


class Sink:
    """An aiosmtpd server on 127.0.0.1, port 0, that can be stopped and started again."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.sessions: list[SMTP] = []

    @property
    def messages(self) -> list[Delivered]:
        return self.handler.messages

    def _factory(self) -> SMTP:
        session = SMTP(self.handler, hostname="sink", enable_SMTPUTF8=True)
        self.sessions.append(session)
        return session

    async def start(self) -> Sink:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._factory, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for session in self.sessions:
                if session.transport is not None:
                    session.transport.close()
            self.sessions.clear()
            await asyncio.sleep(0.01)
            await self.server.wait_closed()
            self.server = None

    async def wait_for(self, count: int, within: float = 10.0) -> list[Delivered]:
        async def enough() -> None:
            while len(self.messages) < count:
                self.handler.arrived.clear()
                await self.handler.arrived.wait()

        await asyncio.wait_for(enough(), within)
        return self.messages


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- fakes for the other engineer's modules and the pipeline --------------------------------


class FakeQuarantine:
    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.results: dict[str, Report] = {}
        self.states: dict[str, list[str]] = {}
        self.tenants: dict[str, str] = {}
        self._lock = threading.Lock()

    def store(
        self,
        queue_id: str,
        untrusted_raw: bytes,
        *,
        client: str,
        helo: str,
        mail_from: str,
        rcpt_to: Sequence[str],
        received_at: datetime,
        tenant: str = "",
    ) -> str:
        with self._lock:
            qid = f"Q-{queue_id}"
            self.stored[qid] = untrusted_raw
            self.tenants[qid] = tenant
            return qid

    def record_result(self, qid: str, report: Report) -> None:
        self.results[qid] = report

    def record_delivery(self, qid: str, state: str) -> None:
        self.states.setdefault(qid, []).append(state)


class FakeAudit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, record: Any) -> None:
        self.records.append(dict(record))


class CountingMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.scanner_up: list[bool] = []  # every value set, in order

    def set_scanner_up(self, up: bool) -> None:
        self.scanner_up.append(up)

    def __getattr__(self, name: str) -> Callable[..., None]:
        def count(*args: Any) -> None:
            if name.startswith(("received", "rejected", "delivered", "deferred", "dead")):
                self.counts[name if not args or name != "rejected" else f"rejected:{args[0]}"] += 1

        return count


STUB_TEXT = b"Subject: sanitized\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n(stub)\r\n"


class FakeSanitizer:
    """Answers like the pipeline stub; ``script`` gives per-call behaviour:
    "deliver", "hold", "reject", "temporary", "crash" (consumed in order, then "deliver")."""

    def __init__(self, script: Sequence[str] = ()) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, bool]] = []
        self.policies: list[Policy | None] = []  # the policy of each call (rules applied)
        self.releases: list[ReleaseTerms | None] = []  # the release terms of each call
        self.auths: list[AuthOutcome | None] = []  # sender authentication given to each call

    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        release: ReleaseTerms | None = None,
        context: NoticeContext | None = None,
        auth: AuthOutcome | None = None,
    ) -> SanitizeResult:
        self.calls.append((reference, isolated))
        self.policies.append(policy)
        self.releases.append(release)
        self.auths.append(auth)
        action = self.script.pop(0) if self.script else "deliver"
        if action == "temporary":
            raise TemporaryFailure("scanner down")
        if action == "crash":
            raise SanitizerCrashed("crash")
        verdict = {"deliver": Verdict.DELIVER, "hold": Verdict.HOLD, "reject": Verdict.REJECT}[
            action
        ]
        report = Report(verdict=verdict, size=len(untrusted_raw))
        body = STUB_TEXT if verdict != Verdict.HOLD else STUB_TEXT.replace(b"(stub)", b"(held)")
        return SanitizeResult(message=body, report=report)

    def close(self) -> None:
        return None


# --- configuration and the gateway under test ----------------------------------------------


def make_config(data_dir: Path, relay_port: int, **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        # The time budgets stay below the worker's short timeout (a cross-section rule).
        "policy": {"limits": {"seconds": 9.5}, "cdr": {"seconds": 9.0}},
        "service": {"data_dir": str(data_dir), "shutdown_grace_seconds": 5.0},
        "smtp": {
            "listen_host": "127.0.0.1",
            "listen_port": 0,
            "hostname": "gw.test",
            "accept_domains": ["example.lg.jp"],
            "min_free_disk_bytes": 0,
        },
        "worker": {
            "processes": 1,
            "concurrency": 4,
            "rescan_seconds": 0.05,
            "temporary_failure_retry_seconds": 0.05,
            "sanitize_timeout_seconds": 10.0,
        },
        "delivery": {
            "relay_host": "127.0.0.1",
            "relay_port": relay_port,
            "timeout_seconds": 2.0,
            "retry_initial_seconds": 0.05,
            "retry_max_seconds": 0.2,
        },
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Config.model_validate(data)


@dataclass
class Harness:
    gateway: Gateway
    quarantine: FakeQuarantine
    audit: FakeAudit
    metrics: CountingMetrics
    sanitizer: Any
    port: int = 0
    free: list[int] = field(default_factory=lambda: [10**12])


async def start_gateway(
    config: Config, sanitizer: Any = None, *, free: list[int] | None = None
) -> Harness:
    free_box = free if free is not None else [10**12]
    harness = Harness(
        gateway=None,  # type: ignore[arg-type]
        quarantine=FakeQuarantine(),
        audit=FakeAudit(),
        metrics=CountingMetrics(),
        sanitizer=sanitizer if sanitizer is not None else FakeSanitizer(),
        free=free_box,
    )
    parts = Parts(
        sanitizer=harness.sanitizer,
        quarantine=harness.quarantine,
        audit=harness.audit,
        metrics=harness.metrics,
        free_bytes=lambda: free_box[0],
        receive_in_process=True,
    )
    harness.gateway = Gateway(config, parts)
    _, harness.port = await harness.gateway.start()
    return harness


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# --- a raw SMTP client ------------------------------------------------------------------------


class RawClient:
    """Speaks SMTP byte by byte, so tests can send exactly what an attacker would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> tuple[RawClient, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        return client, await client.reply()

    async def reply(self, within: float = 5.0) -> bytes:
        """One whole reply (all continuation lines), b"" on EOF."""
        lines = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), within)
            if not line:
                break
            lines.append(line)
            if line[3:4] != b"-":
                break
        return b"".join(lines)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def cmd(self, data: bytes) -> bytes:
        await self.send(data)
        return await self.reply()

    async def envelope(self, mail_from: bytes = b"a@example.com", *rcpts: bytes) -> None:
        assert (await self.cmd(b"EHLO client.test\r\n")).startswith(b"250")
        assert (await self.cmd(b"MAIL FROM:<" + mail_from + b">\r\n")).startswith(b"250")
        for rcpt in rcpts or (b"user@example.lg.jp",):
            assert (await self.cmd(b"RCPT TO:<" + rcpt + b">\r\n")).startswith(b"250")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


SIMPLE = b"From: a@example.com\r\nTo: user@example.lg.jp\r\nSubject: hello\r\n\r\nbody\r\n"

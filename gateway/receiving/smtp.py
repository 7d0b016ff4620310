"""The Internet-facing SMTP receiver: relay policy, limits, smuggling guard; 250 after fsync.

Threat model: every byte a client sends is hostile. A client may try to relay outside to
outside, send oversized or endless data, trickle bytes, open many connections, smuggle a
second message with a non-standard end of data (bare LF or CR around the dot), pipeline
commands we did not offer, or make us fail internally and hope for a permanent answer.

What this module does about it:

- Only ``<CR><LF>.<CR><LF>`` ends DATA. Data containing a bare CR or LF is refused
  (``550 5.5.2``) or, by option, normalized to CRLF; commands pipelined after the final dot
  are refused (``503 5.5.0``, connection closed) unless allowed.
- DATA is read in large chunks, not line by line (aiosmtpd's own loop costs ~1.8 us a line);
  size (``552 5.3.4``, declared or not), line length, a minimum data rate and a session
  deadline bound every session; connection caps (``421 4.7.0``) bound them all.
- Time limits count per complete record, not per read: a whole command line must arrive
  within ``command_timeout_seconds`` of the last one, and each line of data (or 64 KiB of a
  longer one) likewise; trickling bytes does not extend them (``421 4.4.2``). Under load
  (more than ``stress_threshold_ratio`` of ``max_connections`` open), the limit drops to
  ``stress_timeout_seconds`` for every session, those already open included, as in Postfix's
  stress mode; so a few addresses that trickle or idle cannot hold every slot.
- Every 4xx/5xx reply is logged once with a reason code (:mod:`.refusals`), the client, the
  HELO name and the envelope so far, and counted in ``mukaika_rejected_total``.
- Recipients outside the accepted domains are refused (``554 5.7.1``); after
  ``max_recipients`` each extra one gets ``452 4.5.3``. Low disk: ``452 4.3.1`` at MAIL.
- While the store (the database) does not answer (the gateway's probe,
  :mod:`gateway.service.store_health`): ``451 4.3.0`` at MAIL and at the end of DATA, so no
  mail is answered 250 that could not be recorded.
- Any internal fault answers ``451 4.3.0`` (aiosmtpd's default would say 500).
- ``250`` is sent only after the spool has fsynced the message (``RelayHandler.handle_DATA``).

The handler stays thin, as in aiosmtpd's samples: it answers MAIL, RCPT and DATA and hands
the message to an ``accept`` callback. Logs carry peers, queue ids and reply codes, never data.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, AnyStr, Protocol

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.configuration.settings import SmtpSettings
from gateway.observation.logtext import quoted
from gateway.receiving.refusals import log_refusal
from sanitizers.safetext import has_protocol_breaking
from sanitizers.vocabulary import SmtpRefusal

log = logging.getLogger("mukaika.smtp")

# The StreamReader's limit: how much a command line may fill before it is refused.
_READER_LIMIT = 64 * 1024
# How much DATA one read may return.
_READ_CHUNK = 256 * 1024
# A record of message data for the time limit: a line, or this much of a longer one.
_DATA_RECORD = 64 * 1024
_END_OF_DATA = b"\r\n.\r\n"
_ANY_NEWLINE = re.compile(rb"\r\n|\r|\n")
_SIZE_PARAM = re.compile(r"(?:^|\s)SIZE=(\S*)", re.IGNORECASE)

REPLY_INTERNAL = "451 4.3.0 Internal error; please try again later"
REPLY_SHUTDOWN = "421 4.3.2 Service shutting down; please try again later"
REPLY_TOO_MANY = "421 4.7.0 Too many connections; please try again later"
REPLY_TOO_MANY_CLIENT = "421 4.7.0 Too many connections from your address"
REPLY_DEADLINE = "421 4.4.2 Session time limit exceeded"
REPLY_TIMEOUT = "421 4.4.2 Timeout waiting for a complete command or data line"
REPLY_STRESS_TIMEOUT = "421 4.4.2 Timeout waiting for a complete line (server busy)"
REPLY_TOO_SLOW = "421 4.4.2 Data too slow"
REPLY_RELAY = "554 5.7.1 Relay access denied"
REPLY_TOO_MANY_RCPT = "452 4.5.3 Too many recipients"
REPLY_SIZE = "552 5.3.4 Message size exceeds fixed maximum message size"
REPLY_LINE = "500 5.5.2 Line too long"
REPLY_BARE = "550 5.5.2 Bare CR or LF in message data is not allowed"
REPLY_PIPELINING = "503 5.5.0 Improper command pipelining after end of data"
REPLY_DISK = "452 4.3.1 Insufficient system storage"
REPLY_STORE = "451 4.3.0 Mail store unavailable; please try again later"
REPLY_NUL = "550 5.5.2 NUL in message data is not allowed"
REPLY_BAD_SENDER = "553 5.1.7 Bad sender address syntax"
REPLY_BAD_RECIPIENT = "553 5.1.3 Bad recipient address syntax"
REPLY_AUTH_REJECT = "550 5.7.1 The sender's domain does not authorise this message (DMARC)"
REPLY_AUTH_TEMPORARY = "451 4.7.0 Sender authentication not possible now; please try again later"
REPLY_AUTH_NEEDED = "530 5.7.0 Authentication required"
REPLY_AUTH_TLS = "538 5.7.11 Encryption required for requested authentication mechanism"
REPLY_NOT_YOUR_SENDER = "553 5.7.1 Sender address not owned by the authenticated user"
# What GatewaySMTP._authenticate hands back to be checked asynchronously (never to a client).
_PENDING = "pending login check"


class SmtpLogin(Protocol):
    """SMTP AUTH logins of a listener (the outbound one: :mod:`gateway.outbound.auth`)."""

    async def authenticate(self, client: str, login: bytes, password: bytes) -> str | None:
        """The user ``login`` names if ``password`` is theirs (and not locked out); else None."""
        ...

    async def may_send_as(self, user: str, sender: str) -> bool:
        """Whether ``user`` may give ``sender`` as the envelope sender."""
        ...

    def without_tls(self, client: str) -> bool:
        """Whether ``client`` may log in without STARTTLS."""
        ...


AIOSMTPD_LINE_TOO_LONG = "500 Command line too long"  # aiosmtpd's own reply
# The reason code of each reply this module sends; any other 4xx/5xx (aiosmtpd's syntax and
# sequence errors) is ``protocol``.
_REFUSALS: dict[str, SmtpRefusal] = {
    REPLY_INTERNAL: SmtpRefusal.INTERNAL,
    REPLY_SHUTDOWN: SmtpRefusal.SHUTDOWN,
    REPLY_TOO_MANY: SmtpRefusal.CONNECTIONS,
    REPLY_TOO_MANY_CLIENT: SmtpRefusal.CONNECTIONS_PER_CLIENT,
    REPLY_DEADLINE: SmtpRefusal.DEADLINE,
    REPLY_TIMEOUT: SmtpRefusal.TIMEOUT,
    REPLY_STRESS_TIMEOUT: SmtpRefusal.STRESS_TIMEOUT,
    REPLY_TOO_SLOW: SmtpRefusal.TOO_SLOW,
    REPLY_RELAY: SmtpRefusal.RELAY,
    REPLY_TOO_MANY_RCPT: SmtpRefusal.RECIPIENTS,
    REPLY_SIZE: SmtpRefusal.SIZE,
    REPLY_LINE: SmtpRefusal.LINE_LENGTH,
    AIOSMTPD_LINE_TOO_LONG: SmtpRefusal.LINE_LENGTH,
    REPLY_BARE: SmtpRefusal.BARE_NEWLINE,
    REPLY_PIPELINING: SmtpRefusal.PIPELINING,
    REPLY_DISK: SmtpRefusal.DISK,
    REPLY_STORE: SmtpRefusal.STORE,
    REPLY_NUL: SmtpRefusal.SMUGGLING,
    REPLY_BAD_SENDER: SmtpRefusal.SYNTAX,
    REPLY_BAD_RECIPIENT: SmtpRefusal.SYNTAX,
    REPLY_AUTH_REJECT: SmtpRefusal.AUTH_REJECT,
    REPLY_AUTH_TEMPORARY: SmtpRefusal.AUTH_TEMPORARY,
}
# Commands whose argument is the envelope and may be logged; others' may carry credentials.
_LOGGED_ARGUMENTS = frozenset({"MAIL", "RCPT", "HELO", "EHLO"})
# RFC 5321 4.5.3.1: the longest path, local part and domain a server must accept.
_MAX_PATH, _MAX_LOCAL, _MAX_DOMAIN = 256, 64, 255

Accept = Callable[["Received"], Awaitable[str]]


class Refused(Exception):
    """Raised by an ``accept`` callback to answer ``reply`` instead of 250 (the message was
    not spooled)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted transaction, handed to the spool. ``mail_from`` "" is the null sender."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    client: str
    helo: str
    untrusted_raw: bytes


# Whether a client may send to a recipient: (client address, recipient) -> allowed. The
# Internet-facing listener's is :meth:`RelayHandler.inbound_relay`; the outbound listener
# (gateway/outbound) gives its own.
RelayPolicy = Callable[[str, str], bool]


class Admission(Protocol):
    """Who counts the gateway's sessions: :class:`ConnectionLimits` in this process, or the
    gateway's process on behalf of every receiving process (``gateway.service.receivers``)."""

    async def admit(self, client: str) -> str | None:
        """Count a new session of ``client``; the refusal to send instead, if over a limit."""
        ...

    def release(self, client: str) -> None:
        """A session counted by :meth:`admit` has ended."""
        ...


class ConnectionLimits:
    """The gateway-wide counts: open sessions overall and per client address, against
    ``max_connections`` and ``max_connections_per_client``; and stress mode, on while more than
    ``stress_threshold_ratio`` of ``max_connections`` are open (``on_stress`` is told each
    change, and logged here once for the whole gateway)."""

    def __init__(
        self, settings: SmtpSettings, on_stress: Callable[[bool], None] = lambda on: None
    ) -> None:
        self.settings = settings
        self.on_stress = on_stress
        self.stress_above = settings.stress_threshold_ratio * settings.max_connections
        self.stressed = False
        self.total = 0
        self.per_client: Counter[str] = Counter()

    def admit_now(self, client: str) -> str | None:
        if self.total >= self.settings.max_connections:
            return REPLY_TOO_MANY
        if self.per_client[client] >= self.settings.max_connections_per_client:
            return REPLY_TOO_MANY_CLIENT
        self.total += 1
        self.per_client[client] += 1
        self._check_stress()
        return None

    async def admit(self, client: str) -> str | None:
        return self.admit_now(client)

    def release(self, client: str) -> None:
        if self.per_client[client] <= 0:
            return
        self.total -= 1
        self.per_client[client] -= 1
        if self.per_client[client] <= 0:
            del self.per_client[client]
        self._check_stress()

    def _check_stress(self) -> None:
        stressed = self.total > self.stress_above
        if stressed == self.stressed:
            return
        self.stressed = stressed
        settings = self.settings
        log.warning(
            "stress mode %s: %d of %d connections open; time limits now %gs",
            "on" if stressed else "off",
            self.total,
            settings.max_connections,
            settings.stress_timeout_seconds if stressed else settings.command_timeout_seconds,
        )
        self.on_stress(stressed)


class ConnectionTracker:
    """The sessions of this process: admits each through ``admission`` (the gateway-wide
    counts), knows when we are draining, and applies stress mode (the tighter time limit) to
    every open session when told (:meth:`set_stress`)."""

    def __init__(
        self,
        settings: SmtpSettings,
        on_reject: Callable[[SmtpRefusal], None] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.on_reject = on_reject or (lambda reason: None)
        self.normal_timeout = settings.command_timeout_seconds
        self.stress_timeout = settings.stress_timeout_seconds  # never longer: validated
        self.admission: Admission = admission or ConnectionLimits(settings, self.set_stress)
        self.stressed = False
        self.sessions: set[GatewaySMTP] = set()  # admitted
        self.open: set[GatewaySMTP] = set()  # every connection, refused ones too
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()

    async def admit(self, session: GatewaySMTP, client: str) -> str | None:
        """Register a session; return the refusal to send instead, if any."""
        if self.draining:
            return REPLY_SHUTDOWN
        refusal = await self.admission.admit(client)
        if refusal is not None:
            return refusal
        self.sessions.add(session)
        self.idle.clear()
        if self.stressed:  # its limit was armed at connect, maybe before stress began
            session.tighten(self.stress_timeout)
        return None

    def release(self, session: GatewaySMTP, client: str) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self.admission.release(client)
        if not self.sessions:
            self.idle.set()

    def record_timeout(self) -> float:
        """Seconds a client has for its next complete command line or data record."""
        return self.stress_timeout if self.stressed else self.normal_timeout

    def set_stress(self, stressed: bool) -> None:
        """Stress mode on or off for the whole gateway; on tightens every open session."""
        self.stressed = stressed
        if stressed:
            for session in list(self.sessions):
                session.tighten(self.stress_timeout)


class GatewaySMTP(SMTP):
    """aiosmtpd's protocol with this gateway's limits and a chunked, strict DATA reader."""

    line_length_limit = _READER_LIMIT

    def __init__(
        self,
        handler: RelayHandler,
        settings: SmtpSettings,
        tracker: ConnectionTracker,
        tls_context: ssl.SSLContext | None = None,
        login: SmtpLogin | None = None,
    ) -> None:
        # With ``login``, AUTH is required before MAIL (checked in smtp_MAIL), and allowed only
        # after STARTTLS unless ``login`` allows the client without (checked in smtp_AUTH):
        # aiosmtpd's own rules are off, as it warns when they are combined so.
        super().__init__(
            handler,
            data_size_limit=settings.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname or None,
            ident="mukaika",
            tls_context=tls_context,
            timeout=settings.command_timeout_seconds,
            auth_require_tls=login is None,
            authenticator=None if login is None else _checked_later,
            command_call_limit=None,
        )
        self.login = login
        self.settings = settings
        self.tracker = tracker
        # aiosmtpd keeps these per class and grows them on every EHLO: keep ours per session.
        self.command_size_limit = settings.max_command_bytes
        self.command_size_limits = defaultdict(lambda: settings.max_command_bytes)
        self._client = ""
        self.tracker_seen = False  # connection_made runs again after STARTTLS
        self._counted = False
        self._lost = False
        self._deadline: asyncio.TimerHandle | None = None
        self._timed_under_stress = False
        self._command = ""  # the command being answered, for the refusal log
        self._noted_reader: asyncio.StreamReader | None = None
        self._line_overran = False
        self.in_transaction = False
        # Note each command (and the envelope part of its argument) before it runs.
        self._smtp_methods = {
            name: self._noting(name, method) for name, method in self._smtp_methods.items()
        }

    def _noting(self, name: str, method: Callable[[str | None], Awaitable[None]]) -> Any:
        @functools.wraps(method)
        async def noted(arg: str | None) -> None:
            shown = name if name not in _LOGGED_ARGUMENTS or not arg else f"{name} {arg}"
            self._command = shown
            await method(arg)

        return noted

    def _cb_client_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        super()._cb_client_connected(reader, writer)
        if reader is not self._noted_reader:
            self._noted_reader = reader
            reader.readuntil = self._noting_lines(reader.readuntil)  # type: ignore[method-assign,assignment]

    def _noting_lines(
        self, readuntil: Callable[[bytes], Awaitable[bytes]]
    ) -> Callable[[bytes], Awaitable[bytes]]:
        """Note the command word of each command line as it is read, so that a reply aiosmtpd
        sends itself (unrecognised command, line too long, TLS required) names the line it
        answers, and nothing read before it. A line too long for the reader is named by no
        word: its tail, read afterwards, is not a command."""

        async def noting(separator: bytes = b"\n") -> bytes:
            self._command = ""
            try:
                line = await readuntil(separator)
            except asyncio.LimitOverrunError:
                self._line_overran = True
                raise
            if self._line_overran:
                self._line_overran = False
            else:
                word = line.rstrip(b"\r\n").partition(b" ")[0]
                self._command = word.decode("utf-8", "surrogateescape")
            return line

        return noting

    # --- connection life --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = not self.tracker_seen
        super().connection_made(transport)
        if first:
            self.tracker_seen = True
            self.tracker.open.add(self)
            peer = transport.get_extra_info("peername")
            self._client = str(peer[0]) if peer else ""

    def connection_lost(self, error: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self.tracker.open.discard(self)
        self._lost = True
        if self._counted:
            self._counted = False
            self.tracker.release(self, self._client)
        super().connection_lost(error)

    def eof_received(self) -> bool:
        """The client closed its side: close ours too. (Keeping a half-open transport, as
        StreamReaderProtocol does, leaks it when the session task is cancelled before it ran.)"""
        super().eof_received()
        return False

    async def _handle_client(self) -> None:
        refusal = await self.tracker.admit(self, self._client)
        if refusal is None:
            self._counted = True
            if self._lost:  # gone while it was being counted
                self._counted = False
                self.tracker.release(self, self._client)
                return
        else:
            await self.push(refusal)
            self._close()
            return
        self._deadline = self.loop.call_later(
            self.settings.session_deadline_seconds, self._deadline_hit
        )
        await super()._handle_client()

    def _deadline_hit(self) -> None:
        self.abort(REPLY_DEADLINE)

    # --- time limits per record -------------------------------------------------------------

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Arm the limit for the next complete record (aiosmtpd calls this at connect and
        after each valid command; the DATA reader after each complete data record)."""
        if duration is None:
            duration = self.tracker.record_timeout()
            self._timed_under_stress = self.tracker.stressed
        super()._reset_timeout(duration)

    def tighten(self, seconds: float) -> None:
        """Stress mode: the record awaited now must be complete within ``seconds``."""
        handle = self._timeout_handle
        if handle is None or handle.cancelled() or handle.when() - self.loop.time() <= seconds:
            return
        self._timed_under_stress = True
        super()._reset_timeout(seconds)

    def _timeout_cb(self) -> None:
        self.abort(REPLY_STRESS_TIMEOUT if self._timed_under_stress else REPLY_TIMEOUT)

    # --- replies ----------------------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        if text[:1] in ("4", "5"):
            self._refused(text)
        await super().push(status)

    def _refused(self, reply: str) -> None:
        """Log and count one refusal (every 4xx/5xx goes through here exactly once)."""
        reason = _REFUSALS.get(reply, SmtpRefusal.PROTOCOL)
        self.tracker.on_reject(reason)
        envelope = self.envelope
        session = self.session
        log_refusal(
            reason,
            reply,
            client=self._client,
            helo=(session.host_name or "") if session is not None else "",
            mail_from=envelope.mail_from if envelope is not None else None,
            rcpt_tos=envelope.rcpt_tos if envelope is not None else (),
            command=self._command,
        )

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self, reply: str) -> None:
        """Send a last reply and close, whatever the session is doing. Stopping closes a
        session between transactions (its mail, if any, already answered 250) without refusing
        anything: that is logged as a close and not counted."""
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            if reply == REPLY_SHUTDOWN and not self._envelope_open():
                log.info(
                    "closed reason=shutdown client=%s", quoted(self._client, len(self._client))
                )
            else:
                self._refused(reply)
            transport.write(reply.encode("ascii") + b"\r\n")
        self._close()

    def _envelope_open(self) -> bool:
        """A transaction has begun (MAIL accepted) and is not answered yet."""
        envelope = self.envelope
        return self.in_transaction or (envelope is not None and envelope.mail_from is not None)

    async def handle_exception(self, error: Exception) -> str:
        log.error(
            "%s internal error (%s); answered 451",
            self._client,
            type(error).__name__,
            exc_info=error,
        )
        return REPLY_INTERNAL

    # --- commands ---------------------------------------------------------------------------

    async def smtp_AUTH(self, arg: str) -> None:
        if (
            self.login is not None
            and not self._tls_protocol
            and not self.login.without_tls(self._client)
        ):
            await self.push(REPLY_AUTH_TLS)
            return
        await super().smtp_AUTH(arg)

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        if self.login is None:
            return super()._authenticate(mechanism, auth_data)
        return AuthResult(success=False, handled=False, auth_data=auth_data, message=_PENDING)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._login_checked(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._login_checked(await super().auth_LOGIN(_, args))

    async def _login_checked(self, result: AuthResult) -> AuthResult:
        """The login aiosmtpd decoded, checked by ``login`` off the event loop's critical
        path; the password is not kept in the session."""
        data = result.auth_data
        if self.login is None or result.message != _PENDING or not isinstance(data, LoginPassword):
            return result
        user = await self.login.authenticate(self._client, data.login, data.password)
        if user is None:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))

    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.tracker.draining:
            await self.push(REPLY_SHUTDOWN)
            self._close()
            return
        if self.login is not None and self.session is not None and not self.session.authenticated:
            await self.push(REPLY_AUTH_NEEDED)
            return
        if arg:
            match = _SIZE_PARAM.search(arg)
            size = match.group(1) if match else ""
            if size.isdigit() and int(size) > self.settings.max_message_bytes:
                await self.push(REPLY_SIZE)
                return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed():
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self.in_transaction = True
        try:
            await self._receive_data()
        except ConnectionError:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            raise
        except Exception as error:  # noqa: BLE001 - answered 451, never 5xx
            # 451 (logged with the envelope it refuses); then the transaction must not linger.
            await self.push(await self.handle_exception(error))
            self._set_post_data_state()  # type: ignore[no-untyped-call]
        finally:
            self.in_transaction = False
            if self.tracker.draining:
                self.abort(REPLY_SHUTDOWN)  # the transaction is answered; no new one

    async def _receive_data(self) -> None:
        """Read up to the end of data in large chunks; check it; hand it to the handler."""
        settings = self.settings
        limit = settings.max_message_bytes
        buffer = bytearray(b"\r\n")  # the CRLF that ended the 354 line
        scanned = 0
        received = 0
        record = 0  # bytes of the data record (line) in progress
        too_big = False
        started = time.monotonic()
        while True:
            chunk = await self._reader.read(_READ_CHUNK)
            if not chunk:
                return  # the client went away: nothing was acknowledged
            newline = chunk.rfind(b"\n")
            record = len(chunk) - newline - 1 if newline >= 0 else record + len(chunk)
            if newline >= 0 or record >= _DATA_RECORD:
                self._reset_timeout()  # a record is complete: the next one gets its full limit
                record %= _DATA_RECORD
            received += len(chunk)
            buffer += chunk
            end = buffer.find(_END_OF_DATA, max(scanned - 4, 0))
            if end >= 0:
                break
            scanned = len(buffer)
            if received > limit + 5:
                too_big = True
                del buffer[:-4]  # keep only what may start the end-of-data mark
                scanned = len(buffer)
            elapsed = time.monotonic() - started
            rate = settings.min_data_rate_bytes_per_second
            if rate and elapsed > settings.data_rate_grace_seconds and received < rate * elapsed:
                self.abort(REPLY_TOO_SLOW)
                return
        leftover = bytes(buffer[end + 5 :])
        del buffer[end + 2 :]
        del buffer[:2]
        self._after_data(leftover)
        if too_big or len(buffer) > limit:
            await self._reply_and_reset(REPLY_SIZE)
            return
        if b"\x00" in buffer:  # no NUL in SMTP data (RFC 5321 2.3.8); a smuggling trick
            await self._reply_and_reset(REPLY_NUL)
            return
        untrusted_raw = self._check_newlines(buffer)
        if untrusted_raw is None:
            await self._reply_and_reset(REPLY_BARE)
            return
        # Undo dot-stuffing (RFC 5321 4.5.2).
        if untrusted_raw.startswith(b"."):
            untrusted_raw = untrusted_raw[1:]
        untrusted_raw = untrusted_raw.replace(b"\r\n.", b"\r\n")
        if settings.max_line_bytes and _longest_line(untrusted_raw) > settings.max_line_bytes - 2:
            await self._reply_and_reset(REPLY_LINE)
            return
        assert self.envelope is not None
        self.envelope.content = untrusted_raw
        self.envelope.original_content = untrusted_raw
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()  # our own spooling time is not the client's record
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            self._reset_timeout()  # the client's next record starts now
        if status[:1] in ("4", "5"):  # refused (sender authentication): logged with its envelope
            await self.push(status)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
        else:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            await self.push(status)
        await self._handle_pipelined()

    def _check_newlines(self, data: bytearray) -> bytes | None:
        """The data with CRLF line ends only, or None when bare CR/LF must be refused."""
        crlf = data.count(b"\r\n")
        if data.count(b"\n") == crlf and data.count(b"\r") == crlf:
            return bytes(data)
        if self.settings.bare_newlines == "normalize":
            return _ANY_NEWLINE.sub(b"\r\n", data)
        return None

    def _after_data(self, leftover: bytes) -> None:
        self._pipelined = leftover
        if leftover and self.settings.pipelining_after_data == "allow":
            self._reader.feed_data(leftover)
            self._pipelined = b""

    async def _handle_pipelined(self) -> None:
        leftover, self._pipelined = self._pipelined, b""
        if not leftover:
            return
        if leftover.strip().upper() == b"QUIT":
            await self.push("221 Bye")
            self._close()
            return
        await self.push(REPLY_PIPELINING)
        self._close()

    async def _reply_and_reset(self, reply: str) -> None:
        await self.push(reply)  # first: the refusal log shows the envelope refused
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self._handle_pipelined()

    _pipelined = b""


def _longest_line(data: bytes) -> int:
    return max(map(len, data.split(b"\r\n")), default=0)


def _bad_address(address: str) -> bool:
    """Controls or line separators (CR, LF, NUL, NEL, U+2028...) or longer than RFC 5321
    allows: never relayed."""
    local, _, domain = address.encode("utf-8", "surrogateescape").rpartition(b"@")
    return bool(
        has_protocol_breaking(address)
        or len(local) + 1 + len(domain) > _MAX_PATH
        or len(local) > _MAX_LOCAL
        or len(domain) > _MAX_DOMAIN
    )


class RelayHandler:
    """aiosmtpd handler: relay policy, recipient limit, disk and store checks; hands DATA to
    ``accept``."""

    def __init__(
        self,
        settings: SmtpSettings,
        accept: Accept,
        free_bytes: Callable[[], int],
        relay_policy: RelayPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.accept = accept
        self.free_bytes = free_bytes
        self.store_up = True  # set by the gateway's store probe (set_store_up)
        self.trusted = tuple(
            ipaddress.ip_network(n, strict=False) for n in settings.trusted_networks
        )
        self.relay_policy = relay_policy or self.inbound_relay

    def inbound_relay(self, client: str, address: str) -> bool:
        """The Internet-facing policy: an accepted domain, or a client of
        ``smtp.trusted_networks`` (whose mail is still sanitized and goes to the LGWAN side)."""
        return self.domain_accepted(address) or self.client_trusted(client)

    def domain_accepted(self, address: str) -> bool:
        return self.settings.accepts(address)

    def client_trusted(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.free_bytes() < self.settings.min_free_disk_bytes:
            log.warning("free disk below min_free_disk_bytes: MAIL answered 452")
            return REPLY_DISK
        if not self.store_up:
            return REPLY_STORE
        if _bad_address(address):
            return REPLY_BAD_SENDER
        login = getattr(server, "login", None)
        if login is not None and session.authenticated:
            user = bytes(session.login_data or b"").decode("utf-8", "replace")
            if not await login.may_send_as(user, address):
                return REPLY_NOT_YOUR_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return REPLY_TOO_MANY_RCPT
        if _bad_address(address):
            return REPLY_BAD_RECIPIENT
        client = str(session.peer[0]) if session.peer else ""
        if not self.relay_policy(client, address):
            return REPLY_RELAY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.store_up:  # went away since MAIL
            return REPLY_STORE
        mail_from = envelope.mail_from or ""
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        received = Received(
            mail_from="" if mail_from == "<>" else mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            client=str(session.peer[0]) if session.peer else "",
            helo=session.host_name or "",
            untrusted_raw=raw,
        )
        try:
            queue_id = await self.accept(received)
        except Refused as refusal:
            return refusal.reply
        return f"250 2.0.0 OK queued as {queue_id}"


def _checked_later(*_args: Any) -> AuthResult:
    """aiosmtpd's synchronous authenticator, never reached: GatewaySMTP._authenticate hands
    the login to an asynchronous check instead."""
    return AuthResult(success=False, handled=False)


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """A server context for STARTTLS when a certificate and key are configured."""
    if not (settings.tls_cert_file and settings.tls_key_file):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


class SmtpServer:
    """The listening socket and its sessions; ``drain`` implements the SIGTERM behaviour."""

    def __init__(
        self,
        settings: SmtpSettings,
        accept: Accept,
        free_bytes: Callable[[], int],
        on_reject: Callable[[SmtpRefusal], None] | None = None,
        admission: Admission | None = None,
        relay_policy: RelayPolicy | None = None,
        login: SmtpLogin | None = None,
    ) -> None:
        self.settings = settings
        self.handler = RelayHandler(settings, accept, free_bytes, relay_policy)
        self.tracker = ConnectionTracker(settings, on_reject, admission)
        self.tls = tls_context(settings)
        self.login = login
        self.server: asyncio.Server | None = None

    def _factory(self) -> GatewaySMTP:
        return GatewaySMTP(self.handler, self.settings, self.tracker, self.tls, self.login)

    def set_store_up(self, up: bool) -> None:
        """Whether the store answers: while it does not, new mail is answered 451."""
        self.handler.store_up = up

    async def start(
        self, host: str | None = None, port: int | None = None, sock: socket.socket | None = None
    ) -> tuple[str, int]:
        """Listen on ``host``:``port`` (default: the settings'), or on the listening ``sock``."""
        loop = asyncio.get_running_loop()
        if sock is not None:
            self.server = await loop.create_server(self._factory, sock=sock)
        else:
            self.server = await loop.create_server(
                self._factory,
                host=host if host is not None else self.settings.listen_host,
                port=port if port is not None else self.settings.listen_port,
            )
        sockname: Any = self.server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def drain(self, grace_seconds: float) -> None:
        """Refuse new work (421), let transactions in progress finish, then close."""
        self.tracker.draining = True
        for session in list(self.tracker.sessions):
            if not session.in_transaction:
                session.abort(REPLY_SHUTDOWN)
        try:
            await asyncio.wait_for(self.tracker.idle.wait(), grace_seconds)
        except TimeoutError:
            for session in list(self.tracker.sessions):
                session.abort(REPLY_SHUTDOWN)
        await self.close()

    async def close(self, wait_seconds: float = 2.0) -> None:
        """Stop listening and close every connection (accepts still in progress included)."""
        if self.server is None:
            return
        self.tracker.draining = True
        loop = asyncio.get_running_loop()
        # Stop accepting first and let accepts already in flight get their 421: closing the
        # server under them makes Python 3.11 drop their sockets unclosed (Server._attach).
        for sock in self.server.sockets:
            with contextlib.suppress(NotImplementedError, ValueError, OSError):
                loop.remove_reader(sock.fileno())
        await asyncio.sleep(0.01)
        self.server.close()
        deadline = loop.time() + wait_seconds
        while True:
            for session in list(self.tracker.open):
                session.abort(REPLY_SHUTDOWN)
            await asyncio.sleep(0.01)  # lets accepts in flight and closes complete
            if not self.tracker.open or loop.time() > deadline:
                break
        await self.server.wait_closed()
        self.server = None

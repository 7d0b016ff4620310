"""Malware scan at the gateway: a ClamAV daemon (clamd) checks every attachment.

Threat model: an attachment is known malware that a sanitizer would pass (a PE inside a ZIP
the policy keeps, a malicious PDF whose exploit lives in a font or image stream), or the
scanner itself is down, slow or answering garbage. So:

* every attachment is scanned *before* it is sanitized, whatever its kind or policy action
  (even parts removed anyway: the audit then says ``malware``, not ``policy``);
* a hit removes the part (``on_hit = "remove"``) or holds the message (``"hold"``), with
  reason ``malware`` and the signature name in the detail;
* anything that is not a clear "OK" or "FOUND" answer from clamd (connection refused,
  timeout, an ``ERROR`` reply, a malformed reply) raises
  :class:`sanitizers.errors.TemporaryFailure`: the message is deferred and retried, never
  passed on unscanned (fail closed);
* a file larger than ``max_bytes`` (keep it at or below clamd's ``StreamMaxLength``) cannot be
  scanned, now or later: it is removed with ``limit_size`` rather than deferred forever;
* what a sanitizer rebuilt (a ZIP, OOXML or PDF written anew) is scanned again before it
  crosses: it holds the files inside the container as the sanitizer read them, in formats
  clamd unpacks, so a member clamd cannot read in the sender's container (an LZMA-compressed
  ZIP entry, which clamd passes unread) is still scanned.

The client speaks clamd's ``zINSTREAM`` command (chunks of a 4-byte big-endian length and
data, ended by a zero length) and ``zPING``, over a unix socket or TCP to a loopback address
(the stream is not encrypted, so a remote clamd is refused). One connection per request.

Deliberately left alone: the signature database (freshclam's job), heuristics settings of
clamd.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Literal

from gateway.configuration.settings import ScannerSettings, parse_clamd_address
from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.disarmer import Disarmer
from sanitizers.errors import TemporaryFailure
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action, Reason

_CHUNK = 64 * 1024
_MAX_REPLY = 4096


class ScanTooLarge(Exception):
    """The data is larger than the scanner accepts."""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """``signature`` is the name clamd reported, or ``None`` when the data is clean."""

    signature: str | None

    @property
    def infected(self) -> bool:
        return self.signature is not None


class ClamdClient:
    """A minimal clamd client: ``ping`` and ``scan`` (INSTREAM). Blocking; one connection
    per call; every socket operation bounded by ``timeout`` seconds."""

    def __init__(self, address: str, timeout: float, max_bytes: int = 25 * 1024 * 1024) -> None:
        self._family, self._sockaddr = parse_clamd_address(address)
        self.address = address
        self.timeout = timeout
        self.max_bytes = max_bytes

    def _connect(self) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._sockaddr)
        except OSError as exc:
            sock.close()
            raise TemporaryFailure(f"clamd at {self.address} unreachable: {exc}") from exc
        return sock

    def _reply(self, sock: socket.socket) -> str:
        buffer = bytearray()
        while b"\0" not in buffer:
            chunk = sock.recv(1024)
            if not chunk:
                break
            buffer += chunk
            if len(buffer) > _MAX_REPLY:
                raise TemporaryFailure("clamd reply too long")
        return bytes(buffer).split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()

    def _request(self, command: bytes, payload: bytes | None = None) -> str:
        sock = self._connect()
        try:
            sock.sendall(command)
            if payload is not None:
                try:
                    view = memoryview(payload)
                    for start in range(0, len(view), _CHUNK):
                        piece = view[start : start + _CHUNK]
                        sock.sendall(struct.pack(">I", len(piece)) + piece)
                    sock.sendall(struct.pack(">I", 0))
                except (BrokenPipeError, ConnectionResetError):
                    # clamd stops reading when a limit is hit; its reply says which.
                    return self._reply(sock)
            return self._reply(sock)
        except OSError as exc:  # includes socket timeouts
            raise TemporaryFailure(f"clamd at {self.address}: {type(exc).__name__}") from exc
        finally:
            sock.close()

    def ping(self) -> bool:
        """True when clamd answers PONG; raises TemporaryFailure when it cannot be reached."""
        return self._request(b"zPING\0") == "PONG"

    def scan(self, untrusted_data: bytes) -> ScanResult:
        """Scan bytes with INSTREAM. Raises ScanTooLarge or TemporaryFailure."""
        if len(untrusted_data) > self.max_bytes:
            raise ScanTooLarge(f"{len(untrusted_data)} bytes > {self.max_bytes}")
        reply = self._request(b"zINSTREAM\0", untrusted_data)
        if reply.endswith("size limit exceeded. ERROR"):
            raise ScanTooLarge(reply[:200])
        if reply == "stream: OK":
            return ScanResult(None)
        if reply.startswith("stream: ") and reply.endswith(" FOUND"):
            return ScanResult(reply[len("stream: ") : -len(" FOUND")].strip()[:200])
        raise TemporaryFailure(f"clamd answered {reply[:200]!r}")


class ScanningDisarmer:
    """A :class:`Disarmer` that scans each attachment with clamd before ``inner`` sees it, and
    what ``inner`` rebuilt from it before it crosses."""

    def __init__(
        self, inner: Disarmer, client: ClamdClient, on_hit: Literal["remove", "hold"] = "remove"
    ) -> None:
        self.inner = inner
        self.client = client
        self.on_hit = on_hit

    def _verdict(self, untrusted_data: bytes, where: str) -> CdrOutcome | None:
        """The outcome of a hit (or of data too large to scan); ``None`` when clean."""
        try:
            result = self.client.scan(untrusted_data)
        except ScanTooLarge as exc:
            return CdrOutcome.drop(Reason.LIMIT_SIZE, f"too large to scan{where}: {exc}"[:200])
        if result.signature is None:
            return None
        fate = Action.HELD if self.on_hit == "hold" else Action.REMOVED
        return CdrOutcome(action=fate, reason=Reason.MALWARE, detail=result.signature + where)

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        hit = self._verdict(untrusted_data, "")
        if hit is not None:
            return hit
        outcome = self.inner.disarm(
            untrusted_data, filename, kind, action, policy, charset=charset, passwords=passwords
        )
        if outcome.data is None or outcome.data == untrusted_data:
            return outcome
        # The rebuilt file holds the files inside the container as the sanitizer read them,
        # written the way clamd unpacks (deflated ZIP entries, Flate PDF streams): an entry
        # clamd could not read in the sender's container (LZMA-compressed, an unusual PDF
        # filter) is seen here, before it crosses.
        hit = self._verdict(outcome.data, " (in the rebuilt file)")
        return hit if hit is not None else outcome


def scanning(inner: Disarmer, settings: ScannerSettings) -> Disarmer:
    """``inner`` wrapped in a scan when the scanner is enabled, else ``inner`` itself."""
    if not settings.enabled:
        return inner
    client = ClamdClient(settings.address, settings.timeout_seconds, settings.max_bytes)
    return ScanningDisarmer(inner, client, settings.on_hit)

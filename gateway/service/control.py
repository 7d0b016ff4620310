"""The control socket of ``serve``: how a local command hands the running service a secret.

Intent: ``mukaika quarantine unlock REF --password-file FILE`` must get a password to the
isolated sanitizer without putting it in argv, the environment, a log or the store. The
command connects to this Unix socket, sends one JSON line naming the command and the
reference, then the password lines, and closes its side; the service answers one JSON line.
From here the password travels only through pipes (the pool's, then the CDR child's).

Authentication: the socket lives in ``DATA_DIR/ctl/`` (mode 0700) with mode 0600, and every
connection's peer credentials (``SO_PEERCRED``) must be the service's own user or root;
anyone else is answered ``refused`` and disconnected. Such a peer may name the person it acts
for (``on_behalf``: the web console's user or PPAP link), which the audit records as the
actor; otherwise the actor is the peer's account. Bounded: one request line of at most
:data:`MAX_REQUEST_BYTES`, a secret of at most :data:`MAX_SECRET_BYTES`, each read within
:data:`READ_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from gateway.evidence.quarantine import clean_text
from sanitizers.vocabulary import UnlockResult

log = logging.getLogger("mukaika.control")

MAX_REQUEST_BYTES: Final = 1024
# The name a trusted local program (the console) gives for the person it acts for.
MAX_ACTOR_CHARS: Final = 200
MAX_SECRET_BYTES: Final = 8192
# The longest answer a command reads back (a sender's mail in its delay is a short list).
MAX_ANSWER_BYTES: Final = 256 * 1024
READ_SECONDS: Final = 10.0
# The answer waits for the sanitizer (decrypting with 10 candidates, then CDR).
ANSWER_SECONDS: Final = 300.0

# (command, reference, password lines, the peer's account name) -> the answer
Handler = Callable[[str, str, tuple[str, ...], str], Awaitable[dict[str, Any]]]


def socket_path(data_dir: Path) -> Path:
    """Where ``serve`` listens for local commands (short: AF_UNIX paths are limited)."""
    return Path(data_dir) / "ctl" / "sock"


def secret_lines(secret: bytes, limit: int) -> tuple[str, ...]:
    """The password candidates in what the command sent: one per line, without the line
    ending, empty lines skipped, at most ``limit``. Not UTF-8: no candidate."""
    try:
        text = secret.decode("utf-8")
    except UnicodeDecodeError:
        return ()
    lines = [line.rstrip("\r") for line in text.split("\n")]
    return tuple(line for line in lines if line)[:limit]


class ControlServer:
    """Listens on :func:`socket_path` and hands each request to ``handler``."""

    def __init__(self, data_dir: Path, handler: Handler) -> None:
        self.path = socket_path(data_dir)
        self.handler = handler
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a stopped service
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._session, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = _peer_uid(writer)
            if peer not in (os.getuid(), 0):
                await _answer(writer, {"result": "refused"})
                return
            line = await asyncio.wait_for(reader.readline(), READ_SECONDS)
            if not line.endswith(b"\n") or len(line) > MAX_REQUEST_BYTES:
                await _answer(writer, {"result": "bad_request"})
                return
            request = json.loads(line)
            secret = await asyncio.wait_for(reader.read(MAX_SECRET_BYTES + 1), READ_SECONDS)
            if len(secret) > MAX_SECRET_BYTES:
                await _answer(writer, {"result": "bad_request"})
                return
            command, reference = request.get("command"), request.get("reference")
            on_behalf = request.get("on_behalf", "")
            if not all(isinstance(value, str) for value in (command, reference, on_behalf)):
                await _answer(writer, {"result": "bad_request"})
                return
            passwords = secret_lines(secret, 100)
            actor = clean_text(on_behalf, MAX_ACTOR_CHARS) or _account(peer)
            answer = await self.handler(command, reference, passwords, actor)
            await _answer(writer, answer)
        except (TimeoutError, ValueError, ConnectionError) as exc:
            log.warning("control request failed: %s", type(exc).__name__)
        except Exception:  # a fault of ours (the store, a purged original): say so, go on
            log.exception("control request failed")
            with contextlib.suppress(ConnectionError):
                await _answer(writer, {"result": str(UnlockResult.FAILED)})
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The user id of the connected process (``SO_PEERCRED``), set by the kernel."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _account(uid: int | None) -> str:
    """The account name of ``uid`` for the audit line (its number when it has none)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name if uid is not None else "?"
    except KeyError:
        return str(uid)


async def _answer(writer: asyncio.StreamWriter, answer: dict[str, Any]) -> None:
    writer.write(json.dumps(answer).encode() + b"\n")
    await writer.drain()


def request(
    data_dir: Path, command: str, reference: str, secret: bytes, *, on_behalf: str = ""
) -> dict[str, Any]:
    """Send one request to the running service and return its answer (blocking). Raises
    ``OSError`` when no service listens. ``on_behalf``: who the audit names as the actor (the
    console's user or link); "" = this process's account."""
    line = {"command": command, "reference": reference, "on_behalf": on_behalf}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(ANSWER_SECONDS)
        client.connect(str(socket_path(data_dir)))
        client.sendall(json.dumps(line).encode() + b"\n")
        client.sendall(secret)
        client.shutdown(socket.SHUT_WR)
        data = b""
        while not data.endswith(b"\n") and len(data) <= MAX_ANSWER_BYTES:
            chunk = client.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data or b"{}")
    if not isinstance(answer, dict):
        raise ValueError("bad answer from the service")
    return answer

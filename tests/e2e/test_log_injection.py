"""No client can forge or hide a log line: a real ``mukaika serve`` writes only printable
lines to stderr, whichever library logged the client's bytes (aiosmtpd logs an unrecognised
command word raw, at WARNING).

Hostile command words are generated: every C0 control character but LF (which ends the line),
DEL, C1 controls, ESC sequences, a bare CR followed by a forged log line, and bidi and other
invisible characters (the unsafe classes of sanitizers.safetext). The stderr of the gateway
may then hold no byte below 0x20 but LF, no DEL, and none of those characters.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
from pathlib import Path

from gateway.observation.logtext import SafeFormatter
from tests.e2e.servekit import write_serve_config

MUKAIKA = Path(sys.executable).parent / "mukaika"
INVISIBLE = "\u202e\u2066\u061c\u200f\u2028\u2029\x85\x9b"  # safetext's classes
FORGED = "2026-12-03 00:00:00,000 INFO mukaika.smtp: accepted everything"


def hostile_words() -> list[bytes]:
    controls = [chr(c) for c in range(0x20) if c not in (0x0A, 0x0D)] + ["\x7f"]
    words = [f"X{c}Y" for c in controls]
    words += [f"X{c}Y" for c in INVISIBLE]
    words += ["\x1b[2J\x1b[31mRED\x1b]0;title\x07", f"X\r{FORGED}", "ABC\u202eTXT.EXE"]
    return [word.encode("utf-8", "surrogateescape") for word in words]


def unsafe(text: str) -> list[str]:
    bad = {chr(c) for c in range(0x20) if c != 0x0A} | {"\x7f"} | set(INVISIBLE)
    return sorted({repr(c) for c in text if c in bad})


def test_hostile_command_words_reach_stderr_escaped(tmp_path: Path) -> None:
    config = write_serve_config(tmp_path)
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(MUKAIKA), "serve", "--config", str(config)], stdout=subprocess.PIPE, stderr=stderr
        )
    try:
        assert process.stdout is not None
        line = b""
        while not line.startswith(b"mukaika: listening on "):
            line = process.stdout.readline()
            assert line, "mukaika serve exited before listening"
        port = int(line.rsplit(b":", 1)[1])
        for word in hostile_words():
            with (
                socket.create_connection(("127.0.0.1", port), timeout=60) as client,
                client.makefile("rb") as reader,
            ):
                assert reader.readline().startswith(b"220")
                client.sendall(word + b" arg\r\n")
                assert reader.readline()[:1] in (b"5", b"4")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        assert process.stdout is not None
        process.stdout.close()
    text = stderr_path.read_bytes().decode("utf-8")
    assert "unrecognised" in text  # aiosmtpd's own warning did reach the log
    assert unsafe(text) == []
    assert not any(line.endswith(FORGED) for line in text.splitlines())  # no forged line


def test_formatter_escapes_message_and_traceback_lines() -> None:
    formatter = SafeFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad\x1b[31m\rforged\nline\u202e")
    except ValueError:
        record = logging.LogRecord(
            "mail.log", logging.WARNING, __file__, 1, "%s x", ("a\rb\u202e",), sys.exc_info()
        )
    text = formatter.format(record)
    assert unsafe(text) == []
    first = text.split("\n")[0]
    assert first == 'WARNING "a\\rb\\u202e x"'
    # Japanese text that is printable stays exactly as it is.
    plain = logging.LogRecord("mukaika", logging.INFO, __file__, 1, "件名 %s", ("見積書",), None)
    assert formatter.format(plain) == "INFO 件名 見積書"

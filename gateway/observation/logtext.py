"""What may reach the gateway's log: no unsafe character (:mod:`sanitizers.safetext`) raw.

Threat model: log values come from clients (SMTP command words, HELO names, addresses) and
from libraries that log them raw (aiosmtpd writes an unrecognised command word as it came).
A control character (ESC sequences recolour or erase a terminal, a bare CR overwrites the
line before it, LF forges a new line), a bidi override or another invisible character would
let a client forge or hide log lines. Which characters are unsafe is defined once, in
:mod:`sanitizers.safetext`; :func:`quoted` is how the log escapes a value (a JSON string with
ASCII escapes, so the evidence stays readable); :class:`SafeFormatter` quotes every line a
handler writes that has an unsafe character, whatever logged it, so no record from any
library carries one raw.
"""

from __future__ import annotations

import json
import logging

from sanitizers.safetext import has_unsafe


def quoted(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, as a JSON string with ASCII escapes."""
    return json.dumps(value[:limit], ensure_ascii=True)


def _safe_line(line: str) -> str:
    """The line as it is without an unsafe character, else all of it quoted (unbounded: a log
    line that was already written whole is not shortened here)."""
    return quoted(line, len(line)) if has_unsafe(line) else line


class SafeFormatter(logging.Formatter):
    """A formatter that writes the message as one safe line (quoted when it has an unsafe
    character) and keeps the lines of a traceback apart, quoting each line that has one."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = _safe_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return _safe_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _safe_lines(super().formatStack(stack_info))


def _safe_lines(text: str) -> str:
    return "\n".join(_safe_line(line) for line in text.split("\n"))


# The layout of every line the service logs (the gateway process and its receivers alike).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def use_safe_formatter(fmt: str = LOG_FORMAT) -> None:
    """Give every handler of the root logger a :class:`SafeFormatter` with ``fmt``."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(fmt))

"""Why the SMTP layer refused something: one reason code per refusal, logged and counted.

Every 4xx or 5xx reply the receiver sends to a client is a refusal. Operators need each one in
the log with who asked for what (client address, HELO name, the envelope so far, the command
refused) and a stable reason code that they can grep for and that labels
``mukaika_rejected_total``. The codes are defined here once; :mod:`gateway.receiving.smtp`
maps every reply it sends to one of them, and any reply of aiosmtpd's own (bad syntax, bad
sequence) is ``protocol``.

Threat model: everything logged here comes from the client. Values are written as JSON
strings with ASCII escapes (:func:`gateway.observation.logtext.quoted`: no control, bidi or
other invisible character reaches the log), cut to a bounded length, and at most
:data:`_MAX_LOGGED_RECIPIENTS` recipients are listed.
Message data and the arguments of commands other than MAIL and RCPT (AUTH carries
credentials) are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum

from gateway.observation.logtext import quoted

log = logging.getLogger("mukaika.smtp")

_MAX_LOGGED_CHARS = 300
_MAX_LOGGED_RECIPIENTS = 10


class Refusal(StrEnum):
    """The reason code of a refusal at the SMTP layer (log field ``reason`` and metric label)."""

    RELAY = "relay"  # recipient domain not accepted (554 5.7.1)
    SIZE = "size"  # message too large, declared or not (552 5.3.4)
    RECIPIENTS = "recipients"  # too many recipients (452 4.5.3)
    BARE_NEWLINE = "bare_newline"  # bare CR or LF in DATA: SMTP smuggling (550 5.5.2)
    SMUGGLING = "smuggling"  # NUL in DATA (550 5.5.2)
    PIPELINING = "pipelining"  # commands pipelined after the final dot (503 5.5.0)
    LINE_LENGTH = "line_length"  # a data or command line too long (500)
    SYNTAX = "syntax"  # a bad sender or recipient address (553)
    PROTOCOL = "protocol"  # any other bad command, argument or sequence (aiosmtpd's 5xx)
    TIMEOUT = "timeout"  # a command line or data record not complete in time (421 4.4.2)
    STRESS_TIMEOUT = "stress_timeout"  # the same, with the shorter limits of stress mode
    DEADLINE = "deadline"  # the whole session ran past its deadline (421 4.4.2)
    TOO_SLOW = "too_slow"  # DATA below the minimum rate (421 4.4.2)
    CONNECTIONS = "connections"  # overall connection cap (421 4.7.0)
    CONNECTIONS_PER_CLIENT = "connections_per_client"  # per-address connection cap (421 4.7.0)
    DISK = "disk"  # free disk below the threshold (452 4.3.1)
    SHUTDOWN = "shutdown"  # stopping (421 4.3.2)
    INTERNAL = "internal"  # internal error (451 4.3.0)


def _quoted(value: str) -> str:
    return quoted(value, _MAX_LOGGED_CHARS)


def log_refusal(
    reason: Refusal,
    reply: str,
    *,
    client: str,
    helo: str,
    mail_from: str | None,
    rcpt_tos: Sequence[str],
    command: str,
) -> None:
    """One log line for one refusal: reason code, reply code, client and envelope so far."""
    recipients = ",".join(_quoted(r) for r in rcpt_tos[:_MAX_LOGGED_RECIPIENTS])
    more = len(rcpt_tos) - _MAX_LOGGED_RECIPIENTS
    if more > 0:
        recipients += f",+{more}"
    log.info(
        "refused reason=%s reply=%s client=%s helo=%s from=%s to=[%s] command=%s",
        reason.value,
        _quoted(reply[:9]),
        _quoted(client),
        _quoted(helo),
        "-" if mail_from is None else _quoted(mail_from),
        recipients,
        _quoted(command),
    )

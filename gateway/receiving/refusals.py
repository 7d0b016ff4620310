"""Why the SMTP layer refused something: one reason code per refusal, logged and counted.

Every 4xx or 5xx reply the receiver sends to a client is a refusal. Operators need each one in
the log with who asked for what (client address, HELO name, the envelope so far, the command
refused) and a stable reason code that they can grep for and that labels
``mukaika_rejected_total``. The codes are :class:`sanitizers.vocabulary.SmtpRefusal`;
:mod:`gateway.receiving.smtp` maps every reply it sends to one of them, and any reply of
aiosmtpd's own (bad syntax, bad sequence) is ``protocol``.

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

from gateway.observation.logtext import quoted
from sanitizers.vocabulary import SmtpRefusal

log = logging.getLogger("mukaika.smtp")

_MAX_LOGGED_CHARS = 300
_MAX_LOGGED_RECIPIENTS = 10


def _quoted(value: str) -> str:
    return quoted(value, _MAX_LOGGED_CHARS)


def log_refusal(
    reason: SmtpRefusal,
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

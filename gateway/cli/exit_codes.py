"""The exit codes of every ``mukaika`` command: one list, and a code never means two things.

Scripts, systemd and monitoring act on these numbers, so a number is never reused for another
meaning, only added. Where sysexits.h has a code for the case, it is that code.

``CONFIG`` (78, ``EX_CONFIG``): the configuration cannot work (invalid, or a file it names is
missing or unusable). Restarting cannot fix it, so the systemd unit lists it in
``RestartPreventExitStatus=``; tests/deploy checks that the unit and this agree.

``STORE_SCHEMA`` (79): the store was written by a newer version (refused: this program would
misread it), or has not been migrated yet (``mukaika store migrate``). Restarting cannot fix
it either, so the unit does not restart on it.

``CLOCK`` (80): serve measured this node's clock against the PostgreSQL server's and found them
further apart than ``node.max_clock_offset_seconds``: logs of several nodes would not agree.
A restart may cure it once NTP has corrected the clock, so the unit restarts on it.

``BROKEN_PIPE`` (141, what a shell reports for a program killed by SIGPIPE): whoever read the
output stopped reading (``mukaika quarantine list | head``); the command stops quietly.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitCode(IntEnum):
    """What a ``mukaika`` command's exit status means (README and both guides list them)."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "done; sanitize and explain: the message would be delivered"
    INTERNAL = 1, "an unexpected fault: a traceback, or a batch message that hit one"
    USAGE = 2, "the command line is wrong (argparse's own status)"
    NOT_FOUND = 4, "the queue id, quarantine id, reference or user asked for does not exist"
    WRONG_STATE = (
        5,
        (
            "the message's state does not allow the action (e.g. retry a delivered one); the user "
            "exists already; an import lists users of the other import or of another tenant"
        ),
    )
    EXPIRED_EXCEPTIONS = 6, "valid configuration, but expired exceptions (例外措置) are skipped"
    REFUSED = 7, "send: the server refused the message or a recipient"
    WRONG_PASSWORD = 8, "quarantine unlock: the password did not open the held message"
    HOLD = 10, "sanitize: the message would be held"
    REJECT = 11, "sanitize: the message would be rejected"
    IMPORT_REFUSED = 12, "user import: rows or entries are invalid (each named); nothing imported"
    INTEGRITY = 65, "a quarantined original or an evidence export failed its check (EX_DATAERR)"
    INPUT = 66, "an input file cannot be read (EX_NOINPUT)"
    UNAVAILABLE = (
        69,
        "serve cannot listen, send or the directory import cannot connect (EX_UNAVAILABLE)",
    )
    IO_ERROR = 74, "reading or writing the data directory failed (EX_IOERR)"
    TEMPFAIL = 75, "a dependency (e.g. the scanner) is unavailable; try later (EX_TEMPFAIL)"
    DENIED = 77, "the acting user may not do this: unknown, disabled, wrong role, own request"
    CONFIG = 78, "the configuration cannot work; systemd does not restart (EX_CONFIG)"
    STORE_SCHEMA = 79, "the store's schema is newer than this program, or not yet migrated"
    CLOCK = 80, "serve: this node's clock is off the database's by more than the bound"
    INTERRUPTED = 130, "stopped with Ctrl-C (128 + SIGINT)"
    BROKEN_PIPE = 141, "the reader of the output went away, e.g. | head (128 + SIGPIPE)"

"""``mukaika quarantine release|request|approve|deny REF``: the held-mail workflow.

REF is the reference printed in notices (the quarantine id). Each command records a decision in
the store and writes an audit line; nothing is sent from here: ``serve`` sanitizes the original
again and delivers it (:mod:`gateway.service.releasing`). The functions behind the commands are
the web console's too (:mod:`gateway.service.held_mail`).

The acting user is the person who runs the command (:mod:`gateway.service.identity`: the login
``sudo`` records, else the operating-system account); it must be a user of the workflow
(``mukaika user add``). Exit codes: 0 recorded; 2 usage (no reason, a bad part or limit); 4 no
such reference; 5 the message's state does not allow it (released already, a decision open, not
held); 77 the acting user may not (unknown, disabled, not an approver, their own request); 74
the store cannot be written; 79 the store's schema is not this program's.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, data_dir, load, opened_store
from gateway.evidence.audit import AuditLog
from gateway.service.held_mail import (
    HeldMail,
    InvalidRequestError,
    NotAllowedError,
    NotFoundError,
    Outcome,
    WorkflowError,
    WrongStateError,
)
from gateway.service.identity import acting_user
from gateway.store import StoreError
from sanitizers.vocabulary import RequestState

Handler = Callable[[argparse.Namespace], int]

_CODES: dict[type[WorkflowError], ExitCode] = {
    NotFoundError: ExitCode.NOT_FOUND,
    WrongStateError: ExitCode.WRONG_STATE,
    NotAllowedError: ExitCode.DENIED,
    InvalidRequestError: ExitCode.USAGE,
}


def register_actions(add_action: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the workflow's actions to the ``quarantine`` group."""
    release = add_action("release", help="release a held message (serve sanitizes and sends it)")
    release.add_argument("ref", metavar="REF", help="the reference (quarantine id)")
    _limit_option(release)
    release.set_defaults(func=_guarded(_release))

    request = add_action(
        "request", help="ask an approver to release it, or to let original parts cross (例外措置)"
    )
    request.add_argument("ref", metavar="REF", help="the reference (quarantine id)")
    request.add_argument("--reason", required=True, help="why (recorded)")
    request.add_argument(
        "--part",
        action="append",
        default=[],
        metavar="PATH",
        help="a part whose original bytes may cross (例外措置; e.g. 1.2, see mukaika explain); "
        "repeatable",
    )
    _limit_option(request)
    request.set_defaults(func=_guarded(_request))

    approve = add_action("approve", help="approve another user's request (approvers only)")
    approve.add_argument("ref", metavar="REF", help="the reference (quarantine id)")
    approve.add_argument(
        "--expires",
        type=_expiry,
        help="until when an exception is valid (ISO 8601; default release.exception_days)",
    )
    approve.set_defaults(func=_guarded(_approve))

    deny = add_action("deny", help="deny a request (approvers only)")
    deny.add_argument("ref", metavar="REF", help="the reference (quarantine id)")
    deny.add_argument("--reason", required=True, help="why (recorded)")
    deny.set_defaults(func=_guarded(_deny))


def _limit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raise-limit",
        action="append",
        default=[],
        type=_limit,
        metavar="NAME=VALUE",
        help="raise a policy.limits setting for this release only (recorded); repeatable",
    )


def _limit(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not sep or not name or number != number:  # NaN: not a number
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. max_parts=2000), got {text!r}")
    return name.strip(), number


def _expiry(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.astimezone()


@contextlib.contextmanager
def _workflow(args: argparse.Namespace) -> Iterator[HeldMail]:
    config, _ = load(args)
    root = data_dir(args, config)
    with (
        opened_store(config, root) as store,
        AuditLog.from_settings(config.audit, root, config.node.resolved_name()) as audit,
    ):
        yield HeldMail(store, config, audit)


def _release(args: argparse.Namespace) -> int:
    with _workflow(args) as held:
        outcome = held.release(args.ref, acting_user(), raised_limits=dict(args.raise_limit))
    _say(outcome, "released: serve sanitizes it again and delivers it")
    return ExitCode.OK


def _request(args: argparse.Namespace) -> int:
    with _workflow(args) as held:
        outcome = held.request(
            args.ref,
            acting_user(),
            args.reason,
            parts=args.part,
            raised_limits=dict(args.raise_limit),
        )
    _say(outcome, "requested: waits for another user with the approver role")
    return ExitCode.OK


def _approve(args: argparse.Namespace) -> int:
    with _workflow(args) as held:
        outcome = held.approve(args.ref, acting_user(), expires=args.expires)
    if outcome.decision.state is RequestState.PENDING:
        _say(outcome, "approval recorded: it waits for the other approvers (k of n)")
        return ExitCode.OK
    until = outcome.decision.expires_at or datetime.now(UTC)
    _say(outcome, f"approved until {until.isoformat(timespec='minutes')}: serve carries it out")
    return ExitCode.OK


def _deny(args: argparse.Namespace) -> int:
    with _workflow(args) as held:
        outcome = held.deny(args.ref, acting_user(), args.reason)
    _say(outcome, "denied")
    return ExitCode.OK


def _say(outcome: Outcome, what: str) -> None:
    decision, state = outcome.decision, outcome.entry.state
    print(f"{decision.message} request {decision.id} ({decision.kind}) {what}; state {state}")


def _guarded(func: Handler) -> Handler:
    """The workflow's refusals as :class:`CliError` with their exit codes."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except WorkflowError as exc:
            raise CliError(str(exc), _CODES.get(type(exc), ExitCode.INTERNAL)) from exc
        except StoreError as exc:
            raise CliError(f"store: {exc}", ExitCode.IO_ERROR) from exc

    return wrapper

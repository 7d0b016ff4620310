"""``mukaika outbound``: the outbound direction's commands for operators.

``mukaika outbound cancel QUEUE_ID --sender ADDR``: cancel an outbound mail during its delay
(送信遅延, ``[outbound] delay_seconds``), for its sender. The running ``serve`` does it (over
its local control socket, as its own user or root): the mail is never sent, goes to the
spool's ``dead`` state with reason ``cancelled``, and its sender is told. ``--sender`` must be
the mail's envelope sender (a check that the right mail is cancelled); the web console's
outbound page sends serve the same request for a signed-in sender's own address.

Held outbound mail (上長承認) is listed and decided with ``mukaika quarantine list --state
release_requested``, ``mukaika quarantine approve REF`` and ``mukaika quarantine deny REF
--reason TEXT``, by an approver of the sender's group (``[[outbound.groups]]``), as on the
console's outbound page; a group with ``approvals_required`` k needs k approvers.

Exit codes: 0 cancelled; 4 no such outbound mail waiting; 5 too late (its delay is over);
77 not that sender's mail; 69 serve is not running; 78 invalid configuration.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_global_options, data_dir, load
from gateway.service import control

_EXIT: Final = {
    "not_found": ExitCode.NOT_FOUND,
    "too_late": ExitCode.WRONG_STATE,
    "wrong_sender": ExitCode.DENIED,
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "outbound",
        help="the outbound direction: cancel a mail during its delay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    cancel = actions.add_parser("cancel", help="cancel an outbound mail during its delay")
    cancel.add_argument("queue_id", metavar="QUEUE_ID")
    cancel.add_argument("--sender", required=True, metavar="ADDR", help="its envelope sender")
    add_global_options(cancel, after_action=True)
    cancel.set_defaults(func=run_cancel)


def run_cancel(args: argparse.Namespace) -> int:
    config, _ = load(args)
    root = data_dir(args, config)
    sender = args.sender.strip()
    if not sender or "\n" in sender or "\r" in sender:
        raise CliError("--sender needs one address", ExitCode.USAGE)
    try:
        answer = control.request(root, "cancel", args.queue_id, sender.encode("utf-8") + b"\n")
    except OSError as exc:
        raise CliError(
            f"cannot reach the running mukaika serve at {control.socket_path(root)} "
            f"({exc.strerror or exc}); cancelling needs the service",
            ExitCode.UNAVAILABLE,
        ) from exc
    result = str(answer.get("result"))
    if result == "cancelled":
        print(f"{args.queue_id}: cancelled / 送信を取り消しました")
        return ExitCode.OK
    message = str(answer.get("message", result))[:300]
    raise CliError(message, _EXIT.get(result, ExitCode.UNAVAILABLE))

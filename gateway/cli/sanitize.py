"""``mukaika sanitize``: run the pipeline on one mail, or on a directory, mbox or Maildir.

Exit codes (:class:`gateway.cli.exit_codes.ExitCode`) of the single-message form (the verdict
is also in the report): 0 deliver, 10 hold, 11 reject, 2 usage error, 66 unreadable input,
74 output not written, 78 invalid configuration, 75 temporary failure (a required scanner is
unavailable; nothing was written). A held or rejected message still writes its notice-only
message to OUT. ``--batch`` exits 0 when every message was processed, else the highest of 1
(a message hit an unexpected fault), 66 (unreadable) and 75 (temporarily deferred).

With ``[auth]`` enabled, the single-message form evaluates sender authentication first, as the
gateway does before its 250, from ``--from`` (envelope sender), ``--client`` (client address)
and ``--helo`` (real DNS queries through ``auth.nameservers``); the rebuilt mail carries the
Authentication-Results header and the action (a "reject" exits 11). ``--batch`` does not
evaluate (a saved mailbox has no envelope).
"""

from __future__ import annotations

import argparse
import json
import mailbox
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import CliError, add_config_option, load
from gateway.configuration.config import Config
from gateway.senderauth.evaluate import Transaction, authenticate
from sanitizers.errors import TemporaryFailure
from sanitizers.pipeline import sanitize_message
from sanitizers.report import SanitizeResult
from sanitizers.vocabulary import Verdict

EXIT_CODES = {
    Verdict.DELIVER: ExitCode.OK,
    Verdict.HOLD: ExitCode.HOLD,
    Verdict.REJECT: ExitCode.REJECT,
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sanitize",
        help="sanitize one mail (stdin/stdout by default) or a batch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", nargs="?", help="mail file (default: standard input)")
    parser.add_argument("-o", "--output", help="rebuilt mail (default: standard output)")
    parser.add_argument("--report", help="write the JSON report to FILE, or - for stderr")
    add_config_option(parser)
    parser.add_argument(
        "--direction",
        choices=("inbound", "outbound"),
        default="inbound",
        help="outbound: the checks of mail leaving for the Internet (-o writes it as it leaves)",
    )
    parser.add_argument("--batch", type=Path, metavar="SRC", help="a directory, mbox or Maildir")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory for --batch")
    parser.add_argument("--from", dest="sender", default="", metavar="ADDR", help="envelope sender")
    parser.add_argument("--client", default="", metavar="IP", help="the sending client's address")
    parser.add_argument("--helo", default="", metavar="NAME", help="the client's HELO name")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config, _ = load(args)
    if args.direction == "outbound":
        if args.batch is not None:
            raise CliError("--batch is for the inbound direction", ExitCode.USAGE)
        return run_outbound(args, config)
    if args.batch is not None:
        if args.out is None or args.input or args.output:
            raise CliError("--batch SRC needs --out DIR (and no IN/-o)", ExitCode.USAGE)
        return run_batch(args.batch, args.out, config)
    return run_single(args, config)


def run_single(args: argparse.Namespace, config: Config) -> int:
    try:
        untrusted_raw = _read_input(args.input)
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc.strerror or exc}", ExitCode.INPUT) from exc
    transaction = Transaction(args.client, args.helo, args.sender)
    auth = authenticate(untrusted_raw, config, transaction)
    try:
        result = sanitize_message(untrusted_raw, config.policy, auth=auth)
    except TemporaryFailure as exc:
        raise CliError(f"temporary failure, try again later: {exc}", ExitCode.TEMPFAIL) from exc
    try:
        _write_output(args.output, result.message)
        if args.report:
            _write_report(args.report, result)
    except BrokenPipeError:
        raise  # the reader went away: gateway.cli.main stops quietly
    except OSError as exc:
        raise CliError(f"cannot write: {exc.strerror or exc}", ExitCode.IO_ERROR) from exc
    return EXIT_CODES[result.verdict]


def run_outbound(args: argparse.Namespace, config: Config) -> int:
    """The outbound decision on one mail (its recipients from To, Cc and Bcc); ``-o`` gets
    the message as it would leave (Bcc conversion, DKIM), whatever the decision."""
    from gateway.outbound.checking import clamd_scan
    from gateway.outbound.leaving import Signer, SigningError, leaving
    from sanitizers.outbound_checks import check_outbound

    try:
        untrusted_raw = _read_input(args.input)
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc.strerror or exc}", ExitCode.INPUT) from exc
    try:
        report = check_outbound(
            untrusted_raw,
            config.policy,
            recipients=header_recipients(untrusted_raw),
            is_outside=lambda address: not config.smtp.accepts(address),
            scan=clamd_scan(config.scanner) if config.scanner.enabled else None,
        )
        message = leaving(untrusted_raw, config, Signer(config.outbound.dkim)).message
    except TemporaryFailure as exc:
        raise CliError(f"temporary failure, try again later: {exc}", ExitCode.TEMPFAIL) from exc
    except SigningError as exc:
        raise CliError(str(exc), ExitCode.CONFIG) from exc
    try:
        _write_output(args.output, message)
        if args.report:
            text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
            if args.report == "-":
                sys.stderr.write(text)
            else:
                Path(args.report).write_text(text, encoding="utf-8")
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise CliError(f"cannot write: {exc.strerror or exc}", ExitCode.IO_ERROR) from exc
    return EXIT_CODES[report.verdict]


def header_recipients(untrusted_raw: bytes) -> list[str]:
    """The addresses of the To, Cc and Bcc headers (a mail file has no envelope)."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32
    from email.utils import getaddresses

    headers = BytesHeaderParser(policy=compat32).parsebytes(untrusted_raw)
    values = [str(v) for name in ("To", "Cc", "Bcc") for v in headers.get_all(name, [])]
    return [address for _, address in getaddresses(values) if "@" in address]


def _read_input(path: str | None) -> bytes:
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _write_output(path: str | None, data: bytes) -> None:
    if path is None or path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    Path(path).write_bytes(data)


def _report_json(result: SanitizeResult) -> str:
    return json.dumps(result.report.to_dict(), ensure_ascii=False, indent=2) + "\n"


def _write_report(target: str, result: SanitizeResult) -> None:
    text = _report_json(result)
    if target == "-":
        sys.stderr.write(text)
    else:
        Path(target).write_text(text, encoding="utf-8")


def run_batch(source: Path, out_dir: Path, config: Config) -> int:
    """Sanitize every message of ``source``; one ``.eml`` and one ``.json`` each, then a
    summary of verdicts and reasons. A message that could not be processed (unreadable, or
    a temporary failure) gets only a ``.json`` with its ``status`` and the run goes on.
    Exit 0 when every message was processed, 1 otherwise."""
    with ExitStack() as stack:
        try:
            items = list(_batch_items(source, stack))
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot read {source}: {exc.strerror or exc}", ExitCode.INPUT) from exc
        verdicts: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        failures: Counter[ExitCode] = Counter()
        for name, read in tqdm(items, unit="msg", file=sys.stderr, disable=None):
            try:
                result = sanitize_message(read(), config.policy)
            except Exception as exc:  # noqa: BLE001 - one bad message never stops the batch
                failures[_batch_failure(exc)] += 1
                status = "deferred" if isinstance(exc, TemporaryFailure) else "not processed"
                detail = f"{type(exc).__name__}: {exc}"[:300]
                tqdm.write(f"{name}: {status}: {detail}", file=sys.stderr)
                record = {"status": status, "error": detail}
                (out_dir / f"{name}.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
                continue
            try:
                (out_dir / f"{name}.eml").write_bytes(result.message)
                (out_dir / f"{name}.json").write_text(_report_json(result), encoding="utf-8")
            except OSError as exc:
                raise CliError(f"cannot write: {exc.strerror or exc}", ExitCode.IO_ERROR) from exc
            verdicts[result.verdict.value] += 1
            reasons.update(code.value for code in result.report.reason_codes())
    print(_summary_table(verdicts, reasons, failures.total()))
    return max(failures, default=ExitCode.OK)


def _batch_failure(exc: Exception) -> ExitCode:
    """The exit code a message that failed in a batch stands for."""
    if isinstance(exc, TemporaryFailure):
        return ExitCode.TEMPFAIL
    if isinstance(exc, OSError):
        return ExitCode.INPUT
    return ExitCode.INTERNAL


def _batch_items(source: Path, stack: ExitStack) -> Iterator[tuple[str, Any]]:
    """(output name, loader) for each message of a Maildir, an mbox or a directory tree."""
    if source.is_dir() and (source / "cur").is_dir() and (source / "new").is_dir():
        maildir = mailbox.Maildir(source, create=False)
        for key in sorted(maildir.keys()):
            yield _safe_name(key), _loader(maildir, key)
    elif source.is_file() and _looks_like_mbox(source):
        mbox = mailbox.mbox(source, create=False)
        stack.callback(mbox.close)
        for index, key in enumerate(mbox.keys(), 1):
            yield f"{index:06d}", _loader(mbox, key)
    elif source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            relative = path.relative_to(source)
            if relative.suffix.lower() == ".eml":
                relative = relative.with_suffix("")
            yield _safe_name(str(relative)), path.read_bytes
    else:
        raise OSError(2, "no such directory, mbox or Maildir")


def _loader(box: mailbox.Mailbox[Any], key: str) -> Any:
    return lambda: box.get_bytes(key)


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:150]


def _summary_table(verdicts: Counter[str], reasons: Counter[str], failures: int) -> str:
    rows = [("verdict", verdict, count) for verdict, count in verdicts.most_common()]
    rows += [("reason", reason, count) for reason, count in reasons.most_common()]
    if failures:
        rows.append(("error", "not processed", failures))
    width = max((len(r[1]) for r in rows), default=10)
    lines = [f"{'kind':8} {'value':{width}} {'count':>7}"]
    lines += [f"{kind:8} {value:{width}} {count:7d}" for kind, value, count in rows]
    return "\n".join(lines)

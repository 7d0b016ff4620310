"""The relay side by side with what municipalities run instead (issue 14).

One harness for every system: Postfix's ``smtp-source -s 20 -m 1000`` sends the same mail into
the system, which delivers to Postfix's ``smtp-sink``; the figure is delivered messages per
second (``smtp-sink -c`` counts them) from the first connection to the last delivery. For the
bare aiosmtpd server, which delivers nothing, it is accepted messages per second.

The systems:

- ``aiosmtpd discard``: one process, accepts and discards (:mod:`benchmarks.sink`): the
  Python ceiling of a single event loop;
- ``postfix relay``: Postfix relaying alone (the MTA ceiling);
- ``postfix + mimedefang``: Postfix with MIMEDefang as a milter (multiplexor, Perl workers)
  and a filter as a municipality would write it: every attachment dropped with a warning, the
  HTML alternative removed (text kept). Japanese attachment names are written into the warning
  as UTF-8 bytes (the sample filter dies on them otherwise);
- ``mukaika serve``: as shipped (durable spool, quarantine, audit, sanitizer pool, receivers).

Each system is first checked on a sample (a Japanese HTML mail with a PDF attached by a
Japanese name) delivered to a capturing sink: no HTML and, for the peers, no attachment may
arrive. Postfix and MIMEDefang come from Debian (``make bench`` installs them with
``deploy/system-packages.sh``); each runs as a private instance below a temporary directory
on loopback ports, never with the system's own configuration, and needs root (Postfix's master
binds and drops privileges). A system whose programs are missing is reported, not measured.
amavisd-new is not part of this harness yet (see ``results/FINDINGS.md``).

Rounds are interleaved (each round runs every system once); medians and the spread (min to
max) are reported, with ratios to bare aiosmtpd and to Postfix + MIMEDefang, a plot, and the
machine facts in the JSON.

``python -m benchmarks.peers [--rounds 3] [--messages 1000] [--sessions 20]``
``--smoke`` runs the harness on the Python systems only with a few messages (the tests do).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import pwd
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.common import RESULTS, ROOT, write_result
from tests.deploy.postfix_instance import MASTER_CF

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"
POSTFIX = "/usr/sbin/postfix"
MIMEDEFANG = "/usr/bin/mimedefang"
MULTIPLEXOR = "/usr/bin/mimedefang-multiplexor"
DOMAIN = "city.example.lg.jp"
RCPT = f"staff@{DOMAIN}"
SENDER = "sender@example.com"

# The filter a municipality would run: attachments dropped with a warning, HTML removed where
# a text alternative exists. The file name goes into the warning as UTF-8 bytes: MIME-Tools
# hands Japanese names over as Perl character strings, which kill the worker ("Wide
# character") when written out.
MIMEDEFANG_FILTER = r"""
use Encode ();
$AdminAddress = 'postmaster@localhost';
$AdminName = 'MIMEDefang';
$DaemonAddress = 'mimedefang@localhost';
$AddWarningsInline = 0;
detect_and_load_perl_modules();

sub filter_begin { }

sub filter {
    my ($entity, $fname, $ext, $type) = @_;
    return if message_rejected();
    my $name = defined($fname) ? $fname : '';
    $name = Encode::encode('UTF-8', $name) if utf8::is_utf8($name);
    if ($name ne '' || lc($type) !~ m{^text/(plain|html)$}) {
        return action_drop_with_warning(
            "An attachment ($name, $type) was removed by the mail gateway.\n");
    }
    return action_accept();
}

sub filter_end {
    my ($entity) = @_;
    return if message_rejected();
    remove_redundant_html_parts($entity);
}

1;
"""

POSTFIX_MAIN = """\
compatibility_level = 3.6
config_directory = {root}/etc
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = peer.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {domain}
relayhost = [127.0.0.1]:{relay_port}
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = no
biff = no
message_size_limit = 26214400
{extra}"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_banner(port: int, timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 1) as sock:
                if sock.recv(64).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def spawn(cmd: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``cmd`` with its stderr in ``log`` (the child keeps the file; we close ours)."""
    with log.open("wb") as handle:
        return subprocess.Popen(cmd, stderr=handle, **kwargs)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class SinkCounter:
    """Postfix's ``smtp-sink -c`` on a free port; counts the messages it was given."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.count = 0
        self._changed = threading.Condition()
        # As root, smtp-sink drops to nobody after binding.
        drop = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = spawn(
            [SMTP_SINK, "-c", *drop, f"127.0.0.1:{self.port}", "1024"],
            work / "smtp-sink.log",
            stdout=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_banner(self.port)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        buffer = b""
        while chunk := self.proc.stdout.read1(4096):
            buffer = (buffer + chunk)[-256:]
            found = re.findall(rb"mesg=(\d+)", buffer)
            if found:
                with self._changed:
                    self.count = int(found[-1])
                    self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> float:
        """Wait until ``count`` messages arrived; return the time (monotonic) it happened."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        return time.monotonic()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._reader.join(30)  # it reads to the end before the pipe is closed
        stop_process(self.proc)


class Capture:
    """A capturing sink for the checks: keeps each delivered message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[bytes] = []

        class Handler:
            async def handle_DATA(inner, server: Any, session: Any, envelope: Any) -> str:
                self.messages.append(envelope.original_content or envelope.content)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class System:
    """How to start one system relaying to a port, and what its check demands."""

    name: str
    start: Callable[[Path, int], tuple[int, Callable[[], None]]]
    missing: Callable[[], str | None]
    drops_attachments: bool = True
    removes_html: bool = True
    delivers: bool = True


def _aiosmtpd_start(work: Path, relay_port: int) -> tuple[int, Callable[[], None]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sink", "--mode", "discard"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    return port, lambda: stop_process(proc)


def _serve_start(work: Path, relay_port: int) -> tuple[int, Callable[[], None]]:
    data = Path(tempfile.mkdtemp(prefix="serve-", dir=work))
    config = data / "mukaika.toml"
    config.write_text(
        f"""# mukaika serve for the peers benchmark: shipped defaults but addresses and paths.
[service]
data_dir = "{data}"
shutdown_grace_seconds = 10.0
[smtp]
listen_port = 0
accept_domains = ["{DOMAIN}"]
max_connections_per_client = 100  # the whole load comes from 127.0.0.1
[delivery]
relay_port = {relay_port}
""",
        encoding="utf-8",
    )
    exe = str(Path(sys.executable).with_name("mukaika"))
    proc = spawn(
        [exe, "serve", "--config", str(config)],
        data / "serve.log",
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        stop_process(proc)
        raise RuntimeError(f"mukaika serve did not start: {(data / 'serve.log').read_text()}")
    return int(line.rsplit(":", 1)[1]), lambda: stop_process(proc, 60)


def _postfix_start(work: Path, relay_port: int, extra: str = "") -> tuple[int, Callable[[], None]]:
    root = Path(tempfile.mkdtemp(prefix="postfix-", dir=work))
    root.chmod(0o755)
    (root / "etc").mkdir()
    (root / "queue").mkdir()
    port = free_port()
    values = {"root": root, "domain": DOMAIN, "relay_port": relay_port, "extra": extra}
    (root / "etc" / "main.cf").write_text(POSTFIX_MAIN.format(**values), encoding="utf-8")
    master = MASTER_CF.format(port=f"127.0.0.1:{port}")
    (root / "etc" / "master.cf").write_text(master, encoding="utf-8")
    base = [POSTFIX, "-c", str(root / "etc")]
    checked = subprocess.run([*base, "check"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise RuntimeError(f"postfix check: {(root / 'maillog').read_text(errors='replace')}")
    proc = subprocess.Popen(
        [*base, "start-fg"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_banner(port)

    def stop() -> None:
        subprocess.run([*base, "stop"], capture_output=True, check=False, timeout=60)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    return port, stop


def _mimedefang_start(work: Path, relay_port: int) -> tuple[int, Callable[[], None]]:
    spool = Path(tempfile.mkdtemp(prefix="mimedefang-", dir=work))
    user = pwd.getpwnam("defang")
    spool.chmod(0o750)
    os.chown(spool, user.pw_uid, user.pw_gid)
    filter_file = spool / "mimedefang-filter"
    filter_file.write_text(MIMEDEFANG_FILTER, encoding="utf-8")
    milter_port = free_port()
    workers = str(max(2, len(os.sched_getaffinity(0)) * 2))
    mux = spawn(
        [
            MULTIPLEXOR,
            "-D",
            "-U",
            "defang",
            "-z",
            str(spool),
            "-s",
            str(spool / "mux.sock"),
            "-f",
            "/usr/bin/mimedefang.pl",
            "-F",
            str(filter_file),
            "-m",
            "2",
            "-x",
            workers,
            "-q",
            "100",
            "-Q",
            "300",
        ],
        spool / "multiplexor.log",
    )
    milter = spawn(
        [
            MIMEDEFANG,
            "-D",
            "-U",
            "defang",
            "-z",
            str(spool),
            "-m",
            str(spool / "mux.sock"),
            "-p",
            f"inet:{milter_port}@127.0.0.1",
            "-q",
        ],
        spool / "mimedefang.log",
    )
    deadline = time.monotonic() + 60
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", milter_port), 1).close()
            break
        except OSError:
            if time.monotonic() > deadline or milter.poll() is not None:
                stop_process(milter)
                stop_process(mux)
                raise RuntimeError("mimedefang did not start") from None
            time.sleep(0.1)
    milters = (
        f"smtpd_milters = inet:127.0.0.1:{milter_port}\n"
        "milter_default_action = tempfail\nmilter_protocol = 6\n"
    )
    port, stop_postfix = _postfix_start(work, relay_port, milters)

    def stop() -> None:
        stop_postfix()
        stop_process(milter)
        stop_process(mux)

    return port, stop


def _missing(*programs: str) -> Callable[[], str | None]:
    def check() -> str | None:
        absent = [p for p in programs if not Path(p).exists()]
        if absent:
            return f"not installed: {', '.join(absent)} (make bench installs it from Debian)"
        if os.geteuid() != 0 and any("postfix" in p or "mimedefang" in p for p in programs):
            return "needs root (Postfix's master binds, then drops privileges)"
        return None

    return check


SYSTEMS = [
    System("aiosmtpd discard", _aiosmtpd_start, _missing(), delivers=False),
    System(
        "postfix relay",
        _postfix_start,
        _missing(POSTFIX),
        drops_attachments=False,
        removes_html=False,  # the MTA ceiling: relays as it is
    ),
    System("postfix + mimedefang", _mimedefang_start, _missing(POSTFIX, MIMEDEFANG, MULTIPLEXOR)),
    System("mukaika serve", _serve_start, _missing(), drops_attachments=False),
]


def sample_mail() -> bytes:
    """A Japanese HTML mail (text and HTML alternatives) with a PDF named in Japanese."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = RCPT
    message["Subject"] = "会議資料の送付"
    message.set_content("会議の資料をお送りします。\n")
    message.add_alternative(
        "<html><body><p>会議の<b>資料</b>をお送りします。</p></body></html>", subtype="html"
    )
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="会議資料.pdf")
    return message.as_bytes(policy=email.policy.SMTP)


def check(system: System, work: Path) -> str | None:
    """None when the system did its job on the sample; else what went wrong."""
    capture = Capture()
    try:
        port, stop = system.start(work, capture.port)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                client.sendmail(SENDER, [RCPT], sample_mail())
            if not system.delivers:
                return None
            deadline = time.monotonic() + 120
            while not capture.messages and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop()
    finally:
        capture.stop()
    if not capture.messages:
        return "the sample was not delivered"
    delivered = email.message_from_bytes(capture.messages[0], policy=email.policy.default)
    types = [part.get_content_type() for part in delivered.walk()]
    if system.removes_html and "text/html" in types:
        return f"HTML delivered: {types}"
    if system.drops_attachments and "application/pdf" in types:
        return f"attachment delivered: {types}"
    return None


def smtp_source(port: int, message: Path, sessions: int, count: int) -> float:
    """Run smtp-source; return its wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [
            SMTP_SOURCE,
            "-s",
            str(sessions),
            "-m",
            str(count),
            "-f",
            SENDER,
            "-t",
            RCPT,
            "-F",
            str(message),
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stderr.strip()[-500:]}")
    return time.monotonic() - started


def measure(system: System, work: Path, message: Path, sessions: int, count: int) -> float:
    """Delivered (or, for a discarding server, accepted) messages per second."""
    sink = SinkCounter(work)
    try:
        port, stop = system.start(work, sink.port)
        try:
            warm = min(50, count)
            smtp_source(port, message, min(sessions, warm), warm)  # imports, pools, caches
            if system.delivers:
                sink.wait_for(warm, 300)
            base = sink.count
            started = time.monotonic()
            elapsed = smtp_source(port, message, sessions, count)
            if not system.delivers:
                return count / elapsed
            done = sink.wait_for(base + count, 600)
            arrived = sink.count - base
            return arrived / (done - started)
        finally:
            stop()
    finally:
        sink.stop()


def run(rounds: int, count: int, sessions: int, smoke: bool = False) -> dict[str, Any]:
    sample = generate.generate_class("html_30k", 1)[0]
    work = Path(tempfile.mkdtemp(prefix="mukaika-peers-"))
    work.chmod(0o755)
    try:
        message = work / "message.eml"
        message.write_bytes(sample.raw.replace(b"\r\n", b"\n"))  # smtp-source sends CRLF
        systems = [
            s for s in SYSTEMS if not smoke or s.name in ("aiosmtpd discard", "mukaika serve")
        ]
        skipped: dict[str, str] = {}
        for program in (SMTP_SOURCE, SMTP_SINK):
            if not Path(program).exists():
                raise SystemExit(f"{program} is missing: apt-get install postfix")
        active: list[System] = []
        checks: dict[str, str] = {}
        for system in systems:
            reason = system.missing()
            if reason is None:
                problem = check(system, work)
                checks[system.name] = problem or "ok"
                if problem is not None:
                    reason = f"failed its check: {problem}"
            if reason is None:
                active.append(system)
            else:
                skipped[system.name] = reason
                print(f"{system.name}: skipped: {reason}", flush=True)
        figures: dict[str, list[float]] = {s.name: [] for s in active}
        for round_number in range(rounds):
            for system in active:  # interleaved: every system once per round
                rate = measure(system, work, message, sessions, count)
                figures[system.name].append(round(rate, 1))
                print(f"round {round_number + 1} {system.name:22s} {rate:8.1f} msg/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, values in figures.items():
        rows.append(
            {
                "system": name,
                "msg_per_s_median": round(statistics.median(values), 1),
                "msg_per_s_min": min(values),
                "msg_per_s_max": max(values),
                "rounds": values,
            }
        )
    medians = {row["system"]: row["msg_per_s_median"] for row in rows}
    ratios = {}
    ours = medians.get("mukaika serve")
    for peer in ("aiosmtpd discard", "postfix + mimedefang", "postfix relay"):
        if ours and medians.get(peer):
            ratios[f"mukaika serve / {peer}"] = round(ours / medians[peer], 2)
    return {
        "harness": f"smtp-source -s {sessions} -m {count} into each system, delivering to "
        "smtp-sink",
        "message": generate.describe([sample]),
        "rounds": rounds,
        "rows": rows,
        "ratios": ratios,
        "checks": checks,
        "skipped": skipped,
    }


def plot(result: dict[str, Any], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = result["rows"]
    names = [row["system"] for row in rows]
    medians = [row["msg_per_s_median"] for row in rows]
    low = [row["msg_per_s_median"] - row["msg_per_s_min"] for row in rows]
    high = [row["msg_per_s_max"] - row["msg_per_s_median"] for row in rows]
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.bar(names, medians, yerr=[low, high], capsize=6, color="#4878a8")
    axis.set_ylabel("delivered msg/s (median; bars: min to max)")
    axis.set_title(result["harness"], fontsize=9)
    figure.tight_layout()
    path = out / "peers.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="Python systems, a few messages")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args()
    result = run(args.rounds, args.messages, args.sessions, smoke=args.smoke)
    path = write_result("peers", result, out_dir=args.out)
    plotted = plot(result, args.out)
    for row in result["rows"]:
        print(
            f"{row['system']:22s} median {row['msg_per_s_median']:8.1f} msg/s "
            f"(min {row['msg_per_s_min']}, max {row['msg_per_s_max']})"
        )
    for name, ratio in result["ratios"].items():
        print(f"{name}: {ratio}")
    for name, reason in result["skipped"].items():
        print(f"{name}: skipped: {reason}")
    print(f"written: {path}" + (f", {plotted}" if plotted else ""))


if __name__ == "__main__":
    main()

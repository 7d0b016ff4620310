"""The relay end to end, against the Python and C ceilings measured in the same run.

What is measured (all on 127.0.0.1, one host; the load generator and every server share its
cores, which is stated with the results):

1. **Ceilings**: the load generator (:mod:`benchmarks.loadgen`, N concurrent sessions,
   closed loop) against a bare aiosmtpd server that discards (:mod:`benchmarks.sink`,
   ``--mode discard``: the Python protocol ceiling) and, when installed, Postfix's
   ``smtp-sink`` (the C ceiling). Accepted messages/s, reply latency after the final dot,
   peak RSS of the server.
2. **Relay**: ``mukaika serve`` as shipped (durable spool with fsync, quarantine of the
   original, audit log, sanitizer process pool), relaying to a recording sink (``--mode
   record``). Accepted/s (250 after fsync), delivered/s (messages recorded by the sink over
   the time from the first final dot to the last delivery), final-dot-to-delivered latency
   p50/p99 (Message-IDs match sends to deliveries; CLOCK_MONOTONIC is one clock for the
   host), peak RSS of the whole ``serve`` process tree (sampled every 100 ms).
3. **Half rate**: the load generator in open loop at half of the relay's best sustained
   delivered rate; latency p50/p99 there (the goal: p99 < 1 s).
4. **Where the time goes**: py-spy samples ``serve`` and its sanitizer processes during the
   largest-concurrency run (top functions in the JSON); and a diagnosis run with the data
   directory on tmpfs, where fsync costs nothing (not as shipped: it shows how much of the
   gap is disk flushes).

Ratios: relay delivered/s over the aiosmtpd ceiling's accepted/s at the same concurrency
(goal ≥ 0.5), and over ``smtp-sink``'s.

Messages: the ``html_30k`` class of :mod:`benchmarks.generate` by default (about 30 KB,
Japanese, multipart/alternative), ``--class mix`` for the mix.

``python -m benchmarks.relay [--seconds 6] [--concurrency 1 4 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks import generate
from benchmarks.common import ROOT, latency_summary, table, write_result
from benchmarks.loadgen import LoadResult, run_load
from benchmarks.profiling import render, summarize

SMTP_SINK = "/usr/sbin/smtp-sink"
RCPT = "staff@city.example.lg.jp"


class MemorySampler:
    """Peak RSS (MB) of a process and its children, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak_mb = max(self.peak_mb, total / 1e6)

    def _cpu(self) -> float:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            return sum(sum(p.cpu_times()[:4]) for p in procs)
        except psutil.Error:
            return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._cpu0 = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = self._cpu() - self._cpu0
        self._stop.set()
        self._thread.join()


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def _read_line_with(proc: subprocess.Popen[str], marker: str, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            continue
        if marker in line:
            return line.strip()
    raise RuntimeError(f"{proc.args!r}: no {marker!r} within {timeout} s")


def _stop(proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_sink(
    mode: str, work: Path, out: Path | None = None
) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", "benchmarks.sink", "--mode", mode]
    if out is not None:
        cmd += ["--out", str(out)]
    proc = _spawn(cmd, work / f"sink-{mode}.log")
    port = int(_read_line_with(proc, "PORT").split()[1])
    return proc, port


def _start_smtp_sink(work: Path) -> tuple[subprocess.Popen[str], int] | None:
    if not Path(SMTP_SINK).exists():
        return None
    port = _free_port()
    # -u: smtp-sink drops root privileges to this user after binding.
    cmd = [SMTP_SINK, "-u", "nobody", f"127.0.0.1:{port}", "1024"]
    proc = _spawn(cmd, work / "smtp-sink.log")
    _wait_port(port)
    return proc, port


def _wait_port(port: int, timeout: float = 60.0) -> None:
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


def _start_serve(
    work: Path, relay_port: int, data: Path | None = None, extra: str = ""
) -> tuple[subprocess.Popen[str], int]:
    data = data or work / "gateway"
    config = work / "bench.toml"
    config.write_text(
        f"""# mukaika serve for the relay benchmark: shipped defaults except addresses and paths.
[service]
data_dir = "{data}"
shutdown_grace_seconds = 10.0

[smtp]
listen_host = "127.0.0.1"
listen_port = 0
accept_domains = ["city.example.lg.jp"]

[delivery]
relay_host = "127.0.0.1"
relay_port = {relay_port}
{extra}"""
    )
    exe = str(Path(sys.executable).with_name("mukaika"))
    proc = _spawn([exe, "serve", "--config", str(config)], work / "serve.log")
    line = _read_line_with(proc, "listening on")
    port = int(line.rsplit(":", 1)[1])
    _wait_port(port)
    return proc, port


def _load(port: int, messages: list[bytes], **kwargs: Any) -> LoadResult:
    return asyncio.run(run_load(port, messages, **kwargs))


def _ceiling(
    name: str, pid: int, port: int, messages: list[bytes], connections: int, seconds: float
) -> dict[str, Any]:
    with MemorySampler(pid) as mem:
        load = _load(
            port, messages, connections=connections, count=10**9, duration=seconds, tag=name
        )
    s = load.summary()
    return {
        "server": name,
        "connections": connections,
        "accepted": s["accepted"],
        "errors": s["errors"],
        "accepted_per_s": s["accepted_per_s"],
        "accept_p50_ms": s["accept_latency"]["p50_ms"],
        "accept_p99_ms": s["accept_latency"]["p99_ms"],
        "peak_rss_mb": round(mem.peak_mb, 1),
        "server_cpu_s": round(mem.cpu_s, 2),
        "client_cpu_s": s["client_cpu_s"],
        "first_errors": s["first_errors"],
    }


def read_deliveries(record: Path) -> dict[str, float]:
    """Message-ID -> delivery time, from the recording sink's file (complete lines only)."""
    out: dict[str, float] = {}
    try:
        text = record.read_text()
    except OSError:
        return out
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            mid, t, _ = line.rstrip("\n").split("\t")
            out[mid] = float(t)
    return out


def _relay_case(
    serve_pid: int,
    port: int,
    record: Path,
    messages: list[bytes],
    connections: int,
    seconds: float,
    tag: str,
    rate: float | None = None,
    drain_timeout: float = 120.0,
) -> dict[str, Any]:
    with MemorySampler(serve_pid) as mem:
        load = _load(
            port,
            messages,
            connections=connections,
            count=10**9,
            duration=seconds,
            rate=rate,
            tag=tag,
        )
        accepted = {s.message_id: s for s in load.sent if 200 <= s.code < 300}
        # Wait until every accepted message is delivered (or the drain timeout passes).
        deadline = time.monotonic() + drain_timeout
        delivered: dict[str, float] = {}
        while time.monotonic() < deadline:
            delivered = {m: t for m, t in read_deliveries(record).items() if m in accepted}
            if len(delivered) >= len(accepted):
                break
            time.sleep(0.25)
    s = load.summary()
    lat = [delivered[m] - accepted[m].t_dot for m in delivered]
    first = min((x.t_dot for x in accepted.values()), default=0.0)
    last = max(delivered.values(), default=first)
    span = max(last - first, 1e-9)
    summary = latency_summary(lat)
    row = {
        "server": "mukaika serve" + (" (half rate)" if rate else ""),
        "connections": connections,
        "offered_rate": round(rate, 1) if rate else None,
        "accepted": s["accepted"],
        "errors": s["errors"],
        "refused": s["refused"],
        "accepted_per_s": s["accepted_per_s"],
        "accept_p50_ms": s["accept_latency"]["p50_ms"],
        "accept_p99_ms": s["accept_latency"]["p99_ms"],
        "delivered": len(delivered),
        "delivered_per_s": round(len(delivered) / span, 1),
        "deliver_p50_ms": summary["p50_ms"],
        "deliver_p99_ms": summary["p99_ms"],
        "deliver_max_ms": summary["max_ms"],
        "peak_rss_mb": round(mem.peak_mb, 1),
        "server_cpu_s": round(mem.cpu_s, 2),
        "client_cpu_s": s["client_cpu_s"],
        "first_errors": s["first_errors"],
        "_latencies_ms": sorted(round(x * 1000, 2) for x in lat),
    }
    return row


def _pyspy(pid: int, seconds: float, out: Path) -> subprocess.Popen[str] | None:
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        return None
    cmd = [str(exe), "record", "--format", "raw", "-o", str(out), "-d", str(int(seconds))]
    cmd += ["-r", "100", "-p", str(pid), "--subprocesses", "--nonblocking"]
    log = (out.parent / "py-spy.log").open("w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)


def _diagnose_tmpfs(
    messages: list[bytes], connections: int, seconds: float, work: Path
) -> dict[str, Any]:
    """The relay with its data directory on tmpfs (fsync costs nothing): NOT as shipped.

    Only to show how much of the gap to the ceiling is the disk flushes."""
    shm = Path(tempfile.mkdtemp(prefix="mukaika-bench-", dir="/dev/shm"))
    try:
        record = shm / "deliveries.tsv"
        sink, sink_port = _start_sink("record", work, record)
        serve, serve_port = _start_serve(work, sink_port, data=shm / "gateway")
        try:
            _relay_case(serve.pid, serve_port, record, messages, 2, 1.0, "warmup")
            row = _relay_case(serve.pid, serve_port, record, messages, connections, seconds, "shm")
        finally:
            _stop(serve)
            _stop(sink)
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    row.pop("_latencies_ms", None)
    row["server"] = "mukaika serve, spool on tmpfs (diagnosis)"
    return row


def run(
    seconds: float,
    concurrency: list[int],
    cls: str,
    half_rate_seconds: float,
    profile: bool = True,
    tmpfs: bool = True,
) -> dict[str, Any]:
    samples = generate.generate_mix(100) if cls == "mix" else generate.generate_class(cls, 20)
    messages = [s.raw for s in samples]
    rows: list[dict[str, Any]] = []
    latencies: dict[str, list[float]] = {}
    profile_summary: dict[str, Any] = {}
    notes: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="mukaika-bench-"))
    try:
        # 1. ceilings
        proc, port = _start_sink("discard", work)
        try:
            for c in concurrency:
                rows.append(_ceiling("aiosmtpd discard", proc.pid, port, messages, c, seconds))
                _print(rows[-1])
        finally:
            _stop(proc)
        started = _start_smtp_sink(work)
        if started is None:
            notes.append(f"{SMTP_SINK} not installed: no C ceiling (apt-get install postfix)")
        else:
            proc, port = started
            try:
                for c in concurrency:
                    rows.append(_ceiling("postfix smtp-sink", proc.pid, port, messages, c, seconds))
                    _print(rows[-1])
            finally:
                _stop(proc)
        # 2. relay, closed loop, then 3. half rate (open loop, largest concurrency)
        record = work / "deliveries.tsv"
        sink, sink_port = _start_sink("record", work, record)
        serve, serve_port = _start_serve(work, sink_port)
        try:
            # Warm-up (not reported): the sanitizer pool starts lazily on the first message.
            _relay_case(serve.pid, serve_port, record, messages, 2, 1.0, "warmup")
            relay_rows = []
            for c in concurrency:
                spy = None
                if profile and c == max(concurrency):
                    spy = _pyspy(serve.pid, seconds, work / "serve-pyspy.txt")
                row = _relay_case(serve.pid, serve_port, record, messages, c, seconds, f"relay{c}")
                if spy is not None:
                    spy.wait(60)
                    if (work / "serve-pyspy.txt").exists():
                        profile_summary = summarize(work / "serve-pyspy.txt", top=20)
                rows.append(row)
                relay_rows.append(row)
                _print(row)
            rate = max(r["delivered_per_s"] for r in relay_rows) / 2
            row = _relay_case(
                serve.pid,
                serve_port,
                record,
                messages,
                max(concurrency),
                half_rate_seconds,
                "half",
                rate=rate,
            )
            latencies["half_rate_deliver_ms"] = row.pop("_latencies_ms")
            rows.append(row)
            _print(row)
            latencies["closed_loop_deliver_ms"] = relay_rows[-1]["_latencies_ms"]
            for r in relay_rows:
                r.pop("_latencies_ms", None)
        finally:
            _stop(serve)
            _stop(sink)
        if tmpfs and Path("/dev/shm").is_dir():
            rows.append(_diagnose_tmpfs(messages, max(concurrency), seconds, work))
            _print(rows[-1])
    finally:
        if os.environ.get("MUKAIKA_BENCH_KEEP"):
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    _ratios(rows)
    return {
        "message_class": cls,
        "message_sizes": generate.describe(samples),
        "seconds_per_measurement": seconds,
        "half_rate_seconds": half_rate_seconds,
        "concurrency": concurrency,
        "rows": rows,
        "latencies": latencies,
        "serve_profile": profile_summary,
        "notes": notes,
    }


def _ratios(rows: list[dict[str, Any]]) -> None:
    ceilings = {
        (r["server"], r["connections"]): r["accepted_per_s"]
        for r in rows
        if r["server"] in ("aiosmtpd discard", "postfix smtp-sink")
    }
    for r in rows:
        if r["server"] != "mukaika serve":
            continue
        py = ceilings.get(("aiosmtpd discard", r["connections"]))
        c = ceilings.get(("postfix smtp-sink", r["connections"]))
        if py:
            r["delivered_vs_aiosmtpd"] = round(r["delivered_per_s"] / py, 3)
            r["accepted_vs_aiosmtpd"] = round(r["accepted_per_s"] / py, 3)
        if c:
            r["delivered_vs_smtp_sink"] = round(r["delivered_per_s"] / c, 3)


def _print(row: dict[str, Any]) -> None:
    extra = ""
    if "delivered_per_s" in row:
        extra = (
            f" delivered {row['delivered']}/{row['accepted']} {row['delivered_per_s']:.1f}/s "
            f"dot->delivered p50 {row['deliver_p50_ms']:.1f} p99 {row['deliver_p99_ms']:.1f} ms"
        )
    print(
        f"{row['server']:28s} c={row['connections']:3d} accepted {row['accepted_per_s']:8.1f}/s "
        f"dot->250 p50 {row['accept_p50_ms']:.2f} p99 {row['accept_p99_ms']:.2f} ms "
        f"rss {row['peak_rss_mb']:.0f} MB errors {row['errors']}{extra}",
        flush=True,
    )


COLUMNS = [
    ("server", "server"),
    ("connections", "conns"),
    ("offered_rate", "offered msg/s"),
    ("accepted_per_s", "accepted/s"),
    ("accept_p99_ms", "dot→250 p99 ms"),
    ("delivered_per_s", "delivered/s"),
    ("deliver_p50_ms", "dot→delivered p50 ms"),
    ("deliver_p99_ms", "dot→delivered p99 ms"),
    ("peak_rss_mb", "peak RSS MB"),
    ("delivered_vs_aiosmtpd", "÷ aiosmtpd"),
    ("delivered_vs_smtp_sink", "÷ smtp-sink"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="load per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--class", dest="cls", default="html_30k", help="generator class or mix")
    parser.add_argument("--half-rate-seconds", type=float, default=15.0)
    parser.add_argument("--no-profile", action="store_true", help="no py-spy of serve")
    parser.add_argument("--no-tmpfs", action="store_true", help="skip the tmpfs diagnosis")
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    result = run(
        args.seconds,
        args.concurrency,
        args.cls,
        args.half_rate_seconds,
        profile=not args.no_profile,
        tmpfs=not args.no_tmpfs,
    )
    kwargs = {"out_dir": args.out} if args.out else {}
    name = "relay" if args.cls == "html_30k" else f"relay-{args.cls}"
    path = write_result(name, result, **kwargs)
    print()
    print(table(result["rows"], COLUMNS))
    for note in result["notes"]:
        print(f"note: {note}")
    if result["serve_profile"]:
        print("\npy-spy of mukaika serve at the largest concurrency:")
        print(render(result["serve_profile"]))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()

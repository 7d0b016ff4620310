"""The sanitizing pipeline in process: throughput, latency and memory per message class.

What is measured, for every class of :mod:`benchmarks.generate`, the stated mix and
(when present) the mail of the shared corpus:

* ``sanitize_message(raw, policy)`` as the gateway calls it (the pipeline's default
  disarmer: CDR in an isolated child process) in one process, i.e. **one core**: messages/s
  and MB/s of input per CPU-second of that process and its children (the wall-clock rate is
  kept beside it: on a shared host the two differ), per-message latency p50/p99 (wall clock,
  ``time.perf_counter`` around each call) and peak RSS of that process;
* policies: ``shipped`` (the defaults: OOXML, PDF, images, ZIP and text attachments disarmed,
  the rest removed), ``remove`` (every attachment removed: the 50 MB/s goal) for attachment
  classes and the mix;
* the standard library's baselines in the same child, on the same messages: parse-only,
  ``BytesParser(policy=compat32).parsebytes(raw)``, and parse-and-decode (every leaf's
  ``get_payload(decode=True)`` too: issue 13's goal); our figure is given as a ratio to each;
* for the HTML classes a second policy, ``prefer_plain = false``, which converts the HTML
  alternative to text instead of keeping the plain one (the hard case of the 1,000 msg/s goal);
* scaling: 1 and N processes (default 2) each sanitizing the mix for the same wall time,
  started together; aggregate messages/s.

How: every measurement runs in a fresh spawned child (peak RSS is that child's
``VmHWM``; its baseline is printed beside it). Each child first runs every message once
(warm-up: imports, lazy tables, caches), then cycles through its messages until the time is
spent (at least one full pass). Wall time is one core: nothing else runs in the child.

``python -m benchmarks.pipeline [--seconds 2] [--corpus PATH] [--profile CLASS]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections import Counter
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.common import (
    CORPUS,
    corpus_mail_paths,
    cpu_seconds,
    latency_summary,
    peak_rss_mb,
    rss_mb,
    run_in_child,
    table,
    write_result,
)

TEXT_SAMPLES = 40
ATTACHMENT_SAMPLES = 16
MIX_SAMPLES = 200
CORPUS_MAX_BYTES = 2_000_000


def _policy(name: str) -> Any:
    """``shipped``: the defaults (OOXML, PDF, images, ZIP, text disarmed by CDR; the rest
    removed); ``html``: shipped, but HTML converted even with a plain alternative;
    ``remove``: every attachment removed (the removal is decided in process)."""
    from sanitizers.policy import AttachmentPolicy, BodyPolicy, Policy

    if name == "html":
        return Policy(body=BodyPolicy(prefer_plain=False))
    if name == "remove":
        return Policy(attachments=AttachmentPolicy(by_kind={}))
    return Policy()


def _run_loop(samples: list[bytes], func: Any, seconds: float) -> tuple[list[float], int, float]:
    """Cycle ``func`` over ``samples`` for ``seconds`` (at least one pass).

    Returns per-call latencies, bytes processed and the wall time."""
    latencies: list[float] = []
    nbytes = 0
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds
    i = 0
    n = len(samples)
    while True:
        raw = samples[i % n]
        t0 = clock()
        func(raw)
        t1 = clock()
        latencies.append(t1 - t0)
        nbytes += len(raw)
        i += 1
        if i >= n and t1 >= deadline:
            break
    return latencies, nbytes, clock() - start


def _measure(samples: list[bytes], policy_name: str, seconds: float) -> dict[str, Any]:
    """In a child: sanitize and parse-only figures for ``samples``."""
    from sanitizers.pipeline import sanitize_message

    base_rss = rss_mb()
    policy = _policy(policy_name)

    def sanitize(raw: bytes) -> Any:
        return sanitize_message(raw, policy)

    verdicts: Counter[str] = Counter()
    for raw in samples:  # warm-up pass, also collects verdicts
        verdicts[sanitize(raw).report.verdict.value] += 1
    cpu0 = cpu_seconds()
    lat, nbytes, wall = _run_loop(samples, sanitize, seconds)
    cpu = cpu_seconds() - cpu0
    peak = peak_rss_mb()
    parser = BytesParser(policy=email_policy.compat32)
    for raw in samples:
        parser.parsebytes(raw)
    pcpu0 = time.process_time()
    plat, pbytes, pwall = _run_loop(samples, parser.parsebytes, max(seconds / 2, 0.5))
    pcpu = time.process_time() - pcpu0
    for raw in samples:
        _parse_and_decode(raw)
    dcpu0 = time.process_time()
    dlat, _, _ = _run_loop(samples, _parse_and_decode, max(seconds / 2, 0.5))
    dcpu = time.process_time() - dcpu0
    return {
        "messages": len(lat),
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        # Per core = per CPU-second of this process: robust when other work shares the host.
        "msgs_per_s": round(len(lat) / cpu, 1),
        "mb_per_s": round(nbytes / cpu / 1e6, 2),
        "wall_msgs_per_s": round(len(lat) / wall, 1),
        **latency_summary(lat),
        "base_rss_mb": round(base_rss, 1),
        "peak_rss_mb": round(peak, 1),
        "verdicts": dict(verdicts),
        "parse_msgs_per_s": round(len(plat) / pcpu, 1),
        "parse_mb_per_s": round(pbytes / pcpu / 1e6, 2),
        "parse_wall_msgs_per_s": round(len(plat) / pwall, 1),
        "parse_p50_ms": round(sorted(plat)[len(plat) // 2] * 1000, 3),
        "decode_msgs_per_s": round(len(dlat) / dcpu, 1),
    }


def _parse_and_decode(raw: bytes) -> None:
    """The baseline of issue 13's goal: compat32 parse, then every leaf's transfer encoding
    undone (what any reader of the parts must do at least)."""
    message = BytesParser(policy=email_policy.compat32).parsebytes(raw)
    for part in message.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)


def _scaling_worker(
    samples: list[bytes], start_at: float, seconds: float
) -> tuple[int, int, dict[str, int], float]:
    from sanitizers.pipeline import sanitize_message

    policy = _policy("shipped")
    for raw in samples:
        sanitize_message(raw, policy)
    late = time.monotonic() - start_at
    time.sleep(max(0.0, -late))
    deadline = start_at + seconds
    count = nbytes = 0
    verdicts: Counter[str] = Counter()
    i = 0
    while time.monotonic() < deadline:
        raw = samples[i % len(samples)]
        verdicts[sanitize_message(raw, policy).report.verdict.value] += 1
        count += 1
        nbytes += len(raw)
        i += 1
    return count, nbytes, dict(verdicts), max(0.0, late)


def _scaling(samples: list[bytes], processes: int, seconds: float) -> dict[str, Any]:
    """``processes`` fresh interpreters (not a Pool: its daemonic workers may not start the
    CDR child) sanitize their share of ``samples`` for the same ``seconds``, started together."""
    from concurrent.futures import ThreadPoolExecutor

    # Generous start: each process starts an interpreter and warms up on its share first.
    start_at = time.monotonic() + 4.0 + 0.03 * len(samples)
    shares = [samples[i::processes] or samples for i in range(processes)]
    with ThreadPoolExecutor(processes) as threads:
        jobs = [
            threads.submit(run_in_child, _scaling_worker, share, start_at, seconds)
            for share in shares
        ]
        results = [job.result() for job in jobs]
    count = sum(r[0] for r in results)
    nbytes = sum(r[1] for r in results)
    verdicts: Counter[str] = Counter()
    for r in results:
        verdicts.update(r[2])
    return {
        "processes": processes,
        "messages": count,
        "msgs_per_s": round(count / seconds, 1),
        "mb_per_s": round(nbytes / seconds / 1e6, 2),
        "verdicts": dict(verdicts),
        # A process that was still warming up at the start time measured less: say so.
        "late_start_s": round(max(r[3] for r in results), 2),
    }


def _corpus_samples(path: Path | None) -> list[bytes]:
    out: list[bytes] = []
    if path is None:
        if not CORPUS.is_dir():
            return out
        for file in corpus_mail_paths():
            if file.stat().st_size > CORPUS_MAX_BYTES:
                continue
            if file.suffix in (".mbox", ".mbx") or "mbox" in file.name:
                out.extend(generate.iter_corpus(file))
            else:
                out.append(file.read_bytes())
    else:
        out.extend(generate.iter_corpus(path))
    return [raw for raw in out if 0 < len(raw) <= CORPUS_MAX_BYTES]


def profile(cls: str, policy_name: str, seconds: float) -> str:
    """cProfile of sanitizing ``cls``: top functions by own time and by cumulative time."""
    from sanitizers.pipeline import sanitize_message

    samples = [s.raw for s in _samples_for(cls)]
    policy = _policy(policy_name)
    for raw in samples:
        sanitize_message(raw, policy)
    prof = cProfile.Profile()
    prof.enable()
    _run_loop(samples, lambda raw: sanitize_message(raw, policy), seconds)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def _samples_for(cls: str) -> list[generate.Sample]:
    if cls == "mix":
        return generate.generate_mix(MIX_SAMPLES)
    count = ATTACHMENT_SAMPLES if cls.startswith("att_") else TEXT_SAMPLES
    return generate.generate_class(cls, count)


def run(seconds: float, corpus: Path | None, processes: int, classes: list[str]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    sets: dict[str, list[generate.Sample]] = {}
    for cls in classes:
        sets[cls] = _samples_for(cls)
        variants = ["shipped"]
        if cls in ("html_30k", "newsletter"):
            variants.append("html")
        if cls.startswith("att_"):
            variants.append("remove")
        for policy_name in variants:
            raws = [s.raw for s in sets[cls]]
            figures = run_in_child(_measure, raws, policy_name, seconds)
            row = {
                "class": cls,
                "policy": policy_name,
                "samples": len(raws),
                "mean_kb": round(sum(map(len, raws)) / len(raws) / 1000, 1),
                **figures,
            }
            _ratios(row)
            rows.append(row)
            _print_row(row)
    mix = generate.generate_mix(MIX_SAMPLES)
    sets["mix"] = mix
    raws = [s.raw for s in mix]
    for policy_name in ("shipped", "remove"):
        row = {
            "class": "mix",
            "policy": policy_name,
            "samples": len(raws),
            "mean_kb": round(sum(map(len, raws)) / len(raws) / 1000, 1),
            **run_in_child(_measure, raws, policy_name, seconds * 2),
        }
        _ratios(row)
        rows.append(row)
        _print_row(row)
    corpus_raws = _corpus_samples(corpus)
    if corpus_raws:
        row = {
            "class": "corpus",
            "policy": "shipped",
            "samples": len(corpus_raws),
            "mean_kb": round(sum(map(len, corpus_raws)) / len(corpus_raws) / 1000, 1),
            **run_in_child(_measure, corpus_raws, "shipped", seconds * 2),
        }
        _ratios(row)
        rows.append(row)
        _print_row(row)
    scaling = []
    for cls in ("mix", "html_30k"):
        data = [s.raw for s in (sets.get(cls) or _samples_for(cls))]
        for p in range(1, processes + 1):
            entry = {"class": cls, **_scaling(data, p, seconds * 2)}
            scaling.append(entry)
            print(f"scaling {cls:10s} processes={p}: {entry['msgs_per_s']:8.1f} msg/s", flush=True)
    return {
        "seconds_per_measurement": seconds,
        "mix": generate.DEFAULT_MIX,
        "mix_sizes": generate.describe(mix),
        "class_sizes": {
            cls: generate.describe(samples)[cls] for cls, samples in sets.items() if cls != "mix"
        },
        "rows": rows,
        "scaling": scaling,
    }


def _ratios(row: dict[str, Any]) -> None:
    row["vs_parse"] = round(row["msgs_per_s"] / row["parse_msgs_per_s"], 3)
    row["vs_decode"] = round(row["msgs_per_s"] / row["decode_msgs_per_s"], 3)


def _print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['class']:11s} {row['policy']:7s} {row['mean_kb']:7.1f} KB "
        f"{row['msgs_per_s']:8.1f} msg/s {row['mb_per_s']:7.2f} MB/s "
        f"(wall {row['wall_msgs_per_s']:8.1f}) "
        f"p50 {row['p50_ms']:7.2f} ms p99 {row['p99_ms']:7.2f} ms "
        f"rss {row['peak_rss_mb']:6.1f} MB | parse-only {row['parse_msgs_per_s']:8.1f} msg/s "
        f"(x{row['vs_parse']:.3f}) | parse+decode {row['decode_msgs_per_s']:8.1f} msg/s "
        f"(x{row['vs_decode']:.3f})",
        flush=True,
    )


COLUMNS = [
    ("class", "class"),
    ("policy", "policy"),
    ("mean_kb", "mean KB"),
    ("msgs_per_s", "msg/s (1 core)"),
    ("mb_per_s", "MB/s"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("peak_rss_mb", "peak RSS MB"),
    ("parse_msgs_per_s", "stdlib parse-only msg/s"),
    ("vs_parse", "ratio to parse-only"),
    ("decode_msgs_per_s", "stdlib parse+decode msg/s"),
    ("vs_decode", "ratio to parse+decode"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per figure")
    parser.add_argument("--corpus", type=Path, help="a directory of .eml, an mbox or a Maildir")
    parser.add_argument("--processes", type=int, default=2, help="scaling goes 1..N")
    parser.add_argument("--classes", nargs="*", default=list(generate.CLASSES))
    parser.add_argument("--profile", metavar="CLASS", help="only profile CLASS (or 'mix')")
    parser.add_argument("--policy", default="shipped", choices=["shipped", "html", "remove"])
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    if args.profile:
        print(profile(args.profile, args.policy, args.seconds))
        return
    result = run(args.seconds, args.corpus, args.processes, args.classes)
    kwargs = {"out_dir": args.out} if args.out else {}
    path = write_result("pipeline", result, **kwargs)
    print()
    print(table(result["rows"], COLUMNS))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()

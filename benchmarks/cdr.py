"""CDR: files/s per core for typical docx, docm, xlsx, PDF (with and without JavaScript), zip,
OpenDocument (odt, with a macro, ods), xlsb (with a VBA project), SVG (with script, and
rasterised to PNG with ``cdr.svg_rasterize``), Outlook containers (winmail.dat, .msg), 一太郎
(.jtd, and compressed .jtdc, text extracted), and the same zip's members as 7z, RAR, LZH and
tar.gz (rebuilt as ZIP).

What is measured, per kind, on files built by :mod:`benchmarks.generate` (sizes printed):

* **in process** — ``sanitizers.cdr.registry.Registry().disarm(data, name, kind, SANITIZE, policy)``
  (the sanitizer alone, one core): files/s and MB/s per CPU-second, latency p50/p99/max per
  file, and that max against the configured per-file timeout (``policy.cdr.seconds``);
* **isolated** — the gateway's disarmer, ``IsolatedDisarmer`` (a limited, recycled child
  process per file exchange): files/s by wall clock, p50/p99, and files per CPU-second of the
  caller and its sanitizer children together (read from /proc), which compares with the
  in-process figure on a loaded machine where wall clock does not. The difference is the
  price of isolation (pipes, process recycling every ``tasks_per_process`` files).

Each kind runs in a fresh spawned child after one warm-up pass over its files. Policy: the
shipped defaults, with every kind set to ``sanitize`` (so ZIP entries are sanitized too).

``python -m benchmarks.cdr [--seconds 2]``
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.common import latency_summary, peak_rss_mb, run_in_child, table, write_result
from tests.sanitizers.cdr import outlook_fixtures as outlook  # the one writer of these formats

FILES_PER_KIND = 8

KINDS: dict[str, tuple[str, str]] = {
    # name: (kind for the registry, file name)
    "docx": ("ooxml", "資料.docx"),
    "docm": ("ooxml", "請求書.docm"),
    "xlsx": ("ooxml", "集計表.xlsx"),
    "pdf": ("pdf", "お知らせ.pdf"),
    "pdf_js": ("pdf", "invoice.pdf"),
    "zip": ("zip", "資料一式.zip"),
    "7z": ("archive", "資料一式.7z"),
    "rar": ("archive", "資料一式.rar"),
    "lzh": ("archive", "資料一式.lzh"),
    "tar_gz": ("archive", "資料一式.tar.gz"),
    "odt": ("odf", "議事録.odt"),
    "odt_macro": ("odf", "議事録.odt"),
    "ods": ("odf", "集計表.ods"),
    "xlsb": ("xlsb", "集計表.xlsb"),
    "xlsb_macro": ("xlsb", "集計表.xlsb"),
    "svg": ("svg", "案内図.svg"),
    "svg_script": ("svg", "案内図.svg"),
    "svg_png": ("svg", "案内図.svg"),
    "tnef": ("tnef", "winmail.dat"),
    "msg": ("msg", "転送.msg"),
    "jtd": ("ichitaro", "議事録.jtd"),
    "jtdc": ("ichitaro", "議事録.jtdc"),
}
# Kinds measured under other CDR settings than the shipped ones.
CDR_SETTINGS: dict[str, dict[str, Any]] = {"svg_png": {"svg_rasterize": True}}


def build(name: str, count: int, seed: int = generate.DEFAULT_SEED) -> list[bytes]:
    rng = random.Random(f"{seed}:cdr:{name}")
    makers = {
        "docx": lambda: generate.make_docx(rng),
        "docm": lambda: generate.make_docx(rng, macro=True),
        "xlsx": lambda: generate.make_xlsx(rng),
        "pdf": lambda: generate.make_pdf(rng),
        "pdf_js": lambda: generate.make_pdf(rng, javascript=True),
        "zip": lambda: generate.make_zip(rng),
        "7z": lambda: generate.make_archive(rng, "7z"),
        "rar": lambda: generate.make_archive(rng, "rar"),
        "lzh": lambda: generate.make_archive(rng, "lzh"),
        "tar_gz": lambda: generate.make_archive(rng, "tar.gz"),
        "odt": lambda: generate.make_odt(rng),
        "odt_macro": lambda: generate.make_odt(rng, macro=True),
        "ods": lambda: generate.make_ods(rng),
        "xlsb": lambda: generate.make_xlsb(rng),
        "xlsb_macro": lambda: generate.make_xlsb(rng, macro=True),
        "svg": lambda: generate.make_svg(rng),
        "svg_script": lambda: generate.make_svg(rng, script=True),
        "svg_png": lambda: generate.make_svg(rng, script=True),
        "tnef": lambda: _tnef(rng),
        "msg": lambda: _msg(rng),
        "jtd": lambda: outlook.ichitaro(generate._letter(rng, 4000)),
        "jtdc": lambda: outlook.ichitaro_compressed(outlook.ichitaro(generate._letter(rng, 4000))),
    }
    return [makers[name]() for _ in range(count)]


def _tnef(rng: random.Random) -> bytes:
    """A winmail.dat with an RTF body, a docx and an xlsx (the tests' TNEF writer)."""
    rtf = b"{\\rtf1\\ansi\\ansicpg932 " + generate._letter(rng, 2000).encode("cp932", "replace")
    files = [
        outlook.TnefFile("資料.docx", generate.make_docx(rng)),
        outlook.TnefFile("集計表.xlsx", generate.make_xlsx(rng)),
    ]
    return outlook.tnef(files, rtf=rtf + b"}")


def _msg(rng: random.Random) -> bytes:
    """A .msg with a body, a PDF and a forwarded .msg inside (the tests' .msg writer)."""
    inner = outlook.Msg("前回の件", generate._letter(rng, 1000))
    return outlook.msg(
        outlook.Msg(
            "転送: ご確認ください",
            generate._letter(rng, 3000),
            files=[outlook.MsgFile("お知らせ.pdf", generate.make_pdf(rng))],
            messages=[("前回.msg", inner)],
        )
    )


def _policy(name: str) -> Any:
    from sanitizers.cdr.settings import CdrPolicy
    from sanitizers.policy import AttachmentAction, AttachmentPolicy, Policy

    return Policy(
        attachments=AttachmentPolicy(default=AttachmentAction.SANITIZE),
        cdr=CdrPolicy(**CDR_SETTINGS.get(name, {})),
    )


def _in_process(name: str, files: list[bytes], seconds: float) -> dict[str, Any]:
    from sanitizers.cdr.registry import Registry
    from sanitizers.policy import AttachmentAction

    disarm_here = Registry().disarm

    kind, filename = KINDS[name]
    policy = _policy(name)
    outcomes: dict[str, int] = {}
    for data in files:  # warm-up
        out = disarm_here(data, filename, kind, AttachmentAction.SANITIZE, policy)
        key = f"{out.action.value}/{out.reason.value}"
        outcomes[key] = outcomes.get(key, 0) + 1
    lat: list[float] = []
    nbytes = 0
    cpu0 = time.process_time()
    start = time.perf_counter()
    i = 0
    while True:
        data = files[i % len(files)]
        t0 = time.perf_counter()
        disarm_here(data, filename, kind, AttachmentAction.SANITIZE, policy)
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        nbytes += len(data)
        i += 1
        if i >= len(files) and t1 - start >= seconds:
            break
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - start
    return {
        "files": len(lat),
        "files_per_s": round(len(lat) / cpu, 1),
        "mb_per_s": round(nbytes / cpu / 1e6, 2),
        "wall_files_per_s": round(len(lat) / wall, 1),
        **latency_summary(lat),
        "timeout_s": policy.cdr.seconds,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "outcomes": outcomes,
    }


def _cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds of a live process, from /proc (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _isolated(name: str, files: list[bytes], seconds: float) -> dict[str, Any]:
    from sanitizers.cdr.isolation import IsolatedDisarmer
    from sanitizers.policy import AttachmentAction

    kind, filename = KINDS[name]
    policy = _policy(name)
    lat: list[float] = []
    with IsolatedDisarmer(policy.cdr) as disarmer:
        for data in files:
            disarmer.disarm(data, filename, kind, AttachmentAction.SANITIZE, policy)
        # CPU of the caller and of each sanitizer child it used (read after every file, so a
        # child replaced after tasks_per_process files is counted up to its last file).
        child_cpu: dict[int | None, float] = {}
        baseline = {disarmer.child_pid: _cpu_seconds(disarmer.child_pid)}
        cpu0 = time.process_time()
        start = time.perf_counter()
        i = 0
        while True:
            data = files[i % len(files)]
            t0 = time.perf_counter()
            pid = disarmer.child_pid
            disarmer.disarm(data, filename, kind, AttachmentAction.SANITIZE, policy)
            t1 = time.perf_counter()
            child_cpu[pid] = _cpu_seconds(pid)
            lat.append(t1 - t0)
            i += 1
            if i >= len(files) and t1 - start >= seconds:
                break
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    cpu += sum(max(0.0, used - baseline.get(pid, 0.0)) for pid, used in child_cpu.items())
    summary = latency_summary(lat)
    return {
        "isolated_files_per_s": round(len(lat) / wall, 1),
        "isolated_cpu_files_per_s": round(len(lat) / cpu, 1) if cpu else None,
        "isolated_p50_ms": summary["p50_ms"],
        "isolated_p99_ms": summary["p99_ms"],
    }


def run(seconds: float, isolated: bool = True) -> dict[str, Any]:
    rows = []
    for name in KINDS:
        files = build(name, FILES_PER_KIND)
        row: dict[str, Any] = {
            "kind": name,
            "mean_kb": round(sum(map(len, files)) / len(files) / 1000, 1),
            **run_in_child(_in_process, name, files, seconds),
        }
        if isolated:
            row.update(run_in_child(_isolated, name, files, seconds))
        rows.append(row)
        print(
            f"{name:7s} {row['mean_kb']:7.1f} KB {row['files_per_s']:7.1f} files/s "
            f"{row['mb_per_s']:6.2f} MB/s p50 {row['p50_ms']:7.1f} ms p99 {row['p99_ms']:7.1f} ms "
            f"isolated {row.get('isolated_files_per_s', 0):7.1f} files/s "
            f"{row.get('isolated_cpu_files_per_s') or 0:7.1f} files/CPU-s {row['outcomes']}",
            flush=True,
        )
    return {"seconds_per_measurement": seconds, "files_per_kind": FILES_PER_KIND, "rows": rows}


COLUMNS = [
    ("kind", "file"),
    ("mean_kb", "mean KB"),
    ("files_per_s", "files/s (1 core)"),
    ("mb_per_s", "MB/s"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("max_ms", "max ms"),
    ("isolated_files_per_s", "isolated files/s"),
    ("isolated_cpu_files_per_s", "isolated files/CPU-s"),
    ("isolated_p50_ms", "isolated p50 ms"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--no-isolated", action="store_true", help="skip the isolated disarmer")
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    result = run(args.seconds, isolated=not args.no_isolated)
    kwargs = {"out_dir": args.out} if args.out else {}
    path = write_result("cdr", result, **kwargs)
    print()
    print(table(result["rows"], COLUMNS))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()

"""Memory for one large message: peak RSS over message size, pipeline vs. stdlib parse.

What is measured: a message of about 50 MB on the wire (short Japanese text plus one base64
attachment of random bytes, from :func:`benchmarks.generate.big_message`) is written to a
temporary file. In a fresh spawned child per case, the file is read (the input itself: 1x),
the RSS is noted, the case runs once, and the child's peak RSS (``VmHWM``) is taken.

Cases: ``sanitize_message`` with the shipped policy (attachment removed), and the standard
library's ``BytesParser(policy=compat32).parsebytes`` for comparison. Reported: peak RSS,
peak minus the RSS before reading the file, and both over the message size. The issue's
goal: memory bounded by configuration, not by message size ("a 50 MB message must not need
several times that in RAM").

``python -m benchmarks.memory [--mb 50]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.common import peak_rss_mb, rss_mb, run_in_child, table, write_result


def _case(path: str, case: str) -> dict[str, Any]:
    from email import policy as email_policy
    from email.parser import BytesParser

    from sanitizers.pipeline import sanitize_message
    from sanitizers.policy import Policy

    policy = Policy()
    # Warm up on a small message so imports and tables are not counted as message memory.
    small = generate.generate_class("plain_utf8", 1)[0].raw
    sanitize_message(small, policy)
    before = rss_mb()
    raw = Path(path).read_bytes()
    loaded = rss_mb()
    start = time.perf_counter()
    detail = ""
    if case == "sanitize":
        result = sanitize_message(raw, policy)
        detail = f"verdict={result.report.verdict.value}; out={len(result.message)} bytes"
    else:
        BytesParser(policy=email_policy.compat32).parsebytes(raw)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    size_mb = len(raw) / 1e6
    return {
        "case": case,
        "message_mb": round(size_mb, 1),
        "rss_before_mb": round(before, 1),
        "rss_loaded_mb": round(loaded, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_over_size": round(peak / size_mb, 2),
        "added_over_size": round((peak - before) / size_mb, 2),
        "seconds": round(seconds, 3),
        "mb_per_s": round(size_mb / seconds, 1),
        "detail": detail,
    }


def run(megabytes: float) -> dict[str, Any]:
    raw = generate.big_message(megabytes)
    rows = []
    with tempfile.NamedTemporaryFile(suffix=".eml") as handle:
        handle.write(raw)
        handle.flush()
        del raw
        for case in ("sanitize", "stdlib_parse"):
            row = run_in_child(_case, handle.name, case)
            rows.append(row)
            print(
                f"{case:13s} {row['message_mb']:6.1f} MB: peak RSS {row['peak_rss_mb']:7.1f} MB "
                f"(x{row['peak_over_size']:.2f} of size; added x{row['added_over_size']:.2f}) "
                f"{row['seconds']:.2f} s {row['detail']}",
                flush=True,
            )
    return {"target_mb": megabytes, "rows": rows}


COLUMNS = [
    ("case", "case"),
    ("message_mb", "message MB"),
    ("rss_before_mb", "RSS before MB"),
    ("peak_rss_mb", "peak RSS MB"),
    ("peak_over_size", "peak / size"),
    ("added_over_size", "(peak - before) / size"),
    ("seconds", "seconds"),
    ("mb_per_s", "MB/s"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="message size in MB")
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    result = run(args.mb)
    kwargs = {"out_dir": args.out} if args.out else {}
    path = write_result("memory", result, **kwargs)
    print()
    print(table(result["rows"], COLUMNS))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()

"""Measured gain of proposed hot-path changes, applied in memory only (never to the tree).

The pipeline's hot modules belong to their owners; this benchmark states what a change would
buy before anyone makes it. Each proposal is a drop-in replacement function, patched into
the module for the "after" half of an A/B run and restored afterwards. It first checks that
the output bytes of ``sanitize_message`` are identical with and without the patch on every
message used, then measures CPU time per message, interleaving before/after rounds so that
the host's drift hits both alike, and reports the median of the rounds.

Proposals:

``cp932_map`` — ``sanitizers.charsets.jis._cp932_mapping``: ``str.translate`` with a dict table
  (a dict lookup per character) once any of six JIS/CP932 code points (～ − ‖ ¢ £ ¬) occurs,
  which is common in business mail (``9時～17時``). Replacement: ``str.replace`` per pair present.
``compose_ascii`` — ``sanitizers.compose._needs_encoding``: a generator over every character
  (``any(ord(c) < 32 ... for c in value)``) per header value. Replacement: one regex search.
``compose_b64`` — ``sanitizers.compose._base64_lines``: a generator slicing 76-byte lines.
  Replacement: ``base64.encodebytes`` (76-character lines in C), LF turned into CRLF.

``python -m benchmarks.proposals [--rounds 5]``
"""

from __future__ import annotations

import argparse
import base64
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.common import run_in_child, table, write_result

CLASSES = ["plain_jis", "reply", "html_30k", "newsletter", "att_image", "big_10mb"]


def _patches() -> dict[str, tuple[Any, str, Callable[..., Any]]]:
    """name -> (module, attribute, replacement)."""
    from sanitizers import compose
    from sanitizers.charsets import jis

    pairs = tuple(jis._JIS_CP932_PAIRS.items())
    controls = re.compile(r"[\x00-\x1f\x7f]")

    def needs_encoding(value: str) -> bool:
        if not value.isascii() or "=?" in value:
            return True
        if controls.search(value):
            return True
        return any(len(word) > 900 for word in value.split(" "))

    def base64_lines(data: bytes) -> bytes:
        encoded = base64.encodebytes(data)  # 76-character lines, each ending in LF
        return encoded[:-1].replace(b"\n", b"\r\n") if encoded else b""

    def cp932_mapping(text: str) -> str:
        for jis_char, cp932 in pairs:
            if jis_char in text:
                text = text.replace(jis_char, cp932)
        return text

    return {
        "cp932_map": (jis, "_cp932_mapping", cp932_mapping),
        "compose_ascii": (compose, "_needs_encoding", needs_encoding),
        "compose_b64": (compose, "_base64_lines", base64_lines),
    }


def _samples(cls: str) -> list[bytes]:
    if cls == "big_10mb":
        return [generate.big_message(10)]
    count = 8 if cls.startswith("att_") else 30
    return [s.raw for s in generate.generate_class(cls, count)]


def _cpu_per_message(func: Callable[[bytes], Any], samples: list[bytes], min_s: float) -> float:
    count = 0
    start = time.process_time()
    while True:
        for raw in samples:
            func(raw)
        count += len(samples)
        spent = time.process_time() - start
        if spent >= min_s:
            return spent / count


def _measure(cls: str, names: list[str], rounds: int, min_s: float) -> dict[str, Any]:
    from sanitizers.pipeline import sanitize_message
    from sanitizers.policy import AttachmentPolicy, BodyPolicy, Policy

    # Attachments removed (decided in process): the measured CPU is this process's alone.
    policy = Policy(
        body=BodyPolicy(prefer_plain=cls != "html_30k"), attachments=AttachmentPolicy(by_kind={})
    )
    samples = _samples(cls)
    patches = {name: _patches()[name] for name in names}
    originals = {name: getattr(mod, attr) for name, (mod, attr, _) in patches.items()}

    def apply(on: bool) -> None:
        for name, (mod, attr, new) in patches.items():
            setattr(mod, attr, new if on else originals[name])

    def run(raw: bytes) -> bytes:
        return sanitize_message(raw, policy).message

    apply(False)
    before = [run(raw) for raw in samples]
    apply(True)
    after = [run(raw) for raw in samples]
    apply(False)
    identical = before == after
    base: list[float] = []
    patched: list[float] = []
    for _ in range(rounds):
        apply(False)
        base.append(_cpu_per_message(run, samples, min_s))
        apply(True)
        patched.append(_cpu_per_message(run, samples, min_s))
    apply(False)
    b, p = statistics.median(base), statistics.median(patched)
    return {
        "class": cls,
        "policy": "HTML→text, no attachments" if cls == "html_30k" else "no attachments",
        "proposals": "+".join(names),
        "identical_output": identical,
        "before_ms": round(b * 1000, 3),
        "after_ms": round(p * 1000, 3),
        "speedup": round(b / p, 3),
        "saved_pct": round(100 * (b - p) / b, 1),
    }


def run(rounds: int, min_s: float) -> dict[str, Any]:
    rows = []
    names = list(_patches())
    for cls in CLASSES:
        for chosen in [[n] for n in names] + [names]:
            row = run_in_child(_measure, cls, chosen, rounds, min_s)
            rows.append(row)
            print(
                f"{cls:11s} {row['proposals']:28s} {row['before_ms']:9.3f} -> "
                f"{row['after_ms']:9.3f} ms/msg  x{row['speedup']:.3f} "
                f"identical={row['identical_output']}",
                flush=True,
            )
    return {"rounds": rounds, "min_seconds_per_round": min_s, "rows": rows}


COLUMNS = [
    ("class", "class"),
    ("policy", "policy"),
    ("proposals", "proposal"),
    ("before_ms", "CPU ms/msg now"),
    ("after_ms", "with proposal"),
    ("saved_pct", "saved %"),
    ("identical_output", "same output"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--min-seconds", type=float, default=0.25, help="per round and side")
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    result = run(args.rounds, args.min_seconds)
    kwargs = {"out_dir": args.out} if args.out else {}
    path = write_result("proposals", result, **kwargs)
    print()
    print(table(result["rows"], COLUMNS))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()

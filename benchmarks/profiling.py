"""Summaries of py-spy's raw (collapsed-stack) output: where a running service spends CPU.

``py-spy record --format raw --subprocesses`` writes one line per distinct stack,
``process PID:"cmdline";frame;frame;... count``. This module sums the samples per process,
per leaf frame (own time) and per function anywhere on the stack (inclusive time, counted
once per stack), so a benchmark can name the top functions and files.

``python -m benchmarks.profiling FILE [--top 15]``
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

_PROCESS = re.compile(r'process (\d+):"(.*?)";')


def _role(cmdline: str) -> str:
    if "multiprocessing" in cmdline or "forkserver" in cmdline or "spawn_main" in cmdline:
        return "worker processes"
    return "main process"


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    """Samples per process role, top own-time frames and top inclusive functions."""
    per_role: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own_by_role: dict[str, Counter[str]] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        role = "main process"
        # Child processes appear nested under their parent; the innermost one owns the stack.
        # A command line may itself contain ';' (python -c "...; ..."), so cut after it.
        found = None
        for match in _PROCESS.finditer(stack):
            found = match
        if found:
            role = _role(found.group(2))
            stack = stack[found.end() :]
        frames = stack.split(";")
        if not frames:
            continue
        total += count
        per_role[role] += count
        own[frames[-1]] += count
        own_by_role.setdefault(role, Counter())[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def pct(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "share_by_process_pct": {k: round(100 * v / max(total, 1), 1) for k, v in per_role.items()},
        "top_own_pct": pct(own),
        "top_inclusive_pct": pct(inclusive),
        "top_own_by_process_pct": {role: pct(c) for role, c in own_by_role.items()},
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"samples: {summary['samples']}; by process: {summary['share_by_process_pct']}"]
    lines.append("top own time (% of all samples):")
    lines += [f"  {p:5.1f}%  {name}" for name, p in summary["top_own_pct"]]
    lines.append("top inclusive (% of all samples):")
    lines += [f"  {p:5.1f}%  {name}" for name, p in summary["top_inclusive_pct"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(render(summarize(args.file, args.top)))


if __name__ == "__main__":
    main()

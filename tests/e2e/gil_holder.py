"""A gateway stand-in whose only sanitizer worker is stuck in C code holding the GIL.

Usage: python -m tests.e2e.gil_holder PIDFILE — runs the real
:class:`gateway.processing.pool.ProcessSanitizer` (forkserver workers holding this process's
lifeline) with a target that writes its pid to PIDFILE and then backtracks in a catastrophic
regular expression: ``re`` never releases the GIL, so no Python thread of the worker runs
again for hours. The test kills this process with SIGKILL and expects the worker gone.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from gateway.processing.pool import ProcessSanitizer
from sanitizers.policy import Policy
from sanitizers.report import SanitizeResult


def stuck_in_c(untrusted_raw: bytes, policy: Policy, reference: str) -> SanitizeResult:
    Path(reference).write_text(str(os.getpid()))
    re.match(r"(a+)+$", "a" * 64 + "b")
    raise AssertionError("the backtracking finished: it was meant to outlast the test")


async def main(pidfile: str) -> None:
    sanitizer = ProcessSanitizer(Policy(), 1, 3600, target=stuck_in_c)
    await sanitizer.run(b"Subject: x\r\n\r\nx\r\n", pidfile, isolated=False)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

"""Run a command under the kernel's W^X switch, the restriction of MemoryDenyWriteExecute=.

``python -m tests.deploy.mdwe_launch ARGS...`` turns on ``PR_SET_MDWE`` with
``PR_MDWE_REFUSE_EXEC_GAIN`` (Linux 6.3 and later: no mapping may be writable and executable,
and none may gain execute permission), checks that it holds, and then replaces itself with
``python -m gateway.cli ARGS...``; the restriction stays on across ``execve`` and ``fork``,
so the sanitizer processes run under it too. ``probe`` as the only argument instead runs a
fresh interpreter that must be refused a writable and executable mapping.

Exit 77: the kernel does not offer the switch. Exit 78: the switch is not enforced.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
UNSUPPORTED = 77
NOT_ENFORCED = 78

PROBE = (
    "import mmap, sys\n"
    "try:\n"
    "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
    "except PermissionError:\n"
    "    sys.exit(0)\n"
    "sys.exit(78)\n"
)


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        sys.exit(UNSUPPORTED)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit(NOT_ENFORCED)
    sys.stdout.flush()
    if sys.argv[1:] == ["probe"]:
        os.execv(sys.executable, [sys.executable, "-c", PROBE])
    os.execv(sys.executable, [sys.executable, "-m", "gateway.cli", *sys.argv[1:]])


if __name__ == "__main__":
    main()

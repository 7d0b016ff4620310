"""Child processes exit when the process that started them is gone: a pipe-EOF lifeline.

Threat model: the gateway is killed (SIGKILL, OOM killer, a crash) while its sanitizer pool
and the isolated CDR children run. Orphans would stay forever, holding memory and the work
they were given, and a restarted gateway would start a second set beside them.

Why not only ``prctl(PR_SET_PDEATHSIG)``: every child here is forked by a multiprocessing
fork server, so its parent is the fork server, not the process that asked for it; and a fork
server exits only when every holder of its "alive" pipe has gone, which includes the very
children it forked. Parent and children keep each other alive, and the parent-death signal
never fires. (It also fires on the exit of the parent *thread*, not process.)

The lifeline: the owning process creates a pipe once and keeps its write end to itself (it is
close-on-exec, never passed to a child, and dropped in the child of a plain ``fork``). Each
child receives the read end and :func:`hold` starts a thread that blocks reading it. Nothing is
ever written, so the read returns only at end of file, which the kernel signals when the last
write end closes: when the owner has exited, however it died. The kernel itself then sends
the child SIGKILL (``O_ASYNC`` with ``F_SETSIG``), at once, even in the middle of a file and
even while C code holds the GIL; the thread kills the child too if that could not be set up.
There is no race at start: if the owner is already gone when the child starts, the thread's
first read returns end of file.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection

_F_SETSIG = 10  # fcntl(2) on Linux; the fcntl module names it from Python 3.12 on
_lock = threading.Lock()
_ends: tuple[Connection, Connection] | None = None


def _forget_after_fork() -> None:
    """In the child of a plain fork: not the owner, so never hold the write end."""
    global _ends
    ends, _ends = _ends, None
    if ends is not None:
        for end in ends:
            with contextlib.suppress(OSError):
                end.close()


os.register_at_fork(after_in_child=_forget_after_fork)


def lifeline() -> Connection:
    """The read end of this process's lifeline, to pass to a child when it is started."""
    global _ends
    with _lock:
        if _ends is None:
            reader, writer = multiprocessing.Pipe(duplex=False)
            _ends = (reader, writer)
        return _ends[0]


def _watch(reader: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):
        reader.recv_bytes(1)
    os.kill(os.getpid(), signal.SIGKILL)


def _kernel_kill_at_eof(reader: Connection) -> None:
    """Have the kernel send SIGKILL to this process when the lifeline reaches end of file.

    The signal needs no Python code to run, so it lands even while a thread holds the GIL in
    C code (regex backtracking, a parser) and the watching thread cannot be scheduled. The
    owner of such a signal belongs to the open file description, and every child holding
    ``reader`` shares one, so the read end is opened again to give this process its own; that
    description stays open for the life of the process. Closing it (this process exiting)
    sends nothing, and neither does any other holder closing its own: only end of file does.
    """
    fd = os.open(f"/proc/self/fd/{reader.fileno()}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(fd, getattr(fcntl, "F_SETSIG", _F_SETSIG), signal.SIGKILL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)


def hold(reader: Connection) -> None:
    """In a child: die (SIGKILL) as soon as the owner of ``reader``'s lifeline has exited."""
    with contextlib.suppress(OSError):  # no /proc: the thread alone
        _kernel_kill_at_eof(reader)
    threading.Thread(target=_watch, args=(reader,), name="mukaika-lifeline", daemon=True).start()

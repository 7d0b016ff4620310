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
write end closes: when the owner has exited, however it died. The child then kills itself
with SIGKILL at once, even in the middle of a file. There is no race at start: if the owner
is already gone when the child starts, the first read returns end of file.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection

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


def hold(reader: Connection) -> None:
    """In a child: die (SIGKILL) as soon as the owner of ``reader``'s lifeline has exited."""
    threading.Thread(target=_watch, args=(reader,), name="mukaika-lifeline", daemon=True).start()

"""Run sanitizers in a separate, limited, recycled process: the gateway's :class:`Disarmer`.

Threat model: a hostile attachment exploits or overloads the parser that reads it (a C
extension crashes, a decompression bomb eats memory, a cycle spins forever, a bug lets it run
code). Whatever happens in the child, the calling process survives and the part is removed:

* the child runs :meth:`sanitizers.cdr.registry.Registry.disarm` under ``resource.setrlimit``:
  ``RLIMIT_AS`` = ``memory_mb``, ``RLIMIT_CPU`` (per file: ``seconds`` + 1 more CPU seconds
  than it had used), ``RLIMIT_CORE`` 0, ``RLIMIT_NOFILE`` small and ``RLIMIT_FSIZE`` 0 (no
  sanitizer writes files; CPython ignores SIGXFSZ, so a write fails with ``EFBIG``) with a
  hard limit of ``max_file_bytes``: the one sanitizer that must hand a file to a program (the
  RAR reader's in-memory copy for ``unar``, :mod:`sanitizers.cdr.rararchive`) raises its soft
  limit for that write alone, so no file written in the child is larger than the largest file
  a sanitizer accepts;
* a file that takes longer than ``seconds`` (wall clock, from the moment the child is ready;
  the pipeline lowers it to what is left of the message's time budget, so the budget bounds
  the work inside a sanitizer too) → the child is killed (SIGKILL) and replaced, the part is
  removed with ``timeout``; a child that dies (segfault, abort,
  ``os._exit``, SIGXCPU) → ``crash`` (``timeout`` for SIGXCPU); a ``MemoryError`` → ``crash``
  and the child is replaced; any other exception → ``error``;
* the child is replaced after ``tasks_per_process`` files, and after any fault;
* the child holds its parent's lifeline (:mod:`sanitizers.lifeline`): when the parent dies,
  however, the child kills itself at once, even in the middle of a file;
* the policy is sent to a child once, and again only when a call brings another one (it is
  frozen: the same object is the same policy);
* results come back as JSON plus raw bytes, never pickles: a compromised child cannot make the
  parent unpickle attacker-built objects. Every field is validated against the vocabulary.

Processes are started from a ``forkserver`` (safe when the caller has threads); one
warm child is reused across calls, and a replacement is started as soon as the old one goes,
so its start-up cost (measured in the tests, see ``test_isolation.py``) is mostly off the
critical path. Calls are serialised by a lock: an instance is thread-safe but handles one file
at a time; use one instance per worker thread for parallelism.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from sanitizers import lifeline
from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.registry import SANITIZERS, Registry
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action, Reason, RemovedItem

_READY = b"ready"
_START_TIMEOUT = 60.0
_NOFILE = 64
_MAX_ITEMS = 10_000


class _ChildGone(Exception):
    pass


def _apply_limits(memory_mb: int, max_file_bytes: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (_NOFILE, _NOFILE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, max_file_bytes))


def _arm_cpu_limit(seconds: float) -> None:
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = math.ceil(spent + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _to_wire(outcome: CdrOutcome, blobs: list[bytes]) -> dict[str, Any]:
    index = None
    if outcome.data is not None:
        index = len(blobs)
        blobs.append(outcome.data)
    return {
        "action": outcome.action.value,
        "reason": outcome.reason.value,
        "data": index,
        "filename": outcome.filename,
        "content_type": outcome.content_type,
        "removed": list(outcome.removed),
        "detail": outcome.detail[:500],
        "children": [[name, _to_wire(child, blobs)] for name, child in outcome.children],
    }


def _opt_str(value: object, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("bad string field")
    return value


def _from_wire(raw: object, blobs: list[bytes], budget: list[int]) -> CdrOutcome:
    """Rebuild an outcome from the child's JSON, trusting nothing in it."""
    budget[0] -= 1
    if budget[0] < 0 or not isinstance(raw, dict):
        raise ValueError("bad outcome")
    index = raw.get("data")
    data: bytes | None = None
    if index is not None:
        if not isinstance(index, int) or not 0 <= index < len(blobs):
            raise ValueError("bad data index")
        data = blobs[index]
    removed_raw = raw.get("removed")
    if not isinstance(removed_raw, list) or not all(isinstance(c, str) for c in removed_raw):
        raise ValueError("bad removed codes")
    # An unknown code is a fault of the child: ValueError, and the part is removed.
    removed = tuple(RemovedItem(code) for code in removed_raw)
    children_raw = raw.get("children")
    if not isinstance(children_raw, list):
        raise ValueError("bad children")
    children: list[tuple[str, CdrOutcome]] = []
    for item in children_raw:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError("bad child")
        children.append((item[0][:1024], _from_wire(item[1], blobs, budget)))
    return CdrOutcome(
        action=Action(str(raw.get("action"))),
        reason=Reason(str(raw.get("reason"))),
        data=data,
        filename=_opt_str(raw.get("filename"), 1024),
        content_type=_opt_str(raw.get("content_type"), 256),
        removed=removed,
        detail=(_opt_str(raw.get("detail"), 500) or ""),
        children=tuple(children),
    )


def _child_main(
    conn: Connection,
    parent_alive: Connection,
    limits: CdrPolicy,
    sanitizers: dict[str, str],
) -> None:
    """The child's loop: one request in, one outcome out, until told to stop or orphaned."""

    lifeline.hold(parent_alive)  # before the limits: its thread's stack counts in RLIMIT_AS
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    registry = Registry(sanitizers)
    registry.preload()
    _apply_limits(limits.memory_mb, limits.max_file_bytes)
    conn.send_bytes(_READY + b" %.6f" % time.monotonic())
    policy: Policy | None = None
    while True:
        try:
            request = conn.recv()
            if request is None:
                return
            filename, kind, action, sent_policy, depth, charset, passwords = request
            untrusted_data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent went away
        # The parent sends the policy only when it changes (pickling one costs about as much
        # as disarming a small file); None means "the same as last time".
        if sent_policy is not None:
            policy = sent_policy
        if policy is None:
            return  # a parent that never sent a policy is not one we understand
        _arm_cpu_limit(policy.cdr.seconds)
        try:
            outcome = registry.disarm(
                untrusted_data,
                filename,
                kind,
                AttachmentAction(action),
                policy,
                depth,
                charset=charset,
                passwords=passwords,
            )
        except MemoryError:
            outcome = CdrOutcome.drop(Reason.CRASH, "MemoryError")
        except BaseException as exc:  # noqa: BLE001 - report, never die silently
            outcome = CdrOutcome.drop(Reason.ERROR, type(exc).__name__)
        del untrusted_data, passwords
        blobs: list[bytes] = []
        try:
            header = json.dumps(_to_wire(outcome, blobs)).encode()
        except MemoryError:
            blobs = []
            crash = CdrOutcome.drop(Reason.CRASH, "MemoryError")
            header = json.dumps(_to_wire(crash, blobs)).encode()
        conn.send_bytes(header)
        conn.send_bytes(len(blobs).to_bytes(4, "big"))
        for blob in blobs:
            conn.send_bytes(blob)


def _reap(proc: BaseProcess, conn: Connection, graceful: bool) -> None:
    if graceful and proc.is_alive():
        with contextlib.suppress(OSError, ValueError):
            conn.send(None)
        proc.join(2.0)
    if proc.is_alive():
        proc.kill()
    proc.join()
    with contextlib.suppress(OSError):
        conn.close()
    proc.close()


_context_lock = threading.Lock()
_context: Any = None


def _start_context() -> Any:
    """The ``forkserver`` context, its server preloaded with every sanitizer module.

    The fork server is a single-threaded process started once (from a clean interpreter,
    like ``spawn``), so forking it is safe even when the caller has threads; each sanitizer
    child is then a fork of an interpreter that has already imported lxml, oletools, pikepdf
    and Pillow, which makes replacing a child after a crash or timeout cheap.
    """
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            modules = sorted({spec.partition(":")[0] for spec in SANITIZERS.values()})
            ctx.set_forkserver_preload(["sanitizers.cdr.registry", *modules])
            _context = ctx
        return _context


class _Worker:
    """One child process and its end of the pipe."""

    def __init__(self, limits: CdrPolicy, sanitizers: dict[str, str]) -> None:
        ctx = _start_context()
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=_child_main,
            args=(child_conn, lifeline.lifeline(), limits, sanitizers),
            name="mukaika-cdr",
            daemon=True,
        )
        self.started = time.monotonic()
        self.proc.start()
        child_conn.close()
        self.ready = False
        self.tasks = 0
        self.policy: Policy | None = None  # the policy the child holds
        self.spawn_seconds: float | None = None
        self._finalizer = weakref.finalize(self, _reap, self.proc, self.conn, False)

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(_START_TIMEOUT):
            raise _ChildGone("worker did not start")
        try:
            message = self.conn.recv_bytes(64)
        except (EOFError, OSError) as exc:
            raise _ChildGone("worker died while starting") from exc
        word, _, stamp = message.partition(b" ")
        if word != _READY:
            raise _ChildGone("worker sent garbage")
        self.ready = True
        try:
            # CLOCK_MONOTONIC is system-wide on Linux: the child's ready time is comparable.
            self.spawn_seconds = max(0.0, float(stamp) - self.started)
        except ValueError:
            self.spawn_seconds = time.monotonic() - self.started

    def exit_description(self) -> str:
        self.proc.join(1.0)
        code = self.proc.exitcode
        if code is None:
            return "no exit status"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def shutdown(self, graceful: bool) -> None:
        self._finalizer.detach()
        _reap(self.proc, self.conn, graceful)


class IsolatedDisarmer:
    """A :class:`~sanitizers.cdr.disarmer.Disarmer` that sanitizes in a limited child process.

    ``policy`` sets the child's memory limit and recycling; the per-file timeout is read from
    each call's ``policy.cdr.seconds``. ``sanitizers`` (kind → "module:Class") is what every
    child's :class:`~sanitizers.cdr.registry.Registry` knows; :data:`SANITIZERS` unless given.
    """

    def __init__(
        self,
        policy: CdrPolicy | None = None,
        *,
        warm: bool = True,
        sanitizers: Mapping[str, str] = SANITIZERS,
    ) -> None:
        self._policy = policy or CdrPolicy()
        # The parent's registry decides, without parsing, what needs no child.
        self._registry = Registry(sanitizers)
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._closed = False
        self.spawn_seconds: list[float] = []
        self.restarts = 0
        if warm:
            self._worker = self._new_worker()

    def _new_worker(self) -> _Worker:
        return _Worker(self._policy, dict(self._registry.sanitizers))

    def __enter__(self) -> IsolatedDisarmer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the child; idempotent. The instance refuses work afterwards."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(graceful=True)

    @property
    def child_pid(self) -> int | None:
        worker = self._worker
        return None if worker is None else worker.proc.pid

    def _replace(self, worker: _Worker, graceful: bool) -> None:
        worker.shutdown(graceful)
        self.restarts += 1
        # Start the replacement now so its start-up overlaps with the caller's other work.
        self._worker = None if self._closed else self._new_worker()

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        depth: int = 0,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        """``passwords`` reach the child through its pipe only (never its arguments or
        environment), for a password-protected file (:meth:`Registry.unlock`)."""
        if len(untrusted_data) > policy.cdr.max_file_bytes:
            return CdrOutcome.drop(Reason.LIMIT_SIZE, f"{len(untrusted_data)} bytes")
        if self._closed:
            raise RuntimeError("IsolatedDisarmer is closed")
        if not self._registry.needs_sanitizer(kind, action):
            # Removal by kind or policy parses nothing: no reason to involve a child.
            return self._registry.disarm(
                untrusted_data, filename, kind, action, policy, depth, charset=charset
            )
        with self._lock:
            if self._closed:
                raise RuntimeError("IsolatedDisarmer is closed")
            if self._worker is not None and self._worker.proc.exitcode is not None:
                # Died between files (killed from outside, or its parent pipe broke): the
                # next file must not be blamed for it.
                self._replace(self._worker, graceful=False)
            if self._worker is None:
                self._worker = self._new_worker()
            worker = self._worker
            try:
                worker.wait_ready()
            except _ChildGone as exc:
                self._replace(worker, graceful=False)
                return CdrOutcome.drop(Reason.ERROR, str(exc))
            if worker.spawn_seconds is not None and worker.tasks == 0:
                self.spawn_seconds.append(worker.spawn_seconds)
            worker.tasks += 1
            outcome, healthy = self._exchange(
                worker, untrusted_data, filename, kind, action, policy, depth, charset, passwords
            )
            if not healthy:
                self._replace(worker, graceful=False)
            elif worker.tasks >= self._policy.tasks_per_process:
                self._replace(worker, graceful=True)
            return outcome

    def _exchange(
        self,
        worker: _Worker,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        depth: int,
        charset: str | None,
        passwords: tuple[str, ...],
    ) -> tuple[CdrOutcome, bool]:
        """Send one file, wait for the answer. Returns (outcome, child still usable)."""
        deadline = time.monotonic() + policy.cdr.seconds
        conn = worker.conn
        try:
            sent = None if policy is worker.policy else policy
            conn.send((filename, kind, action.value, sent, depth, charset, tuple(passwords)))
            worker.policy = policy
            conn.send_bytes(untrusted_data)
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                return CdrOutcome.drop(Reason.TIMEOUT, f"{policy.cdr.seconds:.3g} s"), False
            limit = 2 * policy.cdr.max_file_bytes + 1024 * 1024
            header = json.loads(conn.recv_bytes(limit))
            count = int.from_bytes(conn.recv_bytes(4), "big")
            if count > _MAX_ITEMS:
                raise ValueError("too many blobs")
            blobs: list[bytes] = []
            total = 0
            for _ in range(count):
                remaining = deadline - time.monotonic()
                if not conn.poll(max(0.0, remaining)):
                    return CdrOutcome.drop(Reason.TIMEOUT, "while sending the result"), False
                blob = conn.recv_bytes(limit)
                total += len(blob)
                if total > limit:
                    raise ValueError("result too large")
                blobs.append(blob)
            outcome = _from_wire(header, blobs, [_MAX_ITEMS])
        except (EOFError, BrokenPipeError, ConnectionResetError):
            description = worker.exit_description()
            if worker.proc.exitcode == -signal.SIGXCPU:
                return CdrOutcome.drop(Reason.TIMEOUT, "CPU time limit"), False
            return CdrOutcome.drop(Reason.CRASH, description), False
        except (OSError, ValueError) as exc:
            # Oversized or malformed answer: the child is not trusted any more.
            return CdrOutcome.drop(Reason.ERROR, f"bad answer: {type(exc).__name__}"), False
        if worker.proc.exitcode is not None:
            return outcome, False
        healthy = outcome.reason not in (Reason.CRASH, Reason.TIMEOUT)
        return outcome, healthy


_defaults_lock = threading.Lock()
_defaults: dict[CdrPolicy, IsolatedDisarmer] = {}


def default_disarmer(policy: Policy) -> IsolatedDisarmer:
    """The disarmer the gateway uses: one isolated disarmer per process and CDR policy,
    started on first use (a mail without an attachment to sanitize never starts a child) and
    stopped when the process exits (its child is reaped by the finalizer above)."""
    with _defaults_lock:
        disarmer = _defaults.get(policy.cdr)
        if disarmer is None:
            disarmer = _defaults[policy.cdr] = IsolatedDisarmer(policy.cdr, warm=False)
        return disarmer

"""Runs the sanitizing pipeline in worker processes, and survives them dying.

Threat model: a hostile message may crash a sanitizer process (a parser bug, memory
exhaustion) or hang it. The service must neither crash nor pass the message on unsanitized.
A broken pool is rebuilt and the message is tried again; a message that was in flight when a
pool broke is from then on sanitized in an isolation pool of one process, so that it alone is
blamed for its next crash. The caller counts crashes and holds a message after too many.
A message that runs over ``sanitize_timeout_seconds`` has its processes killed: a crash.
Worker processes hold this process's lifeline (:mod:`sanitizers.lifeline`): if the gateway
dies, even by SIGKILL, they and their own CDR children exit at once instead of lingering.

Only :class:`sanitizers.errors.TemporaryFailure` passes through from the pipeline; it means
"try again later", never "deliver as is".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from sanitizers import lifeline
from sanitizers.errors import TemporaryFailure
from sanitizers.notice import NoticeContext
from sanitizers.policy import Policy
from sanitizers.release import ReleaseTerms
from sanitizers.report import SanitizeResult
from sanitizers.senderauth import AuthOutcome

T = TypeVar("T")
log = logging.getLogger("mukaika.pool")


def _warm_up() -> int:
    import sanitizers.pipeline  # noqa: F401 - the import is the point

    return os.getpid()


class SanitizerCrashed(Exception):
    """The process sanitizing the message died or was killed (timeout)."""


class Sanitizer(Protocol):
    """What the worker needs: run the pipeline on one message, somewhere safe."""

    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        passwords: tuple[str, ...] = (),
        unlocked_by_mail: bool = False,
        release: ReleaseTerms | None = None,
        context: NoticeContext | None = None,
        auth: AuthOutcome | None = None,
    ) -> SanitizeResult:
        """``release``: the terms of a recorded release (:mod:`sanitizers.release`).
        ``context``: this message's notice context (its recipients' PPAP links); None: the
        sanitizer's own.
        ``policy``: this message's effective policy (rules applied); None: the base one.
        ``passwords``: candidates for a password-protected attachment (an unlock); they
        reach the worker through the pool's pipe and nothing else. ``unlocked_by_mail``:
        they came from a password mail (the notice says so). ``auth``: what sender
        authentication found (:mod:`sanitizers.senderauth`), written into the message."""
        ...

    def close(self) -> None: ...


class TaskRunner(Protocol):
    """Runs a picklable task away from the event loop, bounded in time (the outbound checks)."""

    async def run_task(self, task: Callable[..., T], *args: Any, reference: str) -> T: ...


def _sanitize(
    untrusted_raw: bytes,
    policy: Policy,
    reference: str,
    *,
    passwords: tuple[str, ...] = (),
    unlocked_by_mail: bool = False,
    release: ReleaseTerms | None = None,
    context: NoticeContext | None = None,
    auth: AuthOutcome | None = None,
) -> SanitizeResult:
    from sanitizers.pipeline import sanitize_message  # imported in the worker process

    return sanitize_message(
        untrusted_raw,
        policy,
        reference=reference,
        passwords=passwords,
        unlocked_by_mail=unlocked_by_mail,
        release=release,
        context=context,
        auth=auth,
    )


def _with_passwords(
    target: Callable[..., SanitizeResult],
    passwords: tuple[str, ...],
    unlocked_by_mail: bool,
    release: ReleaseTerms | None = None,
    context: NoticeContext | None = None,
    auth: AuthOutcome | None = None,
) -> Callable[..., SanitizeResult]:
    """The target, given ``passwords``, a release's terms, a notice context and sender
    authentication's outcome when there are any (a plain call otherwise: the targets tests
    substitute take the three arguments of mail as it arrives)."""
    if release is not None:
        target = functools.partial(target, release=release)
    if context is not None:
        target = functools.partial(target, context=context)
    if auth is not None:
        target = functools.partial(target, auth=auth)
    if not passwords:
        return target
    return functools.partial(target, passwords=passwords, unlocked_by_mail=unlocked_by_mail)


class ProcessSanitizer:
    """The pipeline in a ProcessPoolExecutor (``processes``; 0 = one per core)."""

    def __init__(
        self,
        policy: Policy,
        processes: int,
        timeout_seconds: float,
        target: Callable[..., SanitizeResult] | None = None,
    ) -> None:
        self.policy = policy
        # A picklable module-level function; tests substitute one that crashes.
        self.target = target or _sanitize
        self.processes = processes or os.cpu_count() or 1
        self.timeout_seconds = timeout_seconds
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["sanitizers.pipeline"])
        self._main: ProcessPoolExecutor | None = None
        self._isolation: ProcessPoolExecutor | None = None
        self._isolation_lock = asyncio.Lock()

    def _pool(self, isolated: bool) -> ProcessPoolExecutor:
        if isolated:
            if self._isolation is None:
                self._isolation = self._new_pool(1)
            return self._isolation
        if self._main is None:
            self._main = self._new_pool(self.processes)
        return self._main

    def _new_pool(self, processes: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            processes,
            mp_context=self._context,
            initializer=lifeline.hold,
            initargs=(lifeline.lifeline(),),
        )

    def _discard(self, pool: ProcessPoolExecutor, *, kill: bool) -> None:
        if kill:
            processes: dict[Any, Any] = getattr(pool, "_processes", None) or {}
            for process in list(processes.values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if pool is self._main:
            self._main = None
        if pool is self._isolation:
            self._isolation = None

    async def warm(self) -> None:
        """Start the worker processes now (importing the pipeline takes seconds), so the first
        message does not wait for them."""
        loop = asyncio.get_running_loop()
        pool = self._pool(isolated=False)
        with contextlib.suppress(BrokenProcessPool):
            await asyncio.gather(
                *(loop.run_in_executor(pool, _warm_up) for _ in range(self.processes))
            )

    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        passwords: tuple[str, ...] = (),
        unlocked_by_mail: bool = False,
        release: ReleaseTerms | None = None,
        context: NoticeContext | None = None,
        auth: AuthOutcome | None = None,
    ) -> SanitizeResult:
        effective = self.policy if policy is None else policy
        target = _with_passwords(
            self.target, passwords, unlocked_by_mail, release, context=context, auth=auth
        )
        if isolated:
            async with self._isolation_lock:
                return await self._run(
                    target, untrusted_raw, effective, reference, reference=reference, isolated=True
                )
        return await self._run(
            target, untrusted_raw, effective, reference, reference=reference, isolated=False
        )

    async def run_task(self, task: Callable[..., T], *args: Any, reference: str) -> T:
        """Any picklable ``task(*args)`` in the pool, under the same time limit and with the
        same answers to a crash or a hang (:class:`SanitizerCrashed`) as sanitizing (the
        outbound checks run here)."""
        return await self._run(task, *args, reference=reference, isolated=False)

    async def _run(
        self,
        target: Callable[..., T],
        *args: Any,
        reference: str,
        isolated: bool,
    ) -> T:
        pool = self._pool(isolated)
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(pool, target, *args)
            return await asyncio.wait_for(future, self.timeout_seconds)
        except TimeoutError as exc:
            log.warning("%s sanitizing timed out: killing its pool", reference)
            self._discard(pool, kill=True)
            raise SanitizerCrashed("timeout") from exc
        except BrokenProcessPool as exc:
            log.warning("%s sanitizer pool broke: rebuilding", reference)
            if pool is self._main or pool is self._isolation:
                self._discard(pool, kill=False)
            raise SanitizerCrashed("crash") from exc
        except TemporaryFailure:
            raise
        except Exception as exc:
            # The pipeline promises not to raise on bad input: a bug, counted like a crash.
            log.error("%s sanitizer raised %s", reference, type(exc).__name__)
            raise SanitizerCrashed(f"error: {type(exc).__name__}") from exc

    def close(self, grace_seconds: float = 5.0) -> None:
        """Stop the processes; one still busy after the grace period is killed (its message
        stays in the spool and is sanitized again on the next start)."""
        for pool in (self._main, self._isolation):
            if pool is None:
                continue
            processes: dict[Any, Any] = dict(getattr(pool, "_processes", None) or {})
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes.values():
                process.join(grace_seconds)
                if process.is_alive():
                    process.kill()
                    process.join(grace_seconds)
        self._main = self._isolation = None


class InlineSanitizer:
    """The pipeline in this process, via a given executor (threads); for tests and tools."""

    def __init__(self, policy: Policy, executor: Executor | None = None) -> None:
        self.policy = policy
        self.executor = executor

    async def run(
        self,
        untrusted_raw: bytes,
        reference: str,
        *,
        isolated: bool,
        policy: Policy | None = None,
        passwords: tuple[str, ...] = (),
        unlocked_by_mail: bool = False,
        release: ReleaseTerms | None = None,
        context: NoticeContext | None = None,
        auth: AuthOutcome | None = None,
    ) -> SanitizeResult:
        loop = asyncio.get_running_loop()
        effective = self.policy if policy is None else policy
        try:
            return await loop.run_in_executor(
                self.executor,
                _with_passwords(
                    _sanitize, passwords, unlocked_by_mail, release, context=context, auth=auth
                ),
                untrusted_raw,
                effective,
                reference,
            )
        except TemporaryFailure:
            raise
        except Exception as exc:
            log.error("%s sanitizer raised %s", reference, type(exc).__name__)
            raise SanitizerCrashed(f"error: {type(exc).__name__}") from exc

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    async def run_task(self, task: Callable[..., T], *args: Any, reference: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, task, *args)

"""Sanitizers that misbehave on purpose, injected into isolated children by the tests
(``IsolatedDisarmer(sanitizers={kind: "tests.sanitizers.cdr.misbehaving:Class"})``)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time
from typing import ClassVar

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.vocabulary import Action, Reason


class _Base(CdrSanitizer):
    kind: ClassVar[str] = "test"

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        return None

    def keep(self, data: bytes, filename: str) -> CdrOutcome:
        return CdrOutcome(Action.KEPT, Reason.CLEAN, data=data, filename=filename)


class Echo(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        return CdrOutcome(
            Action.SANITIZED,
            Reason.CLEAN,
            data=untrusted_data,
            filename=filename,
            detail=str(os.getpid()),
        )


class Spin(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        while True:
            pass


class Sleep(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        time.sleep(3600)
        return self.keep(untrusted_data, filename)


class Abort(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        os.abort()


class Exit(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        os._exit(3)


class Segfault(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        ctypes.string_at(0)
        return self.keep(untrusted_data, filename)


class Kill(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        os.kill(os.getpid(), signal.SIGKILL)
        return self.keep(untrusted_data, filename)


class MemoryHog(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        hoard = [bytearray(64 * 1024 * 1024) for _ in range(1000)]
        return self.keep(bytes(len(hoard)), filename)


class Raise(_Base):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        raise ValueError("sanitizer bug")


class WriteFile(_Base):
    """Tries to write the file named by ``filename`` (RLIMIT_FSIZE is 0 in the child)."""

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        with open(filename, "wb") as handle:
            handle.write(b"x" * 100)
        return self.keep(untrusted_data, filename)


class Limits(_Base):
    """Reports the child's resource limits in ``detail``."""

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        names = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CPU")
        detail = ";".join(
            f"{name}={resource.getrlimit(getattr(resource, name))[0]}" for name in names
        )
        return CdrOutcome(
            Action.SANITIZED, Reason.CLEAN, data=untrusted_data, filename=filename, detail=detail
        )


class BadOutcome(_Base):
    """Returns an item code the parent must refuse (not in the allowed code syntax)."""

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        return CdrOutcome(
            Action.SANITIZED,
            Reason.CLEAN,
            data=untrusted_data,
            filename=filename,
            removed=("Bad Code <script>",),  # type: ignore[arg-type]
        )


class UnknownItem(_Base):
    """Returns a well-formed item code that is not in the vocabulary: the parent must refuse it
    (a child that reports what it removed in words the parent does not know is not trusted)."""

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        return CdrOutcome(
            Action.SANITIZED,
            Reason.CLEAN,
            data=untrusted_data,
            filename=filename,
            removed=("not_a_removed_item",),  # type: ignore[arg-type]
        )


ALL = {
    name.lower(): f"{__name__}:{name}"
    for name in (
        "Echo",
        "Spin",
        "Sleep",
        "Abort",
        "Exit",
        "Segfault",
        "Kill",
        "MemoryHog",
        "Raise",
        "WriteFile",
        "Limits",
        "BadOutcome",
        "UnknownItem",
    )
}

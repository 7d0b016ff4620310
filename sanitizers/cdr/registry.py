"""Which sanitizer handles which kind of file, and the policy decision around it.

:func:`disarm_here` is the one place that turns (kind, policy action) into a fate, *in the
current process*; :mod:`sanitizers.cdr.isolation` calls it inside a limited child process,
and the ZIP sanitizer calls it again (``depth + 1``) for each entry of an archive.

Decisions, in order (fail closed: every path that is not a sanitizer's verified output is a
removal):

1. kind ``executable`` → removed (``executable``), whatever the policy says;
2. nesting deeper than ``policy.limits.max_depth`` → removed (``limit_depth``);
3. policy action ``remove`` → removed (``policy``);
4. a kind without a sanitizer → removed (``unsupported_archive`` for ``archive``,
   ``unsupported_type`` otherwise);
5. ``sanitize`` / ``keep_if_clean`` → the sanitizer's :meth:`CdrSanitizer.run`.

Sanitizer classes are named by import path and imported lazily, so a heavy library (pikepdf,
Pillow, oletools) is loaded only in the process and only when its kind is seen. A module that
is not there yet (another sanitizer not written) is treated as "no sanitizer"; a module that
is there but fails to import is an ``error`` — never a silent pass.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Reason

if TYPE_CHECKING:
    from sanitizers.cdr.disarmer import Disarmer

# kind (from sanitizers.filetype) -> "module:Class". Kinds absent here have no sanitizer.
SANITIZERS: Mapping[str, str] = {
    "ooxml": "sanitizers.cdr.ooxml:OoxmlSanitizer",
    "ole": "sanitizers.cdr.ole:OleSanitizer",
    "rtf": "sanitizers.cdr.rtf:RtfSanitizer",
    "pdf": "sanitizers.cdr.pdf:PdfSanitizer",
    "image": "sanitizers.cdr.images:ImageSanitizer",
    "svg": "sanitizers.cdr.images:SvgSanitizer",
    "zip": "sanitizers.cdr.ziparchive:ZipSanitizer",
    "text": "sanitizers.cdr.text:TextSanitizer",
    "html": "sanitizers.cdr.text:HtmlSanitizer",
}

# Kinds that are never kept or sanitized, whatever the policy says.
ALWAYS_REMOVED: Mapping[str, Reason] = {"executable": Reason.EXECUTABLE}

_lock = threading.Lock()
_overrides: dict[str, str] = {}
_instances: dict[str, CdrSanitizer | None] = {}


class _Missing(Exception):
    """The module of a registered sanitizer does not exist (yet)."""


def _load(spec: str) -> CdrSanitizer:
    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise _Missing(module_name) from exc
        raise
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, CdrSanitizer)):
        raise TypeError(f"{spec} is not a CdrSanitizer")
    return cls()


def spec_for(kind: str) -> str | None:
    """The import path of the sanitizer for ``kind``, or ``None``."""
    with _lock:
        return _overrides.get(kind) or SANITIZERS.get(kind)


def sanitizer_for(kind: str) -> CdrSanitizer | None:
    """The (cached) sanitizer instance for ``kind``, or ``None`` when there is none.

    Raises whatever importing a present-but-broken sanitizer module raises.
    """
    spec = spec_for(kind)
    if spec is None:
        return None
    with _lock:
        if kind in _instances:
            return _instances[kind]
    try:
        instance: CdrSanitizer | None = _load(spec)
    except _Missing:
        instance = None
    with _lock:
        _instances[kind] = instance
    return instance


def preload() -> None:
    """Import every registered sanitizer now (a warm worker pays the import cost once)."""
    kinds = set(SANITIZERS) | set(_overrides)
    for kind in sorted(kinds):
        try:
            sanitizer_for(kind)
        except Exception:  # noqa: BLE001, S112 - a broken module is reported per file, later
            continue


def register_for_tests(kind: str, spec: str) -> None:
    """Test-only hook: route ``kind`` to the sanitizer at ``spec`` ("module:Class").

    Used by the isolation tests to inject misbehaving sanitizers; the isolated disarmer
    replays these registrations in its child (see ``IsolatedDisarmer(test_sanitizers=...)``).
    """
    with _lock:
        _overrides[kind] = spec
        _instances.pop(kind, None)


def unregister_for_tests(kind: str) -> None:
    with _lock:
        _overrides.pop(kind, None)
        _instances.pop(kind, None)


@contextmanager
def registered_for_tests(kind: str, spec: str) -> Iterator[None]:
    register_for_tests(kind, spec)
    try:
        yield
    finally:
        unregister_for_tests(kind)


def disarm_here(
    untrusted_data: bytes,
    filename: str,
    kind: str,
    action: AttachmentAction,
    policy: Policy,
    depth: int = 0,
) -> CdrOutcome:
    """Decide and carry out one file's fate in *this* process. Never raises."""
    always = ALWAYS_REMOVED.get(kind)
    if always is not None:
        return CdrOutcome.drop(always, kind)
    if depth > policy.limits.max_depth:
        return CdrOutcome.drop(Reason.LIMIT_DEPTH, f"depth {depth}")
    if action == AttachmentAction.REMOVE:
        return CdrOutcome.drop(Reason.POLICY, kind)
    try:
        sanitizer = sanitizer_for(kind)
    except Exception as exc:  # noqa: BLE001 - fail closed: a broken sanitizer removes the part
        return CdrOutcome.drop(Reason.ERROR, f"loading {kind}: {type(exc).__name__}")
    if sanitizer is None:
        reason = Reason.UNSUPPORTED_ARCHIVE if kind == "archive" else Reason.UNSUPPORTED_TYPE
        return CdrOutcome.drop(reason, kind)
    ctx = CdrContext(
        policy=policy.cdr,
        keep_if_clean=action == AttachmentAction.KEEP_IF_CLEAN,
        depth=depth,
        full_policy=policy,
    )
    try:
        return sanitizer.run(untrusted_data, filename, ctx)
    except Exception as exc:  # noqa: BLE001 - run() should not raise; if it does, remove
        return CdrOutcome.drop(Reason.ERROR, f"{type(exc).__name__}"[:200])


class InProcessDisarmer:
    """Runs sanitizers in the calling process: for tests and the CLI only, never the gateway
    (no time or memory limit, and a crash takes the caller with it)."""

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
    ) -> CdrOutcome:
        return disarm_here(untrusted_data, filename, kind, action, policy)


def needs_sanitizer(kind: str, action: AttachmentAction) -> bool:
    """Whether deciding this file means parsing it; if not, :func:`disarm_here` decides
    from kind and policy alone, safely in any process."""
    if kind in ALWAYS_REMOVED or action == AttachmentAction.REMOVE:
        return False
    return spec_for(kind) is not None


def make_disarmer(policy: Policy) -> Disarmer:
    """The disarmer the gateway uses: sanitizers in a limited, recycled child process."""
    from sanitizers.cdr.isolation import IsolatedDisarmer

    return IsolatedDisarmer(policy.cdr, warm=False)


_defaults: dict[object, Disarmer] = {}


def default_disarmer(policy: Policy) -> Disarmer:
    """One isolated disarmer per process and CDR policy, started on first use (a mail without
    an attachment to sanitize never starts a child) and stopped when the process exits."""
    with _lock:
        disarmer = _defaults.get(policy.cdr)
        if disarmer is None:
            # Its child is reaped at exit by the isolation layer's own finalizer.
            disarmer = _defaults[policy.cdr] = make_disarmer(policy)
        return disarmer

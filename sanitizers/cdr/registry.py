"""Which sanitizer handles which kind of file, and the policy decision around it.

:meth:`Registry.disarm` is the one place that turns (kind, policy action) into a fate, *in
the current process*; :mod:`sanitizers.cdr.isolation` calls it inside a limited child process,
and the ZIP sanitizer calls it again (``depth + 1``, through :attr:`CdrContext.entries`) for
each entry of an archive. Which sanitizers a registry knows is given to its constructor;
nothing is registered into a running process.

Decisions, in order (fail closed: every path that is not a sanitizer's verified output is a
removal):

1. kind ``executable`` → removed (``executable``), whatever the policy says;
2. nesting deeper than ``policy.limits.max_depth`` → removed (``limit_depth``);
3. policy action ``remove`` → removed (``policy``);
4. a kind without a sanitizer → removed (``unsupported_archive`` for ``archive``,
   ``unsupported_type`` otherwise);
5. ``sanitize`` / ``keep_if_clean`` → the sanitizer's :meth:`CdrSanitizer.run`;
6. a ``held`` outcome for a password-protected file (``encrypted``, ``encrypted_archive``)
   with password candidates given → :meth:`Registry.unlock`: at most ``cdr.max_passwords``
   candidates go to the sanitizer's :meth:`CdrSanitizer.decrypt` hook, and the plaintext of
   the first that opens it is decided again from step 1 (its kind detected anew, one level
   deeper), with ``encryption`` among what was removed; when none opens it, it stays held.
   The hook is generic: any sanitizer (ZIP, Office, PDF, and 7z when it comes) that raises
   :class:`~sanitizers.errors.Locked` and implements ``decrypt`` takes part.

Sanitizer classes are named by import path and imported lazily, so a heavy library (pikepdf,
Pillow, oletools) is loaded only in the process and only when its kind is seen. A module that
is not there yet (another sanitizer not written) is treated as "no sanitizer"; a module that
is there but fails to import is an ``error`` — never a silent pass.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import replace

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.errors import SanitizeError
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import PASSWORD_REASONS, Action, Reason, RemovedItem

# kind (from sanitizers.filetype) -> "module:Class". Kinds absent here have no sanitizer.
SANITIZERS: Mapping[str, str] = {
    "ooxml": "sanitizers.cdr.ooxml:OoxmlSanitizer",
    "xlsb": "sanitizers.cdr.xlsb:XlsbSanitizer",
    "odf": "sanitizers.cdr.odf:OdfSanitizer",
    "ole": "sanitizers.cdr.ole:OleSanitizer",
    "rtf": "sanitizers.cdr.rtf:RtfSanitizer",
    "pdf": "sanitizers.cdr.pdf:PdfSanitizer",
    "image": "sanitizers.cdr.images:ImageSanitizer",
    "svg": "sanitizers.cdr.svg:SvgSanitizer",
    "zip": "sanitizers.cdr.ziparchive:ZipSanitizer",
    "archive": "sanitizers.cdr.other_archives:ArchiveSanitizer",
    "text": "sanitizers.cdr.text:TextSanitizer",
    "html": "sanitizers.cdr.text:HtmlSanitizer",
    "tnef": "sanitizers.cdr.tnef:TnefSanitizer",
    "msg": "sanitizers.cdr.outlook_msg:MsgSanitizer",
    "ichitaro": "sanitizers.cdr.ichitaro:IchitaroSanitizer",
}

# Kinds that are never kept or sanitized, whatever the policy says.
ALWAYS_REMOVED: Mapping[str, Reason] = {"executable": Reason.EXECUTABLE}
# Kinds whose original bytes never cross, even under "keep": an archive may hide an executable,
# so what crosses is its rebuild (each entry decided on its own).
NEVER_KEPT_AS_SENT: frozenset[str] = frozenset({"zip", "archive"})


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


class Registry:
    """The sanitizers of one process, by kind, and the decisions around them.

    ``sanitizers`` (kind → "module:Class") is :data:`SANITIZERS` in the gateway; another
    mapping (a tool, a test with misbehaving sanitizers) is given here, never patched in.
    Instances are cached per kind; thread-safe.
    """

    def __init__(self, sanitizers: Mapping[str, str] = SANITIZERS) -> None:
        self.sanitizers: Mapping[str, str] = dict(sanitizers)
        self._lock = threading.Lock()
        self._instances: dict[str, CdrSanitizer | None] = {}

    def sanitizer_for(self, kind: str) -> CdrSanitizer | None:
        """The (cached) sanitizer instance for ``kind``, or ``None`` when there is none.

        Raises whatever importing a present-but-broken sanitizer module raises.
        """
        spec = self.sanitizers.get(kind)
        if spec is None:
            return None
        with self._lock:
            if kind in self._instances:
                return self._instances[kind]
        try:
            instance: CdrSanitizer | None = _load(spec)
        except _Missing:
            instance = None
        with self._lock:
            self._instances[kind] = instance
        return instance

    def preload(self) -> None:
        """Import every registered sanitizer now (a warm worker pays the import cost once)."""
        for kind in sorted(self.sanitizers):
            try:
                self.sanitizer_for(kind)
            except Exception:  # noqa: BLE001, S112 - a broken module is reported per file, later
                continue

    def needs_sanitizer(self, kind: str, action: AttachmentAction) -> bool:
        """Whether deciding this file means parsing it; if not, :meth:`disarm` decides from
        kind and policy alone, safely in any process."""
        if kind in ALWAYS_REMOVED or action == AttachmentAction.REMOVE:
            return False
        if action == AttachmentAction.KEEP and kind not in NEVER_KEPT_AS_SENT:
            return False
        return kind in self.sanitizers

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
        """Decide and carry out one file's fate in *this* process. Never raises.
        ``passwords``: candidates for a password-protected file (step 6 above)."""
        always = ALWAYS_REMOVED.get(kind)
        if always is not None:
            return CdrOutcome.drop(always, kind)
        if depth > policy.limits.max_depth:
            return CdrOutcome.drop(Reason.LIMIT_DEPTH, f"depth {depth}")
        if action == AttachmentAction.REMOVE:
            return CdrOutcome.drop(Reason.POLICY, kind)
        if action == AttachmentAction.KEEP:
            if kind not in NEVER_KEPT_AS_SENT:
                return CdrOutcome(
                    action=Action.KEPT, reason=Reason.EXCEPTION, data=untrusted_data, detail=kind
                )
            action = AttachmentAction.SANITIZE
        try:
            sanitizer = self.sanitizer_for(kind)
        except Exception as exc:  # noqa: BLE001 - fail closed: a broken sanitizer removes it
            return CdrOutcome.drop(Reason.ERROR, f"loading {kind}: {type(exc).__name__}")
        if sanitizer is None:
            reason = Reason.UNSUPPORTED_ARCHIVE if kind == "archive" else Reason.UNSUPPORTED_TYPE
            return CdrOutcome.drop(reason, kind)
        ctx = CdrContext(
            policy=policy.cdr,
            keep_if_clean=action == AttachmentAction.KEEP_IF_CLEAN,
            depth=depth,
            full_policy=policy,
            entries=self,
            charset=charset,
            passwords=passwords,
        )
        try:
            outcome = sanitizer.run(untrusted_data, filename, ctx)
        except Exception as exc:  # noqa: BLE001 - run() should not raise; if it does, remove
            return CdrOutcome.drop(Reason.ERROR, f"{type(exc).__name__}"[:200])
        if outcome.action is Action.HELD and outcome.reason in PASSWORD_REASONS and passwords:
            return self.unlock(sanitizer, untrusted_data, filename, action, ctx, outcome)
        return outcome

    def unlock(
        self,
        sanitizer: CdrSanitizer,
        untrusted_data: bytes,
        filename: str,
        action: AttachmentAction,
        ctx: CdrContext,
        held: CdrOutcome,
    ) -> CdrOutcome:
        """Try the first ``cdr.max_passwords`` candidates of ``ctx.passwords`` on a held,
        password-protected file; the plaintext of the first that opens it goes through CDR
        again. Fails closed: a fault while decrypting removes the file; no candidate that
        fits leaves it held (the caller reports a wrong password)."""
        from sanitizers.filetype import detect

        policy = ctx.full_policy or Policy(cdr=ctx.policy)
        tried = ctx.passwords[: ctx.policy.max_passwords]
        for password in tried:
            try:
                plaintext = sanitizer.decrypt(untrusted_data, password, ctx)
            except SanitizeError as exc:
                return CdrOutcome.drop(exc.reason, exc.detail)
            except MemoryError:
                return CdrOutcome.drop(Reason.CRASH, "MemoryError while decrypting")
            except Exception as exc:  # noqa: BLE001 - fail closed: a fault removes the file
                return CdrOutcome.drop(Reason.ERROR, f"decrypting: {type(exc).__name__}")
            if plaintext is None:
                continue
            kind = detect(plaintext, "application/octet-stream", filename).kind
            inner_action = policy.attachments.action_for(kind)
            if action == AttachmentAction.KEEP_IF_CLEAN and inner_action != AttachmentAction.REMOVE:
                inner_action = AttachmentAction.KEEP_IF_CLEAN
            inner = self.disarm(
                plaintext,
                filename,
                kind,
                inner_action,
                policy,
                ctx.depth + 1,
                passwords=ctx.passwords,
            )
            removed = tuple(sorted({*inner.removed, RemovedItem.ENCRYPTION}))
            detail = "; ".join(filter(None, ["unlocked with a password", inner.detail]))
            return replace(inner, removed=removed, detail=detail[:500])
        return replace(held, detail=f"{held.detail}; none of {len(tried)} password(s) fits")


class InProcessDisarmer:
    """Runs sanitizers in the calling process: for tests and the CLI only, never the gateway
    (no time or memory limit, and a crash takes the caller with it)."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()

    def disarm(
        self,
        untrusted_data: bytes,
        filename: str,
        kind: str,
        action: AttachmentAction,
        policy: Policy,
        *,
        charset: str | None = None,
        passwords: tuple[str, ...] = (),
    ) -> CdrOutcome:
        return self.registry.disarm(
            untrusted_data,
            filename,
            kind,
            action,
            policy,
            charset=charset,
            passwords=passwords,
        )

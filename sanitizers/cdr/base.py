"""The one interface every CDR sanitizer implements, and the outcome it returns.

Threat model: the input file is hostile (malformed, a bomb, a polyglot, built to crash or hang
the library that reads it). A sanitizer rebuilds the file without its dangerous parts and then
an independent check (``verify``) must confirm the output is clean; anything else means the
part is removed. The base class owns errors and the size limit, so a subclass cannot forget
them; time and memory are bounded by the isolation layer around it
(:mod:`sanitizers.cdr.isolation`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from sanitizers.cdr.settings import CdrPolicy
from sanitizers.errors import Locked, SanitizeError
from sanitizers.links import DEFAULT_ALLOWED_SCHEMES
from sanitizers.vocabulary import Action, Reason, RemovedItem

if TYPE_CHECKING:
    from sanitizers.policy import AttachmentAction, Policy


@dataclass(frozen=True, slots=True)
class CdrOutcome:
    """What a sanitizer did with one file.

    ``removed`` lists stable item codes of what was taken out (``vba``, ``javascript``…); the
    notice turns them into words. ``children`` holds the outcome of each entry of an archive.
    """

    action: Action
    reason: Reason
    data: bytes | None = None
    filename: str | None = None
    content_type: str | None = None
    removed: tuple[RemovedItem, ...] = ()
    detail: str = ""
    children: tuple[tuple[str, CdrOutcome], ...] = field(default=())

    @staticmethod
    def drop(reason: Reason, detail: str = "") -> CdrOutcome:
        return CdrOutcome(action=Action.REMOVED, reason=reason, detail=detail)


class EntryDisarmer(Protocol):
    """Decides the fate of a file found inside another (an archive's entry), in this process:
    :class:`sanitizers.cdr.registry.Registry`."""

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
    ) -> CdrOutcome: ...


@dataclass(frozen=True, slots=True)
class CdrContext:
    """What a sanitizer may consult: the limits, whether keeping an unchanged file is allowed
    (``keep_if_clean``), the archive nesting depth it is called at, and the charset label the
    attachment's MIME header declares (``charset``, untrusted: text is decoded in it before
    detection, as a body is; None inside archives and when none is declared).

    ``full_policy`` and ``entries`` are for sanitizers that recurse: the ZIP sanitizer calls
    ``entries.disarm(..., depth=ctx.depth + 1)`` per entry, with the registry that called it.
    Without ``entries`` an archive's entries cannot be decided, and the archive is removed.
    ``passwords`` are the candidates an archive hands on to its entries (an encrypted
    document inside an encrypted ZIP); never shown, logged or stored."""

    policy: CdrPolicy
    keep_if_clean: bool = False
    depth: int = 0
    full_policy: Policy | None = None
    entries: EntryDisarmer | None = None
    charset: str | None = None
    passwords: tuple[str, ...] = field(default=(), repr=False)

    @property
    def allowed_schemes(self) -> tuple[str, ...]:
        """The URL schemes a kept link may have (``policy.links.allowed_schemes``)."""
        if self.full_policy is None:
            return DEFAULT_ALLOWED_SCHEMES
        return self.full_policy.links.allowed_schemes


class CdrSanitizer(ABC):
    """Base class: subclasses implement ``rebuild`` and ``verify``; ``run`` never raises."""

    kind: ClassVar[str]

    def run(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        if len(untrusted_data) > ctx.policy.max_file_bytes:
            return CdrOutcome.drop(Reason.LIMIT_SIZE, f"{len(untrusted_data)} bytes")
        try:
            outcome = self.rebuild(untrusted_data, filename, ctx)
            if outcome.action in (Action.KEPT, Action.SANITIZED) and outcome.data is None:
                # A kept file carries its (checked) original bytes; nothing passes unverified.
                return CdrOutcome.drop(Reason.ERROR, f"{outcome.action.value} without data")
            if outcome.data is not None:
                if len(outcome.data) > ctx.policy.max_file_bytes:
                    return CdrOutcome.drop(Reason.LIMIT_SIZE, "output too large")
                self.verify(outcome.data, ctx)
        except Locked as exc:
            # Encrypted: held awaiting a password (the registry tries any it was given).
            return CdrOutcome(action=Action.HELD, reason=exc.reason, detail=exc.detail)
        except SanitizeError as exc:
            return CdrOutcome.drop(exc.reason, exc.detail)
        except MemoryError:
            # The address-space limit of the isolation layer was hit: the process is suspect.
            return CdrOutcome.drop(Reason.CRASH, "MemoryError")
        except RecursionError as exc:
            return CdrOutcome.drop(Reason.ERROR, type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - fail closed: any fault removes the part
            return CdrOutcome.drop(Reason.ERROR, f"{type(exc).__name__}: {exc}"[:200])
        return outcome

    @abstractmethod
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        """Return the disarmed file (action ``sanitized`` or ``kept``) or a removal."""

    @abstractmethod
    def verify(self, data: bytes, ctx: CdrContext) -> None:
        """Independently re-check an output; raise ``SanitizeError(VERIFY_FAILED)`` if unclean."""

    def decrypt(self, untrusted_data: bytes, password: str, ctx: CdrContext) -> bytes | None:
        """The hook for password-protected files: the plaintext of a file this sanitizer
        raised :class:`~sanitizers.errors.Locked` for, opened with ``password``, as one file
        that CDR reads again from the start (an archive gives a plain ZIP of its entries);
        ``None`` when the password is wrong. Raises ``SanitizeError`` (or ``LimitExceeded``)
        when the file is malformed or too large once opened. Formats that cannot be
        decrypted keep this default: every password is wrong."""
        return None

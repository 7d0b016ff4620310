"""The registry applies the policy before any sanitizer sees a file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar

import pytest

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.isolation import IsolatedDisarmer, default_disarmer
from sanitizers.cdr.registry import SANITIZERS, InProcessDisarmer, Registry
from sanitizers.policy import AttachmentAction, Limits, Policy
from sanitizers.vocabulary import Action, Reason


class EchoSanitizer(CdrSanitizer):
    """Keeps everything; records the context it was called with."""

    kind: ClassVar[str] = "echo"
    seen: ClassVar[list[CdrContext]] = []

    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        EchoSanitizer.seen.append(ctx)
        return CdrOutcome(Action.KEPT, Reason.CLEAN, data=untrusted_data, filename=filename)

    def verify(self, data: bytes, ctx: CdrContext) -> None:
        return None


class NoDataSanitizer(EchoSanitizer):
    def rebuild(self, untrusted_data: bytes, filename: str, ctx: CdrContext) -> CdrOutcome:
        return CdrOutcome(Action.SANITIZED, Reason.CLEAN)


# The shipped sanitizers with "text" handled by the recording stand-in.
ECHO = {**SANITIZERS, "text": f"{__name__}:EchoSanitizer"}


@pytest.fixture
def echo() -> Iterator[None]:
    EchoSanitizer.seen.clear()
    yield
    EchoSanitizer.seen.clear()


def disarm(
    kind: str,
    action: AttachmentAction,
    policy: Policy | None = None,
    depth: int = 0,
    sanitizers: Mapping[str, str] = ECHO,
) -> CdrOutcome:
    registry = Registry(sanitizers)
    return registry.disarm(b"data", "f.bin", kind, action, policy or Policy(), depth)


def with_text(spec: str) -> dict[str, str]:
    return {**SANITIZERS, "text": spec}


@pytest.mark.parametrize("action", list(AttachmentAction))
def test_executable_always_removed(action: AttachmentAction) -> None:
    outcome = disarm("executable", action)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.EXECUTABLE)


@pytest.mark.usefixtures("echo")
def test_remove_action_is_policy() -> None:
    outcome = disarm("text", AttachmentAction.REMOVE)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.POLICY)
    assert EchoSanitizer.seen == []


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("archive", Reason.UNSUPPORTED_ARCHIVE),
        ("other", Reason.UNSUPPORTED_TYPE),
        ("message", Reason.UNSUPPORTED_TYPE),
        ("no-such-kind", Reason.UNSUPPORTED_TYPE),
    ],
)
def test_kind_without_sanitizer(kind: str, reason: Reason) -> None:
    outcome = disarm(kind, AttachmentAction.SANITIZE)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, reason)


@pytest.mark.usefixtures("echo")
@pytest.mark.parametrize(
    ("action", "keep"),
    [(AttachmentAction.SANITIZE, False), (AttachmentAction.KEEP_IF_CLEAN, True)],
)
def test_sanitizer_gets_context(action: AttachmentAction, keep: bool) -> None:
    policy = Policy()
    outcome = disarm("text", action, policy, depth=3)
    assert outcome.action == Action.KEPT
    (ctx,) = EchoSanitizer.seen
    assert ctx.keep_if_clean is keep
    assert ctx.depth == 3
    assert ctx.policy == policy.cdr
    assert ctx.full_policy == policy


@pytest.mark.usefixtures("echo")
def test_depth_limit() -> None:
    policy = Policy(limits=Limits(max_depth=2))
    assert disarm("text", AttachmentAction.SANITIZE, policy, depth=2).action == Action.KEPT
    outcome = disarm("text", AttachmentAction.SANITIZE, policy, depth=3)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.LIMIT_DEPTH)


def test_missing_module_is_unsupported() -> None:
    outcome = disarm(
        "text", AttachmentAction.SANITIZE, sanitizers=with_text("sanitizers.cdr.no_such_module:X")
    )
    assert outcome.reason == Reason.UNSUPPORTED_TYPE


def test_broken_spec_is_error() -> None:
    outcome = disarm(
        "text", AttachmentAction.SANITIZE, sanitizers=with_text(f"{__name__}:NotThere")
    )
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)
    outcome = disarm("text", AttachmentAction.SANITIZE, sanitizers=with_text(f"{__name__}:disarm"))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)


def test_kept_without_data_is_error() -> None:
    outcome = disarm(
        "text", AttachmentAction.SANITIZE, sanitizers=with_text(f"{__name__}:NoDataSanitizer")
    )
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)


def test_in_process_disarmer() -> None:
    outcome = InProcessDisarmer().disarm(
        b"MZ", "a.exe", "executable", AttachmentAction.SANITIZE, Policy()
    )
    assert outcome.reason == Reason.EXECUTABLE


def test_the_default_disarmer_is_isolated_and_shared_per_cdr_policy() -> None:
    disarmer = default_disarmer(Policy())
    assert isinstance(disarmer, IsolatedDisarmer)
    assert default_disarmer(Policy()) is disarmer


def test_registries_do_not_share_sanitizers() -> None:
    """What one registry was given never leaks into another (no process-wide overrides)."""
    EchoSanitizer.seen.clear()
    assert Registry(ECHO).sanitizer_for("text").__class__ is EchoSanitizer
    shipped = Registry().sanitizer_for("text")
    assert shipped is not None
    assert shipped.__class__ is not EchoSanitizer
    assert Registry({}).sanitizer_for("text") is None


def test_every_registered_spec_names_a_sanitizer_module() -> None:
    for kind, spec in SANITIZERS.items():
        module, _, cls = spec.partition(":")
        assert module.startswith("sanitizers.cdr."), kind
        assert cls, kind


# Registered kinds whose sanitizer does not rebuild the file and so is not held to the
# contract, with where its tests are.
WITHOUT_CONTRACT = {"html": "converted to text, never kept: tests/sanitizers/cdr/test_text.py"}


def test_every_registered_sanitizer_inherits_the_contract() -> None:
    """Each kind of :data:`SANITIZERS` (the kinds of issue 21 among them: tnef, msg, archive,
    ichitaro, odf, xlsb, svg) has a test class built on :class:`CdrContract`."""
    import importlib
    import pkgutil

    from tests.sanitizers import cdr as cdr_tests
    from tests.sanitizers.cdr.contract import CdrContract

    for module in pkgutil.iter_modules(cdr_tests.__path__):
        if module.name.startswith("test_"):
            importlib.import_module(f"{cdr_tests.__name__}.{module.name}")
    pending = list(CdrContract.__subclasses__())
    covered: set[str] = set()
    while pending:
        contract = pending.pop()
        pending.extend(contract.__subclasses__())
        if contract.__name__.startswith("Test"):
            covered.add(contract.kind)
    assert set(SANITIZERS) - covered == set(WITHOUT_CONTRACT)

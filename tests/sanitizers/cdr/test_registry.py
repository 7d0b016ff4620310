"""The registry applies the policy before any sanitizer sees a file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from sanitizers.cdr import registry
from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
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


@pytest.fixture
def echo() -> Iterator[None]:
    EchoSanitizer.seen.clear()
    with registry.registered_for_tests("text", f"{__name__}:EchoSanitizer"):
        yield


def disarm(
    kind: str, action: AttachmentAction, policy: Policy | None = None, depth: int = 0
) -> CdrOutcome:
    return registry.disarm_here(b"data", "f.bin", kind, action, policy or Policy(), depth)


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
    with registry.registered_for_tests("text", "sanitizers.cdr.no_such_module:X"):
        outcome = disarm("text", AttachmentAction.SANITIZE)
    assert outcome.reason == Reason.UNSUPPORTED_TYPE


def test_broken_spec_is_error() -> None:
    with registry.registered_for_tests("text", f"{__name__}:NotThere"):
        outcome = disarm("text", AttachmentAction.SANITIZE)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)
    with registry.registered_for_tests("text", f"{__name__}:disarm"):
        outcome = disarm("text", AttachmentAction.SANITIZE)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)


def test_kept_without_data_is_error() -> None:
    with registry.registered_for_tests("text", f"{__name__}:NoDataSanitizer"):
        outcome = disarm("text", AttachmentAction.SANITIZE)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)


def test_in_process_disarmer() -> None:
    outcome = registry.InProcessDisarmer().disarm(
        b"MZ", "a.exe", "executable", AttachmentAction.SANITIZE, Policy()
    )
    assert outcome.reason == Reason.EXECUTABLE


def test_make_disarmer_is_isolated() -> None:
    from sanitizers.cdr.isolation import IsolatedDisarmer

    disarmer = registry.make_disarmer(Policy())
    assert isinstance(disarmer, IsolatedDisarmer)
    disarmer.close()


def test_every_registered_spec_names_a_sanitizer_module() -> None:
    for kind, spec in registry.SANITIZERS.items():
        module, _, cls = spec.partition(":")
        assert module.startswith("sanitizers.cdr."), kind
        assert cls, kind

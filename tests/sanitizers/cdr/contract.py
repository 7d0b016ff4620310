"""The contract every CDR sanitizer's tests inherit.

Usage (one test module per sanitizer)::

    from tests.sanitizers.cdr.contract import Case, CdrContract

    class TestPdfContract(CdrContract):
        kind = "pdf"

        def hostile_cases(self) -> list[Case]: ...      # built in code
        def clean_cases(self) -> list[Case]: ...
        def dangerous_items(self, data: bytes) -> set[str]: ...  # independent check
        def assert_parses(self, data: bytes) -> None: ...
        def extract_text(self, data: bytes) -> str: ...          # for Case.text

The class is not collected itself (its name does not start with ``Test``). Every test is
parametrized over the cases the subclass returns (``pytest_generate_tests`` below), so a
failure names its case.

What the contract checks, for every sanitizer:

* **removes the target** — each hostile case gets its expected action; when ``sanitized``,
  the expected ``removed`` codes are reported, the independent check finds nothing in the
  output and the sanitizer's own ``verify`` accepts it; the fixture itself is really
  hostile (the independent check finds something in the input);
* **keep_if_clean never keeps a hostile file** (it is removed);
* **keeps benign content** — ``Case.text`` strings survive (``extract_text``), or override
  :meth:`CdrContract.assert_benign_kept` (images compare pixels);
* **idempotent** — sanitizing an output again removes nothing more;
* **no-op on clean input** — ``kept`` or ``sanitized`` with ``removed == ()``; with
  ``keep_if_clean`` a clean file is ``kept`` unchanged, or, for a sanitizer that rebuilds
  (``keep_if_clean_rebuilds``), delivered as the same verified rebuild ``sanitize`` gives
  (the sender's bytes may hold data no parser read);
* **output re-parses** (``assert_parses``);
* **hostile and garbage input terminate** — empty, random, truncated and bomb inputs
  (``garbage_cases``, extended by the subclass with its bombs and cycles) are never
  ``kept`` (unless ``garbage_may_be_kept``, and then only after the independent check);
  in-process they end as ``removed`` or a verified ``sanitized``; through the
  isolated disarmer (a real child process with the real limits) they finish without a
  ``timeout`` or ``crash``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from sanitizers.cdr.base import CdrContext, CdrOutcome, CdrSanitizer
from sanitizers.cdr.registry import Registry
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action, Reason

FAULT_REASONS = frozenset({Reason.TIMEOUT, Reason.CRASH})


# What leaves nothing to deliver: removed, or held awaiting a password.
NOT_DELIVERED = frozenset({Action.REMOVED, Action.HELD})


@dataclass(frozen=True)
class Case:
    """One input file built in code, and what the sanitizer must do with it under
    ``sanitize``."""

    name: str
    data: bytes
    filename: str
    # Item codes the outcome must report (a subset of ``outcome.removed``).
    removed: frozenset[str] = frozenset()
    # Expected action under ``sanitize`` (``removed`` for e.g. macro-bearing OLE, ``held``
    # for a password-protected file).
    action: Action = Action.SANITIZED
    # Expected reason, when the test should pin it.
    reason: Reason | None = None
    # Benign strings that must still be in the output (see ``extract_text``).
    text: tuple[str, ...] = ()
    # Whether the independent check must find something in the input (fixture sanity).
    detectable: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _garbage_from(cases: Sequence[Case]) -> list[Case]:
    rng = random.Random(20240601)  # deterministic
    out = [
        Case("empty", b"", "empty.bin", action=Action.REMOVED),
        Case("random-4k", rng.randbytes(4096), "random.bin", action=Action.REMOVED),
        Case("zeros-64k", bytes(65536), "zeros.bin", action=Action.REMOVED),
    ]
    for case in cases:
        data = case.data
        if len(data) < 8:
            continue
        out.append(Case(f"{case.name}-half", data[: len(data) // 2], case.filename))
        out.append(Case(f"{case.name}-head100", data[:100], case.filename))
        flipped = bytearray(data)
        for _ in range(max(1, len(data) // 200)):
            pos = rng.randrange(len(flipped))
            flipped[pos] ^= 0xFF
        out.append(Case(f"{case.name}-bitflip", bytes(flipped), case.filename))
    return out


class CdrContract:
    """Base class for sanitizer tests; see the module docstring."""

    kind: ClassVar[str]
    # Reasons an isolated run may end with on garbage (e.g. a sanitizer that relies on the
    # memory limit for a bomb may list CRASH here, with a comment why).
    tolerated_fault_reasons: ClassVar[frozenset[Reason]] = frozenset()
    # A sanitizer that only decides (legacy OLE) keeps a damaged file that still reads as a
    # clean document; it is then checked like any output. Others must never keep garbage.
    garbage_may_be_kept: ClassVar[bool] = False
    # keep_if_clean delivers the rebuilt (verified) file, never the sender's bytes.
    keep_if_clean_rebuilds: ClassVar[bool] = False
    # A sanitizer that converts (unpacks a mail container, extracts a document's text)
    # delivers ``converted`` with this reason, under sanitize and keep_if_clean alike: its
    # output is another format, so the idempotence check does not apply to it (the pipeline's
    # own tests check that sanitizing its output again is a no-op).
    converts_with: ClassVar[Reason | None] = None

    # --- what a subclass supplies ------------------------------------------------------

    def hostile_cases(self) -> Sequence[Case]:
        raise NotImplementedError

    def clean_cases(self) -> Sequence[Case]:
        raise NotImplementedError

    def bomb_cases(self) -> Sequence[Case]:
        """Bombs, cycles and other resource attacks (must end removed or verified)."""
        return ()

    def dangerous_items(self, data: bytes) -> set[str]:
        """An independent check (not the sanitizer's own code path) of what is dangerous."""
        raise NotImplementedError

    def assert_parses(self, data: bytes) -> None:
        raise NotImplementedError

    def extract_text(self, data: bytes) -> str:
        raise NotImplementedError

    def cdr_policy(self) -> CdrPolicy:
        return CdrPolicy()

    # --- helpers ----------------------------------------------------------------------

    def garbage_cases(self) -> Sequence[Case]:
        return [*_garbage_from([*self.clean_cases(), *self.hostile_cases()]), *self.bomb_cases()]

    def sanitizer(self) -> CdrSanitizer:
        found = Registry().sanitizer_for(self.kind)
        assert found is not None, f"no sanitizer registered for {self.kind!r}"
        return found

    def policy(self) -> Policy:
        return Policy(cdr=self.cdr_policy())

    def run(self, data: bytes, filename: str, *, keep_if_clean: bool = False) -> CdrOutcome:
        ctx = CdrContext(
            policy=self.cdr_policy(),
            keep_if_clean=keep_if_clean,
            full_policy=self.policy(),
            entries=Registry(),
        )
        return self.sanitizer().run(data, filename, ctx)

    def assert_benign_kept(self, case: Case, output: bytes) -> None:
        if case.text:
            text = self.extract_text(output)
            for expected in case.text:
                assert expected in text, f"{expected!r} lost from {case.name}"

    def assert_clean_output(self, outcome: CdrOutcome) -> bytes:
        assert outcome.data is not None
        found = self.dangerous_items(outcome.data)
        assert not found, f"left in output: {sorted(found)}"
        self.sanitizer().verify(outcome.data, CdrContext(policy=self.cdr_policy()))
        self.assert_parses(outcome.data)
        return outcome.data

    # --- parametrization ----------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        sources = {
            "hostile": self.hostile_cases,
            "clean": self.clean_cases,
            "garbage": self.garbage_cases,
        }
        for argname, source in sources.items():
            if argname in metafunc.fixturenames:
                cases = list(source())
                metafunc.parametrize(argname, cases, ids=[c.name for c in cases])

    @pytest.fixture(scope="class")
    @classmethod
    def isolated(cls) -> Iterator[Any]:
        """One warm isolated disarmer per test class (real child process, real limits)."""
        from sanitizers.cdr.isolation import IsolatedDisarmer

        with IsolatedDisarmer(cls().cdr_policy()) as disarmer:
            yield disarmer

    # --- the contract -------------------------------------------------------------------

    def test_fixture_is_hostile(self, hostile: Case) -> None:
        if hostile.detectable:
            assert self.dangerous_items(hostile.data), "the independent check finds nothing"

    def test_removes_target(self, hostile: Case) -> None:
        outcome = self.run(hostile.data, hostile.filename)
        assert outcome.action == hostile.action, outcome
        if hostile.reason is not None:
            assert outcome.reason == hostile.reason, outcome
        assert hostile.removed <= set(outcome.removed), outcome.removed
        if outcome.action in (Action.SANITIZED, Action.CONVERTED):
            self.assert_clean_output(outcome)
        else:
            assert outcome.action in NOT_DELIVERED
            assert outcome.data is None

    def test_keep_if_clean_never_keeps_hostile(self, hostile: Case) -> None:
        outcome = self.run(hostile.data, hostile.filename, keep_if_clean=True)
        if self.converts_with is not None and outcome.action == Action.CONVERTED:
            self.assert_clean_output(outcome)  # the sender's file never passes as it was
            return
        assert outcome.action in NOT_DELIVERED, outcome

    def test_keeps_benign_content(self, hostile: Case) -> None:
        outcome = self.run(hostile.data, hostile.filename)
        if outcome.action in (Action.SANITIZED, Action.CONVERTED):
            assert outcome.data is not None
            self.assert_benign_kept(hostile, outcome.data)

    def test_idempotent(self, hostile: Case) -> None:
        first = self.run(hostile.data, hostile.filename)
        if self.converts_with is not None:
            # Its output is another format (the pipeline's tests sanitize it again): the
            # conversion itself must be deterministic.
            again = self.run(hostile.data, hostile.filename)
            assert (again.action, again.data, again.removed) == (
                first.action,
                first.data,
                first.removed,
            )
            return
        if first.action != Action.SANITIZED:
            return
        assert first.data is not None
        second = self.run(first.data, first.filename or hostile.filename)
        assert second.action in (Action.SANITIZED, Action.KEPT), second
        assert second.removed == (), second.removed
        self.assert_clean_output(second)

    def test_clean_is_noop(self, clean: Case) -> None:
        outcome = self.run(clean.data, clean.filename)
        if self.converts_with is not None:
            assert (outcome.action, outcome.reason) == (Action.CONVERTED, self.converts_with)
        else:
            assert outcome.action in (Action.KEPT, Action.SANITIZED), outcome
        assert outcome.removed == (), outcome.removed
        data = self.assert_clean_output(outcome)
        self.assert_benign_kept(clean, data)

    def test_clean_keep_if_clean_keeps_what_was_verified(self, clean: Case) -> None:
        outcome = self.run(clean.data, clean.filename, keep_if_clean=True)
        if self.converts_with is not None:  # converted as under sanitize, never kept
            assert (outcome.action, outcome.reason) == (Action.CONVERTED, self.converts_with)
            self.assert_benign_kept(clean, self.assert_clean_output(outcome))
            return
        assert outcome.reason == Reason.CLEAN
        if self.keep_if_clean_rebuilds:
            rebuilt = self.run(clean.data, clean.filename)
            assert outcome.action == Action.SANITIZED, outcome
            assert outcome.data == rebuilt.data
            self.assert_clean_output(outcome)
        else:
            assert outcome.action == Action.KEPT, outcome
            assert outcome.data == clean.data

    def test_output_reparses(self, clean: Case) -> None:
        outcome = self.run(clean.data, clean.filename)
        assert outcome.data is not None
        self.assert_parses(outcome.data)

    def test_garbage_never_kept(self, garbage: Case) -> None:
        outcome = self.run(garbage.data, garbage.filename)
        if not self.garbage_may_be_kept:
            assert outcome.action != Action.KEPT, outcome
        if outcome.action in NOT_DELIVERED:
            assert outcome.data is None
        else:
            self.assert_clean_output(outcome)
        if garbage.action == Action.REMOVED:
            assert outcome.action == Action.REMOVED, outcome

    def test_terminates_isolated(self, garbage: Case, isolated: Any) -> None:
        outcome = isolated.disarm(
            garbage.data, garbage.filename, self.kind, AttachmentAction.SANITIZE, self.policy()
        )
        assert outcome.reason not in FAULT_REASONS - self.tolerated_fault_reasons, outcome
        if outcome.action not in NOT_DELIVERED:
            self.assert_clean_output(outcome)

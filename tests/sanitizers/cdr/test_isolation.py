"""The isolated disarmer: faults in the child never reach the caller, and never keep a file."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sanitizers.cdr.base import CdrOutcome
from sanitizers.cdr.isolation import IsolatedDisarmer, _from_wire
from sanitizers.cdr.registry import SANITIZERS
from sanitizers.cdr.settings import CdrPolicy
from sanitizers.policy import AttachmentAction, Policy
from sanitizers.vocabulary import Action, Reason, RemovedItem
from tests.sanitizers.cdr import misbehaving
from tests.sanitizers.cdr import office_fixtures as F

SANITIZE = AttachmentAction.SANITIZE


# The shipped sanitizers plus the misbehaving ones, each under its own kind.
MISBEHAVING = {**SANITIZERS, **misbehaving.ALL}


def zombies() -> list[int]:
    """Children of this process that have exited but were not reaped."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) == me:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def policy(seconds: float = 2.0, memory_mb: int = 512, tasks: int = 200) -> Policy:
    return Policy(cdr=CdrPolicy(seconds=seconds, memory_mb=memory_mb, tasks_per_process=tasks))


@pytest.fixture
def disarmer() -> Iterator[IsolatedDisarmer]:
    with IsolatedDisarmer(policy().cdr, sanitizers=MISBEHAVING) as instance:
        yield instance
    assert zombies() == []


def call(d: IsolatedDisarmer, kind: str, p: Policy | None = None, name: str = "f") -> CdrOutcome:
    return d.disarm(b"payload", name, kind, SANITIZE, p or policy())


def test_echo_reuses_one_warm_child(disarmer: IsolatedDisarmer) -> None:
    first = call(disarmer, "echo")
    second = call(disarmer, "echo")
    assert first.action == Action.SANITIZED
    assert first.data == b"payload"
    assert first.detail == second.detail == str(disarmer.child_pid)
    assert first.detail != str(os.getpid())


@pytest.mark.parametrize("kind", ["spin", "sleep"])
def test_hang_is_killed_at_the_wall_clock_limit(disarmer: IsolatedDisarmer, kind: str) -> None:
    pid = disarmer.child_pid
    assert pid is not None
    started = time.monotonic()
    outcome = call(disarmer, kind, policy(seconds=1.0))
    elapsed = time.monotonic() - started
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.TIMEOUT)
    assert outcome.data is None
    assert 0.9 < elapsed < 5
    assert not alive(pid)
    assert call(disarmer, "echo").action == Action.SANITIZED  # replaced, still serving
    assert disarmer.child_pid != pid


@pytest.mark.parametrize("kind", ["abort", "exit", "segfault", "kill"])
def test_child_death_is_a_crash(disarmer: IsolatedDisarmer, kind: str) -> None:
    outcome = call(disarmer, kind)
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.CRASH)
    assert outcome.data is None
    assert call(disarmer, "echo").action == Action.SANITIZED


def test_memory_limit_is_a_crash_and_replaces_the_child(disarmer: IsolatedDisarmer) -> None:
    pid = disarmer.child_pid
    # Touching 512 MiB can take seconds on a loaded machine: the wall clock must not win the race.
    outcome = call(disarmer, "memoryhog", policy(seconds=30.0))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.CRASH)
    assert disarmer.child_pid != pid
    assert call(disarmer, "echo").action == Action.SANITIZED


def test_exception_is_an_error_and_keeps_the_child(disarmer: IsolatedDisarmer) -> None:
    pid = disarmer.child_pid
    outcome = call(disarmer, "raise")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)
    assert "ValueError" in outcome.detail
    assert call(disarmer, "echo").detail == str(pid)


def test_child_limits(disarmer: IsolatedDisarmer) -> None:
    outcome = call(disarmer, "limits")
    limits = dict(item.split("=") for item in outcome.detail.split(";"))
    assert int(limits["RLIMIT_AS"]) == 512 * 1024 * 1024
    assert limits["RLIMIT_CORE"] == "0"
    assert limits["RLIMIT_FSIZE"] == "0"
    assert 0 < int(limits["RLIMIT_NOFILE"]) <= 64
    assert 0 < int(limits["RLIMIT_CPU"]) < 60


def test_child_cannot_write_files(disarmer: IsolatedDisarmer, tmp_path: Path) -> None:
    target = tmp_path / "written"
    outcome = call(disarmer, "writefile", name=str(target))
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)
    assert not target.exists() or target.stat().st_size == 0


def test_bad_answer_from_child_is_refused(disarmer: IsolatedDisarmer) -> None:
    outcome = call(disarmer, "badoutcome")
    assert (outcome.action, outcome.reason) == (Action.REMOVED, Reason.ERROR)
    assert call(disarmer, "echo").action == Action.SANITIZED


def test_unknown_removed_item_from_child_removes_the_part(disarmer: IsolatedDisarmer) -> None:
    outcome = call(disarmer, "unknownitem")
    assert (outcome.action, outcome.reason, outcome.data) == (Action.REMOVED, Reason.ERROR, None)


def test_known_removed_items_cross_the_wire_as_members() -> None:
    raw = {"action": "sanitized", "reason": "macro", "data": None, "removed": ["vba", "dde"]}
    outcome = _from_wire({**raw, "children": []}, [], [100])
    assert outcome.removed == (RemovedItem.VBA, RemovedItem.DDE)
    assert all(type(item) is RemovedItem for item in outcome.removed)


def test_recycled_after_tasks_per_process() -> None:
    with IsolatedDisarmer(policy(tasks=3).cdr, sanitizers=MISBEHAVING) as d:
        pids = [call(d, "echo").detail for _ in range(7)]
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5]
    assert len({pids[0], pids[3], pids[6]}) == 3
    assert zombies() == []


def test_child_killed_between_files_is_not_blamed(disarmer: IsolatedDisarmer) -> None:
    pid = disarmer.child_pid
    assert pid is not None
    call(disarmer, "echo")
    os.kill(pid, 9)
    time.sleep(0.2)
    assert call(disarmer, "echo").action == Action.SANITIZED


def test_threads_share_one_disarmer(disarmer: IsolatedDisarmer) -> None:
    results: list[CdrOutcome] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            outcome = call(disarmer, "echo")
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 20
    assert all(r.action == Action.SANITIZED and r.data == b"payload" for r in results)


def test_oversize_never_reaches_the_child(disarmer: IsolatedDisarmer) -> None:
    small = Policy(cdr=CdrPolicy(max_file_bytes=4))
    outcome = disarmer.disarm(b"12345", "f", "echo", SANITIZE, small)
    assert outcome.reason == Reason.LIMIT_SIZE


def test_closed_refuses_work_and_leaves_no_process() -> None:
    d = IsolatedDisarmer(policy().cdr)
    pid = d.child_pid
    assert pid is not None
    d.close()
    d.close()
    assert not alive(pid)
    with pytest.raises(RuntimeError):
        call(d, "executable")
    assert zombies() == []


def test_policy_decisions_also_apply_in_the_child(disarmer: IsolatedDisarmer) -> None:
    outcome = disarmer.disarm(b"MZ", "a.exe", "executable", AttachmentAction.SANITIZE, policy())
    assert outcome.reason == Reason.EXECUTABLE
    outcome = disarmer.disarm(b"x", "a", "echo", AttachmentAction.REMOVE, policy())
    assert outcome.reason == Reason.POLICY


def test_the_child_follows_each_calls_policy_although_it_is_sent_once() -> None:
    """The policy is sent again only when a call brings another one: a call with a stricter
    policy, then the first one again, must each be decided by its own."""
    roomy = policy()
    strict = Policy(cdr=roomy.cdr.model_copy(update={"image_max_pixels": 1}))
    picture = _two_pixels()
    with IsolatedDisarmer(roomy.cdr) as d:
        first = d.disarm(picture, "a.png", "image", SANITIZE, roomy)
        again = d.disarm(picture, "a.png", "image", SANITIZE, roomy)
        limited = d.disarm(picture, "a.png", "image", SANITIZE, strict)
        back = d.disarm(picture, "a.png", "image", SANITIZE, roomy)
    assert first.action == again.action == back.action == Action.SANITIZED
    assert limited.reason == Reason.LIMIT_PIXELS


def _two_pixels() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (2, 1)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "raw",
    [
        {"action": "kept", "reason": "clean", "data": 5, "removed": [], "children": []},
        {"action": "weird", "reason": "clean", "data": None, "removed": [], "children": []},
        {"action": "kept", "reason": "clean", "data": None, "removed": ["A B"], "children": []},
        {"action": "kept", "reason": "clean", "data": None, "removed": ["vba_x"], "children": []},
        {"action": "kept", "reason": "clean", "data": None, "removed": [7], "children": []},
        {"action": "kept", "reason": "clean", "data": None, "removed": [], "children": [[1]]},
        [],
    ],
)
def test_wire_format_is_validated(raw: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any refusal is fine
        _from_wire(raw, [], [100])


def test_measure_spawn_and_throughput() -> None:
    """Prints the numbers for the report (run with -s)."""
    docx, xlsx = F.clean_docx(), F.xlsm_with_macrosheet()
    started = time.monotonic()
    with IsolatedDisarmer(CdrPolicy()) as d:
        p = Policy()
        first = d.disarm(docx, "a.docx", "ooxml", SANITIZE, p)
        cold = time.monotonic() - started
        assert first.action == Action.SANITIZED
        rates = {}
        for name, data in (("docx", docx), ("xlsm", xlsx)):
            count = 50
            t0 = time.monotonic()
            for _ in range(count):
                d.disarm(data, f"a.{name}", "ooxml", SANITIZE, p)
            rates[name] = count / (time.monotonic() - t0)
        spawn = d.spawn_seconds[0]
    print(
        f"\nisolation: child spawn+preload {spawn * 1000:.0f} ms; first file (cold) "
        f"{cold * 1000:.0f} ms; docx {rates['docx']:.0f} files/s; "
        f"xlsm {rates['xlsm']:.0f} files/s"
    )
    assert rates["docx"] > 5

"""``mukaika queue``: readable output, times in the operator's zone, references from notices,
held mail shown as held, and one exit code per outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.queue.spool import Envelope, Spool, new_queue_id

RECEIVED = datetime(2026, 12, 3, 14, 20, 5, tzinfo=UTC).timestamp()
REFERENCE = "20261203T142005Z-03f6c5abc091"
LONG_ERROR = "451 4.3.0 " + " ".join(f"word{i:02d}" for i in range(40))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "mukaika.toml").write_text(
        f"[service]\ndata_dir = {str(tmp_path)!r}\ndisplay_timezone = 'Asia/Tokyo'\n".replace(
            "'", '"'
        ),
        encoding="utf-8",
    )
    Spool(tmp_path / "spool")
    return tmp_path


def _put(data: Path, state: str, **fields: Any) -> Envelope:
    envelope = Envelope(
        queue_id=new_queue_id(),
        mail_from="taro@example.jp",
        rcpt_tos=("hanako@city.example.lg.jp",),
        received_at=RECEIVED,
        **fields,
    )
    Spool(data / "spool").put(state, envelope, b"sanitized")
    return envelope


def run(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["queue", *argv, "--config", str(data / "mukaika.toml")])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_is_readable_with_times_in_the_display_zone(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deferred = _put(data, "outgoing", verdict="deliver", attempts=2, next_attempt=RECEIVED + 600)
    code, out, _ = run(capsys, data, "show", deferred.queue_id)
    assert code == ExitCode.OK
    assert "Received:     2026-12-03 23:20:05 +09:00" in out.splitlines()
    assert "Next attempt: 2026-12-03 23:30:05 +09:00" in out.splitlines()
    assert "{" not in out


def test_show_json_is_for_machines_without_epoch_floats(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deferred = _put(data, "outgoing", verdict="deliver", next_attempt=RECEIVED + 600)
    code, out, _ = run(capsys, data, "show", "--json", deferred.queue_id)
    assert code == ExitCode.OK
    shown = json.loads(out)
    assert shown["received_at"] == "2026-12-03T14:20:05Z"
    assert shown["next_attempt_at"] == "2026-12-03T14:30:05Z"
    assert not [key for key, value in shown.items() if isinstance(value, float)]


def test_show_accepts_the_reference_printed_in_notices(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = _put(data, "delivered", verdict="hold", quarantine_id=REFERENCE)
    code, out, _ = run(capsys, data, "show", REFERENCE)
    assert code == ExitCode.OK
    assert f"Queue ID:     {held.queue_id}" in out.splitlines()
    assert "State:        held" in out.splitlines()


@pytest.mark.parametrize(
    ("wanted", "code"),
    [
        ("20261203T000000Z-000000000000", ExitCode.NOT_FOUND),  # a reference nobody has
        ("20261203000000-0000000000", ExitCode.NOT_FOUND),  # a queue id nobody has
        ("../../etc/passwd", ExitCode.USAGE),
        ("20261203T000000Z-00000000000\x1b[31m", ExitCode.USAGE),
    ],
)
def test_show_of_what_does_not_exist(
    data: Path, capsys: pytest.CaptureFixture[str], wanted: str, code: ExitCode
) -> None:
    result, out, err = run(capsys, data, "show", wanted)
    assert (result, out) == (code, "")
    assert "\x1b" not in err
    assert err.startswith("mukaika queue: ")


def test_a_held_message_is_listed_as_held_not_delivered(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = _put(data, "delivered", verdict="hold")
    delivered = _put(data, "delivered", verdict="deliver")
    _, out, _ = run(capsys, data, "list")
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows == {held.queue_id: "held", delivered.queue_id: "delivered"}
    _, out, _ = run(capsys, data, "list", "--state", "held")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [held.queue_id]


def test_list_shortens_errors_between_words(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _put(data, "outgoing", verdict="deliver", last_error=LONG_ERROR)
    _, out, _ = run(capsys, data, "list")
    shown = out.splitlines()[1].split("  ", 1)[1].strip().split(None, 4)[-1]
    assert shown.endswith("…")
    assert set(shown[:-1].split()) <= set(LONG_ERROR.split())


def test_retry_all_deferred_with_nothing_deferred_says_so(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, data, "retry", "--all-deferred")
    assert (code, err) == (ExitCode.OK, "")
    assert "nothing is deferred" in out


def test_retry_exit_codes(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    delivered = _put(data, "delivered", verdict="deliver")
    code, _, err = run(capsys, data, "retry", delivered.queue_id)
    assert code == ExitCode.WRONG_STATE
    assert "not deferred or dead (delivered)" in err
    assert run(capsys, data, "retry", new_queue_id())[0] == ExitCode.NOT_FOUND
    assert run(capsys, data, "retry", "nonsense")[0] == ExitCode.USAGE
    assert run(capsys, data, "retry")[0] == ExitCode.USAGE
    rejected = _put(data, "dead", verdict="reject")
    assert run(capsys, data, "retry", rejected.queue_id)[0] == ExitCode.WRONG_STATE


def test_no_spool_in_the_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "list", "--data-dir", str(tmp_path / "nowhere")]) == ExitCode.NOT_FOUND
    assert "no spool here" in capsys.readouterr().err

"""``mukaika digest send [--dry-run]``: the dry run prints the digests and the summary and sends
nothing; without it they go to the LGWAN-side MTA; no console address, no digests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.cli import main
from tests.e2e.stack import SinkThread
from tests.gateway.service.daykit import KACHO, RIN, day_config, day_of_mail


@pytest.fixture
def sink() -> Iterator[SinkThread]:
    thread = SinkThread()
    yield thread
    thread.close()


def _config(tmp_path: Path, port: int, public_url: str = "https://gw.example.lg.jp/") -> Path:
    path = tmp_path / "mukaika.toml"
    path.write_text(
        f"""
[service]
data_dir = "{tmp_path / "data"}"
display_timezone = "Asia/Tokyo"
[smtp]
hostname = "gw.test"
[delivery]
relay_host = "127.0.0.1"
relay_port = {port}
[console]
public_url = "{public_url}"
[digest]
summary_recipients = ["joho@city.example.lg.jp"]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def day(tmp_path: Path) -> Iterator[None]:
    now = datetime.now(UTC) - timedelta(minutes=5)  # the command's day ends at its own now
    with day_of_mail(day_config(tmp_path / "data"), now=now):
        yield


@pytest.mark.usefixtures("day")
def test_a_dry_run_prints_and_sends_nothing(
    tmp_path: Path, sink: SinkThread, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, sink.port)
    assert main(["digest", "send", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"To: {RIN}\nSubject: [mukaika] 保留メールのお知らせ（3通）\n" in out
    assert f"To: {KACHO}\nSubject: [mukaika] 保留メールのお知らせ（2通）\n" in out
    assert "To: joho@city.example.lg.jp\nSubject: [mukaika] メール無害化の日次集計\n" in out
    assert out.count("確認：https://gw.example.lg.jp/digest/") == 5
    assert out.endswith("3 mail(s); nothing sent (--dry-run)\n")
    assert sink.messages == []


@pytest.mark.usefixtures("day")
def test_send_delivers_them_to_the_lgwan_mta(
    tmp_path: Path, sink: SinkThread, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, sink.port)
    assert main(["digest", "send", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "3 mail(s) sent, 0 failed\n"
    arrived = sink.wait_for(3)
    assert sorted(m.rcpt_tos[0] for m in arrived) == ["joho@city.example.lg.jp", KACHO, RIN]
    assert {str(m.parsed()["From"]) for m in arrived} == {"MAILER-DAEMON@gw.test"}


def test_no_digests_without_the_consoles_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, 25, public_url="")
    assert main(["digest", "send", "--dry-run", "--config", str(config)]) == 78
    assert "console.public_url is not set" in capsys.readouterr().err

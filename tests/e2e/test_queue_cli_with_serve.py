"""``mukaika queue list|show|retry``, the command-line overrides and the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.cli.queue import register as register_queue
from gateway.cli.serve import _serve, apply_overrides
from gateway.cli.serve import register as register_serve
from gateway.configuration.config import Config
from gateway.queue.spool import Envelope, Spool, new_queue_id
from gateway.service.assembly import Parts
from gateway.service.demo import sample_message, send_message
from tests.gateway.relaykit import FakeSanitizer


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mukaika")
    sub = top.add_subparsers(dest="command", required=True)
    register_queue(sub)
    register_serve(sub)
    return top


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


def test_list_show_retry(tmp_path: Path, spool: Spool) -> None:
    deferred = Envelope(
        queue_id=new_queue_id(),
        mail_from="a@x.jp",
        rcpt_tos=("u@y.jp",),
        verdict="deliver",
        attempts=2,
        next_attempt=10**10,
        last_error="451 4.3.0 try\x1b[31m later",
    )
    spool.put("outgoing", deferred, b"clean")
    dead = Envelope(
        queue_id=new_queue_id(),
        mail_from="a@x.jp",
        rcpt_tos=(),
        verdict="deliver",
        failed=(("v@y.jp", "550 no"),),
    )
    spool.put("dead", dead, b"clean")
    code, out, _ = run("queue", "--data-dir", str(tmp_path), "list")
    assert code == 0
    assert deferred.queue_id in out
    assert dead.queue_id in out
    assert "\x1b" not in out
    code, out, _ = run("queue", "--data-dir", str(tmp_path), "show", dead.queue_id)
    assert code == 0
    assert "State:        dead" in out
    assert run("queue", "--data-dir", str(tmp_path), "show", "../../x")[0] == ExitCode.USAGE
    assert run("queue", "--data-dir", str(tmp_path), "show", new_queue_id())[0] == 4
    code, out, _ = run(
        "queue", "--data-dir", str(tmp_path), "retry", deferred.queue_id, dead.queue_id
    )
    assert code == 0
    assert spool.envelope("outgoing", deferred.queue_id).next_attempt == 0.0
    revived = spool.envelope("outgoing", dead.queue_id)
    assert revived.rcpt_tos == ("v@y.jp",)
    assert revived.failed == ()
    assert spool.ids("dead") == []


def test_command_line_overrides() -> None:
    args = parser().parse_args(
        [
            "serve",
            "--listen",
            "0.0.0.0:25",
            "--relay-to",
            "lgwan.example:2525",
            "--accept-domain",
            "a.lg.jp",
            "--accept-domain",
            "b.lg.jp",
            "--data-dir",
            "/srv/m",
            "--metrics",
            "127.0.0.1:9100",
        ]
    )
    config = apply_overrides(Config(), args)
    assert (config.smtp.listen_host, config.smtp.listen_port) == ("0.0.0.0", 25)
    assert (config.delivery.relay_host, config.delivery.relay_port) == ("lgwan.example", 2525)
    assert config.smtp.accept_domains == ("a.lg.jp", "b.lg.jp")
    assert config.service.data_dir == "/srv/m"
    assert config.metrics.enabled
    assert config.metrics.port == 9100
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--listen", "nope"])


async def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        ["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "var")]
    )
    config = apply_overrides(Config(), args)
    stop = asyncio.Event()
    task = asyncio.create_task(
        _serve(config, demo=True, parts=Parts(sanitizer=FakeSanitizer()), stop=stop)
    )
    try:
        for _ in range(500):
            out = capsys.readouterr().out
            if "listening on" in out:
                break
            await asyncio.sleep(0.01)
        assert "mukaika send --server" in out
        port = int(out.split("listening on ")[-1].split(":")[1].split()[0])
        message = sample_message("me@example.com", "staff@example.lg.jp")
        refused, reply = await send_message(
            ("127.0.0.1", port), "me@example.com", ["staff@example.lg.jp"], message
        )
        assert refused == {}
        assert "queued as" in reply
        maildir = tmp_path / "var" / "demo-maildir" / "new"
        for _ in range(500):
            if maildir.is_dir() and list(maildir.iterdir()):
                break
            await asyncio.sleep(0.01)
        assert len(list(maildir.iterdir())) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

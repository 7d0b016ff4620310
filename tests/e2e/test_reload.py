"""SIGHUP reload of a real ``mukaika serve``: new rules apply to the next message on a session
that stays open; an invalid file keeps the old configuration and the process alive."""

from __future__ import annotations

import asyncio
import signal
from email.header import decode_header, make_header
from pathlib import Path

import aiosmtplib

from tests.e2e.servekit import serve
from tests.gateway.relaykit import Sink

MAIL = (
    "From: a@example.com\r\nTo: u@example.lg.jp\r\nSubject: =?UTF-8?B?6KuL5rGC5pu4?=\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n本文です。\r\n"
).encode()


def main_file(tmp_path: Path, sink_port: int, tag: str, listen_port: int = 0) -> str:
    return f"""
[service]
data_dir = "{tmp_path / "var"}"
shutdown_grace_seconds = 5.0
[smtp]
listen_port = {listen_port}
hostname = "gw.test"
accept_domains = ["example.lg.jp"]
min_free_disk_bytes = 0
[worker]
processes = 1
rescan_seconds = 0.2
[delivery]
relay_port = {sink_port}
timeout_seconds = 5.0
[[rules]]
name = "tag"
recipients = ["example.lg.jp"]
[rules.policy.output]
subject_tag = "{tag}"
"""


def subject(data: bytes) -> str:
    for line in data.decode("ascii", "replace").split("\r\n"):
        if line.lower().startswith("subject:"):
            return str(make_header(decode_header(line.split(":", 1)[1].strip())))
    raise AssertionError("no subject")


async def test_sighup_reloads_rules_keeps_sessions_and_refuses_invalid_files(
    tmp_path: Path,
) -> None:
    sink = await Sink().start()
    config = tmp_path / "etc" / "mukaika.toml"
    config.parent.mkdir()
    config.write_text(main_file(tmp_path, sink.port, "[v1]"), encoding="utf-8")
    try:
        async with serve(config) as running:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=running.port, start_tls=False)
            async with client:  # one session, open across every reload
                await client.sendmail("a@example.com", ["u@example.lg.jp"], MAIL)
                (first,) = await sink.wait_for(1, within=60)
                assert subject(first.data) == "[v1] 請求書"

                # A changed rule: applies to the next message.
                config.write_text(main_file(tmp_path, sink.port, "[v2]"), encoding="utf-8")
                running.process.send_signal(signal.SIGHUP)
                await running.wait_log("configuration reloaded: 1 rule(s)")
                await client.sendmail("a@example.com", ["u@example.lg.jp"], MAIL)
                second = (await sink.wait_for(2, within=30))[1]
                assert subject(second.data) == "[v2] 請求書"

                # An invalid local.d file: every error logged with its file, the old rules stay.
                bad = config.parent / "local.d" / "50-typo.toml"
                bad.parent.mkdir()
                bad.write_text(
                    "[[rules]]\nname = 'x'\n[rules.policy.output]\nsubjct_tag = '[v3]'\n",
                    encoding="utf-8",
                )
                config.write_text(main_file(tmp_path, sink.port, "[v3]"), encoding="utf-8")
                running.process.send_signal(signal.SIGHUP)
                error = await running.wait_log("unknown key")
                assert f"{bad}: rules[0] ('x').policy.output.subjct_tag: unknown key" in error
                await running.wait_log("reload refused")
                await client.sendmail("a@example.com", ["u@example.lg.jp"], MAIL)
                third = (await sink.wait_for(3, within=30))[2]
                assert subject(third.data) == "[v2] 請求書"
                assert running.process.returncode is None

                # A setting that needs a restart is reported, not applied; the rest applies.
                bad.unlink()
                config.write_text(
                    main_file(tmp_path, sink.port, "[v4]", listen_port=running.port + 1),
                    encoding="utf-8",
                )
                running.process.send_signal(signal.SIGHUP)
                await running.wait_log("smtp.listen_port changed: needs restart (not applied)")
                await client.sendmail("a@example.com", ["u@example.lg.jp"], MAIL)
                fourth = (await sink.wait_for(4, within=30))[3]
                assert subject(fourth.data) == "[v4] 請求書"
            # The listener is still the old one.
            again = aiosmtplib.SMTP(hostname="127.0.0.1", port=running.port, start_tls=False)
            async with again:
                await again.noop()
            running.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(running.process.wait(), 30) == 0
    finally:
        await sink.stop()

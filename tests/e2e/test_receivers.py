"""A real ``mukaika serve`` with two receiving processes: what is one per gateway stays one.

Each test finds the receivers among the serve process's children and, for each open session,
the receiver serving it (from /proc: the session's socket inode in a receiver's descriptors).
Where a per-process count would pass by luck, the sessions are first spread over both
receivers (a session on a receiver that already holds the wanted share is closed and another
connection made; the kernel spreads connections by their source port), so the test fails
unless the gateway counts across receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import pytest

from tests.e2e.servekit import Serve, serve
from tests.gateway.relaykit import SIMPLE, RawClient, Sink, free_port
from tests.postgres import Cluster

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")

RECEIVER = b"gateway.service.receiver"


def config_text(tmp_path: Path, sink_port: int, metrics_port: int = 0, **smtp: object) -> str:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in smtp.items())
    metrics = f"[metrics]\nenabled = true\nport = {metrics_port}\n" if metrics_port else ""
    return f"""
[service]
data_dir = "{tmp_path / "var"}"
shutdown_grace_seconds = 5.0
[smtp]
listen_port = 0
hostname = "gw.test"
accept_domains = ["example.lg.jp"]
min_free_disk_bytes = 0
receivers = 2
{extra}
[worker]
processes = 1
rescan_seconds = 0.5
[delivery]
relay_port = {sink_port}
timeout_seconds = 5.0
retry_initial_seconds = 0.5
retry_max_seconds = 1.0
{metrics}"""


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    sink = await Sink().start()
    yield sink
    await sink.stop()


def write_config(tmp_path: Path, sink_port: int, **smtp: object) -> Path:
    path = tmp_path / "mukaika.toml"
    path.write_text(config_text(tmp_path, sink_port, 0, **smtp), encoding="utf-8")
    return path


def receiver_pids(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z" and RECEIVER in cmdline:
            found.add(int(entry))
    return found


async def receivers_of(running: Serve, count: int = 2) -> set[int]:
    for _ in range(2000):
        pids = receiver_pids(running.process.pid)
        if len(pids) == count:
            return pids
        await asyncio.sleep(0.01)
    raise AssertionError(f"not {count} receivers: {pids}")


def serving_pid(client: RawClient, server_port: int, pids: set[int]) -> int:
    """The receiver holding the server side of ``client``'s connection."""
    client_port = client.writer.get_extra_info("sockname")[1]
    inode = ""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and (
                int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                inode = fields[9]
    assert inode, "the session's socket is not in /proc/net/tcp"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no receiver holds socket {inode}")


async def connect(port: int, source: str = "127.0.0.1") -> tuple[RawClient, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    client = RawClient(reader, writer)
    return client, await client.reply(within=30)


async def spread(
    port: int, pids: set[int], count: int, source: str = "127.0.0.1"
) -> list[tuple[RawClient, int]]:
    """``count`` admitted sessions from ``source``, each receiver serving at most
    ``count - 1`` of them (so no receiver alone reaches the count)."""
    sessions: list[tuple[RawClient, int]] = []
    for _ in range(500):
        if len(sessions) == count:
            return sessions
        client, greeting = await connect(port, source)
        if greeting.startswith(b"421 4.7.0"):  # a count given back just now is not back yet
            await client.close()
            await asyncio.sleep(0.02)
            continue
        assert greeting.startswith(b"220"), greeting
        pid = serving_pid(client, port, pids)
        if sum(1 for _, p in sessions if p == pid) >= count - 1:
            await client.close()
            continue
        sessions.append((client, pid))
    raise AssertionError("the kernel never spread the sessions over both receivers")


async def close_all(sessions: list[tuple[RawClient, int]]) -> None:
    for client, _ in sessions:
        await client.close()


async def send_one(port: int, number: int) -> str:
    """Send one mail; a session closed just before may not have given its count back yet
    (its receiver tells the gateway asynchronously): "too many connections" is retried."""
    message = SIMPLE.replace(b"Subject: hello", f"Subject: n{number}".encode())
    for _ in range(500):
        try:
            _, reply = await aiosmtplib.send(
                message,
                sender="a@example.com",
                recipients=["user@example.lg.jp"],
                hostname="127.0.0.1",
                port=port,
                start_tls=False,
                timeout=60,
            )
        except aiosmtplib.SMTPConnectResponseError as exc:
            if exc.code != 421 or "Too many connections" not in exc.message:
                raise
            await asyncio.sleep(0.02)
            continue
        assert reply.startswith("2.0.0 OK queued as "), reply
        return reply.rsplit(" ", 1)[1]
    raise AssertionError("a connection count never came back")


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_mail_through_both_receivers_is_counted_audited_and_delivered_once(
    tmp_path: Path, sink: Sink
) -> None:
    metrics_port = free_port()
    config = tmp_path / "mukaika.toml"
    config.write_text(config_text(tmp_path, sink.port, metrics_port), encoding="utf-8")
    async with serve(config) as running:
        pids = await receivers_of(running)
        served: set[int] = set()
        ids: list[str] = []
        while served != pids or len(ids) < 6:  # until each receiver took mail
            client, greeting = await connect(running.port)
            assert greeting.startswith(b"220")
            served.add(serving_pid(client, running.port, pids))
            await client.close()
            ids.append(await send_one(running.port, len(ids)))
            assert len(ids) < 200, "one receiver never got a connection"
        await sink.wait_for(len(ids), within=60)
        metrics = await asyncio.to_thread(scrape, metrics_port)
        assert metrics["mukaika_received_total"] == len(ids)
        # A refusal in a receiver is counted in the one scrape too.
        client, _ = await connect(running.port)
        assert (await client.cmd(b"RCPT TO:<x@example.lg.jp>\r\n")).startswith(b"503")
        await client.close()
        for _ in range(1000):
            metrics = await asyncio.to_thread(scrape, metrics_port)
            if metrics.get('mukaika_rejected_total{reason="protocol"}') == 1:
                break
            await asyncio.sleep(0.02)
        assert metrics.get('mukaika_rejected_total{reason="protocol"}') == 1
    subjects = sorted(d.parsed()["Subject"] for d in sink.messages)
    assert subjects == sorted(f"n{n}" for n in range(len(ids)))
    audit = (tmp_path / "var" / "audit" / "audit.jsonl").read_text().splitlines()
    audited = [json.loads(line)["queue_id"] for line in audit]
    assert sorted(audited) == sorted(ids)


async def test_overall_connection_limit_counts_sessions_of_every_receiver(
    tmp_path: Path, sink: Sink
) -> None:
    config = write_config(tmp_path, sink.port, max_connections=3)
    async with serve(config) as running:
        pids = await receivers_of(running)
        sessions = await spread(running.port, pids, 3)
        for _ in range(10):  # wherever the kernel puts it
            client, greeting = await connect(running.port)
            assert greeting.startswith(b"421 4.7.0 Too many connections;"), greeting
            await client.close()
        await close_all(sessions)


async def test_per_client_limit_counts_sessions_of_every_receiver(
    tmp_path: Path, sink: Sink
) -> None:
    config = write_config(tmp_path, sink.port, max_connections_per_client=2)
    async with serve(config) as running:
        pids = await receivers_of(running)
        sessions = await spread(running.port, pids, 2, source="127.0.0.2")
        for _ in range(10):
            client, greeting = await connect(running.port, "127.0.0.2")
            assert greeting.startswith(b"421 4.7.0 Too many connections from your address")
            await client.close()
        other, greeting = await connect(running.port, "127.0.0.3")
        assert greeting.startswith(b"220")
        await other.close()
        await close_all(sessions)


async def test_stress_mode_counts_and_tightens_sessions_of_every_receiver(
    tmp_path: Path, sink: Sink
) -> None:
    config = write_config(
        tmp_path,
        sink.port,
        max_connections=10,
        stress_threshold_ratio=0.5,
        command_timeout_seconds=120,
        stress_timeout_seconds=1,
    )
    async with serve(config) as running:
        pids = await receivers_of(running)
        sessions = await spread(running.port, pids, 6)  # 6 > 5: stress, though no receiver has 6
        replies = await asyncio.gather(*(c.reply(within=60) for c, _ in sessions))
        busy = b"421 4.4.2 Timeout waiting for a complete line (server busy)"
        assert all(reply.startswith(busy) for reply in replies), replies
        await running.wait_log("stress mode on")
        await close_all(sessions)


async def test_sighup_reloads_in_the_gateway_and_receivers_ignore_it(
    tmp_path: Path, sink: Sink
) -> None:
    config = write_config(tmp_path, sink.port)
    async with serve(config) as running:
        pids = await receivers_of(running)
        running.process.send_signal(signal.SIGHUP)
        await running.wait_log("configuration reloaded")
        for pid in pids:
            os.kill(pid, signal.SIGHUP)  # e.g. a HUP to the whole process group
        await send_one(running.port, 0)
        await sink.wait_for(1, within=60)
        assert receiver_pids(running.process.pid) == pids  # none died, none restarted
        assert not [line for line in running.log if "exited with" in line]


async def test_a_killed_receiver_loses_nothing_acknowledged_and_gives_back_its_sessions(
    tmp_path: Path, sink: Sink
) -> None:
    config = write_config(tmp_path, sink.port, max_connections=2)
    async with serve(config) as running:
        pids = await receivers_of(running)
        sessions = await spread(running.port, pids, 2)  # one on each receiver
        victim = sessions[0][1]
        # A transaction in progress on the victim (never acknowledged) and mail acknowledged.
        client = sessions[0][0]
        try:
            await client.envelope()
            assert (await client.cmd(b"DATA\r\n")).startswith(b"354")
            await client.send(b"Subject: half\r\n\r\nnot finished")
            await close_all(sessions[1:])
            acknowledged = [await send_one(running.port, n) for n in range(4)]
            os.kill(victim, signal.SIGKILL)
            await closed_by_server(client)  # the connection died with it
        finally:
            await client.close()
        await running.wait_log("; starting another")  # -9, or 255 when asyncio missed the status
        await receivers_of(running)
        # Its session's count came back: two new sessions are admitted at once.
        again = await spread(running.port, receiver_pids(running.process.pid), 2)
        await close_all(again)
        acknowledged.append(await send_one(running.port, 4))
        await sink.wait_for(len(acknowledged), within=60)
    subjects = sorted(d.parsed()["Subject"] for d in sink.messages)
    assert subjects == [f"n{n}" for n in range(5)]  # the half message never arrives


async def test_a_killed_gateway_takes_its_receivers_and_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    relay_port = free_port()  # nobody listens yet: everything stays queued
    config = write_config(tmp_path, relay_port)
    async with serve(config) as running:
        pids = await receivers_of(running)
        acknowledged = [await send_one(running.port, n) for n in range(6)]
        running.process.kill()
        await running.process.wait()
        for _ in range(3000):
            if not any(receiver_alive(pid) for pid in pids):
                break
            await asyncio.sleep(0.01)
        assert not [pid for pid in pids if receiver_alive(pid)], "a receiver outlived the gateway"
    sink = Sink()
    sink.port = relay_port
    await sink.start()
    try:
        async with serve(config):
            await sink.wait_for(len(acknowledged), within=60)
    finally:
        await sink.stop()
    subjects = sorted(d.parsed()["Subject"] for d in sink.messages)
    assert subjects == [f"n{n}" for n in range(6)]


async def closed_by_server(client: RawClient) -> None:
    with contextlib.suppress(ConnectionError):
        assert await client.reply(within=30) == b""
    await client.close()


def receiver_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z" and RECEIVER in cmdline


async def test_every_receiver_refuses_new_mail_while_the_store_is_away(
    tmp_path: Path, sink: Sink, postgres_cluster: Cluster, postgres_url: str
) -> None:
    """PostgreSQL stopped under serve with two receiving processes: MAIL gets 451 on every
    session, whichever receiver serves it; started again, mail is accepted and delivered."""
    config = tmp_path / "mukaika.toml"
    text = config_text(tmp_path, sink.port)
    text += f'[store]\nurl = "{postgres_url}"\nprobe_interval_seconds = 0.05\n'
    config.write_text(text, encoding="utf-8")
    async with serve(config) as running:
        pids = await receivers_of(running)
        await send_one(running.port, 0)
        postgres_cluster.stop()
        await running.wait_log("store unreachable")
        refused_by: set[int] = set()
        for _ in range(200):
            client, _ = await connect(running.port)
            refused_by.add(serving_pid(client, running.port, pids))
            assert (await client.cmd(b"HELO x\r\n")).startswith(b"250")
            reply = await client.cmd(b"MAIL FROM:<a@example.com>\r\n")
            assert reply.startswith(b"451 4.3.0"), reply
            await client.close()
            if refused_by == pids:
                break
        assert refused_by == pids
        postgres_cluster.start()
        await running.wait_log("answers again")
        await send_one(running.port, 1)
        # n0 may have waited to be quarantined: taken up when the store answers, not after
        # worker.temporary_failure_retry_seconds (60 s).
        await sink.wait_for(2, within=20)
    assert sorted(d.parsed()["Subject"] for d in sink.messages) == ["n0", "n1"]

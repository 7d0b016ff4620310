"""Three ``mukaika serve`` nodes on 127.0.0.2, 127.0.0.3 and 127.0.0.4 sharing one PostgreSQL
(each with its own data directory and spool), two tenants, under load over SMTP:

- node 1 is killed with SIGKILL mid-load and started again: every message a node answered 250
  reaches its tenant's MTA at least once, and only its tenant's; duplicates are counted and
  may only be messages node 1 had acknowledged (in delivery at the kill);
- a message node 1 quarantined is released, while node 1 is dead, from a console that is a
  process of its own on the same database (``mukaika console --store-url``): a live node
  carries the release out, reading the original from the database;
- PostgreSQL is stopped and started again under load: the nodes answer 4xx while it is down,
  lose nothing, and accept again by themselves;
- the quarantine purge, a singleton job, runs on exactly one node.

Deterministic: nothing is timed; the test waits on conditions with generous bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import signal
import socket
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from tests.e2e.stack import Process, SinkThread, _listening, _start, mukaika, until
from tests.e2e.test_release import _encrypted_zip
from tests.gateway.relaykit import free_port
from tests.postgres import Cluster

pytestmark = pytest.mark.slow

NODES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
TENANTS = {"kita": "city.kita.example.lg.jp", "minami": "town.minami.example.lg.jp"}
PASSWORD = "console-password-for-the-cluster-test"
# How many acknowledged messages mark each step of the load.
KILL_AT, RELEASE_AT, DB_DOWN_AT, END_AT = 25, 45, 65, 90


def _listening_on(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
        return True
    return False


def _node_config(root: Path, n: int, port: int, url: str, sinks: dict[str, SinkThread]) -> Path:
    tenants = "".join(
        f'[[tenants]]\nname = "{name}"\ndomains = ["{domain}"]\nrelay_host = "127.0.0.1"\n'
        f"relay_port = {sinks[name].port}\n"
        for name, domain in TENANTS.items()
    )
    config = root / f"node-{n}.toml"
    config.write_text(
        f"""
[service]
data_dir = "{root / f"node-{n}"}"
shutdown_grace_seconds = 5.0
[smtp]
listen_host = "{NODES[n - 1]}"
listen_port = {port}
hostname = "node-{n}.test"
accept_domains = []
min_free_disk_bytes = 0
receivers = 1
[worker]
processes = 1
[delivery]
relay_host = "127.0.0.1"
relay_port = {sinks[""].port}
[store]
url = "{url}"
migrate_on_start = false
probe_interval_seconds = 0.5
[release]
poll_interval_seconds = 0.5
[node]
name = "node-{n}"
{tenants}""",
        encoding="utf-8",
    )
    return config


def _console_config(root: Path, port: int) -> Path:
    config = root / "console.toml"
    config.write_text(
        f"""
[service]
data_dir = "{root / "console"}"
[console]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}/"
""",
        encoding="utf-8",
    )
    return config


def _mail(subject: str, recipient: str, *attachments: tuple[str, bytes]) -> bytes:
    message = EmailMessage()
    message["From"] = "partner@example.com"
    message["To"] = recipient
    message["Subject"] = subject
    message.set_content("本文です。①㈱～\n")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="zip", filename=name)
    return message.as_bytes()


@dataclass
class Load:
    """Sends numbered messages round-robin to the nodes until stopped (in a thread); a node
    that refuses or cannot be reached is skipped for the next, as a sending MTA would."""

    port: int
    acked: dict[str, tuple[str, str]] = field(default_factory=dict)  # subject -> (node, tenant)
    refused: Counter[int] = field(default_factory=Counter)  # SMTP code -> how many
    unreachable: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            tenant = sorted(TENANTS)[n % 2]
            subject = f"load-{n:04d}"
            raw = _mail(subject, f"staff{n}@{TENANTS[tenant]}")
            host = NODES[n % len(NODES)]
            n += 1
            try:
                await aiosmtplib.send(
                    raw,
                    sender="partner@example.com",
                    recipients=[f"staff{n - 1}@{TENANTS[tenant]}"],
                    hostname=host,
                    port=self.port,
                    timeout=30,
                )
            except aiosmtplib.SMTPResponseException as exc:
                self.refused[exc.code] += 1
                await asyncio.sleep(0.05)
            except (aiosmtplib.SMTPException, OSError):
                self.unreachable += 1
                await asyncio.sleep(0.05)
            else:
                self.acked[subject] = (host, tenant)

    def count(self) -> int:
        return len(self.acked)


def _subjects(sink: SinkThread) -> list[str]:
    return [str(d.parsed()["Subject"]) for d in sink.messages]


@dataclass
class Console:
    """A signed-in operator of the console, over HTTP (cookies and the CSRF token kept)."""

    url: str
    cookies: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def _csrf(self) -> str:
        (token,) = [c.value for c in self.cookies if c.name == "mukaika_csrf"]
        assert token is not None
        return token

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": self._csrf()}).encode()
        with self.opener.open(self.url + path, data, timeout=60) as response:
            return int(response.status), response.read().decode()

    def get(self, path: str) -> tuple[int, str]:
        with self.opener.open(self.url + path, timeout=60) as response:
            return int(response.status), response.read().decode()

    def sign_in(self, name: str) -> None:
        self.get("/login")
        status, body = self.post("/login", {"name": name, "password": PASSWORD})
        assert status == 200, body


@contextlib.contextmanager
def _processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


def _show(url: str, root: Path, qid: str) -> dict[str, Any]:
    done = mukaika("quarantine", "show", qid, "--json", "--store-url", url,
                   "--data-dir", str(root / "node-2"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def test_three_nodes_one_database_lose_nothing_through_a_kill_and_a_database_restart(
    tmp_path: Path, postgres_url: str, postgres_cluster: Cluster
) -> None:
    sinks = {name: SinkThread() for name in ("", *TENANTS)}
    port = free_port()
    configs = [_node_config(tmp_path, n, port, postgres_url, sinks) for n in (1, 2, 3)]
    migrated = mukaika("store", "migrate", "--config", str(configs[0]))
    assert migrated.returncode == 0, migrated.stderr
    added = mukaika("user", "add", "oto", "--role", "operator", "--store-url", postgres_url,
                    "--data-dir", str(tmp_path / "console"), stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    load = Load(port)
    sender = threading.Thread(target=load.run, daemon=True)
    with contextlib.ExitStack() as closing, _processes() as processes:
        for sink in sinks.values():
            closing.callback(sink.close)
        closing.callback(load.stopping.set)

        def start_node(n: int) -> Process:
            node = _start(["serve", "--config", str(configs[n - 1])], tmp_path / f"node-{n}.log")
            processes.append(node)
            until(
                lambda: _listening_on(NODES[n - 1], port) or node.popen.poll() is not None,
                f"node {n}",
            )
            assert node.popen.poll() is None, node.output()
            return node

        nodes = [start_node(n) for n in (1, 2, 3)]
        # The purge (a singleton job) runs on exactly one node.
        purge_line = "runs the singleton job quarantine-purge"
        until(lambda: any(purge_line in n.output() for n in nodes), "the purge job taken")
        assert sum(purge_line in n.output() for n in nodes) == 1

        # A message node 1 quarantines and holds (an encrypted archive).
        held_to = f"kacho@{TENANTS['kita']}"
        raw = _mail("保留されるメール", held_to, ("見積書.zip", _encrypted_zip()))
        asyncio.run(
            aiosmtplib.send(raw, sender="partner@example.com", recipients=[held_to],
                            hostname=NODES[0], port=port, timeout=30)
        )  # fmt: skip
        listed: list[dict[str, Any]] = []

        def held() -> bool:
            done = mukaika("quarantine", "list", "--json", "--store-url", postgres_url,
                           "--data-dir", str(tmp_path / "node-2"))  # fmt: skip
            listed[:] = [json.loads(line) for line in done.stdout.splitlines()]
            return any(e["state"] in ("held", "awaiting_password") for e in listed)

        until(held, "the message held by node 1")
        (entry,) = [e for e in listed if e["state"] in ("held", "awaiting_password")]
        assert (entry["node"], entry["kept_in"], entry["tenant"]) == ("node-1", "database", "kita")

        sender.start()
        until(lambda: load.count() >= KILL_AT, f"{KILL_AT} acknowledged")
        nodes[0].popen.send_signal(signal.SIGKILL)  # mid-load
        nodes[0].popen.wait(60)
        acked_by_1_before_kill = {s for s, (host, _) in load.acked.items() if host == NODES[0]}

        # The release, from a console of its own on the database, while node 1 is dead.
        console_port = free_port()
        console_config = _console_config(tmp_path, console_port)
        console = _start(["console", "--config", str(console_config), "--store-url",
                          postgres_url], tmp_path / "console.log")  # fmt: skip
        processes.append(console)
        until(lambda: _listening(console_port) or console.popen.poll() is not None, "console")
        assert console.popen.poll() is None, console.output()
        operator = Console(f"http://127.0.0.1:{console_port}")
        operator.sign_in("oto")
        status, body = operator.post(f"/mail/{entry['id']}/release", {})
        assert status == 200, body

        def released() -> bool:
            decisions = _show(postgres_url, tmp_path, entry["id"])["decisions"]
            return any(d.get("carried_out_by") for d in decisions)

        until(released, "the release carried out")
        (decision,) = _show(postgres_url, tmp_path, entry["id"])["decisions"]
        assert decision["carried_out_by"] in ("node-2", "node-3")
        until(
            lambda: any(
                "encrypted_archive" in str(d.parsed()["X-Mukaika-Summary"])
                and d.rcpt_tos == [held_to]
                for d in sinks["kita"].messages
            ),
            "the released copy at kita's MTA",
        )

        until(lambda: load.count() >= RELEASE_AT, f"{RELEASE_AT} acknowledged")
        nodes[0] = start_node(1)  # its spool recovers what it acknowledged

        until(lambda: load.count() >= DB_DOWN_AT, f"{DB_DOWN_AT} acknowledged")
        postgres_cluster.stop()
        try:
            refused_before = load.refused[451]
            until(lambda: load.refused[451] >= refused_before + 6, "451 while the database is down")
            acked_while_down = load.count()
        finally:
            postgres_cluster.start()
        until(lambda: load.count() >= max(END_AT, acked_while_down + 10), "acceptance again")
        load.stopping.set()
        sender.join(120)

        # Every acknowledged message at its tenant's MTA, and only there.
        for tenant in TENANTS:
            wanted = {s for s, (_, t) in load.acked.items() if t == tenant}
            until(
                lambda t=tenant, w=wanted: w <= set(_subjects(sinks[t])),  # type: ignore[misc]
                f"every acknowledged message of {tenant} delivered",
            )
        for tenant in TENANTS:
            other = {s for s, (_, t) in load.acked.items() if t != tenant}
            assert not other & set(_subjects(sinks[tenant]))
        assert not {s for s in _subjects(sinks[""]) if s.startswith("load-")}
        delivered = Counter(
            s for t in TENANTS for s in _subjects(sinks[t]) if s.startswith("load-")
        )
        duplicates = {s for s, n in delivered.items() if n > 1}
        assert duplicates <= acked_by_1_before_kill
        print(  # the figures of the run, for the report (pytest -s)
            f"acknowledged {load.count()}, delivered {len(delivered)} distinct, "
            f"duplicates {len(duplicates)}, refused {dict(load.refused)}, "
            f"unreachable {load.unreachable}"
        )

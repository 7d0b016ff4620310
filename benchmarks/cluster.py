"""Delivered msg/s with 1, 2 and 3 ``mukaika serve`` nodes sharing one PostgreSQL on this
machine, and what each delivered message costs the database, so the scaling past one machine
can be projected (issue 18).

Each case: a fresh database on a private PostgreSQL cluster (tests/postgres.py, with fsync,
synchronous commit and full-page writes back on, and pg_stat_statements loaded), the schema
migrated once, N nodes started as shipped (each its own data directory and spool, the
originals in the database) on 127.0.0.2 … 127.0.0.(N+1), one recording sink they all deliver
to, and the load generator sending ``messages`` in all, spread over every node at once
(``connections`` sessions each, as fast as they are answered); then it waits until every
accepted message is delivered (a fixed count, so the database's counters cover exactly the
messages counted). Reported per case: delivered/s (delivered ÷ first dot to last delivery),
accepted/s, errors, and per delivered message the database's statements (pg_stat_statements:
calls, rows; the probes and pings of the idle moments included), the WAL bytes written
(pg_current_wal_lsn before and after) and the growth of the database (pg_database_size).

All nodes, the database, the sink and the load generator share this machine's two cores, so
the figures show the cost of coordination rather than added capacity: more nodes on one
machine cannot add cores. The database's cost per message is the figure that carries over:
with D the messages per second one database server sustains for that many statements and WAL
bytes, N machines deliver about min(N × one node's rate, D).

``python -m benchmarks.cluster`` (a few minutes); ``--nodes 1 2 3 --messages 300``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from benchmarks import generate
from benchmarks.common import table, write_result
from benchmarks.loadgen import LoadResult, run_load
from benchmarks.relay import _read_line_with, _spawn, _start_sink, _stop, read_deliveries

# The loopback addresses of the nodes (the first node on 127.0.0.2, as in tests/e2e).
NODE_ADDRESSES: Final = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
# Durability as in production, and the statement counter.
SERVER_OPTIONS: Final = (
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    "shared_preload_libraries=pg_stat_statements",
)


def _node_config(work: Path, n: int, url: str, sink_port: int) -> Path:
    config = work / f"node-{n}.toml"
    config.write_text(
        f"""# mukaika serve for the cluster benchmark: shipped defaults except addresses and paths.
[service]
data_dir = "{work / f"node-{n}"}"
shutdown_grace_seconds = 10.0
[smtp]
listen_host = "{NODE_ADDRESSES[n - 1]}"
listen_port = 0
accept_domains = ["city.example.lg.jp"]
[delivery]
relay_host = "127.0.0.1"
relay_port = {sink_port}
[store]
url = "{url}"
migrate_on_start = false
[node]
name = "node-{n}"
""",
        encoding="utf-8",
    )
    return config


@contextlib.contextmanager
def _nodes(work: Path, count: int, url: str, sink_port: int) -> Iterator[list[tuple[str, int]]]:
    """``count`` serve nodes on one database; their (address, port)."""
    exe = str(Path(sys.executable).with_name("mukaika"))
    configs = [_node_config(work, n, url, sink_port) for n in range(1, count + 1)]
    migrated = subprocess.run(
        [exe, "store", "migrate", "--config", str(configs[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"store migrate: {migrated.stderr}")
    started: list[subprocess.Popen[str]] = []
    try:
        addresses = []
        for n, config in enumerate(configs, start=1):
            proc = _spawn([exe, "serve", "--config", str(config)], work / f"node-{n}.log")
            started.append(proc)
            line = _read_line_with(proc, "listening on", timeout=120.0)
            addresses.append((NODE_ADDRESSES[n - 1], int(line.rsplit(":", 1)[1])))
        yield addresses
    finally:
        for proc in started:
            _stop(proc)


def _database_counters(cluster: Any, database: str) -> dict[str, int]:
    with cluster.connect(database) as db:
        calls, rows = db.execute(
            "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(rows), 0) FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        wal = db.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"calls": int(calls), "rows": int(rows), "wal_bytes": int(wal), "size_bytes": int(size)}


def _top_statements(cluster: Any, database: str, limit: int = 10) -> list[tuple[int, str]]:
    """The statements run most often (calls, the first 100 characters of the text)."""
    with cluster.connect(database) as db:
        rows = db.execute(
            "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) ORDER BY calls DESC LIMIT %s",
            (limit,),
        ).fetchall()
    return [(int(calls), str(query)) for calls, query in rows]


async def _load_one(
    host: str, port: int, messages: list[bytes], connections: int, count: int, tag: str
) -> LoadResult:
    return await run_load(port, messages, host=host, connections=connections, count=count, tag=tag)


async def _load_all(
    addresses: list[tuple[str, int]], messages: list[bytes], connections: int, total: int
) -> list[LoadResult]:
    share = -(-total // len(addresses))  # each node its part, rounded up
    return list(
        await asyncio.gather(
            *(
                _load_one(host, port, messages, connections, share, f"n{i}")
                for i, (host, port) in enumerate(addresses)
            )
        )
    )


def _case(
    cluster: Any, work: Path, nodes: int, messages: list[bytes], connections: int, total: int,
    drain_seconds: float,
) -> dict[str, Any]:  # fmt: skip
    database = cluster.new_database()
    with cluster.connect(database) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    record = work / "deliveries.tsv"
    sink, sink_port = _start_sink("record", work, record)
    try:
        with _nodes(work, nodes, cluster.url(database), sink_port) as addresses:
            with cluster.connect(database) as db:
                db.execute("SELECT pg_stat_statements_reset()")
            before = _database_counters(cluster, database)
            loads = asyncio.run(_load_all(addresses, messages, connections, total))
            sent = [s for load in loads for s in load.sent]
            accepted = {s.message_id: s for s in sent if 200 <= s.code < 300}
            deadline = time.monotonic() + drain_seconds
            delivered: dict[str, float] = {}
            while time.monotonic() < deadline:
                delivered = {m: t for m, t in read_deliveries(record).items() if m in accepted}
                if len(delivered) >= len(accepted):
                    break
                time.sleep(0.25)
            after = _database_counters(cluster, database)
            top = _top_statements(cluster, database)
    finally:
        _stop(sink)
        cluster.drop_database(database)
    sending = max((s.t_reply for s in sent), default=0.0) - min(
        (s.t_dot for s in sent), default=0.0
    )
    first = min((s.t_dot for s in accepted.values()), default=0.0)
    last = max(delivered.values(), default=first)
    span = max(last - first, 1e-9)
    n = max(len(delivered), 1)
    cost = {key: after[key] - before[key] for key in after}
    return {
        "nodes": nodes,
        "connections_per_node": connections,
        "accepted": len(accepted),
        "errors": len(sent) - len(accepted),
        "delivered": len(delivered),
        "accepted_per_s": round(len(accepted) / max(sending, 1e-9), 1),
        "delivered_per_s": round(len(delivered) / span, 1),
        "statements_per_msg": round(cost["calls"] / n, 1),
        "rows_per_msg": round(cost["rows"] / n, 1),
        "wal_bytes_per_msg": round(cost["wal_bytes"] / n),
        "db_growth_bytes_per_msg": round(cost["size_bytes"] / n),
        "message_bytes_mean": round(sum(map(len, messages)) / len(messages)),
        "top_statements_per_msg": [(round(calls / n, 2), query) for calls, query in top],
    }


def run(
    nodes: list[int],
    messages_per_case: int,
    connections: int,
    cls: str = "html_30k",
    drain_seconds: float = 900.0,
    work: Path | None = None,
) -> dict[str, Any]:
    """Every case of ``nodes``; the rows and how they were measured."""
    from tests.postgres import Cluster

    samples = generate.generate_class(cls, 20)
    messages = [s.raw for s in samples]
    cluster = Cluster(SERVER_OPTIONS)
    cluster.start()
    rows = []
    try:
        for count in nodes:
            with contextlib.ExitStack() as stack:
                if work is None:
                    case_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                else:
                    case_dir = work / f"nodes-{count}"
                    case_dir.mkdir(parents=True, exist_ok=True)
                row = _case(
                    cluster, case_dir, count, messages, connections, messages_per_case,
                    drain_seconds,
                )  # fmt: skip
                rows.append(row)
                print(
                    f"{count} node(s): delivered {row['delivered']}/{row['accepted']} "
                    f"{row['delivered_per_s']}/s; per message {row['statements_per_msg']} "
                    f"statements, {row['wal_bytes_per_msg']} WAL bytes",
                    flush=True,
                )
    finally:
        cluster.remove()
    return {
        "messages_per_case": messages_per_case,
        "class": cls,
        "message_sizes": generate.describe(samples),
        "rows": rows,
        "notes": [
            "All nodes, PostgreSQL (fsync on), the sink and the load generator share this "
            "machine's cores: more nodes here measure coordination, not added capacity.",
            "The machine was shared with other work while measured (see loadavg_1_5_15).",
        ],
    }


COLUMNS = [
    ("nodes", "nodes"),
    ("accepted_per_s", "accepted/s"),
    ("delivered_per_s", "delivered/s"),
    ("errors", "errors"),
    ("statements_per_msg", "statements/msg"),
    ("rows_per_msg", "rows/msg"),
    ("wal_bytes_per_msg", "WAL bytes/msg"),
    ("db_growth_bytes_per_msg", "DB growth bytes/msg"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--messages", type=int, default=300, help="messages per case")
    parser.add_argument("--connections", type=int, default=4, help="sessions per node")
    parser.add_argument("--class", dest="cls", default="html_30k", help="generator class")
    parser.add_argument("--out", type=Path, help="results directory")
    args = parser.parse_args()
    if any(not 1 <= n <= len(NODE_ADDRESSES) for n in args.nodes):
        parser.error(f"--nodes: 1 to {len(NODE_ADDRESSES)}")
    result = run(args.nodes, args.messages, args.connections, args.cls)
    kwargs = {"out_dir": args.out} if args.out else {}
    path = write_result("cluster", result, **kwargs)
    print()
    print(table(result["rows"], COLUMNS))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

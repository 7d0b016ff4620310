"""Several nodes on one store: every record names its node, a node whose clock is off the
database's refuses to start, and approved releases are handed to one node each."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config
from gateway.configuration.settings import NodeSettings, StoreSettings
from gateway.evidence.quarantine import Quarantine
from gateway.service.held_mail import HeldMail
from gateway.store import database
from gateway.store.users import add_user
from gateway.store.workflow import claim_due, finish
from sanitizers.report import Report
from sanitizers.vocabulary import MessageState, Reason, UserRole, Verdict
from tests.gateway.relaykit import FakeAudit
from tests.storekit import migrated_store

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _held(quarantine: Quarantine, n: int) -> str:
    qid = quarantine.store(
        f"Q{n}",
        f"Subject: {n}\r\n\r\nx\r\n".encode(),
        client="192.0.2.1",
        helo="h",
        mail_from="a@example.jp",
        rcpt_to=["b@city.example.lg.jp"],
        received_at=NOW,
    )
    quarantine.record_result(qid, Report(verdict=Verdict.HOLD, reasons=[Reason.ENCRYPTED_ARCHIVE]))
    quarantine.record_delivery(qid, MessageState.HELD)
    return qid


def test_node_names_default_to_the_host_and_refuse_odd_text() -> None:
    assert NodeSettings(name="mx-1.pref").resolved_name() == "mx-1.pref"
    assert NodeSettings().resolved_name()  # the host name, never empty
    for bad in ("-x", "a b", "ノード", "a\nb", "x" * 101):
        with pytest.raises(ValidationError, match="node name"):
            NodeSettings(name=bad)


def test_quarantine_entries_name_the_node_that_stored_them(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        for node in ("node-1", "node-2"):
            _held(Quarantine(tmp_path / node, store=store, node=node), int(node[-1]))
    code, out, err = run("quarantine", "list", "--json", "--data-dir", str(tmp_path), *store_args)
    assert code == ExitCode.OK, err
    assert sorted(json.loads(line)["node"] for line in out.splitlines()) == ["node-1", "node-2"]


def test_every_audit_line_of_a_command_names_its_node(
    tmp_path: Path, store_settings: StoreSettings, store_args: list[str]
) -> None:
    config = tmp_path / "mukaika.toml"
    config.write_text('[node]\nname = "console-2"\n')
    code, _, err = run(
        "store", "migrate", "--config", str(config), "--data-dir", str(tmp_path), *store_args
    )
    assert code == ExitCode.OK, err
    lines = (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["node"] for line in lines] == ["console-2"]


def _skewed(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This node's clock ``seconds`` ahead of the real one, as the store's code reads it."""
    real = time.time
    monkeypatch.setattr(database, "time", SimpleNamespace(time=lambda: real() + seconds))


@pytest.mark.parametrize("skew", [5.0, -5.0])
def test_a_node_whose_clock_is_off_the_databases_refuses_to_start(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    _skewed(monkeypatch, skew)
    code, _, err = run(
        "serve", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:0",
        "--store-url", postgres_url,
    )  # fmt: skip
    assert code == ExitCode.CLOCK == 80
    assert ("behind" if skew > 0 else "ahead of") in err
    assert "node.max_clock_offset_seconds" in err
    assert "not started" in err
    (line,) = (tmp_path / "audit" / "audit.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert (record["event"], record["outcome"]) == ("node", "started")
    assert record["node"] == NodeSettings().resolved_name()
    assert record["clock_offset_seconds"] == pytest.approx(-skew, abs=0.5)


def test_a_node_within_the_bound_records_its_offset_and_starts(
    tmp_path: Path, postgres_url: str
) -> None:
    from gateway.service.assembly import Gateway, Parts
    from gateway.service.node_clock import NodeClock

    config = Config.model_validate(
        {"service": {"data_dir": str(tmp_path)}, "store": {"url": postgres_url}}
    )
    gateway = Gateway(config, Parts())
    try:
        assert isinstance(gateway.node_clock, NodeClock)
        offset = gateway.node_clock.check_at_start()
        assert offset is not None
        assert abs(offset) < config.node.max_clock_offset_seconds
    finally:
        for close in gateway._owned:
            close()
    record = json.loads((tmp_path / "audit" / "audit.jsonl").read_text().splitlines()[-1])
    assert record["event"] == "node"
    assert record["clock_offset_seconds"] == pytest.approx(offset, abs=1e-6)


def _approved(quarantine: Quarantine, n: int) -> str:
    qid = _held(quarantine, n)
    HeldMail(quarantine.index.store, Config(), FakeAudit()).release(qid, "alice")
    return qid


def test_a_release_is_claimed_by_one_node_and_only_by_the_node_holding_its_original(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        add_user(store, "alice", UserRole.OPERATOR, "root")
        on_a = _approved(
            Quarantine(tmp_path / "a", store=store, node="a", originals="directory"), 1
        )
        before_nodes = _approved(
            Quarantine(tmp_path / "old", store=store, originals="directory"), 2
        )
        in_database = _approved(Quarantine(tmp_path / "a", store=store, node="a"), 3)
        # b never takes a's message whose original is on a's disk; the old entry and a's
        # message whose original is in the database are free.
        taken = claim_due(store, "b", 10, now=NOW, lease=LEASE)
        assert [d.message for d in taken] == [before_nodes, in_database]
        # a takes its own; the others are b's until b's lease runs out.
        assert [d.message for d in claim_due(store, "a", 10, now=NOW, lease=LEASE)] == [on_a]
        later = NOW + LEASE + timedelta(seconds=1)
        retaken = {d.message: d for d in claim_due(store, "a", 10, now=later, lease=LEASE)}
        assert set(retaken) == {on_a, before_nodes, in_database}
        # A node taking its own claims again (a restart) gets them; another node does not.
        assert claim_due(store, "b", 10, now=later, lease=LEASE) == []
        done = finish(
            store, retaken[before_nodes], done=True, outcome="sent", queue_ids=["q"],
            now=later, node="a",
        )  # fmt: skip
        assert done.carried_out_by == "a"
        assert done.to_dict()["carried_out_by"] == "a"
        again = claim_due(store, "a", 10, now=later, lease=LEASE)
        assert [d.message for d in again] == [on_a, in_database]


def test_nodes_claiming_at_once_never_share_a_release(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """FOR UPDATE SKIP LOCKED on PostgreSQL (the write lock on SQLite): every decision goes to
    exactly one of the nodes that ask at the same moment."""
    with migrated_store(tmp_path, settings=store_settings) as store:
        add_user(store, "alice", UserRole.OPERATOR, "root")
        quarantine = Quarantine(tmp_path / "q", store=store)
        expected = {_approved(quarantine, n) for n in range(24)}
        start = threading.Barrier(4)
        taken: dict[str, list[str]] = {}

        def node(name: str) -> None:
            start.wait()
            mine: list[str] = []
            while claimed := claim_due(store, name, 3, now=NOW, lease=LEASE):
                for decision in claimed:  # carried out: no longer approved
                    finish(store, decision, done=True, outcome="sent", queue_ids=[], now=NOW)
                    mine.append(decision.message)
            taken[name] = mine

        threads = [threading.Thread(target=node, args=(f"n{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    every = [qid for mine in taken.values() for qid in mine]
    assert sorted(every) == sorted(expected)  # each once, none lost


def test_a_node_reads_and_verifies_only_the_originals_on_its_disk(
    tmp_path: Path, postgres_url: str
) -> None:
    """Two nodes' data directories, one store, originals kept as files: each node verifies its
    own originals and those in the database, and asking one node for the other's file names
    the node that has it (never a false integrity failure)."""
    settings = StoreSettings(url=postgres_url)
    ids = {}
    with migrated_store(tmp_path, settings=settings) as store:
        for node in ("node-1", "node-2"):
            quarantine = Quarantine(
                tmp_path / node / "quarantine", store=store, node=node, originals="directory"
            )
            ids[node] = _held(quarantine, int(node[-1]))
        in_database = _held(Quarantine(tmp_path / "node-1" / "quarantine", store=store), 3)
    config = tmp_path / "node-2.toml"
    config.write_text('[node]\nname = "node-2"\n')
    on_2 = ("--config", str(config), "--data-dir", str(tmp_path / "node-2"))
    code, out, err = run("quarantine", "verify", *on_2, "--store-url", postgres_url)
    assert (code, out.strip()) == (ExitCode.OK, "verified 2 original(s): 2 intact, 0 failed"), err
    code, _, err = run("quarantine", "export", in_database, str(tmp_path / "z.eml"), *on_2,
                       "--store-url", postgres_url)  # fmt: skip
    assert code == ExitCode.OK, err
    code, _, err = run("quarantine", "export", ids["node-1"], str(tmp_path / "x.eml"), *on_2,
                       "--store-url", postgres_url)  # fmt: skip
    assert code == ExitCode.NOT_FOUND
    assert "on node node-1's disk" in err
    assert not (tmp_path / "x.eml").exists()
    code, _, err = run("quarantine", "export", ids["node-2"], str(tmp_path / "y.eml"), *on_2,
                       "--store-url", postgres_url)  # fmt: skip
    assert code == ExitCode.OK, err

"""A short run of the peers benchmark's code on the Python systems (the long run with the
Postfix peers is ``make bench``): the harness starts each system, checks it on the sample,
drives it with Postfix's smtp-source into smtp-sink and reports medians and ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import cdr, peers


def test_peers_harness_smoke_run(tmp_path: Path) -> None:
    for program in (peers.SMTP_SOURCE, peers.SMTP_SINK):
        if not Path(program).exists():
            pytest.fail(f"{program} is missing: apt-get install postfix (make check installs it)")
    result = peers.run(rounds=1, count=20, sessions=4, smoke=True)
    systems = {row["system"]: row for row in result["rows"]}
    assert set(systems) == {"aiosmtpd discard", "mukaika serve"}
    assert result["checks"] == {"aiosmtpd discard": "ok", "mukaika serve": "ok"}
    for row in systems.values():
        assert row["rounds"]
        assert row["msg_per_s_median"] > 0
        assert row["msg_per_s_min"] <= row["msg_per_s_median"] <= row["msg_per_s_max"]
    assert result["ratios"]["mukaika serve / aiosmtpd discard"] > 0
    assert result["skipped"] == {}


def test_cluster_benchmark_smoke_run(tmp_path: Path) -> None:
    """The cluster benchmark's code for 1 and 2 nodes, 20 messages each: every accepted
    message delivered, and the database's cost per message counted."""
    from benchmarks import cluster

    result = cluster.run([1, 2], messages_per_case=20, connections=2, work=tmp_path)
    assert [row["nodes"] for row in result["rows"]] == [1, 2]
    for row in result["rows"]:
        assert row["accepted"] > 0
        assert row["delivered"] == row["accepted"]
        assert row["delivered_per_s"] > 0
        assert row["statements_per_msg"] > 0
        assert row["wal_bytes_per_msg"] > 0


@pytest.mark.parametrize("name", sorted(cdr.KINDS))
def test_cdr_benchmark_files_are_disarmed_not_removed(name: str) -> None:
    """Each CDR benchmark kind measures the work its name says: the file is delivered
    (sanitized, or converted for containers, 一太郎 and rasterised SVG), never removed for
    being broken; the rasterised SVG comes out as a PNG and the compressed 一太郎 as text."""
    from sanitizers.cdr.registry import Registry
    from sanitizers.policy import AttachmentAction
    from sanitizers.vocabulary import Action

    kind, filename = cdr.KINDS[name]
    (data,) = cdr.build(name, 1)
    outcome = Registry().disarm(data, filename, kind, AttachmentAction.SANITIZE, cdr._policy(name))
    assert outcome.action in (Action.SANITIZED, Action.CONVERTED), outcome
    if name == "svg_png":
        assert outcome.content_type == "image/png"
    if name in ("jtd", "jtdc"):
        assert outcome.content_type == "text/plain; charset=utf-8"

"""The cluster's DMARC rows on both backends: a file is handed in once, pending rows are
those of past days not yet reported, and rows are reported by one claimant only."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.configuration.settings import StoreSettings
from gateway.store import dmarc_rows
from tests.storekit import migrated_store

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
POLICY = {"domain": "partner.co.jp", "p": "reject", "rua": ["mailto:d@partner.co.jp"]}


def rows(
    count: int, tenant: str = ""
) -> list[tuple[str, str, dict[str, object], dict[str, object], int]]:
    row = {"source_ip": "192.0.2.1", "disposition": "none"}
    return [(tenant, "partner.co.jp", POLICY, row, count)]


def test_a_file_is_handed_in_once(tmp_path: Path, store_settings: StoreSettings) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        day = date(2026, 12, 3)
        assert not dmarc_rows.handed_in(store, "n1:2026-12-03.1.jsonl")
        assert dmarc_rows.hand_in(
            store,
            source="n1:2026-12-03.1.jsonl",
            node="n1",
            day=day,
            rows=rows(3, "kita"),
            now=NOW,
        )
        again = dmarc_rows.hand_in(
            store, source="n1:2026-12-03.1.jsonl", node="n1", day=day, rows=rows(3), now=NOW
        )
        assert not again
        assert dmarc_rows.handed_in(store, "n1:2026-12-03.1.jsonl")
        [row] = dmarc_rows.of_day(store, day, limit=10)
        assert (row.tenant, row.domain, row.count, row.policy, row.row["disposition"]) == (
            "kita",
            "partner.co.jp",
            3,
            POLICY,
            "none",
        )


def test_pending_rows_are_of_past_days_and_unreported(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        for day in (date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)):
            dmarc_rows.hand_in(
                store, source=f"n1:{day}.1.jsonl", node="n1", day=day, rows=rows(1), now=NOW
            )
        pending = dmarc_rows.pending(store, before=date(2026, 12, 4), limit=100)
        assert [r.day for r in pending] == [date(2026, 12, 2), date(2026, 12, 3)]
        sent: list[int] = []
        assert dmarc_rows.report(store, [pending[0].id], NOW, lambda: sent.append(1))
        assert sent == [1]
        left = dmarc_rows.pending(store, before=date(2026, 12, 4), limit=100)
        assert [r.day for r in left] == [date(2026, 12, 3)]
        # Already reported: not sent again.
        assert not dmarc_rows.report(store, [pending[0].id], NOW, lambda: sent.append(2))
        assert sent == [1]


def test_a_report_that_cannot_be_spooled_leaves_its_rows_pending(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with migrated_store(tmp_path, settings=store_settings) as store:
        day = date(2026, 12, 3)
        dmarc_rows.hand_in(store, source="n1:a", node="n1", day=day, rows=rows(1), now=NOW)
        [row] = dmarc_rows.pending(store, before=date(2026, 12, 4), limit=10)

        def disk_full() -> None:
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError, match="No space"):
            dmarc_rows.report(store, [row.id], NOW, disk_full)
        assert dmarc_rows.pending(store, before=date(2026, 12, 4), limit=10) == [row]


def test_two_nodes_reporting_at_once_send_the_rows_once(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with (
        migrated_store(tmp_path, settings=store_settings) as first,
        migrated_store(tmp_path, settings=store_settings) as second,
    ):
        day = date(2026, 12, 3)
        dmarc_rows.hand_in(first, source="n1:a", node="n1", day=day, rows=rows(1), now=NOW)
        [row] = dmarc_rows.pending(first, before=date(2026, 12, 4), limit=10)
        sending = threading.Event()
        outcome: list[bool] = []
        sent: list[str] = []

        def node_two() -> None:
            sending.wait(30)
            outcome.append(dmarc_rows.report(second, [row.id], NOW, lambda: sent.append("n2")))

        def send_while_node_two_tries() -> None:
            sending.set()
            thread.join(0.5)  # node two tries meanwhile: skips the row, or waits for us
            sent.append("n1")

        thread = threading.Thread(target=node_two)
        thread.start()
        assert dmarc_rows.report(first, [row.id], NOW, send_while_node_two_tries)
        thread.join(30)
        assert outcome == [False]
        assert sent == ["n1"]

"""Prometheus metrics: names, bounded labels, exposition and the HTTP endpoint."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.configuration.settings import MetricsSettings
from gateway.observation.metrics import (
    FAILURE_REASONS,
    SMTP_REJECT_REASONS,
    Metrics,
    bounded_label,
    parse_listen,
)
from sanitizers.vocabulary import Reason


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_exposition_contains_expected_series() -> None:
    m = Metrics()
    m.received()
    m.received()
    m.rejected("relay")
    m.delivered()
    m.deferred()
    m.dead_lettered()
    m.verdict("hold")
    m.part("converted", "html_body")
    m.part("removed", Reason.MACRO)
    m.quarantined()
    m.observe_sanitize(0.003)
    m.observe_end_to_end(2.0)
    m.set_queue_depth("queued", 7)
    m.set_queue_depth("deferred", 2)
    m.set_oldest_age(42.5)
    m.set_busy_workers(3)
    s = _samples(m)
    assert s[("mukaika_received_total", ())] == 2
    assert s[("mukaika_rejected_total", (("reason", "relay"),))] == 1
    assert s[("mukaika_delivered_total", ())] == 1
    assert s[("mukaika_deferred_total", ())] == 1
    assert s[("mukaika_dead_lettered_total", ())] == 1
    assert s[("mukaika_verdicts_total", (("verdict", "hold"),))] == 1
    assert s[("mukaika_verdicts_total", (("verdict", "deliver"),))] == 0
    assert s[("mukaika_parts_total", (("action", "converted"), ("reason", "html_body")))] == 1
    assert s[("mukaika_parts_total", (("action", "removed"), ("reason", "macro")))] == 1
    assert s[("mukaika_quarantined_total", ())] == 1
    assert s[("mukaika_sanitize_seconds_count", ())] == 1
    assert s[("mukaika_sanitize_seconds_bucket", (("le", "0.005"),))] == 1
    assert s[("mukaika_sanitize_seconds_bucket", (("le", "0.0025"),))] == 0
    assert s[("mukaika_end_to_end_seconds_sum", ())] == 2.0
    assert s[("mukaika_queue_depth", (("state", "queued"),))] == 7
    assert s[("mukaika_queue_depth", (("state", "deferred"),))] == 2
    assert s[("mukaika_oldest_queued_age_seconds", ())] == 42.5
    assert s[("mukaika_busy_workers", ())] == 3
    assert all(name.startswith("mukaika_") for name, _ in s)


def test_label_cardinality_is_bounded() -> None:
    m = Metrics()
    for i in range(500):
        m.rejected(f"attacker-chosen-{i}")
        m.part(f"act{i}", f"reason{i}")
        m.set_queue_depth(f"state{i}", i)
        m.verdict(f"v{i}")
    s = _samples(m)
    assert s[("mukaika_rejected_total", (("reason", "other"),))] == 500
    assert s[("mukaika_parts_total", (("action", "other"), ("reason", "other")))] == 500
    assert s[("mukaika_queue_depth", (("state", "other"),))] == 499
    assert s[("mukaika_verdicts_total", (("verdict", "other"),))] == 500
    # Only the fixed set (created at start at 0, so alerts see a first refusal) and "other".
    rejected = {dict(k[1])["reason"] for k in s if k[0] == "mukaika_rejected_total"}
    assert rejected == SMTP_REJECT_REASONS | {"other"}
    parts = {k[1] for k in s if k[0] == "mukaika_parts_total"}
    assert len(parts) == len(FAILURE_REASONS) + 1


def test_vocabulary_values_are_kept_as_labels() -> None:
    assert bounded_label(Reason.LIMIT_SIZE, frozenset({"limit_size"})) == "limit_size"
    m = Metrics()
    m.rejected("limit_size")  # a sanitizer reason may also reject
    m.rejected("smuggling")
    s = _samples(m)
    assert s[("mukaika_rejected_total", (("reason", "limit_size"),))] == 1
    assert s[("mukaika_rejected_total", (("reason", "smuggling"),))] == 1


def test_each_instance_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()  # the global registry would refuse the second
    a.received()
    assert _samples(a)[("mukaika_received_total", ())] == 1
    assert _samples(b)[("mukaika_received_total", ())] == 0


def test_negative_durations_are_clamped() -> None:
    m = Metrics()
    m.observe_sanitize(-1.0)  # a clock step backwards must not break the histogram
    m.set_oldest_age(-5)
    s = _samples(m)
    assert s[("mukaika_sanitize_seconds_sum", ())] == 0
    assert s[("mukaika_oldest_queued_age_seconds", ())] == 0


def test_http_endpoint_serves_and_stops() -> None:
    m = Metrics()
    m.received()
    server = m.serve("127.0.0.1", 0)
    try:
        assert server.port > 0
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
            assert response.status == 200
        assert "mukaika_received_total 1.0" in body
    finally:
        server.close()
    server.close()  # idempotent
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", server.port), 1),
    ):
        pass


def test_settings_and_listen_parsing() -> None:
    settings = MetricsSettings()
    assert settings.enabled is False
    assert (settings.host, settings.port) == ("127.0.0.1", 9464)
    with pytest.raises(ValueError, match="extra"):
        MetricsSettings.model_validate({"listen": "x"})
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("9464", "host:", "host:99999", ":80"):
        with pytest.raises(ValueError, match=r"HOST:PORT|out of range"):
            parse_listen(bad)


def test_port_in_use_is_a_clear_error() -> None:
    first = Metrics().serve("127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{first.port}"):
            Metrics().serve("127.0.0.1", first.port)
    finally:
        first.close()

"""Tenants in the console: a tenant's users see and act on that tenant's mail, audit lines,
users and rules only; the cluster's own users (no tenant) see every tenant's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store.workflow import history
from sanitizers.vocabulary import MessageState, UserRole
from tests.gateway.console.consolekit import ConsoleWorld, console_world, sample_mail

CONFIG = """\
[[tenants]]
name = "kita"
domains = ["city.kita.example.lg.jp"]
relay_host = "127.0.0.1"

[[tenants]]
name = "minami"
domains = ["town.minami.example.lg.jp"]
relay_host = "127.0.0.1"
"""
KITA_RULE = "[[rules]]\nname = 'kita-only-rule'\n[rules.policy.output]\nsubject_tag = '[北]'\n"
MINAMI_RULE = "[[rules]]\nname = 'minami-only-rule'\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ConsoleWorld]:
    """Operators, auditors and administrators of each tenant, and the cluster's own."""
    config = tmp_path / "mukaika.toml"
    config.write_text(CONFIG, encoding="utf-8")
    for tenant, rule in (("kita", KITA_RULE), ("minami", MINAMI_RULE)):
        own = tmp_path / "tenants" / tenant / "local.d"
        own.mkdir(parents=True)
        (own / "rules.toml").write_text(rule, encoding="utf-8")
    with console_world(tmp_path / "data", config) as world:
        for tenant in ("kita", "minami"):
            world.add(f"op-{tenant}", UserRole.OPERATOR, tenant=tenant)
            world.add(f"audit-{tenant}", UserRole.AUDITOR, tenant=tenant)
            world.add(f"admin-{tenant}", UserRole.ADMIN, tenant=tenant)
        world.add("cluster-op", UserRole.OPERATOR)
        yield world


def _held(world: ConsoleWorld, tenant: str, address: str, subject: str) -> str:
    return world.held(sample_mail(subject), rcpt_to=(address,), subject=subject, tenant=tenant)


def test_an_operator_of_one_tenant_sees_nothing_of_another(world: ConsoleWorld) -> None:
    kita = _held(world, "kita", "taro@city.kita.example.lg.jp", "北市あて")
    minami = _held(world, "minami", "hanako@town.minami.example.lg.jp", "南町あて")
    op = world.signed_in("op-kita")
    for state in ("waiting", "all"):
        listing = op.get("/", {"state": state}).content.decode()
        assert "北市あて" in listing
        assert "南町あて" not in listing
    # A search for the other tenant's mail finds nothing either.
    assert "南町あて" not in op.get("/", {"state": "all", "q": "南町"}).content.decode()
    assert op.get(f"/mail/{kita}").status_code == 200
    # The other tenant's message by its direct URL: as if it did not exist.
    assert op.get(f"/mail/{minami}").status_code == 404
    assert op.post(f"/mail/{minami}/release").status_code == 404
    assert op.post(f"/mail/{minami}/request", {"reason": "x"}).status_code == 404
    assert op.post(f"/mail/{minami}/download").status_code == 404
    assert world.runtime.quarantine.get(minami).state == MessageState.HELD
    assert history(world.store, minami) == []
    # The cluster's own operator sees both.
    cluster = world.signed_in("cluster-op").get("/").content.decode()
    assert "北市あて" in cluster
    assert "南町あて" in cluster


def test_a_tenants_operator_releases_its_own_mail_and_the_lines_name_the_tenant(
    world: ConsoleWorld,
) -> None:
    kita = _held(world, "kita", "taro@city.kita.example.lg.jp", "北市あて")
    assert world.signed_in("op-kita").post(f"/mail/{kita}/release").status_code == 302
    assert world.runtime.quarantine.get(kita).state == MessageState.APPROVED
    (decision,) = history(world.store, kita)
    assert decision.tenant == "kita"
    release = [line for line in world.audit_lines() if line["event"] == "release"]
    assert [(line["actor"], line["tenant"]) for line in release] == [("op-kita", "kita")]


def test_a_tenants_auditor_reads_that_tenants_audit_lines_only(world: ConsoleWorld) -> None:
    kita = _held(world, "kita", "taro@city.kita.example.lg.jp", "北市あて")
    minami = _held(world, "minami", "hanako@town.minami.example.lg.jp", "南町あて")
    cluster = world.signed_in("cluster-op")
    assert cluster.get(f"/mail/{kita}").status_code == 200
    assert cluster.get(f"/mail/{minami}").status_code == 200
    views = {line["quarantine_id"]: line for line in world.audit_lines() if line["event"] == "view"}
    assert views[kita]["tenant"] == "kita"
    assert views[minami]["tenant"] == "minami"
    page = world.signed_in("audit-kita").get("/audit").content.decode()
    assert f"<td>{kita}</td>" in page
    assert minami not in page
    assert "cluster-op" in page  # who looked at Kita's mail
    # Not even its own reference finds another tenant's line (the form shows what was asked).
    asked = world.signed_in("audit-kita").get("/audit", {"reference": minami}).content.decode()
    assert f"<td>{minami}</td>" not in asked
    assert f"<td>{minami}</td>" in cluster_auditor(world).get("/audit").content.decode()


def cluster_auditor(world: ConsoleWorld) -> Any:
    world.add("cluster-audit", UserRole.AUDITOR)
    return world.signed_in("cluster-audit")


def test_a_tenants_administrator_sees_that_tenants_users_and_operators_its_rules(
    world: ConsoleWorld,
) -> None:
    users = world.signed_in("admin-kita").get("/users").content.decode()
    assert "op-kita" in users
    assert "op-minami" not in users
    assert "cluster-op" not in users
    rules = world.signed_in("op-kita").get("/rules").content.decode()
    assert "kita-only-rule" in rules
    assert "minami-only-rule" not in rules
    assert "minami-only-rule" in world.signed_in("cluster-op").get("/rules").content.decode()


def test_a_tenants_operator_counts_that_tenants_mail_only(world: ConsoleWorld) -> None:
    _held(world, "kita", "taro@city.kita.example.lg.jp", "北市あて")
    for number in range(2):
        _held(world, "minami", f"h{number}@town.minami.example.lg.jp", "南町あて")
    kita = world.signed_in("op-kita").get("/statistics").content.decode()
    cluster = world.signed_in("cluster-op").get("/statistics").content.decode()
    assert '<span id="messages">1</span>' in kita
    assert '<span id="backlog">1</span>' in kita
    assert "town.minami" not in kita  # no recipient of the other tenant among the figures
    assert '<span id="messages">3</span>' in cluster
    assert "h0@town.minami.example.lg.jp" in cluster

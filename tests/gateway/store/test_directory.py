"""The directory in the store: what an import adds, updates and disables, in one transaction,
on SQLite and PostgreSQL; the groups a sender belongs to and their approvers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.configuration.settings import StoreSettings
from gateway.store import Store
from gateway.store.directory import (
    DirectoryConflictError,
    Person,
    apply_import,
    groups_of_sender,
    has_groups,
    list_groups,
)
from gateway.store.schema import console_sessions
from gateway.store.users import add_user, addresses_of, change_user, find_user, login_of
from sanitizers.vocabulary import UserRole
from tests.storekit import migrated_store

ZEIMU = "税務課"
SOMU = "総務課"


def _people() -> list[Person]:
    return [
        Person("tanaka", UserRole.APPROVER, ("tanaka@city.example.lg.jp",), (ZEIMU,)),
        Person("suzuki", UserRole.RECIPIENT, ("suzuki@city.example.lg.jp",), (ZEIMU,)),
        Person("sato", UserRole.APPROVER, ("sato@city.example.lg.jp",), (SOMU,)),
        Person("ito", UserRole.RECIPIENT, ("ito@city.example.lg.jp",), (SOMU,)),
    ]


@pytest.fixture
def store(tmp_path: Path, store_settings: StoreSettings) -> Store:
    return migrated_store(tmp_path, settings=store_settings)


def test_an_import_adds_users_groups_and_approvers(store: Store) -> None:
    with store:
        assert not has_groups(store)
        result = apply_import(store, _people(), source="csv", actor="admin")
        assert result.added == ["ito", "sato", "suzuki", "tanaka"]
        assert result.groups == sorted([SOMU, ZEIMU])
        assert has_groups(store)
        groups = {group.name: group for group in list_groups(store)}
        assert groups[ZEIMU].members == ("suzuki", "tanaka")
        assert groups[ZEIMU].approvers == ("tanaka",)
        assert groups[SOMU].approvers == ("sato",)
        sender = groups_of_sender(store, "Suzuki@City.example.lg.jp")
        assert [(g.name, g.approvers) for g in sender] == [(ZEIMU, ("tanaka",))]
        assert groups_of_sender(store, "nobody@city.example.lg.jp") == []


def test_a_second_import_updates_disables_and_never_reenables(store: Store) -> None:
    with store:
        apply_import(store, _people(), source="csv", actor="admin")
        change_user(store, "ito", disabled=True)  # disabled by hand
        people = _people()
        people[1] = Person("suzuki", UserRole.OPERATOR, ("suzuki@city.example.lg.jp",), (SOMU,))
        del people[0]  # tanaka left
        result = apply_import(store, people, source="csv", actor="admin")
        assert result.updated == ["suzuki"]
        assert result.unchanged == ["ito", "sato"]
        assert result.disabled == ["tanaka"]
        tanaka = find_user(store, "tanaka")
        assert tanaka is not None
        assert tanaka.disabled
        ito = find_user(store, "ito")
        assert ito is not None
        assert ito.disabled
        suzuki = find_user(store, "suzuki")
        assert suzuki is not None
        assert suzuki.role is UserRole.OPERATOR
        names = [group.name for group in list_groups(store)]
        assert names == [SOMU]  # 税務課 has no member left: removed


def test_a_hand_made_user_is_taken_over_and_keeps_the_login(store: Store) -> None:
    with store:
        add_user(store, "tanaka", UserRole.RECIPIENT, "admin", password_hash="argon2$x")
        result = apply_import(store, _people(), source="ldap", actor="admin")
        assert "tanaka" in result.updated
        login = login_of(store, "tanaka")
        assert login is not None
        assert login.password_hash == "argon2$x"
        assert addresses_of(store, "tanaka") == ["tanaka@city.example.lg.jp"]


def test_users_of_the_other_import_are_refused_and_nothing_changes(store: Store) -> None:
    with store:
        apply_import(store, _people()[:2], source="ldap", actor="admin")
        with pytest.raises(DirectoryConflictError, match=r"ldap import.*suzuki, tanaka"):
            apply_import(store, _people(), source="csv", actor="admin")
        assert find_user(store, "sato") is None


def test_a_dry_run_changes_nothing_and_a_real_run_ends_sessions(store: Store) -> None:
    with store:
        apply_import(store, _people(), source="csv", actor="admin")
        ito = find_user(store, "ito")
        assert ito is not None
        with store.writing() as db:
            db.execute(
                console_sessions.insert().values(
                    key="k", data="d", expires_at=ito.created_at, user_name="ito"
                )
            )
        result = apply_import(store, _people()[:1], source="csv", actor="admin", dry_run=True)
        assert result.disabled == ["ito", "sato", "suzuki"]
        still = find_user(store, "ito")
        assert still is not None
        assert not still.disabled
        with store.reading() as db:
            assert db.execute(console_sessions.select()).first() is not None
        apply_import(store, _people()[:1], source="csv", actor="admin")
        gone = find_user(store, "ito")
        assert gone is not None
        assert gone.disabled
        with store.reading() as db:
            assert db.execute(console_sessions.select()).first() is None


def test_an_import_for_a_tenant_never_touches_another_tenants_users(store: Store) -> None:
    with store:
        apply_import(store, _people()[:2], source="csv", actor="admin", tenant="kita")
        add_user(store, "ito", UserRole.RECIPIENT, "admin", tenant="minami")
        minami = [Person("sato", UserRole.APPROVER, ("sato@minami.example.lg.jp",), (SOMU,))]
        result = apply_import(store, minami, source="csv", actor="admin", tenant="minami")
        assert result.added == ["sato"]
        assert result.disabled == []  # kita's csv users are not minami's import's to disable
        sato, tanaka = find_user(store, "sato"), find_user(store, "tanaka")
        assert sato is not None
        assert tanaka is not None
        assert (sato.tenant, tanaka.tenant) == ("minami", "kita")
        assert not tanaka.disabled
        # Kita's next import without tanaka disables tanaka, not minami's sato.
        result = apply_import(store, _people()[1:2], source="csv", actor="admin", tenant="kita")
        assert result.disabled == ["tanaka"]
        # Listing another tenant's user (hand-made or imported) is refused; nothing changes.
        for name, role in (("ito", UserRole.RECIPIENT), ("sato", UserRole.APPROVER)):
            taking = [Person(name, UserRole.OPERATOR, (f"{name}@kita.example.lg.jp",), ())]
            with pytest.raises(DirectoryConflictError, match=rf"tenant 'kita': {name}$"):
                apply_import(store, taking, source="csv", actor="admin", tenant="kita")
            user = find_user(store, name)
            assert user is not None
            assert (user.tenant, user.role) == ("minami", role)
        # The cluster's own users (no tenant) are another tenant's too.
        with pytest.raises(DirectoryConflictError, match=r"than the cluster's own.*suzuki"):
            apply_import(store, _people()[1:2], source="csv", actor="admin")


def test_two_tenants_groups_of_one_name_are_two_groups(store: Store) -> None:
    with store:
        apply_import(store, _people()[2:], source="csv", actor="admin", tenant="minami")
        kita = [
            Person("kudo", UserRole.RECIPIENT, ("kudo@kita.example.lg.jp",), (SOMU,)),
            Person("kubo", UserRole.APPROVER, ("kubo@kita.example.lg.jp",), (SOMU,)),
        ]
        apply_import(store, kita, source="ldap", actor="admin", tenant="kita")
        groups = [(g.name, g.tenant, g.members, g.approvers) for g in list_groups(store)]
        assert groups == [
            (SOMU, "kita", ("kubo", "kudo"), ("kubo",)),
            (SOMU, "minami", ("ito", "sato"), ("sato",)),
        ]
        # Kita's sender is approved by kita's approver only, minami's by minami's.
        (found,) = groups_of_sender(store, "kudo@kita.example.lg.jp")
        assert (found.tenant, found.approvers) == ("kita", ("kubo",))
        (found,) = groups_of_sender(store, "ito@city.example.lg.jp")
        assert (found.tenant, found.approvers) == ("minami", ("sato",))

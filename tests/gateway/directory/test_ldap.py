"""`mukaika user import --ldap` against a real slapd (tests/slapd.py): users, addresses,
Japanese groups and roles read with a read-only bind over STARTTLS; a wrong bind password, a
server that is down or does not answer, and an unusable entry each end with a clear error, a
non-zero exit and nothing imported."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.settings import DirectorySettings, QuarantineSettings, StoreSettings
from gateway.directory.ldap import DirectoryUnavailable, group_name, read_ldap, role_of
from gateway.store import open_store
from gateway.store.directory import list_groups
from gateway.store.users import addresses_of, find_user, list_users
from sanitizers.vocabulary import UserRole
from tests.slapd import BROKEN_DN, READER_DN, STAFF_DN, Slapd


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _config(
    tmp_path: Path, slapd: Slapd, *, password: str | None = None, **extra: str | float
) -> Path:
    secret = tmp_path / "bind_password"
    secret.write_text((slapd.password if password is None else password) + "\n")
    secret.chmod(0o600)
    values: dict[str, str | float] = {
        "url": slapd.url,
        "bind_dn": READER_DN,
        "bind_password_file": str(secret),
        "base_dn": STAFF_DN,
        "tls_ca_file": str(slapd.ca_file),
        "role_attribute": "employeeType",
        "timeout_seconds": 5.0,
        **extra,
    }
    lines = ["[directory]"]
    lines += [
        f"{key} = {value!r}" if isinstance(value, float) else f'{key} = "{value}"'
        for key, value in values.items()
    ]
    lines += ["[directory.role_map]", '"課長" = "approver"']
    path = tmp_path / "mukaika.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _import(tmp_path: Path, config: Path, *more: str) -> tuple[int, str, str]:
    return run(
        "user",
        "import",
        "--ldap",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "d"),
        *more,
    )


def _users(tmp_path: Path) -> list[str]:
    if not (tmp_path / "d" / "store.sqlite3").exists():
        return []
    with open_store(StoreSettings(), QuarantineSettings(), tmp_path / "d") as store:
        return [user.name for user in list_users(store)]


def test_import_from_slapd_over_starttls(tmp_path: Path, slapd: Slapd) -> None:
    config = _config(tmp_path, slapd)
    code, out, err = _import(tmp_path, config)
    assert code == ExitCode.OK, err
    assert "ldap import: 4 users listed; 4 were added" in out
    with open_store(StoreSettings(), QuarantineSettings(), tmp_path / "d") as store:
        assert [user.name for user in list_users(store)] == ["ito", "sato", "suzuki", "tanaka"]
        tanaka = find_user(store, "tanaka")
        assert tanaka is not None
        assert tanaka.role is UserRole.APPROVER  # 課長 through directory.role_map
        ito = find_user(store, "ito")
        assert ito is not None
        assert ito.role is UserRole.RECIPIENT  # 主任 is not mapped: default_role
        assert addresses_of(store, "suzuki") == [
            "suzuki@city.example.lg.jp",
            "zeimu@city.example.lg.jp",
        ]
        groups = {group.name: group for group in list_groups(store)}
    assert set(groups) == {"税務課", "総務課"}
    assert groups["税務課"].members == ("ito", "suzuki", "tanaka")
    assert groups["税務課"].approvers == ("tanaka",)
    assert groups["総務課"].approvers == ("sato",)
    code, out, err = _import(tmp_path, config)
    assert code == ExitCode.OK, err
    assert "0 were added, 0 updated, 4 unchanged, 0 disabled" in out


def test_a_wrong_bind_password_imports_nothing(tmp_path: Path, slapd: Slapd) -> None:
    code, out, err = _import(tmp_path, _config(tmp_path, slapd, password="wrong"))
    assert code == ExitCode.UNAVAILABLE
    assert f"the bind as '{READER_DN}' was refused: invalid credentials" in err
    assert "nothing imported" in err
    assert "wrong" not in err
    assert out == ""
    assert _users(tmp_path) == []


def test_a_server_that_is_down_imports_nothing(tmp_path: Path, slapd: Slapd) -> None:
    config = _config(tmp_path, slapd)
    slapd.stop()
    code, _, err = _import(tmp_path, config)
    assert code == ExitCode.UNAVAILABLE
    assert f"mukaika user: {slapd.url}: cannot connect" in err
    assert _users(tmp_path) == []


def test_a_server_that_does_not_answer_times_out(tmp_path: Path, slapd: Slapd) -> None:
    config = _config(tmp_path, slapd, timeout_seconds=1.0)
    slapd.pause()
    code, _, err = _import(tmp_path, config)
    slapd.resume()
    assert code == ExitCode.UNAVAILABLE
    assert "no answer within directory.timeout_seconds (1 s)" in err
    assert _users(tmp_path) == []


def test_an_unusable_entry_is_named_and_nothing_is_imported(tmp_path: Path, slapd: Slapd) -> None:
    suffix = STAFF_DN.split(",", 1)[1]
    code, _, err = _import(tmp_path, _config(tmp_path, slapd, base_dn=suffix))
    assert code == ExitCode.IMPORT_REFUSED
    assert f"entry 'cn=yamada,{BROKEN_DN}': invalid user name '山田'" in err
    assert _users(tmp_path) == []


def test_a_wrong_ca_refuses_starttls(tmp_path: Path, slapd: Slapd) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    code, _, err = _import(tmp_path, _config(tmp_path, slapd, tls_ca_file=str(other_ca)))
    assert code == ExitCode.UNAVAILABLE
    assert "STARTTLS failed" in err
    assert "CERTIFICATE_VERIFY_FAILED" in err
    assert _users(tmp_path) == []


def test_an_empty_password_file_is_refused_before_any_bind(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    settings = DirectorySettings(
        url="ldap://127.0.0.1:9",
        bind_dn=READER_DN,
        bind_password_file=str(empty),
        base_dn=STAFF_DN,
        tls="none",
    )
    with pytest.raises(DirectoryUnavailable, match=r"empty .*unauthenticated bind"):
        read_ldap(settings)


def test_a_dn_value_names_its_group_by_the_first_rdn() -> None:
    assert group_name("cn=税務課,ou=groups,dc=city,dc=example,dc=lg,dc=jp") == "税務課"
    assert group_name("総務課") == "総務課"


def test_values_giving_two_roles_are_refused() -> None:
    settings = DirectorySettings(
        role_attribute="memberOf",
        role_map={"cn=approvers,dc=city": UserRole.APPROVER, "cn=ops,dc=city": UserRole.OPERATOR},
    )
    assert role_of(["CN=Approvers,DC=City"], settings) is UserRole.APPROVER
    assert role_of(["cn=staff,dc=city"], settings) is UserRole.RECIPIENT
    with pytest.raises(ValueError, match=r"memberOf gives several roles \(approver, operator\)"):
        role_of(["cn=approvers,dc=city", "cn=ops,dc=city"], settings)

"""Tenants in the configuration: [[tenants]], each tenant's own local.d, accepted domains, and
the errors the loader and check-config answer with."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config, ConfigError, load_config, rule_set, tenants_of

TWO = """\
[smtp]
hostname = "gw.pref.example.jp"

[[tenants]]
name = "kita"
domains = ["city.kita.example.lg.jp"]
relay_host = "127.0.0.11"
relay_port = 2601

[[tenants]]
name = "minami"
domains = ["town.minami.example.lg.jp", "Minami.Example.LG.jp."]
relay_host = "127.0.0.12"
[tenants.outbound]
relay_port = 2525
[tenants.auth]
authserv_id = "mx.minami.example.lg.jp"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_no_tenants_is_one_installation() -> None:
    tenants = tenants_of(Config())
    assert not tenants
    assert tenants.tenant_of("someone@city.kita.example.lg.jp") == ""
    assert tenants.relay("") is None


def test_tenants_domains_are_accepted_and_resolve_to_their_tenant(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "mukaika.toml", TWO))
    assert set(config.smtp.accept_domains) == {
        "city.kita.example.lg.jp",
        "town.minami.example.lg.jp",
        "minami.example.lg.jp",
    }
    assert config.smtp.accepts("a@minami.example.lg.jp")
    tenants = tenants_of(config)
    assert tenants.tenant_of("Taro@CITY.kita.example.lg.jp") == "kita"
    assert tenants.tenant_of("<h@minami.example.lg.jp>") == "minami"
    assert tenants.tenant_of("x@sub.minami.example.lg.jp") == ""  # no accept_subdomains
    assert tenants.tenant_of("x@example.com") == ""
    assert tenants.relay("kita") == ("127.0.0.11", 2601)
    assert tenants.relay("minami") == ("127.0.0.12", 25)
    assert tenants.outbound("minami").relay_port == 2525
    assert tenants.outbound("kita").relay_port == 25
    assert tenants.auth("minami").authserv_id == "mx.minami.example.lg.jp"
    assert tenants.auth("kita").authserv_id == ""
    # Validating the dumped configuration again gives the same one (reload, copies).
    assert Config.model_validate(config.model_dump()) == config


def test_sub_domains_go_to_the_most_specific_tenant(tmp_path: Path) -> None:
    text = TWO.replace("[smtp]\n", "[smtp]\naccept_subdomains = true\n").replace(
        '"town.minami.example.lg.jp", ', '"kita.example.lg.jp", '
    )
    tenants = tenants_of(load_config(write(tmp_path / "mukaika.toml", text)))
    assert tenants.tenant_of("a@ward.city.kita.example.lg.jp") == "kita"
    assert tenants.tenant_of("a@other.kita.example.lg.jp") == "minami"


def test_a_domain_in_two_tenants_is_refused_naming_both(tmp_path: Path) -> None:
    main_file = write(
        tmp_path / "mukaika.toml",
        TWO.replace('"Minami.Example.LG.jp."', '"city.kita.example.lg.jp"'),
    )
    assert problems_of(main_file) == [
        f"{main_file}: tenants[1] ('minami').domains: domain 'city.kita.example.lg.jp' is already "
        "a domain of tenant 'kita': a domain belongs to one tenant only"
    ]


def test_an_accepted_domain_of_no_tenant_is_refused(tmp_path: Path) -> None:
    main_file = write(
        tmp_path / "mukaika.toml",
        TWO.replace("[smtp]\n", "[smtp]\naccept_domains = ['pref.example.jp']\n"),
    )
    (problem,) = problems_of(main_file)
    assert problem.startswith(
        f"{main_file}: smtp.accept_domains: 'pref.example.jp' is in no tenant"
    )


def test_bad_names_duplicates_and_missing_relay_are_refused(tmp_path: Path) -> None:
    text = TWO.replace('name = "minami"', 'name = "kita"').replace(
        'relay_host = "127.0.0.11"\n', ""
    )
    main_file = write(
        tmp_path / "mukaika.toml",
        text + '\n[[tenants]]\nname = "Bad Name"\ndomains = ["x.example.jp"]\nrelay_host = "h"\n',
    )
    problems = problems_of(main_file)
    assert f"{main_file}: tenants[0] ('kita').relay_host: Field required" in problems
    assert any(
        p.startswith(f"{main_file}: tenants[2] ('Bad Name').name: String should match")
        for p in problems
    )


def test_a_tenant_cannot_set_the_shared_listener_or_auth_actions(tmp_path: Path) -> None:
    text = TWO.replace("relay_port = 2525", 'relay_port = 2525\nlisten = "127.0.0.1:25"').replace(
        'authserv_id = "mx.minami.example.lg.jp"', 'dmarc_fail_action = "hold"'
    )
    problems = problems_of(write(tmp_path / "mukaika.toml", text))
    assert len(problems) == 2
    assert "tenants[1] ('minami').outbound.listen: not a tenant's" in problems[0]
    assert (
        "tenants[1] ('minami').auth.dmarc_fail_action: a tenant sets only authserv_id"
        in (problems[1])
    )


def test_a_tenants_own_local_d_is_layered_into_its_table_only(tmp_path: Path) -> None:
    main_file = write(tmp_path / "mukaika.toml", TWO)
    write(
        tmp_path / "local.d" / "10-shared.toml",
        "[policy.body]\nlinks = 'drop'\n"
        "[[rules]]\nname = 'shared'\nsenders = ['bank.example.co.jp']\n"
        "[rules.policy.attachments.by_kind]\npdf = 'remove'\n",
    )
    write(
        tmp_path / "tenants" / "kita" / "local.d" / "20-b.toml",
        "[[rules]]\nname = 'kita-b'\n[rules.policy.body]\nlinks = 'keep'\n",
    )
    write(
        tmp_path / "tenants" / "kita" / "local.d" / "10-a.toml",
        "[policy.body]\nlinks = 'defang'\n[[rules]]\nname = 'kita-a'\n"
        "[outbound]\ntls = 'starttls'\n",
    )
    config = load_config(main_file)
    kita, minami = config.tenants
    assert kita.policy == {"body": {"links": "defang"}}
    assert [rule.name for rule in kita.rules] == ["kita-a", "kita-b"]  # sorted file order
    assert minami.policy == {}
    assert minami.rules == ()
    assert [rule.name for rule in config.rules] == ["shared"]
    assert config.policy.body.links.value == "drop"
    assert tenants_of(config).outbound("kita").tls == "starttls"


def test_a_tenants_own_file_cannot_claim_domains_or_move_its_relay(tmp_path: Path) -> None:
    main_file = write(tmp_path / "mukaika.toml", TWO)
    own = write(
        tmp_path / "tenants" / "minami" / "local.d" / "a.toml",
        "domains = ['city.kita.example.lg.jp']\nrelay_host = '192.0.2.1'\n",
    )
    assert problems_of(main_file) == [
        f"{own}: domains: a tenant's own file sets only policy, rules, outbound, auth (its "
        "domains and MTA are in the main file)",
        f"{own}: relay_host: a tenant's own file sets only policy, rules, outbound, auth (its "
        "domains and MTA are in the main file)",
    ]


def test_a_bad_key_in_a_tenants_rule_names_the_tenants_file(tmp_path: Path) -> None:
    main_file = write(tmp_path / "mukaika.toml", TWO)
    own = write(
        tmp_path / "tenants" / "kita" / "local.d" / "a.toml",
        "[[rules]]\nname = 'x'\n[rules.policy.body]\nlinkz = 'keep'\n",
    )
    assert problems_of(main_file) == [
        f"{own}: tenants[0] ('kita').rules.0.policy.body.linkz: unknown key"
    ]


def test_check_config_answers_a_duplicate_domain_with_exit_code_and_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = write(
        tmp_path / "mukaika.toml",
        TWO.replace('"Minami.Example.LG.jp."', '"city.kita.example.lg.jp"'),
    )
    assert main(["check-config", "--config", str(main_file)]) != 0
    assert "a domain belongs to one tenant only" in capsys.readouterr().err


def test_the_rules_split_a_message_per_tenant_and_apply_a_tenants_rules_to_it_only(
    tmp_path: Path,
) -> None:
    main_file = write(tmp_path / "mukaika.toml", TWO)
    write(
        tmp_path / "tenants" / "kita" / "local.d" / "a.toml",
        "[policy.output]\nsubject_tag = '[北]'\n"
        "[[rules]]\nname = 'kita-keiri'\nrecipients = ['keiri@city.kita.example.lg.jp']\n"
        "[rules.policy.body]\nlinks = 'drop'\n",
    )
    write(
        tmp_path / "local.d" / "shared.toml",
        "[[rules]]\nname = 'shared-keiri'\nrecipients = ['keiri@town.minami.example.lg.jp']\n"
        "[rules.policy.output]\nsubject_tag = '[共通]'\n",
    )
    rules = rule_set(load_config(main_file))
    groups = rules.groups(
        sender="info@bank.example.co.jp",
        recipients=[
            "keiri@city.kita.example.lg.jp",
            "keiri@town.minami.example.lg.jp",
            "soumu@city.kita.example.lg.jp",
            "x@minami.example.lg.jp",
        ],
        client="192.0.2.1",
    )
    by_tenant = {(g.tenant, g.rules): g for g in groups}
    assert set(by_tenant) == {
        ("kita", ("kita-keiri",)),
        ("minami", ("shared-keiri",)),
        ("kita", ()),
        ("minami", ()),
    }
    assert by_tenant[("kita", ("kita-keiri",))].recipients == ("keiri@city.kita.example.lg.jp",)
    assert by_tenant[("kita", ())].policy.output.subject_tag == "[北]"
    assert by_tenant[("kita", ("kita-keiri",))].policy.body.links.value == "drop"
    assert by_tenant[("minami", ())].policy.output.subject_tag == ""
    assert by_tenant[("minami", ("shared-keiri",))].policy.output.subject_tag == "[共通]"
    # Kita's rule never matches Minami's recipients, even with the same local part.
    assert by_tenant[("minami", ("shared-keiri",))].recipients == (
        "keiri@town.minami.example.lg.jp",
    )


def test_without_tenants_the_groups_are_as_before(tmp_path: Path) -> None:
    groups = rule_set(Config()).groups(
        sender="a@example.com", recipients=["x@example.lg.jp"], client=""
    )
    assert [(g.tenant, g.rules, g.recipients) for g in groups] == [("", (), ("x@example.lg.jp",))]


def test_a_user_of_an_unknown_tenant_is_refused_naming_the_tenants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = write(tmp_path / "mukaika.toml", f'[service]\ndata_dir = "{tmp_path}"\n{TWO}')
    args = ["user", "add", "ken", "--role", "operator", "--no-password", "--config"]
    assert main([*args, str(main_file), "--tenant", "higashi"]) == ExitCode.CONFIG
    assert "unknown tenant 'higashi': the configuration's tenants are kita, minami" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "store.sqlite3").exists()  # refused before anything was written


@pytest.mark.parametrize("key", ["max_per_hour = 9", "max_recipients = 5", "groups = []"])
def test_outbound_settings_for_every_sender_are_refused_per_tenant(
    tmp_path: Path, key: str
) -> None:
    text = TWO.replace("relay_port = 2525", f"relay_port = 2525\n{key}")
    (problem,) = problems_of(write(tmp_path / "mukaika.toml", text))
    assert f"outbound.{key.split()[0]}: not a tenant's setting" in problem
    assert "a tenant sets only relay_host, relay_port, tls, require_tls_domains, delay" in problem


def test_a_tenant_sets_its_own_delay_conversion_disclaimer_and_notices(tmp_path: Path) -> None:
    own = (
        "delay_seconds = 60\nbcc_threshold = 5\ndisclaimer = '南町役場'\n"
        "approval_expiry_seconds = 3600\nnotify_sender = false"
    )
    text = TWO.replace("relay_port = 2525", f"relay_port = 2525\n{own}")
    tenants = tenants_of(load_config(write(tmp_path / "mukaika.toml", text)))
    own, shared = tenants.outbound("minami"), tenants.outbound("kita")
    assert (own.delay_seconds, own.bcc_threshold, own.disclaimer) == (60, 5, "南町役場")
    assert (own.approval_expiry_seconds, own.notify_sender) == (3600, False)
    assert (shared.delay_seconds, shared.disclaimer, shared.notify_sender) == (0, "", True)


def test_check_config_warns_of_a_user_whose_tenant_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = write(tmp_path / "mukaika.toml", f'[service]\ndata_dir = "{tmp_path}"\n{TWO}')
    add = ["user", "add", "ken", "--role", "operator", "--no-password", "--tenant", "kita"]
    assert main([*add, "--config", str(main_file)]) == ExitCode.OK
    assert main(["check-config", "-q", "--config", str(main_file)]) == ExitCode.OK
    assert "ken" not in capsys.readouterr().err
    kita_gone = TWO[TWO.index('[[tenants]]\nname = "minami"') :]
    write(main_file, f'[service]\ndata_dir = "{tmp_path}"\n{kita_gone}')
    assert main(["check-config", "-q", "--config", str(main_file)]) == ExitCode.OK
    assert "user 'ken' belongs to tenant 'kita', which the configuration does not name" in (
        capsys.readouterr().err
    )


def test_check_config_names_an_expired_exception_of_a_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = write(tmp_path / "mukaika.toml", f'[service]\ndata_dir = "{tmp_path}"\n{TWO}')
    own = write(
        tmp_path / "tenants" / "kita" / "local.d" / "x.toml",
        "[[rules]]\nname = 'old'\nexception = true\napproved_by = '課長'\nreason = 'r'\n"
        "expires = 2026-01-31\n",
    )
    args = ["check-config", "-q", "--on", "2026-02-01", "--config", str(main_file)]
    assert main(args) == ExitCode.EXPIRED_EXCEPTIONS
    assert f"warning: {own}: tenants[0] ('kita').rules.0 ('old'): exception expired" in (
        capsys.readouterr().err
    )


def test_user_import_without_a_tenant_is_refused_with_tenants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = write(tmp_path / "mukaika.toml", f'[service]\ndata_dir = "{tmp_path}"\n{TWO}')
    people = write(tmp_path / "people.csv", "name,role,addresses,group\nken,operator,,\n")
    args = ["user", "import", "--csv", str(people), "--config", str(main_file)]
    assert main(args) == ExitCode.CONFIG
    assert "user import without --tenant is refused with [[tenants]]" in capsys.readouterr().err
    assert not (tmp_path / "store.sqlite3").exists()

"""Layered configuration: defaults <- main file <- local.d/*.toml (sorted); errors name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.configuration.config import Config, ConfigError, load_config, load_layered
from sanitizers.policy import AttachmentAction, LinkMode


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_no_file_is_the_shipped_defaults() -> None:
    assert load_config(None) == Config()


def test_local_d_overrides_main_file_in_sorted_order(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[smtp]\nlisten_port = 25\nhostname = 'main'\n")
    write(tmp_path / "local.d" / "20-b.toml", "[smtp]\nhostname = 'b'\n")
    write(tmp_path / "local.d" / "10-a.toml", "[smtp]\nhostname = 'a'\nmax_recipients = 200\n")
    write(tmp_path / "local.d" / "README.txt", "not toml, ignored")
    config, layered = load_layered(main)
    assert config.smtp.hostname == "b"  # 20-b.toml comes after 10-a.toml
    assert config.smtp.max_recipients == 200  # kept from 10-a.toml: tables merge per key
    assert config.smtp.listen_port == 25  # kept from the main file
    assert config.smtp.max_line_bytes == 65536  # shipped default
    assert [p.name for p in layered.files] == ["mukaika.toml", "10-a.toml", "20-b.toml"]


def test_unknown_key_in_a_local_d_file_names_that_file(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[smtp]\nhostname = 'gw'\n")
    bad = write(tmp_path / "local.d" / "50-typo.toml", "[smtp]\naccept_domain = ['x.lg.jp']\n")
    assert problems_of(main) == [f"{bad}: smtp.accept_domain: unknown key"]


def test_every_error_of_every_file_is_reported_with_its_file(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[delivery]\ntls = 'maybe'\n[nonsense]\nx = 1\n")
    local = write(tmp_path / "local.d" / "a.toml", "[policy.body]\nlinks = 'hide'\n")
    problems = problems_of(main)
    assert (
        f"{main}: delivery.tls: Input should be 'none', 'opportunistic', 'starttls' or 'tls'"
        in problems
    )
    assert f"{main}: nonsense: unknown key" in problems
    assert any(p.startswith(f"{local}: policy.body.links:") for p in problems)
    assert len(problems) == 3


def test_a_later_layer_that_fixes_a_value_wins_and_is_blamed_for_its_own(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[smtp]\nmax_recipients = 5\n")
    write(tmp_path / "local.d" / "fix.toml", "[smtp]\nmax_recipients = 150\n")
    assert load_config(main).smtp.max_recipients == 150
    local = write(tmp_path / "local.d" / "fix.toml", "[smtp]\nmax_recipients = 6\n")
    assert problems_of(main) == [
        f"{local}: smtp.max_recipients: Input should be greater than or equal to 100"
    ]


def test_unreadable_toml_names_the_file(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "")
    bad = write(tmp_path / "local.d" / "broken.toml", "[smtp\n")
    problems = problems_of(main)
    assert len(problems) == 1
    assert problems[0].startswith(f"{bad}: not valid TOML")


def test_rules_from_all_layers_are_concatenated_in_layer_order(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[[rules]]\nname = 'main-1'\n")
    write(tmp_path / "local.d" / "20.toml", "[[rules]]\nname = 'twenty'\n")
    write(
        tmp_path / "local.d" / "10.toml", "[[rules]]\nname = 'ten-1'\n[[rules]]\nname = 'ten-2'\n"
    )
    names = [rule.name for rule in load_config(main).rules]
    assert names == ["main-1", "ten-1", "ten-2", "twenty"]


def test_a_typo_in_a_rule_override_names_file_and_rule(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[[rules]]\nname = 'ok'\n")
    bad = write(
        tmp_path / "local.d" / "30-finance.toml",
        "[[rules]]\nname = 'first'\n[[rules]]\nname = 'finance'\n"
        "recipients = ['keiri@city.example.lg.jp']\n"
        "[rules.policy.body]\nlinkz = 'drop'\n"
        "[rules.policy.attachments.by_kind]\npdf = 'kept'\n"
        "[[rules]]\nname = 'kinds'\n[rules.policy.attachments.by_kind]\nmovie = 'remove'\n",
    )
    problems = problems_of(main)
    assert f"{bad}: rules[1] ('finance').policy.body.linkz: unknown key" in problems
    assert any(
        p.startswith(f"{bad}: rules[1] ('finance').policy.attachments.by_kind.pdf:")
        for p in problems
    )
    assert any("movie" in p and p.startswith(f"{bad}: rules[2] ('kinds')") for p in problems)


def test_rule_override_errors_are_reported_beside_other_errors(tmp_path: Path) -> None:
    main = write(
        tmp_path / "mukaika.toml",
        "[smtp]\nbogus = 1\n[[rules]]\nname = 'r'\n[rules.policy.limits]\nmax_parts = -1\n",
    )
    problems = problems_of(main)
    assert f"{main}: smtp.bogus: unknown key" in problems
    assert any(p.startswith(f"{main}: rules[0] ('r').policy.limits.max_parts:") for p in problems)


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ("reason = 'r'\nexpires = 2027-03-31\n", "approved_by"),
        ("approved_by = 'a'\nexpires = 2027-03-31\n", "reason"),
        ("approved_by = 'a'\nreason = 'r'\n", "expires"),
        ("approved_by = '  '\nreason = 'r'\nexpires = 2027-03-31\n", "approved_by"),
    ],
)
def test_an_exception_needs_approver_reason_and_expiry(
    tmp_path: Path, fields: str, missing: str
) -> None:
    main = write(tmp_path / "mukaika.toml", "")
    local = write(
        tmp_path / "local.d" / "exc.toml", f"[[rules]]\nname = 'x'\nexception = true\n{fields}"
    )
    (problem,) = problems_of(main)
    assert problem.startswith(f"{local}: rules[0] ('x'): exception 'x' without {missing}")


def test_rule_fields_are_checked(tmp_path: Path) -> None:
    main = write(
        tmp_path / "mukaika.toml",
        "[[rules]]\nname = 'a'\nnetworks = ['10.0.0.1/8']\nrecipient = ['x@y.jp']\n"
        "[[rules]]\nname = 'a'\nsenders = ['@']\nexpires = 'tomorrow'\n",
    )
    problems = problems_of(main)
    assert any(p.startswith(f"{main}: rules[0] ('a').networks:") for p in problems)
    assert f"{main}: rules[0] ('a').recipient: unknown key" in problems
    assert any(p.startswith(f"{main}: rules[1] ('a').senders:") for p in problems)
    assert any(p.startswith(f"{main}: rules[1] ('a').expires:") for p in problems)


def test_duplicate_rule_names_are_an_error(tmp_path: Path) -> None:
    main = write(tmp_path / "mukaika.toml", "[[rules]]\nname = 'same'\n")
    local = write(tmp_path / "local.d" / "x.toml", "[[rules]]\nname = 'same'\n")
    assert problems_of(main) == [f"{local}: rules[0] ('same').name: duplicate rule name 'same'"]


def test_valid_rules_load(tmp_path: Path) -> None:
    main = write(
        tmp_path / "mukaika.toml",
        "[policy.body]\nlinks = 'defang'\n"
        "[[rules]]\nname = 'finance'\n"
        "recipients = ['keiri@city.example.lg.jp', 'Zaimu.example.lg.jp']\n"
        "networks = ['192.0.2.0/24', '2001:db8::/32']\nexception = true\napproved_by = '山田'\n"
        "reason = '帳票'\nexpires = 2027-03-31\n"
        "[rules.policy.body]\nlinks = 'keep'\n"
        "[rules.policy.attachments.by_kind]\nooxml = 'keep_if_clean'\n",
    )
    config = load_config(main)
    (rule,) = config.rules
    assert rule.recipients == ("keiri@city.example.lg.jp", "zaimu.example.lg.jp")
    assert config.policy.body.links == LinkMode.DEFANG
    assert rule.policy["attachments"]["by_kind"]["ooxml"] == "keep_if_clean"
    assert AttachmentAction(rule.policy["attachments"]["by_kind"]["ooxml"])

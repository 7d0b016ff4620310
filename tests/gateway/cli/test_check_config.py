"""``mukaika check-config``: effective configuration out, every error with file and key, exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.cli.exit_codes import ExitCode
from gateway.configuration.config import Config, load_config
from tests.paths import ROOT

FINANCE = """
[[rules]]
name = "finance"
recipients = ["keiri@city.example.lg.jp"]
exception = true
approved_by = "情報政策課 山田"
reason = "銀行の帳票"
expires = 2027-03-31
[rules.policy.attachments.by_kind]
ooxml = "keep_if_clean"
"""

# With the scanner on, check-config has no warning of its own about it.
SCANNER_ON = "[scanner]\nenabled = true\n"


def setup(tmp_path: Path, main_text: str = "", **local: str) -> Path:
    main_file = tmp_path / "etc" / "mukaika.toml"
    main_file.parent.mkdir(parents=True)
    main_file.write_text(main_text, encoding="utf-8")
    for name, text in local.items():
        (tmp_path / "etc" / "local.d").mkdir(exist_ok=True)
        (tmp_path / "etc" / "local.d" / f"{name}.toml").write_text(text, encoding="utf-8")
    return main_file


def test_valid_prints_the_effective_configuration_as_toml_that_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = setup(tmp_path, "[smtp]\nhostname = 'gw'\n" + SCANNER_ON, finance=FINANCE)
    assert main(["check-config", "--config", str(main_file), "--on", "2027-03-31"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "情報政策課 山田" in out  # Japanese as is
    copy = tmp_path / "effective.toml"
    copy.write_text(out, encoding="utf-8")
    assert load_config(copy) == load_config(main_file)


def test_defaults_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--json"]) == 0
    assert Config.model_validate(json.loads(capsys.readouterr().out)) == Config()


def test_invalid_lists_every_error_with_file_and_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = setup(
        tmp_path,
        "[smtp]\nmax_recipients = 1\n",
        typo="[delivery]\nrelay_hots = 'x'\n",
        noapproval="[[rules]]\nname = 'e'\nexception = true\nreason = 'r'\nexpires = 2027-01-01\n",
    )
    assert main(["check-config", "--config", str(main_file)]) == ExitCode.CONFIG
    out, err = capsys.readouterr()
    assert out == ""
    local = main_file.parent / "local.d"
    assert f"mukaika check-config: {main_file}: smtp.max_recipients:" in err
    assert f"mukaika check-config: {local / 'typo.toml'}: delivery.relay_hots: unknown key" in err
    assert (
        f"mukaika check-config: {local / 'noapproval.toml'}: rules[0] ('e'): "
        "exception 'e' without approved_by" in err
    )
    assert "3 error(s)" in err


def test_expired_exception_is_a_warning_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main_file = setup(tmp_path, SCANNER_ON, finance=FINANCE)
    assert (
        main(["check-config", "--config", str(main_file), "--on", "2027-04-01", "-q"])
        == ExitCode.EXPIRED_EXCEPTIONS
    )
    out, err = capsys.readouterr()
    assert out == ""
    finance = main_file.parent / "local.d" / "finance.toml"
    assert err == (
        f"warning: {finance}: rules[0] ('finance'): exception expired on 2027-03-31 "
        "(approved by 情報政策課 山田); it is not applied\n"
    )
    # On its last day it still applies.
    assert main(["check-config", "--config", str(main_file), "--on", "2027-03-31", "-q"]) == 0


GUIDES = [ROOT / "deploy" / f"GUIDE.{lang}.md" for lang in ("en", "ja")]


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_the_guides_rules_section_shows_valid_commands_and_configurations(
    guide: Path, tmp_path: Path
) -> None:
    import re
    import shlex

    from gateway.cli import build_parser

    text = guide.read_text(encoding="utf-8")
    section = re.search(r"<!-- BEGIN: Rules.*?<!-- END: Rules -->", text, re.DOTALL)
    assert section is not None
    body = section.group(0)
    commands = [
        line.split("/bin/mukaika ", 1)[1]
        for block in re.findall(r"^```sh\n(.*?)^```", body, re.MULTILINE | re.DOTALL)
        for line in block.splitlines()
        if "/bin/mukaika " in line
    ]
    assert {c.split()[0] for c in commands} >= {"check-config", "explain"}
    for command in commands:
        build_parser().parse_args(shlex.split(command))
    blocks = re.findall(r"^```toml\n(.*?)^```", body, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2
    for n, block in enumerate(blocks):
        path = tmp_path / f"{n}.toml"
        path.write_text(block, encoding="utf-8")
        config = load_config(path)
        assert config.rules
    assert "mukaika_expired_exceptions" in body


def test_reject_is_refused_in_the_postfix_content_filter_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Behind Postfix a 550 at the end of DATA becomes Postfix's bounce to the forged sender."""
    example = (ROOT / "config" / "examples" / "postfix-content-filter.toml").read_text("utf-8")
    auth = "\n[auth]\nenabled = true\ntemperror_action = 'reject'\n"
    main_file = setup(tmp_path, example + auth, local="[auth]\ndmarc_fail_action = 'hold'\n")
    assert main(["check-config", "--config", str(main_file), "-q"]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert 'auth.dmarc_reject_action: "reject" in the Postfix content-filter layout' in err
    assert "auth.temperror_action" in err
    assert "dmarc_fail_action" not in err
    held = auth.replace("temperror_action = 'reject'", "dmarc_reject_action = 'hold'")
    other = tmp_path / "other"
    other.mkdir()
    assert main(["check-config", "--config", str(setup(other, example + held)), "-q"]) == 0


def test_auth_settings_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = (
        "[auth]\nnameservers = ['ns.example.jp']\ndmarc_fail_action = 'tag'\n"
        "authserv_id = 'mx;evil'\n[auth.reports]\nenabled = true\n"
    )
    assert main(["check-config", "--config", str(setup(tmp_path, bad)), "-q"]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    for key in ("auth.nameservers", "auth.dmarc_fail_action", "auth.authserv_id", "auth.reports"):
        assert key in err

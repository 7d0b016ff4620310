"""The command line toolkit: one exit-code list, global options in either place, one way to
load the configuration, text cut between words, times in the operator's zone."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import build_parser, main
from gateway.cli.exit_codes import ExitCode
from gateway.cli.toolkit import columns, shorten, show_time
from tests.paths import ROOT

DOCUMENTS = ("README.md", "deploy/GUIDE.en.md", "deploy/GUIDE.ja.md")


def test_no_code_means_two_things_and_none_is_reused_from_before() -> None:
    values = [int(code) for code in ExitCode]
    assert len(values) == len(set(values))
    # 1 and 3 meant several things before; 1 is only Python's own status for a traceback now
    # and 3 is no longer used at all, so an old script cannot misread a new meaning.
    assert 3 not in values
    assert ExitCode(1) is ExitCode.INTERNAL
    for code in ExitCode:
        assert code.meaning, code.name


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_exit_code_is_listed_in_the_readme_and_both_guides(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", text, flags=re.MULTILINE))
    assert rows == {str(int(code)): code.name for code in ExitCode}


def _groups() -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(group, action, action parser) of every command group of ``mukaika``."""
    found = []
    top = build_parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, group in commands.choices.items():
        for action in group._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.extend((name, verb, parser) for verb, parser in action.choices.items())
    return found


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    """The arguments an action needs: its positionals and its required options."""
    values = []
    for action in parser._actions:
        if not action.option_strings and action.nargs not in ("*", "?", argparse.SUPPRESS):
            values.append("20261122T020021Z-03f6c5abc091")
        elif action.option_strings and action.required:
            choices = list(action.choices or ["some text"])
            values += [action.option_strings[0], str(choices[0])]
    for group in parser._mutually_exclusive_groups:
        if group.required:  # one of them is needed: the first, with a value if it takes one
            first = group._group_actions[0]
            values += [first.option_strings[0]] + (["some text"] if first.nargs != 0 else [])
    return values


GROUP_ACTIONS = _groups()


def test_the_command_groups_are_found() -> None:
    assert {group for group, _, _ in GROUP_ACTIONS} >= {"queue", "quarantine"}


@pytest.mark.parametrize(("group", "action", "parser"), GROUP_ACTIONS, ids=lambda v: str(v)[:20])
@pytest.mark.parametrize("place", ["before", "after"])
def test_global_options_are_accepted_before_and_after_the_action(
    group: str, action: str, parser: Any, place: str
) -> None:
    options = ["--data-dir", "/srv/d", "--config", "/etc/m.toml"]
    rest = [action, *_positionals(parser)]
    argv = [group, *options, *rest] if place == "before" else [group, *rest, *options]
    args = build_parser().parse_args(argv)
    assert (args.data_dir, args.config) == (Path("/srv/d"), Path("/etc/m.toml"))


def test_global_options_default_to_none_in_either_group() -> None:
    for group, action, parser in GROUP_ACTIONS:
        args = build_parser().parse_args([group, action, *_positionals(parser)])
        assert (args.data_dir, args.config) == (None, None)


@pytest.mark.parametrize("group", ["queue", "quarantine"])
def test_an_invalid_configuration_is_reported_one_way_with_exit_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], group: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp]\nmax_recipients = 1\n[quarantine]\nretention_dayz = 3\n", "utf-8")
    assert main([group, "list", "--config", str(bad)]) == ExitCode.CONFIG
    err = capsys.readouterr().err.splitlines()
    assert f"mukaika {group}: {bad}: smtp.max_recipients: " in err[0]
    assert err[1] == f"mukaika {group}: {bad}: quarantine.retention_dayz: unknown key"
    assert "Traceback" not in "\n".join(err)


def _words(text: str) -> set[str]:
    return set(text.split())


HOSTILE = [
    "451 4.3.0 Temporary local problem, please try again later while the relay is busy",
    "550 5.1.1 <" + "a" * 200 + "@example.jp>: Recipient address rejected",
    "一時的な障害です しばらくしてから 再送してください 宛先 山田太郎 さま 総務課 情報政策係 担当",
    "x" * 300,
    "short",
    "tab\tand   many    spaces   between   words   " * 5,
]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("width", [10, 30, 60])
def test_shorten_never_cuts_inside_a_word_unless_one_word_is_wider(text: str, width: int) -> None:
    short = shorten(text, width)
    assert columns(short) <= width
    if short.endswith("…"):
        kept = short[:-1].split()
        words = text.split()
        if columns(words[0]) < width:
            assert kept == words[: len(kept)], "cut inside a word"
        else:
            assert len(kept) == 1
    else:
        assert short == " ".join(text.split())


def test_times_are_shown_in_the_chosen_zone_with_their_offset() -> None:
    moment = datetime(2026, 12, 3, 14, 20, 5, tzinfo=UTC)
    from zoneinfo import ZoneInfo

    assert show_time(moment, ZoneInfo("Asia/Tokyo")) == "2026-12-03 23:20:05 +09:00"
    assert show_time(moment.timestamp(), ZoneInfo("UTC")) == "2026-12-03 14:20:05 +00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d", show_time(0.0, None))

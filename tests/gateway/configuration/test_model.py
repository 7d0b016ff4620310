"""The one configuration model: complete generated defaults, described fields, hostile values.

Every table and key is enumerated from the model itself, so a setting added later is covered
by these tests without editing them.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.cli import main
from gateway.configuration.config import ORDERINGS, Config, ConfigError, load_config, setting
from gateway.configuration.toml_text import defaults_toml
from tests.paths import ROOT

DEFAULTS = ROOT / "config" / "defaults.toml"
# Units a float setting's name ends with (or is): a bare "timeout = 30.0" says nothing.
FLOAT_UNITS = ("seconds", "days", "ratio", "multiplier")
# Keys whose exact names an issue fixed, with the unit their description states instead.
FLOATS_NAMED_BY_AN_ISSUE = {"policy.charsets.japanese_prior"}  # a share of the text, 0 to 1


def _tables(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel]]]:
    found = [(prefix, model)]
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and name != "rules":
            found.extend(_tables(annotation, f"{prefix}.{name}" if prefix else name))
    return found


def _leaves() -> list[tuple[str, Any]]:
    """Every leaf setting as (dotted key, field info)."""
    leaves = []
    for prefix, model in _tables(Config):
        for name, info in model.model_fields.items():
            annotation = info.annotation
            nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            if prefix and not nested:
                leaves.append((f"{prefix}.{name}", info))
    return leaves


# Settings whose value is a table of free keys (a mapping), not a section.
MAPPINGS = ("policy.attachments.by_kind", "directory.role_map")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and dotted not in MAPPINGS:
            flat.update(_flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def test_committed_defaults_file_is_the_generated_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check-config", "--defaults"]) == 0
    printed = capsys.readouterr().out
    assert printed == defaults_toml()
    assert DEFAULTS.read_text(encoding="utf-8") == printed, (
        "config/defaults.toml is stale: mukaika check-config --defaults > config/defaults.toml"
    )


def test_defaults_file_holds_every_setting_of_the_model_and_nothing_else() -> None:
    written = set(_flatten(tomllib.loads(defaults_toml())))
    assert written == {key for key, _ in _leaves()}
    for section in ("policy", "quarantine", "audit", "metrics", "scanner", "service"):
        assert f"\n[{section}]\n" in defaults_toml()
    assert load_config(DEFAULTS) == Config()


def test_every_setting_has_a_description_and_floats_name_their_unit() -> None:
    for key, info in _leaves():
        assert len(info.description or "") > 10, f"{key}: no description"
        if info.annotation is float and key not in FLOATS_NAMED_BY_AN_ISSUE:
            assert key.rsplit(".", 1)[1].endswith(FLOAT_UNITS), f"{key}: no unit in its name"
    for prefix, model in _tables(Config):
        assert (model.__doc__ or "").strip(), f"[{prefix or 'root'}] has no docstring"


@pytest.mark.parametrize("table", [prefix for prefix, _ in _tables(Config) if prefix])
def test_an_unknown_key_in_any_table_is_named_with_its_file(tmp_path: Path, table: str) -> None:
    path = tmp_path / "mukaika.toml"
    path.write_text(f"[{table}]\nno_such_setting = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [f"{path}: {table}.no_such_setting: unknown key"]


@pytest.mark.parametrize("key", [key for key, _ in _leaves()])
def test_a_value_of_the_wrong_shape_for_any_setting_is_named(tmp_path: Path, key: str) -> None:
    table, name = key.rsplit(".", 1)
    path = tmp_path / "mukaika.toml"
    path.write_text(f"[{table}]\n{name} = {{ hostile = [1, 2] }}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert all(problem.startswith(f"{path}: {key}") for problem in info.value.problems)


def _only_problem(path: Path) -> str:
    """The single problem loading ``path`` reports."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    return problem


def _violating(value: Any, strict: bool) -> str:
    """A TOML value that equals ``value`` (strict orderings) or exceeds it by one unit."""
    bumped = value if strict else value + 1
    return repr(float(bumped)) if isinstance(value, float) else str(int(bumped))


@pytest.mark.parametrize("ordering", ORDERINGS, ids=lambda o: f"{o.lower}<{o.upper}")
def test_each_cross_section_rule_names_both_keys_and_the_file(
    tmp_path: Path, ordering: Any
) -> None:
    upper = setting(Config(), ordering.upper)
    table, name = ordering.lower.rsplit(".", 1)
    path = tmp_path / "mukaika.toml"
    path.write_text(f"[{table}]\n{name} = {_violating(upper, ordering.strict)}\n", encoding="utf-8")
    problem = _only_problem(path)
    assert problem.startswith(f"{path}: {ordering.lower}: ")
    assert ordering.upper in problem


def test_a_cross_section_rule_names_the_key_the_operator_set(tmp_path: Path) -> None:
    main_file = tmp_path / "mukaika.toml"
    main_file.write_text("[smtp]\nhostname = 'gw'\n", encoding="utf-8")
    (tmp_path / "local.d").mkdir()
    small = tmp_path / "local.d" / "10-small.toml"
    small.write_text("[policy.limits]\nmax_message_bytes = 1000\n", encoding="utf-8")
    assert _only_problem(main_file).startswith(
        f"{small}: policy.limits.max_message_bytes: smtp.max_message_bytes (26214400) must be "
        "at most policy.limits.max_message_bytes (1000)"
    )


def test_a_rule_policy_that_breaks_a_cross_section_rule_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mukaika.toml"
    path.write_text(
        "[[rules]]\nname = 'slow'\nrecipients = ['a@example.jp']\n"
        "[rules.policy.limits]\nseconds = 500.0\n",
        encoding="utf-8",
    )
    assert _only_problem(path).startswith(
        f"{path}: rules[0] ('slow').policy.limits.seconds: policy.limits.seconds (500.0) must "
        "be below worker.sanitize_timeout_seconds (120.0)"
    )


def test_orderings_hold_for_the_shipped_defaults() -> None:
    for ordering in ORDERINGS:
        assert setting(Config(), ordering.lower) <= setting(Config(), ordering.upper)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "Asia/Tokyo\n"])
def test_an_unknown_display_timezone_is_refused(tmp_path: Path, zone: str) -> None:
    path = tmp_path / "mukaika.toml"
    path.write_text(f"[service]\ndisplay_timezone = {zone!r}\n".replace("'", '"'), "utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "service.display_timezone: " in str(info.value)


def test_loading_the_configuration_does_not_import_the_scanner() -> None:
    """The configuration validates clamd addresses itself: no cycle with the scanner."""
    code = (
        "import sys\n"
        "from gateway.configuration.config import validate\n"
        "validate({'scanner': {'enabled': True, 'address': '127.0.0.1:3310'}}, 'x')\n"
        "assert 'gateway.processing.scanner' not in sys.modules, 'scanner imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


NETWORK_LISTS = ("smtp.trusted_networks", "console.trusted_proxies", "outbound.client_networks")


def test_every_list_of_client_networks_is_one_checked_type() -> None:
    """Lists of addresses or networks are found by name; each is the checked type."""
    found = {
        key for key, _ in _leaves() if key.endswith(("_networks", "_proxies", "_nets", "_cidrs"))
    }
    assert found == set(NETWORK_LISTS)


@pytest.mark.parametrize("key", NETWORK_LISTS)
@pytest.mark.parametrize("bad", ["192.0.2.300", "example.lg.jp", "10.0.0.0/33", ""])
def test_a_bad_network_in_any_list_is_refused_at_load(tmp_path: Path, key: str, bad: str) -> None:
    table, name = key.rsplit(".", 1)
    path = tmp_path / "mukaika.toml"
    path.write_text(f'[{table}]\n{name} = ["127.0.0.1", "{bad}"]\n', encoding="utf-8")
    problem = _only_problem(path)
    assert problem.startswith(f"{path}: {key}")
    assert "is not an IP address or network" in problem


@pytest.mark.parametrize("key", NETWORK_LISTS)
def test_addresses_and_networks_of_both_families_load(tmp_path: Path, key: str) -> None:
    table, name = key.rsplit(".", 1)
    path = tmp_path / "mukaika.toml"
    values = '["127.0.0.1", "192.0.2.0/24", "2001:db8::/32", "::1"]'
    path.write_text(f"[{table}]\n{name} = {values}\n", encoding="utf-8")
    config = load_config(path)
    assert getattr(getattr(config, table), name) == (
        "127.0.0.1",
        "192.0.2.0/24",
        "2001:db8::/32",
        "::1",
    )

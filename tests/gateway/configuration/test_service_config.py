"""The relay's configuration: shipped defaults equal the models; bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.configuration.config import Config, ConfigError, load_config
from tests.paths import ROOT

DEFAULTS = ROOT / "config" / "defaults.toml"


def test_defaults_file_loads_to_model_defaults() -> None:
    assert load_config(DEFAULTS) == Config()


def test_unknown_and_bad_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[smtp]\nmax_recipients = 5\nbare_newline = "allow"\n[delivery]\ntls = "maybe"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert "smtp.max_recipients" in text
    assert "smtp.bare_newline: unknown key" in text
    assert "delivery.tls" in text


def float_settings(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The dotted path of every float setting in the configuration model, found by walking it."""
    found: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += float_settings(annotation, (*prefix, name))
        elif annotation is float:
            found.append((*prefix, name))
    return found


def refused(tmp_path: Path, table: tuple[str, ...], lines: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(f"[{'.'.join(table)}]\n{lines}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_every_float_setting_refuses_infinity_and_nan(tmp_path: Path) -> None:
    paths = float_settings(Config)
    assert ("smtp", "stress_timeout_seconds") in paths  # the walk reaches the sections
    for *table, name in paths:
        for value in ("inf", "nan", "-inf"):
            assert name in refused(tmp_path, tuple(table), f"{name} = {value}"), (table, name)


def test_every_time_setting_has_an_upper_bound(tmp_path: Path) -> None:
    timed = [path for path in float_settings(Config) if path[-1].endswith("_seconds")]
    assert len(timed) > 10
    for *table, name in timed:
        assert name in refused(tmp_path, tuple(table), f"{name} = 1e300"), (table, name)


def test_stress_ratio_of_one_is_refused(tmp_path: Path) -> None:
    assert "smtp.stress_threshold_ratio" in refused(
        tmp_path, ("smtp",), "stress_threshold_ratio = 1"
    )


def test_stress_timeout_longer_than_command_timeout_names_both_keys(tmp_path: Path) -> None:
    text = refused(tmp_path, ("smtp",), "command_timeout_seconds = 30\nstress_timeout_seconds = 60")
    assert "smtp.stress_timeout_seconds" in text
    assert "smtp.command_timeout_seconds" in text

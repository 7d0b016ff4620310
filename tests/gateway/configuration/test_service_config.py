"""The relay's configuration: shipped defaults equal the models; bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

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

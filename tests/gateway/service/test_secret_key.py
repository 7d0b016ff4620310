"""The secret key shared by serve and the console: made once, private, refused when not."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.configuration.settings import ConsoleSettings
from gateway.service.secret_key import SecretKeyError, load_secret_key


def test_made_private_on_first_use_and_the_same_afterwards(tmp_path: Path) -> None:
    first = load_secret_key(ConsoleSettings(), tmp_path)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_secret_key(ConsoleSettings(), tmp_path) == first
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_configured_path_is_used(tmp_path: Path) -> None:
    settings = ConsoleSettings(secret_key_file="keys/console.key")
    key = load_secret_key(settings, tmp_path)
    assert (tmp_path / "keys" / "console.key").read_text(encoding="ascii").strip() == key


def test_a_key_others_may_read_is_refused(tmp_path: Path) -> None:
    load_secret_key(ConsoleSettings(), tmp_path)
    os.chmod(tmp_path / "secret_key", 0o644)
    with pytest.raises(SecretKeyError, match="others may read"):
        load_secret_key(ConsoleSettings(), tmp_path)


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("short\n", encoding="ascii")
    os.chmod(path, 0o600)
    with pytest.raises(SecretKeyError, match="characters"):
        load_secret_key(ConsoleSettings(), tmp_path)

"""The shared secret key file: created once (0600), read by every process, refused when unsafe."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from gateway.configuration.secret_key import (
    MIN_KEY_CHARS,
    SecretKeyError,
    load_secret_key,
    secret_key_path,
)


def test_created_private_when_missing_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "console" / "secret_key"
    key = load_secret_key(path)
    assert len(key) >= MIN_KEY_CHARS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_secret_key(path) == key  # serve and console read the same key
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(load_secret_key(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert keys[0] == path.read_text().strip()


def test_default_path_is_under_the_data_directory(tmp_path: Path) -> None:
    assert secret_key_path("", tmp_path) == tmp_path / "secret_key"
    assert secret_key_path("keys/k", tmp_path) == tmp_path / "keys" / "k"
    assert secret_key_path("/etc/mukaika/key", tmp_path) == Path("/etc/mukaika/key")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret_key"
    path.write_text("a" * 64 + "\n")
    path.chmod(mode)
    with pytest.raises(SecretKeyError, match="readable by others"):
        load_secret_key(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"short\n",
        b"a" * (MIN_KEY_CHARS - 1),
        b"a" * 40 + b"\n" + b"b" * 40,
        b"x" * 5000,
        "é".encode() * 40,
    ],
)
def test_a_file_that_is_no_key_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secret_key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(SecretKeyError):
        load_secret_key(path)


def test_a_symlink_or_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("a" * 64)
    target.chmod(0o600)
    link = tmp_path / "secret_key"
    link.symlink_to(target)
    with pytest.raises(SecretKeyError):
        load_secret_key(link)
    directory = tmp_path / "dir_key"
    directory.mkdir(mode=0o700)
    with pytest.raises(SecretKeyError):
        load_secret_key(directory)


def test_the_message_never_carries_the_key(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    secret = "s3cr3t" * 10
    path.write_text(secret)
    os.chmod(path, 0o644)
    with pytest.raises(SecretKeyError) as raised:
        load_secret_key(path)
    assert secret not in str(raised.value)

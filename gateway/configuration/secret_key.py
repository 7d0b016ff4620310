"""The secret key of ``[console] secret_key_file``, shared by ``serve`` and ``console``.

Intent: ``serve`` signs the PPAP links it writes into held notices and the console verifies
them (and signs its sessions with the same key), so both processes must read one key; neither
may invent its own. :func:`load_secret_key` is the one way to get it: it reads the file, or
creates it when missing (random, mode 0600), so a fresh install works without a step.

Threat model: whoever reads the key can forge links and sessions. The file is created with
mode 0600 in a directory of the service's own; a file that others may read (any group or
other permission bit), that is not a regular file, or that holds too little randomness is
refused with :class:`SecretKeyError` (``serve`` and ``console`` stop with the configuration
exit code) rather than used. Two processes starting at once agree on one key: the new key is
written to a private temporary file and linked into place, which fails if the other one won
(then its key is read). The key is never logged or printed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

# Random bytes of a generated key, written as hex (64 characters and a newline).
KEY_BYTES: Final = 32
# The least a key file may hold (characters of its one line): about 128 bits as hex.
MIN_KEY_CHARS: Final = 32
# A key file larger than this is not a key (a wrong path).
MAX_KEY_FILE_BYTES: Final = 4096
# Where the key lives when ``secret_key_file`` is "" (under the data directory).
DEFAULT_NAME: Final = "secret_key"


class SecretKeyError(Exception):
    """The key file cannot be used (the message says why; never the key)."""


def secret_key_path(secret_key_file: str, data_dir: Path) -> Path:
    """The key file's path: ``secret_key_file``, relative to ``data_dir`` when not absolute;
    "" = ``DATA_DIR/secret_key``."""
    return Path(data_dir) / (secret_key_file or DEFAULT_NAME)


def load_secret_key(path: Path) -> str:
    """The key in ``path``, created (mode 0600) when the file does not exist."""
    try:
        return read_secret_key(path)
    except FileNotFoundError:
        pass
    _create(path)
    return read_secret_key(path)


def read_secret_key(path: Path) -> str:
    """The key in ``path``; raises ``FileNotFoundError`` when there is none yet and
    :class:`SecretKeyError` when the file cannot be used."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SecretKeyError(f"{path}: {exc.strerror or type(exc).__name__}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SecretKeyError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as file:
        if info.st_mode & 0o077:
            raise SecretKeyError(
                f"{path}: readable by others (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"chmod 600 {path}"
            )
        data = file.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise SecretKeyError(f"{path}: larger than {MAX_KEY_FILE_BYTES} bytes: not a key file")
    key = data.strip()
    if len(key) < MIN_KEY_CHARS or b"\n" in key or not key.isascii():
        raise SecretKeyError(
            f"{path}: a key is one line of at least {MIN_KEY_CHARS} ASCII characters "
            "(delete the file and a new one is made)"
        )
    return key.decode("ascii")


def _create(path: Path) -> None:
    """Write a new random key to ``path`` unless another process has just done so."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(secrets.token_hex(KEY_BYTES).encode() + b"\n")
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)  # fails when another process made it first
        finally:
            temporary.unlink(missing_ok=True)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise SecretKeyError(
            f"{path}: cannot create the key ({exc.strerror or type(exc).__name__})"
        ) from exc

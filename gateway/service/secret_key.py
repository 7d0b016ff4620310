"""The secret key shared by serve and the console: it signs the console's session cookies and
the links serve writes into notices, so both must read the same one.

It lives in ``[console] secret_key_file`` (default ``DATA_DIR/secret_key``). The first program
to start creates it: random bytes from :mod:`secrets`, written to a private temporary file,
flushed, then linked into place, so a reader never sees half a key and two programs starting
at once agree on one key. Threat model: whoever reads the key can forge sessions and links;
the file must belong to the service's user and be readable by it alone, and a key file that
others may read is refused (a configuration error), never used.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from gateway.configuration.settings import ConsoleSettings

KEY_BYTES: Final = 48  # 384 random bits, as URL-safe text
MIN_KEY_CHARS: Final = 32
MAX_KEY_CHARS: Final = 4096


class SecretKeyError(Exception):
    """The key file cannot be used (others may read it, it is too short, unreadable)."""


def load_secret_key(settings: ConsoleSettings, data_dir: Path) -> str:
    """The shared secret key, created on first use."""
    path = settings.resolve_secret_key_file(data_dir)
    try:
        _create_if_missing(path)
        info = path.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise SecretKeyError(
                f"{path}: others may read the secret key (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): chmod 600 it"
            )
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyError(f"{path}: cannot read the secret key: {exc}") from exc
    if not MIN_KEY_CHARS <= len(text) <= MAX_KEY_CHARS:
        raise SecretKeyError(
            f"{path}: a secret key has {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters"
        )
    return text


def _create_if_missing(path: Path) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another program made it first: use theirs
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)

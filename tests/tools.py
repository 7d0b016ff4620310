"""External programs the tests run, found or reported as missing.

``make check`` installs every one of them (the Debian packages of the Makefile's
TEST_PACKAGES through deploy/system-packages.sh, the Python ones with ``.[dev]``), so a
missing program is a broken set-up: the test fails and says how to install it, instead of
skipping and leaving a check that never runs in CI.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

# Programs installed by pip next to the interpreter (.venv/bin), found without an activated
# virtualenv.
_VENV_BIN = Path(sys.executable).parent
_SYSTEM_DIRS = ("/usr/sbin", "/sbin")


def require_tool(name: str, *, debian_package: str | None = None) -> str:
    """The path of program ``name``; fails the test naming the package that provides it."""
    found = shutil.which(name) or shutil.which(name, path=str(_VENV_BIN))
    if found is None:
        found = shutil.which(name, path=":".join(_SYSTEM_DIRS))
    if found is None:
        how = (
            f"Debian package {debian_package} (make test-packages installs it)"
            if debian_package
            else "pip install -e '.[dev]' (make install does it)"
        )
        pytest.fail(f"{name} is not installed: {how}", pytrace=False)
    return found

"""Shared by every adversarial module."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """A leaked socket warns in the test that leaked it, not in a later one."""
    yield
    gc.collect()

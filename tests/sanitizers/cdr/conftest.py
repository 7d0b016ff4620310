"""Fixtures shared by the CDR tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sanitizers.cdr.isolation import IsolatedDisarmer
from sanitizers.cdr.settings import CdrPolicy

# One isolated sanitizer process per core of the 2-core machine the corpus sweeps run on.
SWEEP_WORKERS = 2


@pytest.fixture(scope="module")
def disarmers() -> Iterator[list[IsolatedDisarmer]]:
    """Isolated disarmers (default CDR limits) for the corpus sweeps, one per worker thread."""
    pool = [IsolatedDisarmer(CdrPolicy()) for _ in range(SWEEP_WORKERS)]
    try:
        yield pool
    finally:
        for disarmer in pool:
            disarmer.close()

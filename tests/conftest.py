"""Fixtures shared across folders, and the markers that say what a test needs.

A test that uses a fixture starting a real outside program gets that program's marker here,
so ``-m "not clamd"`` and the like select by need without anyone remembering to mark."""

from __future__ import annotations

import pytest
from hypothesis import settings

from gateway.configuration.settings import StoreSettings
from tests.authdns import auth_dns
from tests.browser import browser
from tests.clamd import clamd_socket, clamd_tcp
from tests.postgres import postgres_cluster, postgres_url
from tests.slapd import slapd, slapd_server

__all__ = [
    "auth_dns",
    "browser",
    "clamd_socket",
    "clamd_tcp",
    "postgres_cluster",
    "postgres_url",
    "slapd",
    "slapd_server",
]

# fixture name -> the marker of what it needs (markers are registered in pyproject.toml)
NEEDS = {
    "browser": "browser",
    "clamd_socket": "clamd",
    "clamd_tcp": "clamd",
    "postfix_root": "postfix",
    "postgres_cluster": "postgresql",
    "auth_dns": "dns",
    "slapd_server": "ldap",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest) -> StoreSettings:
    """The store's settings on each backend: the default SQLite file of the test's data
    directory, then a new database of the private PostgreSQL cluster (tests/postgres.py). A
    test that takes it runs on both."""
    if request.param == "sqlite":
        return StoreSettings()
    url: str = request.getfixturevalue("postgres_url")
    return StoreSettings(url=url)


@pytest.fixture
def store_args(store_settings: StoreSettings) -> list[str]:
    """The command-line options that open ``store_settings``' store (none for the default)."""
    return [] if store_settings == StoreSettings() else ["--store-url", store_settings.url]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in NEEDS:
                item.add_marker(NEEDS[fixture])
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("store_settings") == "postgresql":
            item.add_marker("postgresql")


def pytest_configure(config: pytest.Config) -> None:
    """Django is configured once per process, by whoever asks first: the console's test
    settings (its secret key, a cheap hasher) are put in place before any test can run, so a
    command-line test that hashes a password first cannot leave the console tests with the
    command line's bare settings (their signed links would then never verify)."""
    from tests.gateway.console.consolekit import configure_django

    configure_django()
    # Property tests are deterministic: the same examples on every run (no random seed, no
    # example database), so CI cannot fail on an example a previous run never tried.
    settings.register_profile("deterministic", derandomize=True, database=None)
    settings.load_profile("deterministic")

"""``mukaika console`` as it runs: uvicorn on a real socket, the client address taken from
X-Forwarded-For only when the peer is a trusted proxy, and the sign-in limit per user behind
one proxy address (one person's mistakes do not lock out a whole town hall)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.configuration.settings import QuarantineSettings, StoreSettings
from gateway.store import open_store
from gateway.store.users import add_user
from sanitizers.vocabulary import UserRole
from tests.gateway.console.consolekit import PASSWORD, configure_django, hashed
from tests.storekit import migrated_store

PROXY_ADDRESS = "203.0.113.5"  # the screen-transfer server's address, as the proxy saw it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Browser:
    """A cookie-keeping HTTP client that speaks through a proxy's headers."""

    def __init__(self, base: str, forwarded_for: str | None) -> None:
        self.base = base
        self.headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            _NoRedirect(),
        )

    def get(self, path: str) -> tuple[int, str]:
        return self._send(urllib.request.Request(self.base + path, headers=self.headers))

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        _, page = self.get("/login")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page
        data = urllib.parse.urlencode({**form, "csrfmiddlewaretoken": token[1]}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=self.headers)
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _start(tmp_path: Path, trusted: list[str]) -> Iterator[str]:
    configure_django()
    data = tmp_path / "data"
    migrated_store(data).close()
    with open_store(StoreSettings(), QuarantineSettings(), data) as store:
        for name in ("rin", "ren"):
            add_user(store, name, UserRole.RECIPIENT, "test", password_hash=hashed(PASSWORD))
    port = _free_port()
    config = tmp_path / "mukaika.toml"
    config.write_text(
        f'[console]\nlisten = "127.0.0.1:{port}"\ntrusted_proxies = {json.dumps(trusted)}\n',
        encoding="utf-8",
    )
    log = tmp_path / "console.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "console",
                "--config",
                str(config),
                "--data-dir",
                str(data),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:  # until it listens (a console that exits fails the test with its log)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, log.read_text(encoding="utf-8", errors="replace")
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, ["127.0.0.1"])


@pytest.fixture
def no_proxy(tmp_path: Path) -> Iterator[str]:
    yield from _start(tmp_path, [])


def _audit(tmp_path: Path) -> list[dict[str, object]]:
    text = (tmp_path / "data" / "audit" / "audit.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_lockout_is_per_user_behind_a_trusted_proxy(behind_proxy: str, tmp_path: Path) -> None:
    rin = Browser(behind_proxy, PROXY_ADDRESS)
    for _ in range(5):  # console.max_failures_per_user
        status, _ = rin.post("/login", {"name": "rin", "password": "wrong password here"})
        assert status == 401
    status, _ = rin.post("/login", {"name": "rin", "password": PASSWORD})
    assert status == 401  # locked
    ren = Browser(behind_proxy, PROXY_ADDRESS)
    status, _ = ren.post("/login", {"name": "ren", "password": PASSWORD})
    assert status == 302
    assert ren.get("/")[0] == 200
    logins = [line for line in _audit(tmp_path) if line["event"] == "login"]
    assert {line["client"] for line in logins} == {PROXY_ADDRESS}
    assert [line["outcome"] for line in logins][-2:] == ["locked", "ok"]


def test_forwarded_headers_are_ignored_without_trusted_proxies(
    no_proxy: str, tmp_path: Path
) -> None:
    forger = Browser(no_proxy, "198.51.100.99")
    status, _ = forger.post("/login", {"name": "rin", "password": PASSWORD})
    assert status == 302
    logins = [line for line in _audit(tmp_path) if line["event"] == "login"]
    assert [line["client"] for line in logins] == ["127.0.0.1"]

"""A private PostgreSQL cluster for the tests: Debian's server (``make check`` installs the
``postgresql`` package, TEST_PACKAGES), initialised in a temporary directory and started once
per session on 127.0.0.1 with a free port and a password (scram-sha-256), never the system's
own cluster. PostgreSQL refuses to run as root: when the tests run as root the server runs as
``nobody`` (it owns only the temporary directory). Without the package the tests that use it
fail and name it; they never skip.

Each test gets a database of its own (:meth:`Cluster.new_database`), dropped afterwards. The
cluster runs with fsync off: these tests check mukaika's use of the database, not PostgreSQL's
durability. It can be stopped and started again on the same port (:meth:`Cluster.stop`,
:meth:`Cluster.start`) to test what the gateway does while the database is away. The server
gets SIGQUIT (immediate stop) if the test process dies, so no cluster outlives the run.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from tests.clamd import free_port

if TYPE_CHECKING:
    import psycopg

DEBIAN_ROOT: Final = Path("/usr/lib/postgresql")
SERVER_USER: Final = "nobody"  # the server's user when the tests run as root
SUPERUSER: Final = "mukaika"
START_SECONDS: Final = 60.0
PR_SET_PDEATHSIG: Final = 1
# Test settings: small, fast, and enough connections for every pool of a test.
SERVER_OPTIONS: Final = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "shared_buffers=16MB",
    "max_connections=200",
    "log_min_messages=warning",
)


def server_bin() -> Path:
    """The newest installed server's bin directory; fails naming the package otherwise."""
    found = sorted(DEBIAN_ROOT.glob("*/bin/initdb"), key=lambda path: int(path.parent.parent.name))
    if not found:
        pytest.fail(
            "PostgreSQL is not installed: Debian package postgresql (make test-packages "
            "installs it)",
            pytrace=False,
        )
    return found[-1].parent


def _driver() -> Any:
    """psycopg, imported when a test needs the cluster (a virtualenv made before the store
    moved to PostgreSQL lacks it: that test fails saying so, the others run)."""
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[dev]' (make install does it)")
    return psycopg


def _die_with_parent() -> None:
    """In the server's process before exec: SIGQUIT (immediate stop) when the tests die."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)


class Cluster:
    """One private cluster: initialised at construction, then started and stopped at will."""

    def __init__(self, options: tuple[str, ...] = ()) -> None:
        """``options``: server settings after the tests' own (the benchmarks turn durability
        back on and load pg_stat_statements)."""
        self.options = SERVER_OPTIONS + options
        self.bin = server_bin()
        self.root = Path(tempfile.mkdtemp(prefix="mukaika-pg-"))
        self.data = self.root / "data"
        self.password = secrets.token_hex(16)
        self.port = free_port()
        self.user = pwd.getpwnam(SERVER_USER) if os.getuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count()
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            os.chown(password_file, self.user.pw_uid, self.user.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        password_file.unlink()

    def _as_server(self) -> dict[str, Any]:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": str(self.root)}
        if self.user is None:
            return {"env": env}
        return {"env": env, "user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / program), *args],
            capture_output=True,
            check=False,
            cwd=self.root,
            **self._as_server(),
        )
        if done.returncode != 0:
            pytest.fail(f"{program} failed: {done.stderr.decode(errors='replace')}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        assert self.process is None
        options = [f"-c{option}" for option in self.options]
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.root}",
                    *options,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=self.root,
                preexec_fn=_die_with_parent,
                **self._as_server(),
            )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                log = (self.root / "server.log").read_text(errors="replace")
                pytest.fail(f"postgres exited {self.process.returncode}: {log}")
            try:
                with self.connect("postgres"):
                    return
            except _driver().OperationalError:
                if time.monotonic() > deadline:
                    pytest.fail(f"postgres did not answer within {START_SECONDS}s")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended, nothing is lost)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        """The store URL of ``database``, as an operator writes it."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str) -> psycopg.Connection[Any]:
        psycopg = _driver()
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def new_database(self) -> str:
        """A new empty database; its name."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        with self.connect("postgres") as admin:
            admin.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")  # type: ignore[arg-type]
        return name

    def drop_database(self, name: str) -> None:
        with self.connect("postgres") as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """The session's private cluster, running."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> Iterator[str]:
    """The URL of a new empty database of the private cluster (dropped afterwards)."""
    name = postgres_cluster.new_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        if postgres_cluster.process is None:  # a test stopped it: bring it back for the others
            postgres_cluster.start()
        postgres_cluster.drop_database(name)

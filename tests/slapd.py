"""A real LDAP server for the directory tests: Debian's OpenLDAP ``slapd`` (``make check``
installs slapd and ldap-utils, TEST_PACKAGES), configured by a ``slapd.conf`` in a temporary
directory, loaded with a test tree by ``slapadd`` and started on 127.0.0.1 with a free port,
never the system's own server. When the tests run as root the server runs as ``nobody`` (it
owns only its temporary directory). Without the package the tests that use it fail naming it;
they never skip. Tests that use it get the ``ldap`` marker (tests/conftest.py).

The tree (:data:`TREE`): a read-only account ``cn=reader`` (the only one that may read, and
read only), staff under ``ou=staff`` with mail, Japanese groups (``ou``: 税務課, 総務課) and
roles by ``employeeType`` (課長 → approver), and under ``ou=broken`` an entry whose login is
not a valid user name. STARTTLS is offered with a certificate for 127.0.0.1 signed by a CA
made here (:attr:`Slapd.ca_file`). The server can be stopped, started again on the same
port, and paused (SIGSTOP: it accepts connections but never answers) to test the unhappy
paths; it gets SIGKILL if the test process dies.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.clamd import free_port
from tests.postgres import PR_SET_PDEATHSIG
from tests.tools import require_tool

SUFFIX: Final = "dc=city,dc=example,dc=lg,dc=jp"
READER_DN: Final = f"cn=reader,{SUFFIX}"
STAFF_DN: Final = f"ou=staff,{SUFFIX}"
BROKEN_DN: Final = f"ou=broken,{SUFFIX}"
SERVER_USER: Final = "nobody"
START_SECONDS: Final = 30.0
SCHEMAS: Final = ("core", "cosine", "inetorgperson")

# (uid, mail addresses, ou values, employeeType or None)
STAFF: Final = (
    ("tanaka", ("tanaka@city.example.lg.jp",), ("税務課",), "課長"),
    ("suzuki", ("suzuki@city.example.lg.jp", "zeimu@city.example.lg.jp"), ("税務課",), None),
    ("sato", ("sato@city.example.lg.jp",), ("総務課",), "課長"),
    ("ito", ("ito@city.example.lg.jp",), ("総務課", "税務課"), "主任"),
)


def _entry(dn: str, *lines: str) -> str:
    return "\n".join((f"dn: {dn}", *lines)) + "\n"


def tree(password: str) -> str:
    """The test tree as LDIF (UTF-8: slapadd takes Japanese values as they are)."""
    entries = [
        _entry(SUFFIX, "objectClass: dcObject", "objectClass: organization", "o: city", "dc: city"),
        _entry(
            READER_DN,
            "objectClass: organizationalRole",
            "objectClass: simpleSecurityObject",
            "cn: reader",
            f"userPassword: {password}",
        ),
        _entry(STAFF_DN, "objectClass: organizationalUnit", "ou: staff"),
        _entry(BROKEN_DN, "objectClass: organizationalUnit", "ou: broken"),
    ]
    for uid, mails, groups, role in STAFF:
        lines = ["objectClass: inetOrgPerson", f"uid: {uid}", f"cn: {uid}", f"sn: {uid}"]
        lines += [f"mail: {mail}" for mail in mails]
        lines += [f"ou: {group}" for group in groups]
        if role is not None:
            lines.append(f"employeeType: {role}")
        entries.append(_entry(f"uid={uid},{STAFF_DN}", *lines))
    # Not selected by the filter (no mail): never imported.
    entries.append(
        _entry(
            f"uid=printer,{STAFF_DN}",
            "objectClass: inetOrgPerson",
            "uid: printer",
            "cn: p",
            "sn: p",
        )
    )
    entries.append(
        _entry(
            f"cn=yamada,{BROKEN_DN}",
            "objectClass: inetOrgPerson",
            "uid: 山田",
            "cn: yamada",
            "sn: yamada",
            "mail: yamada@city.example.lg.jp",
            "ou: 税務課",
        )
    )
    return "\n".join(entries)


def _certificates(root: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1: (CA file, certificate, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mukaika test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (root / "ca.pem", root / "server.pem", root / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _die_with_parent() -> None:
    """In the server's process before exec: SIGKILL when the tests die."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Slapd:
    """One private slapd: configured and loaded at construction, then started at will."""

    def __init__(self) -> None:
        self.slapd = require_tool("slapd", debian_package="slapd")
        self.slapadd = require_tool("slapadd", debian_package="slapd")
        self.root = Path(tempfile.mkdtemp(prefix="mukaika-slapd-"))
        self.password = secrets.token_hex(16)
        self.port = free_port()
        self.user = pwd.getpwnam(SERVER_USER) if os.getuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False
        self.ca_file, cert, key = _certificates(self.root)
        (self.root / "db").mkdir()
        includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
        (self.root / "slapd.conf").write_text(
            f"{includes}"
            "modulepath /usr/lib/ldap\n"
            "moduleload back_mdb\n"
            f"pidfile {self.root}/slapd.pid\n"
            f"TLSCertificateFile {cert}\n"
            f"TLSCertificateKeyFile {key}\n"
            "database mdb\n"
            "maxsize 10485760\n"
            f'suffix "{SUFFIX}"\n'
            f"directory {self.root}/db\n"
            "access to attrs=userPassword by anonymous auth by * none\n"
            f'access to * by dn.exact="{READER_DN}" read by * none\n',
            encoding="utf-8",
        )
        (self.root / "tree.ldif").write_text(tree(self.password), encoding="utf-8")
        if self.user is not None:
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        done = subprocess.run(
            [self.slapadd, "-f", "slapd.conf", "-l", "tree.ldif"],
            capture_output=True,
            check=False,
            cwd=self.root,
            **self._as_server(),
        )
        if done.returncode != 0:
            pytest.fail(f"slapadd failed: {done.stderr.decode(errors='replace')}")

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _as_server(self) -> dict[str, Any]:
        env = {"PATH": "/usr/bin:/bin:/usr/sbin", "LANG": "C"}
        if self.user is None:
            return {"env": env}
        return {"env": env, "user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        assert self.process is None
        with (self.root / "slapd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.slapd, "-f", "slapd.conf", "-h", f"{self.url}/", "-d", "0"],
                stdout=log,
                stderr=log,
                cwd=self.root,
                preexec_fn=_die_with_parent,
                **self._as_server(),
            )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                log_text = (self.root / "slapd.log").read_text(errors="replace")
                pytest.fail(f"slapd exited {self.process.returncode}: {log_text}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"slapd did not listen within {START_SECONDS}s")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (it comes back with :meth:`start` on the same port)."""
        if self.process is None:
            return
        self.resume()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, the server answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            self.process.send_signal(signal.SIGCONT)
            self.paused = False

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def slapd_server() -> Iterator[Slapd]:
    """The session's private slapd, running."""
    server = Slapd()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def slapd(slapd_server: Slapd) -> Iterator[Slapd]:
    """The session's slapd, running when the test starts and again after it (a test may stop
    or pause it)."""
    if slapd_server.process is None:
        slapd_server.start()
    yield slapd_server
    slapd_server.resume()
    if slapd_server.process is None:
        slapd_server.start()

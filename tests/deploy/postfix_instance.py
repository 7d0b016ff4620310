"""A private Postfix instance on loopback, standing in for the LGWAN-side MTA.

Debian's Postfix binaries (installed by ``deploy/system-packages.sh postfix``, which
``make check`` runs) with a configuration of our own: its own config, queue and data
directories below one temporary directory, an SMTP listener on ``127.0.0.1:PORT`` only, and
every recipient of one domain delivered by ``virtual(8)`` into one Maildir. Nothing of the
system's ``/etc/postfix`` is used except the read-only list of Postfix's own files.

Postfix must start as root (its master process binds, then its daemons drop to the
``postfix`` user); the caller checks that.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.mails import smtp_banner

# Only the services this test needs; no chroot (the paths are ours, below a temp directory).
MASTER_CF = """\
{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
config_directory = {root}/etc
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = lgwan-mta.test
mydomain = test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = no
biff = no
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:Maildir/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = {uid}
"""


@dataclass
class PostfixInstance:
    root: Path
    port: int
    domain: str
    binary: str
    # Appended to the generated main.cf and master.cf (e.g. the deploy/postfix snippets).
    main_cf_extra: str = ""
    master_cf_extra: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / "Maildir"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def write_config(self) -> None:
        owner = pwd.getpwnam("postfix")
        # The Maildir belongs to the postfix user (virtual(8) delivers as that uid); every
        # directory above it must be searchable by it.
        self.root.chmod(0o755)
        self.config_dir.mkdir()
        (self.root / "mail").mkdir()
        os.chown(self.root / "mail", owner.pw_uid, owner.pw_gid)
        values = {
            "root": self.root,
            "domain": self.domain,
            "uid": owner.pw_uid,
            "gid": owner.pw_gid,
            "port": f"127.0.0.1:{self.port}",
        }
        main_cf = MAIN_CF.format(**values) + self.main_cf_extra
        (self.config_dir / "main.cf").write_text(main_cf, encoding="utf-8")
        master_cf = MASTER_CF.format(**values) + self.master_cf_extra
        (self.config_dir / "master.cf").write_text(master_cf, encoding="utf-8")

    def postfix(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 30) -> None:
        (self.root / "queue").mkdir(exist_ok=True)
        checked = self.postfix("check")
        if checked.returncode != 0:
            raise RuntimeError(f"postfix check failed:\n{self.log()}")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_dir), "start-fg"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postfix exited with {self.process.returncode}:\n{self.log()}")
            if smtp_banner(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"postfix did not answer on port {self.port}:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no maillog)"

    def stop(self) -> None:
        if self.process is None:
            return
        self.postfix("stop", timeout=30)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

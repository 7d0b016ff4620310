"""The guides' install commands, executed against an empty directory standing in for ``/``.

Every shell line of deploy/GUIDE.en.md and deploy/GUIDE.ja.md is classified: either it is run
here, in the guide's order, or it is named below with the reason it cannot run in a test (and
where else it is checked). A new kind of command in a guide fails the test until it is
classified. Run: ``install`` (each absolute path moved under the temporary root, as DESTDIR
does; owner ``root`` and group ``mukaika`` become the test's user and the group that
``systemd-sysusers`` created in the root), ``systemd-sysusers --root``, ``systemctl --root
enable`` and ``mukaika check-config`` on the installed configuration. The root starts empty,
stricter than a stock Debian 12 (which lacks ``/etc/sysusers.d``, where the old first command
failed). At the end the files, modes and owners are those of the guide's table.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_relay import make_certificate
from tests.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
GUIDES = [ROOT / "deploy" / "GUIDE.en.md", ROOT / "deploy" / "GUIDE.ja.md"]
MUKAIKA = re.compile(r"^(sudo -u mukaika )?/opt/mukaika(-new)?/bin/mukaika ")

# Lines not run here, and why.
NOT_RUN: dict[str, str] = {
    r"^apt-get install ": "the host's package manager (make check runs the same installs)",
    r"^sh deploy/system-packages\.sh": "the host's package manager (make check runs it)",
    r"^python3 -m venv /opt/mukaika$": "the package build: test_files.py builds the wheel",
    r"^/opt/mukaika/bin/pip install ": "the package build: test_files.py builds the wheel",
    r"^(sudo -u mukaika )?/opt/mukaika(-new)?/bin/mukaika |^\$MUKAIKA ": (
        "needs a running gateway or mail; test_guides.py parses each with the real parser"
    ),
    r"^systemctl (daemon-reload|status|start|stop|restart|reload) ?": (
        "needs a running systemd; test_hardening.py checks the units with systemd-analyze"
    ),
    r"^journalctl ": "needs a running systemd",
    r"^jq ": "queries an audit log of a running gateway (its format: test_audit.py)",
    r"^(MUKAIKA|CONF)=": "a shell variable for the lines that follow",
    r"^openssl s_client ": "needs the operator's public host name",
    r"^podman ": "no container engine here; hadolint lints the Containerfile (test_files.py)",
}


def shell_lines(guide: Path) -> list[str]:
    """The guide's ```sh lines: comments dropped, continuations joined, ``&&`` split."""
    text = guide.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            lines.extend(part.strip() for part in line.split("&&") if part.strip())
    return lines


class Installer:
    """Runs the guide's lines under ``root``, from a checkout-like working directory."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root = root
        self.workdir = workdir
        self.checked_configs = 0

    def under_root(self, word: str) -> str:
        return f"{self.root}{word}" if word.startswith("/") else word

    def mukaika_gid(self) -> int:
        group = (self.root / "etc" / "group").read_text(encoding="utf-8")
        match = re.search(r"^mukaika:x:(\d+):", group, re.MULTILINE)
        assert match, "systemd-sysusers did not create the group mukaika"
        return int(match[1])

    def owner(self, option: str, name: str) -> str:
        if os.geteuid() != 0:  # only root can give files away: keep the test's own ids
            return str(os.getuid() if option == "-o" else os.getgid())
        if name == "root":
            return "0"
        assert name == "mukaika", name
        return str(self.mukaika_gid())

    def argv(self, line: str) -> list[str] | None:
        """The command to run for ``line``, or None when NOT_RUN names it."""
        words = shlex.split(line)
        if words[0] == "install":
            out: list[str] = []
            for previous, word in zip(["", *words], words, strict=False):
                if previous in ("-o", "-g"):
                    out.append(self.owner(previous, word))
                else:
                    out.append(self.under_root(word))
            return out
        if words == ["systemd-sysusers"]:
            return [require_tool("systemd-sysusers", debian_package="systemd"),
                    f"--root={self.root}"]  # fmt: skip
        if words[:2] == ["systemctl", "enable"]:
            units = [w for w in words[2:] if w != "--now"]  # starting needs a running systemd
            return [require_tool("systemctl", debian_package="systemd"),
                    f"--root={self.root}", "enable", *units]  # fmt: skip
        rest = MUKAIKA.sub("", line) if MUKAIKA.match(line) else ""
        if rest.startswith("check-config "):
            self.point_config_at_root()
            return [sys.executable, "-m", "gateway.cli",
                    *(self.under_root(w) for w in shlex.split(rest))]  # fmt: skip
        for pattern in NOT_RUN:
            if re.search(pattern, line):
                return None
        raise AssertionError(f"a guide line that is neither run nor explained: {line}")

    def point_config_at_root(self) -> None:
        """The installed configuration names /etc/mukaika/...: those files are under root."""
        config = self.root / "etc" / "mukaika" / "mukaika.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('"/etc/mukaika/', f'"{self.root}/etc/mukaika/'), "utf-8")

    def run(self, line: str) -> None:
        argv = self.argv(line)
        if argv is None:
            return
        result = subprocess.run(
            argv, cwd=self.workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{line}\n-> {argv}\n{result.stdout}{result.stderr}"
        if "check-config" in argv:
            if "-q" in argv:
                assert result.stdout == ""  # nothing to report
            self.checked_configs += 1


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A checkout's deploy/ and config/, and the operator's certificate files the guide names."""
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("deploy", "config"):
        (work / name).symlink_to(ROOT / name)
    cert, key = make_certificate(tmp_path)
    for prefix in ("", "new-"):
        (work / f"{prefix}fullchain.pem").write_bytes(cert.read_bytes())
        (work / f"{prefix}privkey.pem").write_bytes(key.read_bytes())
    return work


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.name)
def test_the_guide_installs_into_an_empty_root(guide: Path, tmp_path: Path, workdir: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    installer = Installer(root, workdir)
    for line in shell_lines(guide):
        installer.run(line)
    assert installer.checked_configs >= 2  # after installing (3.3) and in the rules section

    passwd = (root / "etc" / "passwd").read_text(encoding="utf-8")
    assert re.search(r"^mukaika:x:\d+:\d+:[^:]*:/var/lib/mukaika:/usr/sbin/nologin$", passwd, re.M)
    gid = installer.mukaika_gid() if os.geteuid() == 0 else os.getgid()
    etc = root / "etc" / "mukaika"
    for path, mode in [
        (etc, 0o750),
        (etc / "mukaika.toml", 0o640),
        (etc / "tls" / "fullchain.pem", 0o640),
        (etc / "tls" / "privkey.pem", 0o640),
    ]:
        assert path.stat().st_mode & 0o7777 == mode, path
        assert path.stat().st_gid == gid, path
    systemd = root / "etc" / "systemd" / "system"
    for name in ("mukaika.service", "mukaika-quarantine-purge.service",
                 "mukaika-quarantine-purge.timer"):  # fmt: skip
        assert (systemd / name).read_bytes() == (ROOT / "deploy" / name).read_bytes()
        assert (systemd / name).stat().st_mode & 0o777 == 0o644
    assert (systemd / "mukaika.service.d" / "port25.conf").is_file()
    wants = systemd / "multi-user.target.wants" / "mukaika.service"
    assert os.readlink(wants) == "/etc/systemd/system/mukaika.service"
    timer = systemd / "timers.target.wants" / "mukaika-quarantine-purge.timer"
    assert os.readlink(timer) == "/etc/systemd/system/mukaika-quarantine-purge.timer"
    logrotate = root / "etc" / "logrotate.d" / "mukaika"
    assert logrotate.read_bytes() == (ROOT / "deploy" / "logrotate.d" / "mukaika").read_bytes()
    assert (root / "etc" / "sysusers.d" / "mukaika.conf").is_file()

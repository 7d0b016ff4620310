"""Files the configuration names: check-config and serve refuse what cannot be opened.

Every kind of file (TLS certificate and key, CA bundle, notice template of the policy and of a
rule) is broken in every way an operator can break it (missing, a directory, wrong content,
half of a pair); each problem names the file that set the key, the key and the path. ``serve``
stops at once with ExitCode.CONFIG (the code the systemd unit does not restart), without a
traceback; ``check-config`` reports the same problems.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli import build_parser, main
from gateway.cli.exit_codes import ExitCode
from gateway.cli.serve import load_usable
from gateway.configuration.config import ConfigError, load_layered
from gateway.configuration.files import file_problems
from tests.e2e.test_relay import make_certificate
from tests.paths import ROOT


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("pems"))


def write_config(directory: Path, body: str) -> Path:
    path = directory / "mukaika.toml"
    path.write_text(f'[service]\ndata_dir = "{directory / "data"}"\n{body}', encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    config, layered = load_layered(path)
    return file_problems(config, layered)


def test_a_configuration_whose_files_all_work_has_no_problem(
    tmp_path: Path, pems: tuple[Path, Path]
) -> None:
    cert, key = pems
    template = tmp_path / "notice.txt"
    template.write_text("無害化しました: ${parts}\n", encoding="utf-8")
    path = write_config(
        tmp_path,
        f'[smtp]\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
        f'[delivery]\ntls = "starttls"\ntls_ca_file = "{cert}"\n'
        f'[policy.notice]\ntemplate = "{template}"\n'
        f'[[rules]]\nname = "r"\nrecipients = ["a@example.lg.jp"]\n'
        f'[rules.policy.notice]\ntemplate = "{template}"\n',
    )
    assert problems_of(path) == []


# Each case: (a TOML fragment built from the real PEM files and the test directory, the key the
# problem must name, the words that must follow it).
Case = Callable[[Path, Path, Path], str]
CASES: dict[str, tuple[Case, str, str]] = {
    "missing certificate": (
        lambda d, c, k: f'[smtp]\ntls_cert_file = "{d}/none.pem"\ntls_key_file = "{k}"\n',
        "smtp.tls_cert_file",
        "none.pem: No such file or directory",
    ),
    "missing key": (
        lambda d, c, k: f'[smtp]\ntls_cert_file = "{c}"\ntls_key_file = "{d}/none.pem"\n',
        "smtp.tls_key_file",
        "none.pem: No such file or directory",
    ),
    "certificate is a directory": (
        lambda d, c, k: f'[smtp]\ntls_cert_file = "{d}"\ntls_key_file = "{k}"\n',
        "smtp.tls_cert_file",
        "Is a directory",
    ),
    "certificate without key": (
        lambda d, c, k: f'[smtp]\ntls_cert_file = "{c}"\n',
        "smtp.tls_cert_file",
        "set without its pair",
    ),
    "key without certificate": (
        lambda d, c, k: f'[smtp]\ntls_key_file = "{k}"\n',
        "smtp.tls_key_file",
        "set without its pair",
    ),
    "key and certificate swapped": (
        lambda d, c, k: f'[smtp]\ntls_cert_file = "{k}"\ntls_key_file = "{c}"\n',
        "smtp.tls_cert_file, smtp.tls_key_file",
        "not a usable certificate and key",
    ),
    "missing CA bundle": (
        lambda d, c, k: f'[delivery]\ntls = "starttls"\ntls_ca_file = "{d}/ca.pem"\n',
        "delivery.tls_ca_file",
        "ca.pem: No such file or directory",
    ),
    "CA bundle that is not PEM": (
        lambda d, c, k: f'[delivery]\ntls = "tls"\ntls_ca_file = "{d}/garbage.pem"\n',
        "delivery.tls_ca_file",
        "not a usable CA bundle",
    ),
    "missing notice template": (
        lambda d, c, k: f'[policy.notice]\ntemplate = "{d}/none.txt"\n',
        "policy.notice.template",
        "none.txt: No such file or directory",
    ),
    "notice template that is not UTF-8": (
        lambda d, c, k: f'[policy.notice]\ntemplate = "{d}/sjis.txt"\n',
        "policy.notice.template",
        "not UTF-8 text",
    ),
    "missing template of a rule": (
        lambda d, c, k: (
            '[[rules]]\nname = "finance"\nrecipients = ["keiri@example.lg.jp"]\n'
            f'[rules.policy.notice]\ntemplate = "{d}/none.txt"\n'
        ),
        "rules[0] ('finance').policy.notice.template",
        "none.txt: No such file or directory",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_every_unusable_file_is_named(name: str, tmp_path: Path, pems: tuple[Path, Path]) -> None:
    fragment, key, words = CASES[name]
    (tmp_path / "garbage.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    (tmp_path / "sjis.txt").write_bytes("無害化".encode("shift_jis"))
    path = write_config(tmp_path, fragment(tmp_path, *pems))
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: {key}: "), problems[0]
    assert words in problems[0]


def test_the_file_that_set_the_key_is_named(tmp_path: Path) -> None:
    main_file = write_config(tmp_path, "")
    (tmp_path / "local.d").mkdir()
    local = tmp_path / "local.d" / "10-tls.toml"
    local.write_text(
        f'[smtp]\ntls_cert_file = "{tmp_path}/c.pem"\ntls_key_file = "{tmp_path}/k.pem"\n',
        encoding="utf-8",
    )
    problems = problems_of(main_file)
    assert [p.split(": ")[:2] for p in problems] == [
        [str(local), "smtp.tls_cert_file"],
        [str(local), "smtp.tls_key_file"],
    ]


def test_check_config_reports_a_missing_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "tls" / "fullchain.pem"
    path = write_config(
        tmp_path, f'[smtp]\ntls_cert_file = "{missing}"\ntls_key_file = "{missing}"\n'
    )
    assert main(["check-config", "--config", str(path), "-q"]) == ExitCode.CONFIG
    err = capsys.readouterr().err
    assert (
        f"mukaika check-config: {path}: smtp.tls_cert_file: {missing}: No such file or directory"
        in err
    )
    assert "2 error(s); invalid" in err


@pytest.mark.parametrize(
    "body",
    [
        '[smtp]\ntls_cert_file = "{d}/missing.pem"\ntls_key_file = "{d}/missing.pem"\n',
        "[smtp]\nlisten_prot = 2525\n",  # an invalid configuration is the same kind of failure
    ],
    ids=["missing certificate", "unknown key"],
)
def test_serve_that_cannot_work_exits_with_exit_config(tmp_path: Path, body: str) -> None:
    path = write_config(tmp_path, body.format(d=tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path),
         "--listen", "127.0.0.1:0"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"mukaika serve: {path}: smtp.")
    assert result.stderr.endswith("the configuration cannot work; not started\n")
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_a_reload_cannot_bring_in_a_missing_file(tmp_path: Path) -> None:
    """SIGHUP reloads through the same check: a rule whose template is missing is refused
    (the configuration in force stays), like at start."""
    path = write_config(tmp_path, "")
    args = build_parser().parse_args(["serve", "--config", str(path)])
    assert load_usable(args).rules == ()
    path.write_text(
        path.read_text(encoding="utf-8")
        + '[[rules]]\nname = "finance"\nrecipients = ["keiri@example.lg.jp"]\n'
        + f'[rules.policy.notice]\ntemplate = "{tmp_path}/none.txt"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_usable(args)
    assert raised.value.problems == [
        f"{path}: rules[0] ('finance').policy.notice.template: {tmp_path}/none.txt: "
        "No such file or directory"
    ]


@pytest.mark.parametrize(
    ("content", "mode", "reason"),
    [
        ("a" * 64, 0o644, "readable by others"),
        ("short", 0o600, "at least"),
    ],
)
def test_an_unsafe_secret_key_is_a_problem_a_missing_one_is_not(
    tmp_path: Path, content: str, mode: int, reason: str
) -> None:
    key = tmp_path / "console.key"
    path = write_config(tmp_path, f'[console]\nsecret_key_file = "{key}"\n')
    assert problems_of(path) == []  # missing: serve or the console creates it
    assert not key.exists()  # the check itself creates nothing
    key.write_text(content)
    key.chmod(mode)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: console.secret_key_file: {key}: ")
    assert reason in problem
    assert content not in problem.removeprefix(f"{path}: console.secret_key_file: {key}: ")

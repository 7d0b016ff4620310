"""The configuration of a real ``mukaika serve`` started by an end-to-end test."""

from __future__ import annotations

from pathlib import Path

from tests.gateway.relaykit import free_port


def write_serve_config(tmp_path: Path) -> Path:
    """A gateway on a free port, one sanitizer process, relaying to a port nobody listens on."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
[service]
data_dir = "{tmp_path / "data"}"
[smtp]
listen_port = 0
hostname = "gw.test"
accept_domains = ["example.lg.jp"]
min_free_disk_bytes = 0
[worker]
processes = 1
[delivery]
relay_port = {free_port()}
"""
    )
    return config

"""Run ``mukaika serve``'s loop in a child process with the stub-like fake sanitizer.

Usage: python -m tests.e2e.serve_child CONFIG.toml — prints "listening on HOST:PORT";
SIGTERM stops it (the code path of ``mukaika serve``)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from gateway.cli.serve import _serve
from gateway.configuration.config import load_config
from gateway.service.assembly import Parts
from tests.gateway.relaykit import FakeSanitizer


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    config = load_config(Path(sys.argv[1]))
    asyncio.run(_serve(config, demo=False, parts=Parts(sanitizer=FakeSanitizer())))


if __name__ == "__main__":
    main()

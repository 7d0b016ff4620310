"""Where the repository is, for tests that read its files (so a test can move freely)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

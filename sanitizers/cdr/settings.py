"""Limits and choices for content disarm (CDR); part of :class:`sanitizers.policy.Policy`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CdrPolicy(BaseModel):
    """Per-file limits for sanitizers. Hitting one removes the part with a ``limit_*`` reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Wall-clock seconds one file may take in a sanitizer process before it is killed.
    seconds: float = Field(default=20.0, gt=0)
    # Address-space limit of a sanitizer process (MiB).
    memory_mb: int = Field(default=1024, ge=64)
    # A sanitizer process is replaced after this many files.
    tasks_per_process: int = Field(default=200, ge=1)
    # Largest file a sanitizer accepts, and largest output it may produce.
    max_file_bytes: int = Field(default=50 * 1024 * 1024, gt=0)

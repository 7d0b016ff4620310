"""Coverage-guided fuzzing of the whole pipeline with atheris, run on demand (not in CI).

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python -m tests.adversarial.fuzz.atheris_pipeline -max_total_time=300 \
        -artifact_prefix=tests/adversarial/regressions/ tests/adversarial/regressions

Each input is a raw mail. The checks are the suite's invariants (tests/adversarial/
invariants.py): no exception escapes, the output parses, only rebuilt headers, no HTML or
active part, 7-bit. A failing input is written under ``-artifact_prefix`` as ``crash-*``;
keep it in tests/adversarial/regressions/ (test_fuzz.py replays every file there).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from sanitizers.policy import Limits, Policy
    from tests.adversarial.invariants import assert_safe, sanitize

# Small limits keep each run short and reach the limit paths often.
POLICY = Policy(limits=Limits(max_message_bytes=256 * 1024, max_parts=64, seconds=5.0))


def one_input(data: bytes) -> None:
    assert_safe(sanitize(data, POLICY))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

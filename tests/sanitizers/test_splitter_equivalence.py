"""The pipeline with the MIME splitter delivers what it delivered with the stdlib feedparser.

Compared: the whole output message and the whole report (but the timings) of
``sanitize_message``, once as shipped and once with the stdlib compat32 feedparser splitting
(tests/sanitizers/feedparser_oracle.py), on every mail of ../shared/corpus and on generated
mail of every benchmark class: every one must come out identical, malformed mail (the stdlib
finds a defect or the report notes one) included. A difference must be judged in the note of
issue 13 (never a byte of the original delivered that was not before, never a part lost)
before a test accepts it; tests/sanitizers/test_mimesplit.py compares the two splitters on
mangled mail.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import compat32
from typing import Any

import pytest

from benchmarks import generate
from sanitizers.cdr.disarmer import RemoveAll
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import BodyPolicy, Policy
from tests.corpus import files_of_type
from tests.sanitizers.feedparser_oracle import feedparser_pipeline

POLICIES = {"shipped": Policy(), "html": Policy(body=BodyPolicy(prefer_plain=False))}


def outcome(raw: bytes, policy: Policy) -> tuple[bytes, dict[str, Any]]:
    result = sanitize_message(raw, policy, disarmer=RemoveAll())
    report = result.report.to_dict()
    report.pop("timings_ms")
    return result.message, report


def both(raw: bytes, policy: Policy) -> tuple[tuple[bytes, dict[str, Any]], ...]:
    new = outcome(raw, policy)
    with feedparser_pipeline():
        old = outcome(raw, policy)
    return new, old


def well_formed(raw: bytes, old_report: dict[str, Any]) -> bool:
    message = BytesParser(policy=compat32).parsebytes(raw)
    return not old_report["defects"] and not any(part.defects for part in message.walk())


def test_generated_mail_of_every_class_comes_out_identical() -> None:
    for name in generate.CLASSES:
        for number, sample in enumerate(generate.generate_class(name, 3)):
            for policy_name, policy in POLICIES.items():
                new, old = both(sample.raw, policy)
                assert new == old, f"{name} #{number} under {policy_name}"


@pytest.mark.corpus
def test_every_corpus_mail_comes_out_identical() -> None:
    paths = files_of_type("mail", "mbox")
    assert len(paths) > 1000, "the corpus should hold over a thousand mails"
    different: list[str] = []
    counts = {True: 0, False: 0}
    for path in paths:
        raw = path.read_bytes()
        new, old = both(raw, POLICIES["shipped"])
        if new != old:
            different.append(str(path))
        counts[well_formed(raw, old[1])] += 1
    print(f"\nsplitter equivalence: {counts[True]} well-formed, {counts[False]} malformed mails")
    assert not different, "\n".join(different)
    assert counts[True] > 800

"""Every mail in ../shared/corpus through the pipeline: no exception, every output re-parses,
nothing but text leaves under a remove-all policy. The counts are printed (pytest -s)."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes
from email.policy import default

import pytest

from sanitizers.cdr.disarmer import RemoveAll
from sanitizers.pipeline import sanitize_message
from sanitizers.policy import Policy
from tests.corpus import files_of_type

pytestmark = pytest.mark.corpus


def test_every_corpus_mail_becomes_text_only() -> None:
    paths = files_of_type("mail", "mbox")
    assert len(paths) > 1000, "the corpus should hold over a thousand mails"
    policy = Policy()
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for path in paths:
        result = sanitize_message(path.read_bytes(), policy, disarmer=RemoveAll())
        out = message_from_bytes(result.message, policy=default)
        types = [part.get_content_type() for part in out.walk()]
        assert types == ["text/plain"], f"{path}: {types}"
        assert result.message.isascii(), path
        verdicts[result.verdict.value] += 1
        reasons.update(code.value for code in result.report.reason_codes())
    print(f"\ncorpus sweep: {len(paths)} mails")
    print("verdicts:", dict(verdicts.most_common()))
    print("reasons:", dict(reasons.most_common()))

""" "keep" (the sender's bytes) exists only inside an approved exception, with the scanner on."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.configuration.config import Config
from sanitizers.policy import AttachmentAction

EXCEPTION: dict[str, Any] = {
    "name": "keiri-macro-forms",
    "recipients": ["keiri@city.example.lg.jp"],
    "exception": True,
    "approved_by": "情報政策課長",
    "reason": "帳票",
    "expires": "2030-03-31",
}


def _config(policy: dict[str, Any], *, exception: bool = True, scanner: bool = True) -> Any:
    rule = dict(EXCEPTION, policy=policy)
    if not exception:
        for key in ("exception", "approved_by", "reason", "expires"):
            rule.pop(key)
    return {"scanner": {"enabled": scanner}, "rules": [rule]}


@pytest.mark.parametrize(
    "policy",
    [
        {"attachments": {"by_kind": {"ooxml": "keep"}}},
        {"attachments": {"default": "keep"}},
    ],
)
def test_keep_outside_an_exception_is_refused_by_key(policy: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="only inside an approved exception"):
        Config.model_validate({"scanner": {"enabled": True}, "policy": policy})
    with pytest.raises(ValidationError, match=r"rules\.0\.policy\.attachments"):
        Config.model_validate(_config(policy, exception=False))


def test_keep_in_an_exception_needs_the_scanner() -> None:
    policy = {"attachments": {"by_kind": {"ooxml": "keep"}}}
    with pytest.raises(ValidationError, match=r"scanner\.enabled must be true"):
        Config.model_validate(_config(policy, scanner=False))
    config = Config.model_validate(_config(policy))
    assert config.rules[0].policy["attachments"]["by_kind"]["ooxml"] == AttachmentAction.KEEP

"""A kind renamed since an earlier version (``opendocument`` → ``odf``) still configures the
same files, in the base policy and in a rule's override, where the override wins as usual."""

from __future__ import annotations

from gateway.configuration.config import Config
from gateway.configuration.rules import RuleSet
from sanitizers.policy import AttachmentAction, Policy


def test_the_former_name_sets_the_current_kind() -> None:
    policy = Policy.model_validate({"attachments": {"by_kind": {"opendocument": "remove"}}})
    assert policy.attachments.action_for("odf") == AttachmentAction.REMOVE
    assert "opendocument" not in policy.attachments.by_kind


def test_a_rule_that_names_the_former_kind_overrides_the_base() -> None:
    config = Config.model_validate(
        {
            "policy": {"attachments": {"by_kind": {"odf": "sanitize"}}},
            "rules": [
                {
                    "name": "no-odf-for-keiri",
                    "recipients": ["keiri@city.example.lg.jp"],
                    "policy": {"attachments": {"by_kind": {"opendocument": "remove"}}},
                }
            ],
        }
    )
    rules = RuleSet(config.policy, config.rules)
    assert rules.policy_for(()).attachments.action_for("odf") == AttachmentAction.SANITIZE
    assert rules.policy_for((0,)).attachments.action_for("odf") == AttachmentAction.REMOVE

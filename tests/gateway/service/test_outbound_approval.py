"""Who may decide on held outbound mail: an approver of the sender's group; self-approval only
where the group allows it."""

from __future__ import annotations

from gateway.configuration.config import Config
from gateway.service.held_mail import outbound_approval_problem

CONFIG = Config.model_validate(
    {
        "outbound": {
            "groups": [
                {
                    "name": "総務課",
                    "senders": ["somu.city.example.lg.jp"],
                    "approvers": ["kacho@somu.city.example.lg.jp"],
                },
                {
                    "name": "財政課",
                    "senders": ["zaisei@city.example.lg.jp", "*.zaisei.city.example.lg.jp"],
                    "approvers": ["bucho@city.example.lg.jp", "zaisei@city.example.lg.jp"],
                    "self_approval": True,
                },
            ]
        }
    }
)


def test_an_approver_of_the_group_may_decide() -> None:
    assert (
        outbound_approval_problem(
            CONFIG, "kacho@somu.city.example.lg.jp", "a@somu.city.example.lg.jp"
        )
        is None
    )
    assert (
        outbound_approval_problem(
            CONFIG, "bucho@city.example.lg.jp", "x@y.zaisei.city.example.lg.jp"
        )
        is None
    )


def test_an_approver_of_another_group_may_not() -> None:
    problem = outbound_approval_problem(
        CONFIG, "bucho@city.example.lg.jp", "a@somu.city.example.lg.jp"
    )
    assert problem is not None
    assert "総務課" in problem


def test_self_approval_only_where_the_group_allows_it() -> None:
    own = outbound_approval_problem(
        CONFIG, "kacho@somu.city.example.lg.jp", "kacho@somu.city.example.lg.jp"
    )
    assert own is not None
    assert "own mail" in own
    assert (
        outbound_approval_problem(CONFIG, "ZAISEI@city.example.lg.jp", "zaisei@city.example.lg.jp")
        is None
    )


def test_a_sender_in_no_group_any_approver_but_never_oneself() -> None:
    assert outbound_approval_problem(CONFIG, "anyone", "x@other.example.lg.jp") is None
    assert (
        outbound_approval_problem(CONFIG, "x@other.example.lg.jp", "x@other.example.lg.jp")
        is not None
    )


def test_approvals_required_is_the_largest_of_the_senders_groups() -> None:
    import pytest
    from pydantic import ValidationError

    from gateway.service.held_mail import approvals_required

    config = Config.model_validate(
        {
            "outbound": {
                "groups": [
                    {"name": "a", "senders": ["city.example.lg.jp"], "approvers": ["x", "y"]},
                    {
                        "name": "b",
                        "senders": ["zaisei@city.example.lg.jp"],
                        "approvers": ["x", "y", "z"],
                        "approvals_required": 2,
                    },
                ]
            }
        }
    )
    assert approvals_required(config, "somu@city.example.lg.jp") == 1
    assert approvals_required(config, "zaisei@city.example.lg.jp") == 2
    assert approvals_required(config, "x@other.example.jp") == 1
    with pytest.raises(ValidationError, match="more than its approvers"):
        Config.model_validate(
            {"outbound": {"groups": [{"name": "c", "approvers": ["x"], "approvals_required": 2}]}}
        )


def test_an_approver_whose_address_is_the_sender_is_approving_their_own() -> None:
    config = Config.model_validate(
        {
            "outbound": {
                "groups": [{"name": "a", "senders": ["city.example.lg.jp"], "approvers": ["kacho"]}]
            }
        }
    )
    sender = "kacho@city.example.lg.jp"
    assert outbound_approval_problem(config, "kacho", sender) is None  # not known as theirs
    problem = outbound_approval_problem(
        config, "kacho", sender, addresses=["KACHO@city.example.lg.jp"]
    )
    assert problem is not None
    assert "own mail" in problem

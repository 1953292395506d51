"""core/globs.py: each wildcard rule as AWS documents it, and the sudo policy's own globs."""

from __future__ import annotations

import pytest

from iam_sudo.core.globs import action_matches, arn_like, resource_matches, shell_glob, string_like


@pytest.mark.parametrize(
    ("action", "pattern", "expected"),
    [
        ("s3:GetObject", "s3:get*", True),  # case-insensitive
        ("s3:GetObject", "S3:GETOBJECT", True),
        ("s3:GetObject", "s3:Get?bject", True),
        ("s3:GetObject", "s3:Put*", False),
        ("sts:AssumeRole", "sts:[A]ssumeRole", False),  # only * and ? are special
        ("sts:[A]ssumeRole", "sts:[A]ssumeRole", True),
    ],
)
def test_actions_match_case_insensitively_with_star_and_question_mark_only(
    action: str, pattern: str, expected: bool
) -> None:
    # IAM User Guide, "IAM JSON policy elements: Action": action names are not case
    # sensitive; wildcards * and ?.
    assert action_matches(action, pattern) is expected


@pytest.mark.parametrize(
    ("arn", "pattern", "expected"),
    [
        ("arn:aws:s3:::bucket/a/b", "arn:aws:s3:::bucket/*", True),  # * takes slashes
        ("arn:aws:s3:::Bucket/a", "arn:aws:s3:::bucket/*", False),  # case-sensitive
        ("arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sqs:*:123456789012:q", True),
        # a * inside a segment stays inside it...
        ("arn:aws:logs:us-east-1:123456789012:log-group:g:x", "arn:aws:logs:us-east-1:123456789012:log-*x", False),  # noqa: E501
        # ...one that ends a segment "can expand to match beyond the colon boundaries"
        ("arn:aws:logs:us-east-1:123456789012:log-group:g:x", "arn:aws:logs:us-east-1:123456789012:*", True),  # noqa: E501
        ("arn:aws:iam::123456789012:role/R", "arn:aws:iam::123456789012:role/?", True),
    ],
)  # fmt: skip
def test_resources_match_case_sensitively_within_segments(
    arn: str, pattern: str, expected: bool
) -> None:
    # IAM User Guide, "IAM JSON policy elements: Resource", Using wildcards in resource ARNs.
    assert resource_matches(arn, pattern) is expected


def test_string_like_is_case_sensitive_and_crosses_colons() -> None:
    # IAM User Guide, "IAM JSON policy elements: Condition operators", StringLike.
    assert string_like("a:b:c", "a*c")
    assert not string_like("ABC", "abc")
    assert string_like("a.c", "a?c")
    assert not string_like("abc", "a.c")  # no regex: a dot is a dot


def test_arn_like_matches_the_six_parts_one_by_one() -> None:
    # "Condition operators", ARN condition operators: each of the six colon-delimited
    # components is checked separately.
    assert arn_like("arn:aws:iam::123456789012:role/a/b", "arn:aws:iam::*:role/*")
    assert not arn_like("arn:aws:iam::123456789012:role/x", "arn:aws:iam:*")
    assert not arn_like("not-an-arn", "*")


def test_the_sudo_policy_globs_are_shell_style_and_case_sensitive() -> None:
    assert shell_glob("arn:aws:iam::123456789012:role/App", ["arn:aws:iam::*:role/[A-Z]pp"])
    assert not shell_glob("arn:aws:iam::123456789012:role/app", ["arn:aws:iam::*:role/App"])
    assert shell_glob("exact", ["exact"])
    assert not shell_glob("x", [])

"""Principal-dependent conditions: never a silent widening."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_sudo.core.conditions import MAYBE_ABSENT, UNKNOWN, Target, decide, rewrite

ROLE = "arn:aws:iam::123456789012:role/app-TaskRole"
BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"
TARGET = Target(ROLE, {"team": "payments"})


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("StringEquals", "payments", "payments", True),
        ("StringEquals", ["a", "payments"], "payments", True),
        ("StringEquals", "a", "payments", False),
        ("StringNotEquals", "a", "payments", True),
        ("StringEqualsIgnoreCase", "PAYMENTS", "payments", True),
        ("StringLike", "pay*", "payments", True),
        ("StringLike", "p[a]y*", "payments", False),
        ("StringNotLike", "pay*", "payments", False),
        ("ArnLike", "arn:aws:iam::*:role/app-*", ROLE, True),
        ("ArnLike", "arn:aws:iam::*:role/other", ROLE, False),
        ("ArnEquals", "arn:aws:iam::123456789012:*", ROLE, True),
        ("StringEquals", "x", None, False),
        ("StringNotEquals", "x", None, True),
        ("StringEqualsIfExists", "x", None, True),
        ("ForAllValues:StringEquals", "x", None, True),
        ("Null", "true", None, True),
        ("Null", "false", None, False),
        ("Null", "true", "payments", False),
        ("StringLike", "AROA*:*", UNKNOWN, None),
        ("StringLike", "*", UNKNOWN, True),
        ("StringEquals", "${aws:username}", "x", None),
        # Numeric and Bool were "not decided here"; now every operator is (2 < 3).
        ("NumericLessThan", "3", "2", True),
        # A principal value the operator cannot read is undecided, not "no match": a
        # negated operator must not hold on it ("Condition operators" documents no
        # outcome for such a value).
        ("NumericLessThan", "3", "four", None),
        ("NumericNotEquals", "3", "high", None),
        ("NotIpAddress", "10.0.0.0/8", "not-an-ip", None),
        ("DateNotEquals", "2020-01-01T00:00:00Z", "yesterday", None),
        ("BinaryEquals", "cGF5", "not base64!", None),
        ("Bool", "true", "yes", None),
        ("NumericLessThan", "three", "2", None),
        ("Bool", "true", "true", True),
        ("Bool", "yes", "true", None),
        # Kind 1 of issue 13: set qualifiers on a key the role does not have.
        ("ForAnyValue:StringNotEquals", "payments", None, False),
        ("ForAnyValue:StringEqualsIfExists", "payments", None, False),
        ("ForAllValues:StringNotLike", "pay*", None, True),
        ("ForAnyValue:StringEquals", "x", [], False),
        ("ForAllValues:StringEquals", "x", [], True),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a"], ["a", "b"], False),
        ("ForAnyValue:StringEquals", ["b"], ["a", "b"], True),
        ("StringEquals", "a", ["a", "b"], None),
        ("StringNotEquals", "x", UNKNOWN, None),
        ("Null", "false", UNKNOWN, True),
        ("StringLike", "*", MAYBE_ABSENT, None),
        ("Null", "true", MAYBE_ABSENT, None),
        ("NullIfExists", "true", None, None),
        ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
        ("NotIpAddress", "10.0.0.0/8", "10.1.2.3", False),
        ("DateGreaterThan", "2020-01-01T00:00:00Z", "2021-06-01T00:00:00Z", True),
        ("BinaryEquals", "cGF5", "cGF5", True),
        ("StringEqualsIgnoreCase", "PAYMENTS", "Payments", True),
        ("ArnNotLike", "arn:aws:iam::*:role/app-*", ROLE, False),
    ],
)
def test_decisions_follow_iam_for_the_keys_value(
    operator: str, values: Any, value: Any, expected: bool | None
) -> None:
    assert decide(operator, values, value) is expected


def statement(effect: str, condition: dict[str, Any], resource: str = "*") -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": "s3:GetObject",
        "Resource": resource,
        "Condition": condition,
    }


def test_a_deny_on_the_targets_own_tag_applies_unconditionally() -> None:
    deny = statement("Deny", {"StringEquals": {"aws:PrincipalTag/team": "payments"}})
    result, rewrites = rewrite(deny, TARGET, "inline policy p", 0)
    assert result == {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}
    assert "holds for the role: condition dropped" in str(rewrites[0])


def test_a_deny_for_other_principals_is_left_out() -> None:
    deny = statement("Deny", {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/app-*"}})
    assert rewrite(deny, TARGET, "p", 0)[0] is None


def test_an_allow_on_an_unknown_userid_is_left_out_and_a_deny_applies_regardless() -> None:
    condition = {
        "StringLike": {"aws:userid": "AROAEXAMPLE:alice"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    assert rewrite(statement("Allow", condition), TARGET, "p", 0)[0] is None
    result, rewrites = rewrite(statement("Deny", condition), TARGET, "p", 0)
    assert result is not None
    assert result["Condition"] == {"Bool": {"aws:SecureTransport": "true"}}
    assert "undecidable: the Deny applies regardless" in str(rewrites[0])


def test_a_role_has_no_username() -> None:
    allow = statement("Allow", {"StringEquals": {"aws:username": "alice"}})
    assert rewrite(allow, TARGET, "p", 0)[0] is None
    allow = statement("Allow", {"Null": {"aws:username": "true"}})
    assert rewrite(allow, TARGET, "p", 0)[0] == {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
    }


def test_resource_variables_take_the_targets_value_or_narrow() -> None:
    tagged = statement("Allow", {}, "arn:aws:s3:::b/${aws:PrincipalTag/team}/*")
    tagged.pop("Condition")
    result, _ = rewrite(tagged, TARGET, "p", 0)
    assert result is not None
    assert result["Resource"] == "arn:aws:s3:::b/payments/*"
    by_user = {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:userid}/*"}
    assert rewrite(by_user, TARGET, "p", 0)[0] is None
    deny = {**by_user, "Effect": "Deny"}
    assert rewrite(deny, TARGET, "p", 0)[0] == {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}


def test_statements_without_principal_parts_come_back_unchanged() -> None:
    plain = statement("Allow", {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})
    assert rewrite(plain, TARGET, "p", 0) == (plain, [])


# --- the property: a session never allows what the role would not ----------------------

KEYS = [
    "aws:PrincipalTag/team",
    "aws:PrincipalTag/env",
    "aws:PrincipalArn",
    "aws:userid",
    "aws:username",
]
OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "StringEqualsIfExists",
    "ArnLike",
    "Null",
]
VALUES = [
    "payments",
    "dev",
    "pay*",
    "*",
    ROLE,
    BASE,
    "arn:aws:iam::*:role/app-*",
    "AROA*",
    "true",
    "false",
]
RESOURCES = ["arn:aws:s3:::b/payments/x", "arn:aws:s3:::b/dev/x", "arn:aws:s3:::b/other"]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:s3:::b/${aws:PrincipalTag/team}/*",
    "arn:aws:s3:::b/${aws:userid}/*",
]


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def holds(operator: str, values: list[str], value: str | None) -> bool:
    """An independent reading of IAM's rules for the operators generated here."""
    if operator == "Null":
        return any((v == "true") == (value is None) for v in values)
    if value is None:
        return operator in ("StringNotEquals", "StringNotLike", "StringEqualsIfExists")
    base = operator.removesuffix("IfExists")
    if base == "StringEquals":
        return value in values
    if base == "StringNotEquals":
        return value not in values
    if base == "StringLike":
        return any(_like(value, v) for v in values)
    if base == "StringNotLike":
        return not any(_like(value, v) for v in values)
    if base == "ArnLike":
        parts = value.split(":", 5)
        return any(
            len(p := v.split(":", 5)) == 6 == len(parts) and all(map(_like, parts, p))
            for v in values
        )
    raise AssertionError(operator)


def substitute(pattern: str, context: dict[str, str | None]) -> str | None:
    for key, value in context.items():
        token = "${" + key + "}"
        if token in pattern:
            if value is None:
                return None
            pattern = pattern.replace(token, value)
    return pattern


def matches(statement: dict[str, Any], resource: str, context: dict[str, str | None]) -> bool:
    pattern = substitute(statement["Resource"], context)
    if pattern is None or not _like(resource, pattern):
        return False
    for operator, block in statement.get("Condition", {}).items():
        for key, values in block.items():
            values = values if isinstance(values, list) else [values]
            if not holds(operator, values, context.get(key)):
                return False
    return True


def allowed(
    statements: list[dict[str, Any]], resource: str, context: dict[str, str | None]
) -> bool:
    applying = [s for s in statements if matches(s, resource, context)]
    return not any(s["Effect"] == "Deny" for s in applying) and any(
        s["Effect"] == "Allow" for s in applying
    )


@st.composite
def principal_statements(draw: Any) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 2))):
        block = condition.setdefault(draw(st.sampled_from(OPERATORS)), {})
        block[draw(st.sampled_from(KEYS))] = draw(
            st.one_of(
                st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), min_size=1, max_size=3)
            )
        )
    result: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Deny"])),
        "Action": "s3:GetObject",
        "Resource": draw(st.sampled_from(RESOURCE_PATTERNS)),
    }
    if condition:
        result["Condition"] = condition
    return result


@settings(max_examples=1500, deadline=None)
@given(
    statements=st.lists(principal_statements(), min_size=1, max_size=6),
    team=st.sampled_from([None, "payments", "dev"]),
    base_env=st.sampled_from([None, "dev", "prod"]),
    session=st.sampled_from(["alice", "task-1"]),
    resource=st.sampled_from(RESOURCES),
)
def test_no_rewrite_ever_grants_what_the_role_would_not(
    statements: list[dict[str, Any]],
    team: str | None,
    base_env: str | None,
    session: str,
    resource: str,
) -> None:
    tags = {"team": team} if team else {}
    role_context: dict[str, str | None] = {
        "aws:PrincipalArn": ROLE,
        "aws:userid": f"AROAROLE:{session}",
        "aws:username": None,
        "aws:PrincipalTag/team": team,
        "aws:PrincipalTag/env": None,
    }
    # The base role's session: its own ARN and id, its own tags plus the role's as session tags.
    session_context: dict[str, str | None] = {
        "aws:PrincipalArn": BASE,
        "aws:userid": "AROABASE:iam-sudo-app-TaskRole",
        "aws:username": None,
        "aws:PrincipalTag/team": team,
        "aws:PrincipalTag/env": base_env,
    }
    sent = []
    for index, item in enumerate(statements):
        result, _ = rewrite(item, Target(ROLE, tags), "p", index)
        if result is not None:
            sent.append(result)
    if allowed(sent, resource, session_context):
        assert allowed(statements, resource, role_context), json.dumps([statements, sent])


def test_a_key_with_blanks_around_it_is_not_the_key_it_looks_like() -> None:
    # IAM User Guide, "IAM JSON policy elements: Condition": keys are matched by name
    # (case-insensitively); nothing says blanks are trimmed, so " aws:PrincipalTag/team "
    # is some other key, unknown for the role: a Deny on it applies regardless.
    from iam_sudo.core.context_keys import KeyClass, classify

    assert classify(" aws:PrincipalTag/team ") is KeyClass.UNKNOWN
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {" aws:PrincipalTag/team ": "payments"}},
    }
    result, [note] = rewrite(deny, TARGET, "inline policy p", 0)
    assert result == {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert note.kind == "narrower"


def test_a_negated_operator_on_a_tag_it_cannot_read_does_not_hold() -> None:
    # The role's tag level=high under NumericNotEquals: not a number, so not decided as
    # "no value matches": a Deny on it applies regardless (narrower, reported).
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"NumericNotEquals": {"aws:PrincipalTag/level": "3"}},
    }
    result, [note] = rewrite(deny, Target(ROLE, {"level": "high"}), "inline policy p", 0)
    assert result == {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}
    assert note.kind == "narrower"

"""Fitting is exact: every packing grants what the role's policies grant, within STS's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_sudo import SessionLimitExceeded
from iam_sudo.core.fitting import (
    MAX_MANAGED_POLICY_CHARS,
    ManagedPolicy,
    compact,
    compact_json,
    fit,
    policy_name,
)
from tests.grants import grants

ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:*", "sqs:SendMessage", "ec2:Describe*", "*"]
RESOURCES = ["*", "arn:aws:s3:::a/*", "arn:aws:s3:::b", "arn:aws:sqs:us-east-1:1:q"]
CONDITIONS = [
    None,
    {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
    {"Bool": {"aws:SecureTransport": "true"}},
]


def one_or_many(values: list[str]) -> Any:
    return st.one_of(
        st.sampled_from(values), st.lists(st.sampled_from(values), min_size=1, max_size=3)
    )


@st.composite
def statements(draw: Any, size: int = 0) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    statement["NotAction" if draw(st.booleans()) and draw(st.booleans()) else "Action"] = draw(
        one_or_many(ACTIONS)
    )
    resource = "NotResource" if draw(st.booleans()) and draw(st.booleans()) else "Resource"
    values = RESOURCES + ([f"arn:aws:s3:::{'p' * size}{i}" for i in range(4)] if size else [])
    statement[resource] = draw(one_or_many(values))
    condition = draw(st.sampled_from(CONDITIONS))
    if condition is not None:
        statement["Condition"] = condition
    if draw(st.booleans()):
        statement["Sid"] = "S"
    return statement


def without_sids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in s.items() if k != "Sid"} for s in items]


@settings(max_examples=400, deadline=None)
@given(st.lists(statements(), max_size=25))
def test_compaction_grants_exactly_the_same(items: list[dict[str, Any]]) -> None:
    compacted = compact(items)
    assert grants(compacted) == grants(without_sids(items))
    assert len(compacted) <= len(items)
    assert compact(compacted) == compacted, "canonical: compacting again changes nothing"


def test_compaction_merges_by_action_then_by_resource_but_never_not_sets() -> None:
    items = [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::a/*"},
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": "arn:aws:s3:::b",
        },
        {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": "sqs:*", "Resource": "*"},
    ]
    assert compact(items) == [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": ["arn:aws:s3:::a/*", "arn:aws:s3:::b"],
        },
        {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": "sqs:*", "Resource": "*"},
    ]


def session_statements(fitted: Any, managed: list[ManagedPolicy]) -> list[dict[str, Any]]:
    by_arn = {m.arn: list(m.statements or ()) for m in managed}
    found: list[dict[str, Any]] = []
    if fitted.policy:
        found += json.loads(fitted.policy)["Statement"]
    for packed in fitted.packed:
        found += json.loads(packed.document)["Statement"]
    for arn in fitted.policy_arns:
        found += by_arn.get(arn, [])
    return found


@settings(max_examples=150, deadline=None)
@given(
    inline=st.lists(statements(size=120), max_size=60),
    managed=st.lists(st.lists(statements(size=40), min_size=1, max_size=6), max_size=14),
)
def test_every_fit_grants_exactly_the_roles_policies_within_the_limits(
    inline: list[dict[str, Any]], managed: list[list[dict[str, Any]]]
) -> None:
    policies = [
        ManagedPolicy(f"arn:aws:iam::aws:policy/P{i}", tuple(without_sids(items)))
        for i, items in enumerate(managed)
    ]
    try:
        fitted = fit(
            role_name="R",
            managed=policies,
            inline=without_sids(inline),
            partition="aws",
            account="123456789012",
        )
    except SessionLimitExceeded:
        return  # refused, with a reason: never a request over a limit
    role = grants(without_sids(inline)) | grants(s for p in policies for s in p.statements or ())
    if not role:
        role = grants([{"Effect": "Deny", "Action": "*", "Resource": "*"}])
    assert grants(session_statements(fitted, policies)) == role
    assert len(fitted.policy_arns) <= 10
    assert fitted.plaintext_chars <= 2048
    for packed in fitted.packed:
        assert len(packed.document) <= MAX_MANAGED_POLICY_CHARS
        assert packed.name == policy_name(json.loads(packed.document))
        assert packed.arn == f"arn:aws:iam::123456789012:policy/iam-sudo/{packed.name}"


def test_the_same_statements_always_make_the_same_policies() -> None:
    inline = [
        {"Effect": "Allow", "Action": f"s3:Get{i}", "Resource": f"arn:aws:s3:::{'x' * 200}{i}"}
        for i in range(30)
    ]
    first = fit(role_name="R", managed=[], inline=inline, partition="aws", account="1" * 12)
    again = fit(role_name="R", managed=[], inline=inline[::-1], partition="aws", account="1" * 12)
    assert first.packed
    assert first.packed == again.packed


def test_a_statement_larger_than_a_managed_policy_cannot_be_fitted() -> None:
    huge = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + "h" * 7000}
    with pytest.raises(SessionLimitExceeded, match="cannot fit STS's session limits"):
        fit(role_name="R", managed=[], inline=[huge], partition="aws", account="1" * 12)


def test_compact_json_counts_as_sts_does() -> None:
    assert compact_json({"a": [1, "é"]}) == '{"a":[1,"é"]}'

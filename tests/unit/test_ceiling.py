"""The base role is the ceiling: what it cannot grant of a role is reported, never missed.

IAM's matching rules, as the reference below writes them, are from the IAM User Guide:

* "IAM JSON policy elements: Action": "The prefix and the action name are case
  insensitive"; "multi-character match wildcard (*) and the single-character match
  wildcard (?)".
* "IAM JSON policy elements: NotAction" / "NotResource": they match everything *except*
  the listed actions / resources.
* "IAM JSON policy elements: Resource", "Using wildcards in resource ARNs": wildcards
  "within the individual segments of an ARN (the parts separated by colons)": ``*`` any
  combination of characters, ``?`` any single character; "If the * wildcard is the last
  character of a resource ARN segment, it can expand to match beyond the colon
  boundaries". Resource ARNs are compared case-sensitively ("the IAM user name is case
  sensitive").
* "Policy evaluation logic": an explicit Deny overrides any Allow; with a permissions
  boundary, an action must be allowed by both the identity policies and the boundary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iam_sudo.core.ceiling import Ceiling, Narrowing, Spec

POWER_USER = "arn:aws:iam::aws:policy/PowerUserAccess"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
JOB_FUNCTIONS = [
    "ViewOnlyAccess",
    "DatabaseAdministrator",
    "NetworkAdministrator",
    "SystemAdministrator",
    "DataScientist",
    "SupportUser",
    "Billing",
]
DEPLOY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["iam:PassRole", "iam:CreateRole"], "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    ],
}


@cache
def aws_managed(name: str) -> dict[str, Any]:
    """An AWS managed policy's default document, as moto ships it (AWS's own data)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    document: dict[str, Any] = json.loads(aws_managed_policies_data)[name]["Document"]
    return document


def lines(narrowings: Sequence[Narrowing]) -> list[str]:
    return [n.line("IAMSudoUser") for n in narrowings]


def power_user() -> Ceiling:
    return Ceiling.from_policies("IAMSudoUser", {POWER_USER: aws_managed("PowerUserAccess")})


def test_the_issues_example_names_the_actions_the_base_role_cannot_grant() -> None:
    found = power_user().narrowings([("deploy", "inline policy deploy", DEPLOY)])
    assert lines(found) == [
        "iam:PassRole, iam:CreateRole (inline policy deploy, statement 1): the base role "
        "IAMSudoUser cannot grant them (PowerUserAccess allows NotAction iam:*)"
    ]
    [narrowing] = found
    assert (narrowing.policy, narrowing.statement, narrowing.certain) == ("deploy", 1, True)


def test_actions_match_case_insensitively_and_the_exceptions_of_power_user_are_granted() -> None:
    role = {
        "Statement": {
            "Effect": "Allow",
            "Action": ["IAM:listroles", "iam:CreateServiceLinkedRole", "S3:*"],
            "Resource": "*",
        }
    }
    assert power_user().narrowings([("p", "inline policy p", role)]) == []


def test_an_action_star_role_is_narrowed_in_part_under_power_user_and_not_under_admin() -> None:
    role = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    [narrowing] = power_user().narrowings([("admin", "inline policy admin", role)])
    assert narrowing.partly
    assert narrowing.actions == ("*",)
    assert "NotAction iam:*, organizations:*, account:*" in narrowing.reason
    admin = Ceiling.from_policies("IAMSudoUser", {ADMIN: aws_managed("AdministratorAccess")})
    assert admin.narrowings([("admin", "inline policy admin", role)]) == []


def test_a_deny_in_the_base_role_refuses_what_its_allow_grants() -> None:
    base = {
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::prod-*"},
        ]
    }
    ceiling = Ceiling.from_policies("Base", {"guard": base})
    role = {
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:DeleteObject", "s3:GetObject"], "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::dev/*"},
        ]
    }
    [narrowing] = ceiling.narrowings([("r", "inline policy r", role)])
    assert narrowing.statement == 1
    assert narrowing.actions == ("s3:DeleteObject",)
    assert narrowing.partly  # on prod-* buckets only
    assert narrowing.reason == "inline policy guard statement 2 denies them"


def test_not_resource_and_resource_scopes_in_the_base_role() -> None:
    base = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"},
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:*:*:app-*"},
        ]
    }
    ceiling = Ceiling.from_policies("Base", {"arn:aws:iam::123456789012:policy/Scoped": base})
    role = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::secret/a"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::public/a"},
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:*:*:app-q"},
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": "arn:aws:sqs:eu-west-1:123456789012:other",
            },
        ]
    }
    found = ceiling.narrowings([("r", "inline policy r", role)])
    assert [(n.statement, n.partly) for n in found] == [(1, False), (4, False)]
    assert found[0].reason == "Scoped allows them NotResource on arn:aws:s3:::secret/*"
    assert found[1].reason == "Scoped allows them only on arn:aws:sqs:*:*:app-*"


def test_a_conditional_statement_of_the_base_role_makes_it_may_be_refused() -> None:
    base = {
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "ec2:*",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
            },
        ]
    }
    ceiling = Ceiling.from_policies("Base", {"regions": base})
    role = {"Statement": {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"}}
    [narrowing] = ceiling.narrowings([("r", "inline policy r", role)])
    assert not narrowing.certain
    assert lines([narrowing]) == [
        "ec2:RunInstances (inline policy r, statement 1): the base role IAMSudoUser may refuse "
        "them (inline policy regions statement 2 denies them under a condition)"
    ]


def test_a_boundary_of_the_base_role_is_a_ceiling_unless_the_role_has_the_same() -> None:
    boundary_arn = "arn:aws:iam::123456789012:policy/DevBoundary"
    boundary = {"Statement": {"Effect": "Allow", "Action": ["s3:*", "sqs:*"], "Resource": "*"}}
    variant = Ceiling.from_policies(
        "IAMSudoUser-DevBoundary",
        {ADMIN: aws_managed("AdministratorAccess")},
        (boundary_arn, boundary),
    )
    role = {
        "Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "sns:Publish"], "Resource": "*"}
    }
    [narrowing] = variant.narrowings([("r", "inline policy r", role)])
    assert narrowing.actions == ("sns:Publish",)
    assert narrowing.reason == "its permissions boundary does not allow them"
    # The role itself carries that boundary: it cannot publish either, nothing is narrower.
    assert variant.narrowings([("r", "inline policy r", role)], role_boundary=boundary_arn) == []


def test_a_boundary_variant_with_power_user_still_narrows_iam_within_the_boundary() -> None:
    boundary_arn = "arn:aws:iam::123456789012:policy/DeployBoundary"
    boundary = {
        "Statement": {"Effect": "Allow", "Action": ["iam:PassRole", "s3:*"], "Resource": "*"}
    }
    variant = Ceiling.from_policies(
        "IAMSudoUser-DeployBoundary",
        {POWER_USER: aws_managed("PowerUserAccess")},
        (boundary_arn, boundary),
    )
    found = variant.narrowings(
        [("deploy", "inline policy deploy", DEPLOY)], role_boundary=boundary_arn
    )
    # iam:CreateRole is outside the role's own boundary: not a narrowing; iam:PassRole is.
    assert [n.actions for n in found] == [("iam:PassRole",)]


@pytest.mark.parametrize("name", JOB_FUNCTIONS)
def test_job_function_policies_fit_under_administrator_access(name: str) -> None:
    admin = Ceiling.from_policies("IAMSudoUser", {ADMIN: aws_managed("AdministratorAccess")})
    arn = f"arn:aws:iam::aws:policy/job-function/{name}"
    assert admin.narrowings([(arn, f"managed policy {arn}", aws_managed(name))]) == []


@pytest.mark.parametrize("name", JOB_FUNCTIONS)
def test_job_function_policies_under_power_user_narrow_exactly_their_iam_and_org_actions(
    name: str,
) -> None:
    document = aws_managed(name)
    arn = f"arn:aws:iam::aws:policy/job-function/{name}"
    found = power_user().narrowings([(arn, f"managed policy {arn}", document)])
    # What the reference says PowerUserAccess cannot grant, action pattern by pattern.
    power = [aws_managed("PowerUserAccess")]
    expected: set[str] = set()
    for statement in statements(document):
        if statement["Effect"] != "Allow":
            continue
        for action in values(statement["Action"]):
            literal = action.replace("*", "x").replace("?", "x")
            if not reference_allows(power, [], literal, "*"):
                expected.add(action)
    named = {a for n in found for a in n.actions}
    assert named == expected
    assert all(n.certain for n in found)


# -- the reference matcher, from the IAM User Guide (see the module docstring) -------------


def values(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = document["Statement"]
    return [found] if isinstance(found, Mapping) else list(found)


@cache
def action_matches(pattern: str, action: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, action, re.IGNORECASE | re.DOTALL) is not None


@cache
def resource_matches(pattern: str, resource: str) -> bool:
    parts = []
    for i, c in enumerate(pattern):
        if c == "*":
            last_of_segment = i + 1 == len(pattern) or pattern[i + 1] == ":"
            parts.append(".*" if last_of_segment else "[^:]*")
        elif c == "?":
            parts.append("[^:]")
        else:
            parts.append(re.escape(c))
    return re.fullmatch("".join(parts), resource, re.DOTALL) is not None


def element_matches(statement: Mapping[str, Any], name: str, value: str) -> bool:
    match = action_matches if name == "Action" else resource_matches
    if name in statement:
        return any(match(p, value) for p in values(statement[name]))
    return not any(match(p, value) for p in values(statement[f"Not{name}"]))


def statement_matches(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    return element_matches(statement, "Action", action) and element_matches(
        statement, "Resource", resource
    )


def policies_allow(documents: Sequence[Mapping[str, Any]], action: str, resource: str) -> bool:
    matched = [
        s for d in documents for s in statements(d) if statement_matches(s, action, resource)
    ]
    return any(s["Effect"] == "Allow" for s in matched) and not any(
        s["Effect"] == "Deny" for s in matched
    )


def reference_allows(
    identity: Sequence[Mapping[str, Any]],
    boundary: Sequence[Mapping[str, Any]],
    action: str,
    resource: str,
) -> bool:
    return policies_allow(identity, action, resource) and (
        not boundary or policies_allow(boundary, action, resource)
    )


def spec_matches(spec: Spec, value: str, *, resource: bool) -> bool:
    match = resource_matches if resource else action_matches
    return any(match(p, value) for p in spec.patterns) != spec.negated


# -- the property ------------------------------------------------------------------------

SERVICES = ["s3", "iam", "S3", "*", "s?"]
NAMES = ["*", "Get*", "GetObject", "PassRole", "P*", "?assRole", "List*", "getobject"]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:s3:::bucket/*",
    "arn:aws:s3:::b*",
    "arn:aws:s3:::bucket/key?",
    "arn:aws:iam::123456789012:role/*",
    "arn:aws:iam::*:role/app-*",
    "arn:*:s3:::bucket/*",
    "arn:aws:s3:::*t/a",
]
ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "iam:PassRole",
    "iam:ListRoles",
    "iam:GetRole",
    "ec2:DescribeInstances",
    "sq:PassRole",
    "S3:GETOBJECT",
]
RESOURCES = [
    "arn:aws:s3:::bucket/key1",
    "arn:aws:s3:::bucket/a:b",
    "arn:aws:s3:::bucket/keys",
    "arn:aws:s3:::other",
    "arn:aws:s3:::bt/a",
    "arn:aws:s3:::b:t/a",
    "arn:aws:iam::123456789012:role/app-x",
    "arn:aws:iam::123456789012:role/other",
    "arn:aws-cn:s3:::bucket/x",
    "x",
]

action_patterns = st.builds(
    lambda s, n: f"{s}:{n}", st.sampled_from(SERVICES), st.sampled_from(NAMES)
)
elements = st.lists(action_patterns, min_size=1, max_size=3)
resource_elements = st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2)


@st.composite
def statement_strategy(draw: Any, effects: Sequence[str]) -> dict[str, Any]:
    action_key = draw(st.sampled_from(["Action", "Action", "NotAction"]))
    resource_key = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    return {
        "Effect": draw(st.sampled_from(effects)),
        action_key: draw(elements),
        resource_key: draw(resource_elements),
    }


def documents(effects: Sequence[str], max_size: int) -> Any:
    return st.lists(statement_strategy(effects), min_size=1, max_size=max_size).map(
        lambda s: {"Version": "2012-10-17", "Statement": s}
    )


@settings(max_examples=100, deadline=None)
@given(
    role=documents(["Allow"], 2),
    base=documents(["Allow", "Allow", "Deny"], 3),
    boundary=st.one_of(st.none(), documents(["Allow", "Allow", "Deny"], 2)),
)
def test_findings_name_exactly_what_the_base_role_does_not_grant(
    role: dict[str, Any], base: dict[str, Any], boundary: dict[str, Any] | None
) -> None:
    boundary_arn = "arn:aws:iam::123456789012:policy/B"
    ceiling = Ceiling.from_policies(
        "Base", {"base": base}, (boundary_arn, boundary) if boundary else None
    )
    found = ceiling.narrowings([("role", "inline policy role", role)])
    identity, bounds = [base], [boundary] if boundary else []
    examples = {cell.example for n in found for cell in n.cells}
    actions = sorted(set(ACTIONS) | {a for a, _ in examples})
    resources = sorted(set(RESOURCES) | {r for _, r in examples})
    for index, statement in enumerate(statements(role), 1):
        mine = [n for n in found if n.statement == index]
        cells = [cell for n in mine for cell in n.cells]
        regions = {(c.actions, c.resources, c.whole) for c in cells}
        for cell in cells:
            action, resource = cell.example
            # Every example is one the role allows and the base role does not.
            assert statement_matches(statement, action, resource)
            assert not reference_allows(identity, bounds, action, resource)
        for action in actions:
            for resource in resources:
                in_role = statement_matches(statement, action, resource)
                granted = reference_allows(identity, bounds, action, resource)
                if not in_role and not granted:
                    continue
                named = [
                    whole
                    for actions_spec, resources_spec, whole in regions
                    if spec_matches(actions_spec, action, resource=False)
                    and spec_matches(resources_spec, resource, resource=True)
                ]
                if in_role and not granted:
                    assert named, (action, resource, statement)
                if granted:
                    # A cell the base role grants nothing of names no granted pair.
                    assert not any(named), (action, resource, statement)


def test_exact_travels_in_the_function_request_as_a_boolean() -> None:
    from iam_sudo import InvalidRequest, SimulateRequest

    request = SimulateRequest("DeployFnRole", exact=True)
    assert request.to_event() == {"role_name": "DeployFnRole", "exact": True}
    assert SimulateRequest.from_event(request.to_event()) == request
    assert "exact" not in SimulateRequest("DeployFnRole").to_event()
    with pytest.raises(InvalidRequest, match="exact must be true or false, got str"):
        SimulateRequest.from_event({"role_name": "x", "exact": "yes"})


def test_too_many_patterns_to_decide_is_reported_never_granted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import iam_sudo.core.ceiling

    monkeypatch.setattr(iam_sudo.core.ceiling, "MAX_STATES", 3)
    iam_sudo.core.ceiling.signatures.cache_clear()
    admin = Ceiling.from_policies("IAMSudoUser", {ADMIN: aws_managed("AdministratorAccess")})
    role = {"Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}
    try:
        [narrowing] = admin.narrowings([("r", "inline policy r", role)])
    finally:
        iam_sudo.core.ceiling.signatures.cache_clear()
    assert not narrowing.certain
    assert narrowing.reason == "too many patterns to decide; treated as not granted"


def test_a_base_statement_that_cannot_be_read_never_widens_the_ceiling() -> None:
    base = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*"},  # no Resource: grants nothing
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Effect": "Deny", "Action": 5, "Resource": "*"},  # unreadable Deny: denies all
        ]
    }
    ceiling = Ceiling.from_policies("Base", {"odd": base})
    role = {
        "Statement": {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "sqs:SendMessage"],
            "Resource": "*",
        }
    }
    [narrowing] = ceiling.narrowings([("r", "inline policy r", role)])
    assert narrowing.actions == ("s3:GetObject", "sqs:SendMessage")
    assert narrowing.reason == "inline policy odd statement 3 denies them"


# --- the statements actually sent ---------------------------------------------------------


def _sent_plan(resource: str, tags: dict[str, str]) -> Any:
    from iam_sudo.core.conditions import Target
    from iam_sudo.core.session import plan_session

    role = "arn:aws:iam::123456789012:role/app-Role"
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}],
    }
    return plan_session(
        role_name="app-Role",
        base_role_arn="arn:aws:iam::123456789012:role/IAMSudoUser",
        attached_policy_arns=[],
        inline_policies={"p": document},
        managed_documents={},
        target=Target(role, tags),
    )


def test_the_ceiling_judges_a_variable_by_the_value_the_session_is_sent() -> None:
    # Issue 19: every (action, resource) the role allows and the base role cannot grant is
    # named. For a role tagged env=prod, ${aws:PrincipalTag/env}-data/* is sent as
    # prod-data/* (IAM User Guide, "IAM policy elements: Variables and tags"), which the
    # base role's Deny refuses ("Policy evaluation logic": an explicit Deny overrides).
    base = Ceiling.from_policies(
        "IAMSudoUser",
        {
            "inline": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::prod-*"},
                ],
            }
        },
    )
    plan = _sent_plan("arn:aws:s3:::${aws:PrincipalTag/env}-data/*", {"env": "prod"})
    [sent] = plan.statements
    assert sent.statement["Resource"] == "arn:aws:s3:::prod-data/*"
    [found] = base.narrowings_sent(plan.statements)
    assert (found.policy, found.statement, found.actions) == ("p", 1, ("s3:GetObject",))
    assert found.certain
    assert not found.partly
    assert "inline policy inline statement 2 denies them" in found.reason


def test_no_finding_for_a_variable_whose_value_the_base_role_allows() -> None:
    # The base role allows s3 only on dev-*; the role (env=dev) is sent dev-data/*: within
    # the ceiling. Judged on the literal "${aws:PrincipalTag/env}-data/*" it looked outside.
    base = Ceiling.from_policies(
        "IAMSudoUser",
        {
            "inline": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::dev-*"}
                ],
            }
        },
    )
    plan = _sent_plan("arn:aws:s3:::${aws:PrincipalTag/env}-data/*", {"env": "dev"})
    assert base.narrowings_sent(plan.statements) == []
    # A statement not sent at all (no such tag: the pattern matches nothing) is not judged.
    assert _sent_plan("arn:aws:s3:::${aws:PrincipalTag/env}-data/*", {}).statements == ()


def test_a_variable_left_for_the_request_may_take_any_value() -> None:
    # ${aws:SourceIp} (environment) stays in the Resource; its value is the request's, so
    # the pattern may stand for any resource under the prefix: what the base role
    # refuses there is named (never missed).
    base = Ceiling.from_policies(
        "IAMSudoUser",
        {
            "inline": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/10.*"}
                ],
            }
        },
    )
    plan = _sent_plan("arn:aws:s3:::b/${aws:SourceIp}", {})
    [found] = base.narrowings_sent(plan.statements)
    assert found.partly

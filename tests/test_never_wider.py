"""Never wider, for every condition (issue 13): a simulated session, evaluated with its own
request context, allows only what the role allows with the role's, judged by the reference
evaluator in tests/iam_reference.py (written from the IAM User Guide)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devtools import localaws
from iam_sudo.conditions import NARROWER, Rewrite, Target, rewrite
from iam_sudo.context_keys import KEYS, KeyClass, classify
from tests.iam_reference import Request, allowed, condition_holds

ROLE_ACCOUNT, OTHER_ACCOUNT = "111111111111", "222222222222"
ROLE = f"arn:aws:iam::{ROLE_ACCOUNT}:role/app-TaskRole"
ROOT = Path(__file__).resolve().parent.parent


def base_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:role/IAMSudoUser"


def ctx(**values: Any) -> dict[str, list[str]]:
    """A request context: keys spelled with __ for ':' and _ for '/'; None is absent."""
    out: dict[str, list[str]] = {}
    for name, value in values.items():
        key = name.replace("__", ":").replace("_", "/").lower()
        if value is not None:
            out[key] = value if isinstance(value, list) else [value]
    return out


def sent_statements(
    statements: list[dict[str, Any]], target: Target
) -> tuple[list[dict[str, Any]], list[Rewrite]]:
    sent, notes = [], []
    for index, statement in enumerate(statements):
        result, rewrites = rewrite(statement, target, "inline policy p", index, policy="p")
        notes += rewrites
        if result is not None:
            sent.append(result)
    return sent, notes


# --- the reference, checked against AWS's documented examples first ---------------------


@pytest.mark.parametrize(
    ("operator", "key", "values", "context", "expected"),
    [
        # "Single-valued vs. multivalued context keys", ForAllValues:StringLike example.
        ("ForAllValues:StringLike", "aws:TagKeys", "Created*", ["CreatedBy", "CreatedAt"], True),
        ("ForAllValues:StringLike", "aws:TagKeys", "Created*", ["CreatedBy", "Owner"], False),
        ("ForAllValues:StringLike", "aws:TagKeys", "Created*", None, True),
        ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], [], False),
        ("ForAnyValue:StringEquals", "aws:TagKeys", ["a", "b"], ["c", "b"], True),
        # "Condition operators", IfExists: a missing key makes the condition true.
        ("StringLikeIfExists", "ec2:InstanceType", ["t1.*", "t2.*"], None, True),
        ("StringLikeIfExists", "ec2:InstanceType", ["t1.*", "t2.*"], ["m5.large"], False),
        # Negated matching: the value matches none; a missing key makes it true.
        ("StringNotEquals", "aws:PrincipalTag/team", ["a", "b"], ["c"], True),
        ("StringNotEquals", "aws:PrincipalTag/team", ["a", "b"], ["b"], False),
        ("StringNotEquals", "aws:PrincipalTag/team", "a", None, True),
        ("StringEquals", "aws:PrincipalTag/team", "a", None, False),
        # Null: "true" where the key is absent ("aws:TokenIssueTime" example).
        ("Null", "aws:TokenIssueTime", "true", None, True),
        ("Null", "aws:TokenIssueTime", "true", ["2026-01-01T00:00:00Z"], False),
        ("IpAddress", "aws:SourceIp", "203.0.113.0/24", ["203.0.113.7"], True),
        ("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", ["203.0.113.7"], False),
        (
            "DateGreaterThan",
            "aws:CurrentTime",
            "2020-04-01T00:00:00Z",
            ["2026-01-01T00:00:00Z"],
            True,
        ),
        ("NumericLessThanEquals", "s3:max-keys", "10", ["10"], True),
        ("Bool", "aws:SecureTransport", "true", ["true"], True),
        (
            "ArnLike",
            "aws:SourceArn",
            "arn:aws:sns:*:123456789012:*",
            ["arn:aws:sns:us-east-1:123456789012:t"],
            True,
        ),
    ],
)
def test_the_reference_follows_the_user_guides_examples(
    operator: str, key: str, values: Any, context: list[str] | None, expected: bool
) -> None:
    request_context = {} if context is None else {key.lower(): context}
    assert condition_holds(operator, key, values, request_context) is expected


# --- the issue's three inputs, with the right answer ------------------------------------

ECS_ROLE_CONTEXT = ctx(
    aws__PrincipalArn=ROLE,
    aws__PrincipalAccount=ROLE_ACCOUNT,
    aws__userid="AROAROLE:task-1",
    aws__username=None,
)
SESSION_CONTEXT = ctx(
    aws__PrincipalArn=base_arn(ROLE_ACCOUNT),
    aws__PrincipalAccount=ROLE_ACCOUNT,
    aws__userid="AROABASE:iam-sudo-app-TaskRole",
    aws__SourceIdentity="alice",
    aws__PrincipalTag_team="ops",  # the base role's own tag
)


def check(
    statements: list[dict[str, Any]], request: tuple[str, str], tags: dict[str, str]
) -> tuple[bool, bool, list[Rewrite]]:
    """(role allowed, session allowed, rewrites) for one request, by the reference."""
    target = Target(ROLE, tags, base_arn(ROLE_ACCOUNT))
    sent, notes = sent_statements(statements, target)
    action, resource = request
    role = allowed(statements, Request(action, resource, ECS_ROLE_CONTEXT))
    session = allowed(sent, Request(action, resource, SESSION_CONTEXT))
    return role, session, notes


def test_for_any_value_on_a_tag_the_role_lacks_never_holds() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "s3:GetBucketTagging",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringNotEquals": {"aws:PrincipalTag/team": "payments"}},
        }
    ]
    role, session, notes = check(statements, ("s3:GetBucketTagging", "arn:aws:s3:::b"), {})
    assert (role, session) == (False, False)
    [note] = notes
    assert note.kind == "exact"
    assert note.key_class == "principal"
    assert "never holds for the role: statement left out" in str(note)
    # The same decision in a Deny is exact too: it never applies to the role.
    deny = [
        {**statements[0], "Effect": "Deny"},
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
    ]
    role, session, notes = check(deny, ("s3:GetBucketTagging", "arn:aws:s3:::b"), {})
    assert (role, session) == (True, True)
    assert [n.kind for n in notes] == ["exact"]


def test_an_allow_on_the_source_identity_is_left_out_and_reported() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringLike": {"aws:SourceIdentity": "*"}},
        }
    ]
    request = ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:r:1:secret:s")
    role, session, notes = check(statements, request, {})
    assert (role, session) == (False, False)
    [note] = notes
    assert (note.kind, note.key_class, note.keys) == (
        "narrower",
        "session",
        ("aws:SourceIdentity",),
    )
    assert (note.policy, note.index) == ("p", 1)
    assert "the Allow is left out" in str(note)
    assert "[session key]" in str(note)


def test_a_deny_on_a_username_the_role_lacks_never_applies() -> None:
    statements = [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::home/*"},
        {
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::home/${aws:username}/*",
        },
    ]
    for resource in ("arn:aws:s3:::home/alice/x", "arn:aws:s3:::home/x"):
        role, session, notes = check(statements, ("s3:PutObject", resource), {})
        assert (role, session) == (True, True)
    sent, _ = sent_statements(statements, Target(ROLE))
    assert sent == statements[:1], "left out, not turned into a Deny on every resource"
    [note] = notes
    assert (note.kind, note.key_class, note.index) == ("exact", "principal", 2)


def test_environment_conditions_are_kept_and_reported_per_statement() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    result, [note] = rewrite(statement, Target(ROLE), "inline policy p", 0, policy="p")
    assert result == statement
    assert (note.kind, note.key_class) == ("environment", "environment")
    assert "evaluated where you run the session" in str(note)


def test_organization_keys_are_the_roles_only_with_a_base_role_in_its_account() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-aaa"}},
    }
    same, _ = rewrite(statement, Target(ROLE, {}, base_arn(ROLE_ACCOUNT)), "p", 0)
    assert same == statement
    other, [note] = rewrite(statement, Target(ROLE, {}, base_arn(OTHER_ACCOUNT)), "p", 0)
    assert other is None
    assert note.kind == NARROWER


def test_principal_account_is_the_roles_whatever_the_base_roles_account() -> None:
    statement = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:PrincipalAccount": ROLE_ACCOUNT}},
    }
    result, [note] = rewrite(statement, Target(ROLE, {}, base_arn(OTHER_ACCOUNT)), "p", 0)
    assert result is None, "the role is in its own account: the Deny never applies"
    assert note.kind == "exact"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("aws:PrincipalTag/Team", KeyClass.PRINCIPAL),
        ("AWS:SourceIdentity", KeyClass.SESSION),
        ("accounts.google.com:sub", KeyClass.SESSION),
        ("saml:sub", KeyClass.SESSION),
        ("lambda:SourceFunctionArn", KeyClass.COMPUTE),
        ("aws:VpcSourceIp", KeyClass.ENVIRONMENT),
        ("s3:prefix", KeyClass.SAME),
        ("aws:ResourceTag/x", KeyClass.SAME),
        ("aws:SomethingNew", KeyClass.UNKNOWN),
        ("aws:PrincipalTag/", KeyClass.UNKNOWN),
        ("nonsense", KeyClass.UNKNOWN),
    ],
)
def test_every_key_has_one_class(key: str, expected: KeyClass) -> None:
    assert classify(key) is expected


def test_the_readme_table_is_the_codes_classification() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Condition keys in a simulated session", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = cells[3]
    for key in KEYS:
        assert key.name in rows, f"{key.name} missing from the README table"
        assert rows[key.name].startswith(key.key_class.value), key.name


# --- the property --------------------------------------------------------------------------

KEYS_USED = [
    "aws:PrincipalTag/team",
    "aws:PrincipalTag/env",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:PrincipalOrgID",
    "aws:PrincipalType",
    "aws:username",
    "aws:userid",
    "aws:SourceIdentity",
    "aws:TokenIssueTime",
    "aws:MultiFactorAuthPresent",
    "ec2:SourceInstanceARN",
    "aws:SourceIp",
    "aws:RequestTag/env",
    "aws:TagKeys",
    "s3:prefix",
    "aws:CurrentTime",
    "aws:SomethingNew",
]
BASE_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnLike",
    "ArnNotEquals",
    "Bool",
    "NumericGreaterThan",
    "DateLessThan",
    "IpAddress",
    "NotIpAddress",
]
VALUES = [
    "payments",
    "Payments",
    "dev",
    "pay*",
    "*",
    "alice",
    "true",
    "false",
    "AssumedRole",
    ROLE_ACCOUNT,
    OTHER_ACCOUNT,
    "o-aaa",
    ROLE,
    "arn:aws:iam::*:role/app-*",
    "AROAROLE:*",
    "10.0.0.0/8",
    "5",
    "2026-03-01T00:00:00Z",
    "env",
    "${aws:PrincipalTag/team}",
    "${aws:PrincipalTag/env, 'dev'}",
    "${aws:username}",
    "${aws:username, 'alice'}",
    "${aws:SourceIdentity}",
    "${aws:userid}",
    "${aws:PrincipalAccount}",
    "${aws:RequestTag/env}",
    "${aws:SourceIp}",
    "${aws:SourceIdentity, 'alice'}",
    "${ec2:SourceInstanceARN}",
    "${aws:TagKeys}",
]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/${aws:PrincipalTag/team}/*",
    "arn:aws:s3:::b/${aws:PrincipalTag/env, 'dev'}/*",
    "arn:aws:s3:::b/${aws:username}/*",
    "arn:aws:s3:::b/${aws:userid}/*",
    "arn:aws:s3:::b/${aws:SourceIdentity}/*",
    "arn:aws:s3:::b/${aws:RequestTag/env}/*",
]
RESOURCES = [
    "arn:aws:s3:::b/payments/x",
    "arn:aws:s3:::b/dev/x",
    "arn:aws:s3:::b/alice/x",
    "arn:aws:s3:::b/AROAROLE:task-1/x",
    "arn:aws:s3:::other",
]


@st.composite
def operators(draw: Any) -> str:
    if draw(st.integers(0, 9)) == 0:
        return "Null"
    qualifier = draw(st.sampled_from(["", "", "ForAnyValue:", "ForAllValues:"]))
    suffix = draw(st.sampled_from(["", "IfExists"]))
    return qualifier + draw(st.sampled_from(BASE_OPERATORS)) + suffix


@st.composite
def statements(draw: Any) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 2))):
        operator = draw(operators())
        values = (
            draw(st.sampled_from(["true", "false"]))
            if operator == "Null"
            else draw(
                st.one_of(
                    st.sampled_from(VALUES),
                    st.lists(st.sampled_from(VALUES), min_size=1, max_size=3),
                )
            )
        )
        condition.setdefault(operator, {})[draw(st.sampled_from(KEYS_USED))] = values
    element = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    resources = draw(
        st.one_of(
            st.sampled_from(RESOURCE_PATTERNS),
            st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=3),
        )
    )
    statement: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Deny"])),
        "Action": draw(st.sampled_from(["s3:GetObject", "s3:*", "*"])),
        element: resources,
    }
    if condition:
        statement["Condition"] = condition
    return statement


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    """A role, its own session's context, the simulated session's, and one request."""
    team = draw(st.sampled_from([None, "payments", "dev"]))
    env = draw(st.sampled_from([None, "prod"]))
    tags = {k: v for k, v in {"team": team, "env": env}.items() if v}
    base_account = draw(st.sampled_from([ROLE_ACCOUNT, OTHER_ACCOUNT]))
    organizations = {ROLE_ACCOUNT: "o-aaa", OTHER_ACCOUNT: draw(st.sampled_from(["o-aaa", None]))}
    base_tags = draw(st.sampled_from([{}, {"team": "ops"}, {"env": "dev"}]))
    passed = draw(st.booleans())  # role tags as session tags (or --no-session-tags)
    session_tags = {**base_tags, **(tags if passed else {})}
    request = ctx(
        aws__SourceIp=draw(st.sampled_from(["10.1.2.3", "192.0.2.1"])),
        aws__RequestTag_env=draw(st.sampled_from([None, "dev", "payments"])),
        aws__TagKeys=draw(st.sampled_from([None, [], ["env"], ["env", "team"]])),
        s3__prefix=draw(st.sampled_from([None, "payments"])),
        aws__CurrentTime="2026-01-01T00:00:00Z",
    )
    role = ctx(
        aws__PrincipalArn=ROLE,
        aws__PrincipalAccount=ROLE_ACCOUNT,
        aws__PrincipalOrgID=organizations[ROLE_ACCOUNT],
        aws__PrincipalType="AssumedRole",
        aws__userid="AROAROLE:task-1",
        aws__TokenIssueTime="2026-01-01T00:00:00Z",
        aws__SourceIdentity=draw(st.sampled_from([None, "alice", "payments"])),
        aws__MultiFactorAuthPresent=draw(st.sampled_from([None, "true", "false"])),
        ec2__SourceInstanceARN=draw(
            st.sampled_from([None, "arn:aws:ec2:eu-west-1:111111111111:instance/i-1"])
        ),
        aws__SomethingNew=draw(st.sampled_from([None, "payments"])),
        **{f"aws__PrincipalTag_{k}": v for k, v in tags.items()},
    )
    session = ctx(
        aws__PrincipalArn=base_arn(base_account),
        aws__PrincipalAccount=base_account,
        aws__PrincipalOrgID=organizations[base_account],
        aws__PrincipalType="AssumedRole",
        aws__userid="AROABASE:iam-sudo-app-TaskRole",
        aws__TokenIssueTime="2026-06-01T00:00:00Z",
        aws__SourceIdentity="alice",
        aws__MultiFactorAuthPresent=draw(st.sampled_from([None, "false"])),
        aws__SomethingNew=draw(st.sampled_from([None, "dev"])),
        **{f"aws__PrincipalTag_{k}": v for k, v in session_tags.items()},
    )
    return {
        "target": Target(ROLE, tags, base_arn(base_account)),
        "role": {**role, **request},
        "session": {**session, **request},
        "action": draw(st.sampled_from(["s3:GetObject", "s3:PutObject"])),
        "resource": draw(st.sampled_from(RESOURCES)),
    }


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=st.lists(statements(), min_size=1, max_size=5), world=worlds())
def test_the_session_never_allows_what_the_role_would_not(
    policy: list[dict[str, Any]], world: dict[str, Any]
) -> None:
    sent, notes = sent_statements(policy, world["target"])
    as_role = allowed(policy, Request(world["action"], world["resource"], world["role"]))
    as_session = allowed(sent, Request(world["action"], world["resource"], world["session"]))
    event(f"role allowed: {as_role}, session allowed: {as_session}")
    for kind in sorted({n.kind for n in notes}):
        event(f"a {kind} rewrite")
    shown = json.dumps({"policy": policy, "sent": sent, "notes": [str(n) for n in notes]})
    assert as_role or not as_session, "wider than the role: " + shown
    if as_role and not as_session:
        assert any(n.kind == NARROWER for n in notes), "narrower, unreported: " + shown
    for note in notes:
        assert note.kind in ("exact", "narrower", "environment")
        assert note.key_class
        assert f"[{note.key_class} key]" in str(note)


# --- through the command -----------------------------------------------------------------


def test_dry_run_reports_each_decision_with_the_keys_class(cli: Any, iam: Any, prefix: str) -> None:
    name = f"{prefix}SourceIdentity"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:SourceIdentity": "*"}},
            },
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::home/*"},
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::home/${aws:username}/*",
            },
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            },
        ],
    }
    localaws.create_role(iam, name, inline={"app": policy})
    result = cli("simulate", "--local", "--dry-run", "--role-name", name)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    sent = shown["Policy"]["Statement"]
    assert not any("secretsmanager" in json.dumps(s) for s in sent), "the Allow is left out"
    assert not any(s["Effect"] == "Deny" for s in sent), "a Deny that cannot match is left out"
    assert any(s.get("Condition") == {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}} for s in sent)
    lines = shown["Fidelity"]
    expected = [
        "inline policy app, statement 1 (Allow secretsmanager:GetSecretValue): StringLike "
        "aws:SourceIdentity (for the role: unknown): undecidable: the Allow is left out "
        "[session key]",
        "inline policy app, statement 3 (Deny s3:PutObject): Resource uses ${aws:username}: a "
        "variable with no value for the role matches nothing: the statement never applies and "
        "is left out [principal key]",
        "inline policy app, statement 4 (Allow s3:GetObject): IpAddress aws:SourceIp: kept: "
        "evaluated where you run the session, not where the role runs [environment key]",
    ]
    for line in expected:
        assert line in lines, lines


def test_not_resource_patterns_that_cannot_be_known_narrow() -> None:
    allow = {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::b/${aws:userid}/*"}
    result, [note] = rewrite(allow, Target(ROLE), "p", 0)
    assert result is None
    assert note.kind == NARROWER
    deny = {**allow, "Effect": "Deny", "NotResource": ["arn:aws:s3:::keep", allow["NotResource"]]}
    result, [note] = rewrite(deny, Target(ROLE), "p", 0)
    assert result == {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::keep"]}
    assert note.kind == NARROWER


def test_a_value_whose_variable_has_no_value_is_left_out_of_a_same_key() -> None:
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"s3:prefix": ["${aws:username}", "x"]}},
    }
    result, [note] = rewrite(deny, Target(ROLE), "p", 0)
    assert result is not None
    assert result["Condition"] == {"StringEquals": {"s3:prefix": ["x"]}}
    assert (note.kind, note.key_class) == ("exact", "principal")
    only = {**deny, "Condition": {"StringEquals": {"s3:prefix": "${aws:username}"}}}
    assert rewrite(only, Target(ROLE), "p", 0)[0] is None, "matches nothing: never applies"


def test_a_statement_that_never_applies_reports_no_narrowing() -> None:
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {
            "StringLike": {"aws:SourceIdentity": "admin-*"},
            "StringEquals": {"aws:PrincipalTag/team": "other"},
        },
    }
    result, notes = rewrite(deny, Target(ROLE, {"team": "payments"}), "p", 0)
    assert result is None
    assert [n.kind for n in notes] == ["exact"]

"""Draft policies (--add-policy): parsing and checking, their place among the role's
policies, their field in a request to the function, and the sudo policy's say on them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iam_sudo.core.drafts import (
    MAX_DRAFTS,
    PREFIX,
    Draft,
    check_drafts,
    drafts_from_event,
    parse_draft,
    with_drafts,
)
from iam_sudo.core.exceptions import InvalidRequest, InvalidSudoPolicy, SudoPolicyDenied
from iam_sudo.core.roles import Role
from iam_sudo.core.sudo_policy import SudoPolicy
from iam_sudo.steps.remote import SimulateRequest

DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}],
}
ROLE = Role(
    "TaskRole",
    "arn:aws:iam::123456789012:role/TaskRole",
    {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    },
)
BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"
RULE = """\
allowed-role-names: ["*"]
allowed-principals: [{"*": "*"}]
allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
"""


def test_json_and_yaml_files_give_the_same_draft() -> None:
    from_json = parse_draft("fix.json", json.dumps(DOCUMENT))
    from_yaml = parse_draft(
        "fix.json",
        "Version: '2012-10-17'\nStatement:\n  - {Effect: Allow, Action: sns:Publish, "
        "Resource: '*'}\n",
    )
    assert from_json == from_yaml == Draft("fix.json", DOCUMENT)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}, "Action must be"),
        ({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": 3}}, "Resource must be"),
        (
            {
                "Statement": {
                    "Effect": "Deny",
                    "Action": "s3:*",
                    "NotAction": "s3:Get*",
                    "Resource": "*",
                }
            },
            "exactly one of Action or NotAction",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": []}},
            "Condition must map",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Oops": 1}]},
            "Oops",
        ),
        ({"Statement": [], "Extra": 1}, "unknown policy element 'Extra'"),
        ({"Statement": ["text"]}, "statement 1 is not a JSON object"),
    ],
)
def test_a_document_that_is_no_identity_policy_is_refused_naming_the_file(
    document: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidRequest, match=problem) as caught:
        parse_draft("drafts/fix.json", json.dumps(document))
    assert str(caught.value).startswith("drafts/fix.json: ")


def test_a_draft_is_one_more_inline_policy_that_cannot_replace_the_roles_own() -> None:
    own = {"p": {"Statement": []}}
    arns, documents, inline = with_drafts((["arn:m"], {"arn:m": {}}, own), [Draft("p", DOCUMENT)])
    assert (arns, documents) == (["arn:m"], {"arn:m": {}})
    # IAM policy names take no ":", so "added:p" is never one of the role's.
    assert inline == {"p": own["p"], f"{PREFIX}p": DOCUMENT}


def test_drafts_travel_to_the_function_and_are_checked_there_as_files_are() -> None:
    request = SimulateRequest("TaskRole", drafts=(Draft("fix.json", DOCUMENT),))
    event = request.to_event()
    assert event["add_policies"] == [{"name": "fix.json", "document": DOCUMENT}]
    assert SimulateRequest.from_event(event) == request
    assert "add_policies" not in SimulateRequest("TaskRole").to_event()
    for bad, problem in [
        ([{"name": "x"}], "each of add_policies"),
        ("text", "add_policies must be a list"),
        ([{"name": "", "document": DOCUMENT}], "non-empty string"),
        ([{"name": "x", "document": {"Statement": []}}], "x: the policy has no Statement"),
        ([{"name": "x", "document": DOCUMENT}] * 2, "x: added twice"),
        ([{"name": f"x{i}", "document": DOCUMENT} for i in range(MAX_DRAFTS + 1)], "at most"),
    ]:
        with pytest.raises(InvalidRequest, match=problem):
            SimulateRequest.from_event({"role_name": "TaskRole", "add_policies": bad})
    with pytest.raises(InvalidRequest, match="at most"):
        drafts_from_event([{"name": "y", "document": DOCUMENT}] * (MAX_DRAFTS + 1))
    check_drafts([Draft("a", DOCUMENT), Draft("b", DOCUMENT)])


def test_a_draft_is_keyed_by_its_content_in_the_credential_cache() -> None:
    changed = {**DOCUMENT, "Statement": [{**DOCUMENT["Statement"][0], "Action": "sns:*"}]}  # type: ignore[dict-item]
    assert str(Draft("fix.json", DOCUMENT)) != str(Draft("fix.json", changed))


def test_the_function_serves_drafts_only_where_the_callers_rule_allows_them() -> None:
    plain = SudoPolicy.from_yaml(RULE)
    plain.check(ROLE, BASE)
    with pytest.raises(SudoPolicyDenied, match="allowed-added-policies: true"):
        plain.check(ROLE, BASE, added_policies=True)
    SudoPolicy.from_yaml(RULE + "allowed-added-policies: true\n").check(
        ROLE, BASE, added_policies=True
    )
    per_caller = SudoPolicy.from_yaml(
        "rules:\n"
        + "  - " + RULE.replace("\n", "\n    ").rstrip() + "\n"
        + "    allowed-callers: ['arn:aws:sts::123456789012:assumed-role/Dev/*']\n"
        + "    allowed-added-policies: true\n"
    )  # fmt: skip
    per_caller.check(
        ROLE, BASE, caller="arn:aws:sts::123456789012:assumed-role/Dev/me", added_policies=True
    )
    with pytest.raises(InvalidSudoPolicy, match="allowed-added-policies must be true or false"):
        SudoPolicy.from_yaml(RULE + "allowed-added-policies: 'yes'\n")


def test_locally_your_own_default_policy_allows_drafts() -> None:
    SudoPolicy.default().check(ROLE, BASE, added_policies=True)


def _alias_bomb() -> str:
    """A policy whose Condition value is a "billion laughs": 10**9 strings once expanded."""
    lines = [
        'Version: "2012-10-17"',
        "Statement:",
        "- Effect: Allow",
        "  Action: s3:GetObject",
        '  Resource: "*"',
        "  Condition:",
        "    StringEquals:",
        "      k0: &a0 [x, x, x, x, x, x, x, x, x, x]",
    ]
    for level in range(1, 9):
        lines.append(f"      k{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_alias_bomb(), "anchors and aliases"),
        ("[" * 50_000, "nested"),
        ("a: " + "[" * 50_000, "nested"),
    ],
)
def test_a_hostile_draft_is_refused_in_one_line_without_expanding_it(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_draft("fix.yaml", text)
    message = str(raised.value)
    assert message.startswith("fix.yaml: ")
    assert says in message
    assert "\n" not in message


POLICY_HEAD = 'Version: "2012-10-17"\nStatement:\n- Effect: Allow\n  Action: s3:GetObject\n'


def test_yaml_dates_are_kept_as_the_strings_iam_reads() -> None:
    # IAM's grammar has no date type: "Version" and a DateLessThan value are strings. YAML
    # would read both unquoted as dates.
    text = POLICY_HEAD.replace('"2012-10-17"', "2012-10-17") + (
        '  Resource: "*"\n  Condition:\n    DateLessThan:\n'
        "      aws:CurrentTime: 2030-01-01T00:00:00Z\n"
    )
    document = parse_draft("fix.yaml", text).document
    assert document["Version"] == "2012-10-17"
    statement = document["Statement"][0]
    assert statement["Condition"]["DateLessThan"]["aws:CurrentTime"] == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize("value", ["!!binary aGVsbG8=", ".nan", "!!set {a: null}", "-.inf"])
def test_a_draft_value_no_json_policy_can_hold_is_one_clear_error(value: str) -> None:
    text = POLICY_HEAD + f'  Resource: "*"\n  Condition:\n    StringEquals:\n      aws:x: {value}\n'
    with pytest.raises(InvalidRequest) as raised:
        parse_draft("fix.yaml", text)
    assert str(raised.value).startswith("fix.yaml: ")
    assert "\n" not in str(raised.value)

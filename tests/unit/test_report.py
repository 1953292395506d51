"""The report of a record: classes, the cause of each denial, and the fix policy (pure).

Denial messages are in AWS's exact wording: the IAM User Guide's "Troubleshoot access denied
error messages" examples (the same forms as tests/unit/test_denials.py), S3's bare "Access
Denied", and moto's "User: ... is not authorized to perform: ACTION" without a reason.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from iam_sudo.core.record import Call, Record, RecordError, Run, SentStatement, loads
from iam_sudo.core.report import build, cause_of, fix_policy, table

SESSION = "arn:aws:sts::123456789012:assumed-role/IAMSudoUser/iam-sudo-TaskRole"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:jobs"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"


def denied(
    action: str,
    resource: str | None,
    reason: str | None,
    *,
    code: str = "AccessDenied",
    resources: tuple[str, ...] = (),
) -> Call:
    message = f"User: {SESSION} is not authorized to perform: {action}"
    if resource:
        message += f" on resource: {resource}"
    if reason:
        message += f" {reason}"
    service = action.split(":")[0]
    return Call(
        "2026-12-07T10:00:00.000Z",
        service,
        "us-east-1",
        action.split(":")[1],
        (action,),
        "denial",
        resources or ((resource.strip('"'),) if resource else ()),
        "denied",
        403 if code != "AccessDeniedException" else 400,
        code,
        message,
    )


def allowed(action: str, *resources: str) -> Call:
    service, operation = action.split(":")
    return Call(
        "2026-12-07T10:00:00.000Z",
        service,
        "us-east-1",
        operation,
        (action,),
        "catalogue",
        resources,
        "allowed",
        200,
    )


STATEMENTS = (
    SentStatement(
        "jobs", 1, {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": QUEUE}
    ),
    SentStatement(
        "jobs",
        2,
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Scan"], "Resource": TABLE},
    ),
    SentStatement("logs", 1, {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}),
)
FINDING = {
    "Kind": "narrower",
    "Policy": "jobs",
    "Statement": 3,
    "Actions": ["kms:Decrypt"],
    "ConditionKeys": ["aws:SourceVpce"],
    "Reason": "the Allow is left out: aws:SourceVpce is unknown for the role",
    "Line": "jobs statement 3: the Allow is left out",
}
LOCAL = Run(
    "simulate",
    "local",
    "arn:aws:iam::123456789012:role/TaskRole",
    "arn:aws:iam::123456789012:role/IAMSudoUser",
    "123456789012",
    session_policies=STATEMENTS,
    findings=(FINDING,),
    complete=True,
)


@pytest.mark.parametrize(
    ("call", "cause", "where"),
    [
        (
            denied(
                "sqs:SendMessage",
                QUEUE,
                "because no session policy allows the sqs:SendMessage action",
            ),
            "role-lacks-it",
            "a session policy",
        ),
        (
            denied("kms:Decrypt", None, "because no session policy allows the kms:Decrypt action"),
            "narrowed-by-iam-sudo",
            "a session policy",
        ),
        (
            denied(
                "dynamodb:PutItem",
                TABLE,
                "because no identity-based policy allows the dynamodb:PutItem action",
                code="AccessDeniedException",
            ),
            "base-role-cannot-grant",
            "an identity-based policy",
        ),
        (
            denied(
                "iam:ListRoles",
                "arn:aws:iam::123456789012:role/*",
                "with an explicit deny in "
                "a service control policy: arn:aws:organizations::987654321098:policy/"
                "o-qv5af4abcd/service_control_policy/p-2kgnabcd",
            ),
            "explicit-deny",
            "a service control policy (SCP) arn:aws:organizations::987654321098:policy/"
            "o-qv5af4abcd/service_control_policy/p-2kgnabcd",
        ),
        (
            denied(
                "s3:GetObject",
                '"arn:aws:s3:::b/k"',
                "with an explicit deny in a resource control policy",
            ),
            "explicit-deny",
            "a resource control policy (RCP)",
        ),
        (
            denied("sagemaker:ListModels", None, "with an explicit deny in a permissions boundary"),
            "explicit-deny",
            "a permissions boundary",
        ),
        (
            denied(
                "codedeploy:ListDeployments", None, "with an explicit deny in a sessions policy"
            ),
            "explicit-deny",
            "a session policy",
        ),
        (
            denied(
                "codedeploy:ListDeployments",
                None,
                "with an explicit deny in an identity-based policy",
            ),
            "explicit-deny",
            "an identity-based policy",
        ),
        (
            denied(
                "secretsmanager:GetSecretValue",
                None,
                "because no resource-based policy allows the secretsmanager:GetSecretValue action",
            ),
            "resource-policy",
            "a resource-based policy",
        ),
        (
            denied(
                "codecommit:ListRepositories",
                None,
                "because no VPC endpoint policy allows the codecommit:ListRepositories action",
            ),
            "other-policy",
            "a VPC endpoint policy",
        ),
        # moto's own denial names the action, not the policy: never guessed
        (denied("sqs:SendMessage", None, None), "unknown", None),
    ],
)
def test_each_wording_gives_its_cause(call: Call, cause: str, where: str | None) -> None:
    found = cause_of(call, LOCAL)
    assert (found.cause, found.where) == (cause, where)


def test_s3_access_denied_without_a_reason_is_unknown_not_the_role() -> None:
    call = Call(
        "t",
        "s3",
        "us-east-1",
        "GetObject",
        (),
        "none",
        (),
        "denied",
        403,
        "AccessDenied",
        "Access Denied",
    )
    assert cause_of(call, LOCAL).cause == "unknown"


def test_for_a_real_role_no_identity_policy_means_the_role_lacks_it() -> None:
    assumed = Run("assume", "assume", "Deployer", complete=True)
    call = denied(
        "dynamodb:PutItem",
        TABLE,
        "because no identity-based policy allows the dynamodb:PutItem action",
    )
    assert cause_of(call, assumed).cause == "role-lacks-it"


def test_a_narrowing_finding_names_itself_in_the_denial() -> None:
    call = denied("kms:Decrypt", None, "because no session policy allows the kms:Decrypt action")
    assert cause_of(call, LOCAL).finding == FINDING["Reason"]


def record() -> Record:
    return Record(
        LOCAL,
        (
            allowed("sqs:ReceiveMessage", QUEUE),
            allowed("dynamodb:GetItem", TABLE),
            denied(
                "sqs:SendMessage",
                QUEUE,
                "because no session policy allows the sqs:SendMessage action",
            ),
            denied(
                "s3:PutObject",
                '"arn:aws:s3:::b/logs/*.txt"',
                "because no session policy allows the s3:PutObject action",
            ),
            denied(
                "iam:ListRoles", None, "because no session policy allows the iam:ListRoles action"
            ),
            denied(
                "dynamodb:PutItem",
                TABLE,
                "because no identity-based policy allows the dynamodb:PutItem action",
            ),
            denied("sns:Publish", None, None),
            Call("t", "s3", "us-east-1", "UploadPart", (), "none", (), "allowed", 200),
        ),
    )


def test_classes_used_denied_and_granted_but_never_used() -> None:
    report = build(record())
    assert [u.action for u in report.used] == ["dynamodb:GetItem", "sqs:ReceiveMessage"]
    assert [d.cause for d in report.denied] == [
        "role-lacks-it",
        "role-lacks-it",
        "role-lacks-it",
        "base-role-cannot-grant",
        "unknown",
    ]
    assert report.unused is not None
    assert [(u.policy, u.number, u.actions) for u in report.unused] == [
        ("jobs", 2, ("dynamodb:Scan",)),
        ("logs", 1, ("logs:*",)),
    ]
    assert report.uncatalogued == (("s3", "UploadPart", 1),)
    text = table(report)
    assert "role lacks it" in text
    assert "base role cannot grant it" in text
    assert "s3 UploadPart (1 calls)" in text


def test_without_session_policies_grants_never_used_are_not_known() -> None:
    run = Run("simulate", "remote", "TaskRole", complete=True)
    assert build(Record(run, ())).unused is None
    assert build(Record(run, ())).to_json()["GrantedNeverUsed"] is None


def test_the_fix_grants_exactly_the_calls_the_role_lacks() -> None:
    types = {"sqs:SendMessage": ["queue"], "s3:PutObject": ["object"], "iam:ListRoles": []}
    document, notes = fix_policy(build(record()), types.get)
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"},
            # the recorded key has a literal * and no wildcard may be wider than the call
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::b/logs/${*}.txt",
            },
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE},
        ],
    }
    assert len(notes) == 2
    assert "base-role-cannot-grant" in notes[0]
    assert "unknown" in notes[1]


def test_a_denied_call_without_a_known_resource_is_not_widened_to_a_wildcard() -> None:
    call = denied(
        "sqs:SendMessage", None, "because no session policy allows the sqs:SendMessage action"
    )
    document, notes = fix_policy(build(Record(LOCAL, (call,))), {"sqs:SendMessage": ["queue"]}.get)
    assert document["Statement"] == []
    assert "a wildcard would grant more" in notes[0]


def test_a_record_reads_back_as_written() -> None:
    written = record()
    assert loads(written.dumps()) == written


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"RecordVersion": 1, "Run": {"Command": "simulate"',  # truncated
        "[1, 2]",
        json.dumps({"RecordVersion": 7, "Run": {}, "Calls": []}),
        json.dumps({"RecordVersion": 1, "Run": LOCAL.to_json(), "Calls": [{"Time": 1}]}),
    ],
)
def test_a_damaged_record_is_one_clear_error(text: str) -> None:
    with pytest.raises(RecordError) as raised:
        loads(text, "the record run.json")
    message = str(raised.value)
    assert "run.json" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"RecordVersion": 1, "Run": ' + "{" * 50_000,
        '{"RecordVersion": 1, "Calls": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_a_deeply_nested_record_is_one_clear_error_not_a_traceback(text: str) -> None:
    with pytest.raises(RecordError) as raised:
        loads(text, "the record run.json")
    assert "run.json" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_fix_grants_only_the_action_aws_named_denied_not_what_the_record_lists() -> None:
    # A hand-edited (or hostile) record: the message names sqs:SendMessage, the Actions list
    # wildcards and an action nobody saw denied. --policy grants what AWS said was denied.
    call = replace(
        denied(
            "sqs:SendMessage",
            QUEUE,
            "because no session policy allows the sqs:SendMessage action",
        ),
        actions=("sqs:SendMessage", "sqs:*", "iam:PassRole", "*"),
    )
    document, _ = fix_policy(build(Record(LOCAL, (call,))), {"sqs:SendMessage": ["queue"]}.get)
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}
    ]


@pytest.mark.parametrize("action", ["s3:*", "s3:Get*", "s3:GetObjec?"])
def test_a_denial_naming_a_wildcard_action_is_never_granted_as_one(action: str) -> None:
    call = denied(action, None, f"because no session policy allows the {action} action")
    document, notes = fix_policy(build(Record(LOCAL, (call,))), lambda _: [])
    assert document["Statement"] == []
    assert "wildcard" in notes[0]


def _with(change: Any) -> str:
    document = record().to_json()
    change(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    "text",
    [
        _with(lambda d: d["Run"]["SessionPolicies"][0]["Statement"].update(Action=5)),
        _with(lambda d: d["Run"]["SessionPolicies"][0]["Statement"].update(Resource=[1])),
        _with(lambda d: d["Run"]["SessionPolicies"][0]["Statement"].update(NotAction={})),
        # a string where a list belongs: read as characters, "*" would cover every action
        _with(lambda d: d["Run"].update(Findings=[{"Kind": "narrower", "Actions": "s3:*"}])),
    ],
)
def test_a_record_with_values_of_the_wrong_type_is_one_clear_error(text: str) -> None:
    with pytest.raises(RecordError) as raised:
        build(loads(text, "the record run.json"))
    assert "run.json" in str(raised.value)


def test_the_fix_spells_the_denied_action_as_the_catalogue_does() -> None:
    # A service may write the action in its own case (IAM's names are case-insensitive);
    # the recorder keeps the catalogue's spelling.
    call = replace(
        denied(
            "sqs:sendmessage", QUEUE, "because no session policy allows the sqs:sendmessage action"
        ),
        actions=("sqs:SendMessage",),
    )
    document, _ = fix_policy(build(Record(LOCAL, (call,))), {"sqs:SendMessage": ["queue"]}.get)
    assert document["Statement"][0]["Action"] == "sqs:SendMessage"


def test_the_fix_grants_on_the_resource_aws_named_denied_not_others_the_record_lists() -> None:
    other = "arn:aws:sqs:us-east-1:123456789012:everything-else"
    call = replace(
        denied(
            "sqs:SendMessage", QUEUE, "because no session policy allows the sqs:SendMessage action"
        ),
        resources=(QUEUE, other),
    )
    document, _ = fix_policy(build(Record(LOCAL, (call,))), {"sqs:SendMessage": ["queue"]}.get)
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}
    ]

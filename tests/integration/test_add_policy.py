"""`--add-policy FILE`: try a fix on the role before deploying it, locally and remotely.

The drafts go through the same planning as the role's own policies (one more inline policy
each, named ``added:<file>``); a bad file is one line naming it, exit 2, nothing sent; the
function serves drafts only where its sudo policy says ``allowed-added-policies: true``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools import localaws
from devtools.iam_reference import Request, allowed
from tests.integration.test_cli import one_line_error

FIX = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:aws:sns:*:*:t"}],
}


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def sent_statements(dry_run: dict[str, Any]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = dry_run["Policy"]["Statement"] if dry_run["Policy"] else []
    for packed in dry_run["PoliciesNeeded"]:
        statements += packed["Document"]["Statement"]
    return statements


def test_a_draft_is_planned_with_the_roles_own_policies(
    cli: Any, task_role: dict[str, Any], tmp_path: Path, local_aws: Any
) -> None:
    fix = write(tmp_path, "fix.json", json.dumps(FIX))
    yaml_fix = write(
        tmp_path,
        "fix.yaml",
        "Statement:\n  - Effect: Allow\n    Action: [kms:Decrypt]\n    Resource: '*'\n",
    )
    before = cli("simulate", "--local", "--dry-run", "--role-name", task_role["name"])
    after = cli(
        "simulate", "--local", "--dry-run", "--role-name", task_role["name"],
        "--add-policy", fix, "--add-policy", yaml_fix,
    )  # fmt: skip
    assert after.returncode == 0, after.stderr
    without = sent_statements(json.loads(before.stdout))
    added = sent_statements(json.loads(after.stdout))
    # Judged by the reference evaluator: the drafts' grants are sent, and nothing else new.
    for action, resource in [
        ("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t"),
        ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/k"),
    ]:
        assert not allowed(without, Request(action, resource, {}))
        assert allowed(added, Request(action, resource, {}))
    assert not allowed(added, Request("sns:Publish", "arn:aws:sns:us-east-1:1:other", {}))
    for action, resource in [  # the role's own inline grants are all still sent
        ("s3:GetObject", "arn:aws:s3:::bucket/k"),
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q"),
        ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:123456789012:table/t"),
    ]:
        assert allowed(added, Request(action, resource, {}))
    assert "AssumeRole" not in local_aws.recorder.actions()


def test_a_draft_the_base_role_cannot_grant_is_refused_by_exact(
    cli: Any, task_role: dict[str, Any], tmp_path: Path
) -> None:
    # The base role has PowerUserAccess: no iam:CreateRole.
    fix = write(tmp_path, "iam.json", json.dumps(localaws.allow("iam:CreateRole")))
    result = cli(
        "simulate", "--local", "--exact", "--dry-run", "--role-name", task_role["name"],
        "--add-policy", fix,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "iam:CreateRole" in result.stderr
    assert "added:" in result.stderr


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json: [", "neither JSON nor YAML"),
        ("[1, 2]", "a policy document is a JSON object"),
        ('{"Statement": []}', "the policy has no Statement"),
        ('{"Statement": {"Effect": "Allow", "Action": "s3:*"}}', "needs exactly one of Resource"),
        (
            '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", '
            '"Resource": "*"}}',
            "names a Principal",
        ),
        ('{"Statement": {"Effect": "Permit", "Action": "s3:*", "Resource": "*"}}', "Effect"),
        ('{"Version": "2020-01-01", "Statement": []}', "Version must be 2012-10-17"),
    ],
)
def test_a_bad_file_is_one_line_naming_it_exit_2_and_nothing_sent(
    cli: Any, task_role: dict[str, Any], tmp_path: Path, local_aws: Any, text: str, problem: str
) -> None:
    bad = write(tmp_path, "draft.json", text)
    local_aws.recorder.clear()
    result = cli(
        "simulate", "--local", "--role-name", task_role["name"], "--add-policy", bad, "true"
    )
    one_line_error(result, 2, f"--add-policy': {bad}: ")
    assert problem in result.stderr
    assert local_aws.recorder.requests == []


def test_a_missing_file_or_one_given_twice_is_refused_before_any_request(
    cli: Any, task_role: dict[str, Any], tmp_path: Path, local_aws: Any
) -> None:
    local_aws.recorder.clear()
    missing = str(tmp_path / "nowhere.json")
    result = cli("simulate", "--role-name", task_role["name"], "--add-policy", missing, "true")
    one_line_error(result, 2, f"{missing}: No such file or directory")
    fix = write(tmp_path, "fix.json", json.dumps(FIX))
    result = cli(
        "simulate", "--role-name", task_role["name"], "--add-policy", fix, "--add-policy", fix,
        "true",
    )  # fmt: skip
    one_line_error(result, 2, f"{fix}: added twice")
    assert local_aws.recorder.requests == []


def test_the_session_runs_with_the_draft_added(
    cli: Any, task_role: dict[str, Any], tmp_path: Path, local_aws: Any
) -> None:
    fix = write(tmp_path, "fix.json", json.dumps(FIX))
    result = cli(
        "simulate", "--local", "--role-name", task_role["name"], "--add-policy", fix, "true"
    )
    assert result.returncode == 0, result.stderr
    [sent] = local_aws.recorder.sent("AssumeRole")
    statements = json.loads(sent["Policy"])["Statement"]
    assert allowed(statements, Request("sns:Publish", "arn:aws:sns:us-east-1:123456789012:t", {}))


def test_remote_sends_the_drafts_and_the_function_needs_its_sudo_policy_to_allow_them(
    cli: Any,
    remote_env: dict[str, str],
    task_role: dict[str, Any],
    tmp_path: Path,
    stand_in: Any,
    function_aws: Any,
) -> None:
    fix = write(tmp_path, "fix.json", json.dumps(FIX))
    args = ["simulate", "--role-name", task_role["name"], "--add-policy", fix]
    refused = cli(*args, "true", env=remote_env)
    one_line_error(refused, 1, "does not allow you to add policies")
    assert "allowed-added-policies: true" in refused.stderr
    function_aws.recorder.clear()
    served = cli(*args, "--function-name", "iam-sudo-drafts", "true", env=remote_env)
    assert served.returncode == 0, served.stderr
    [sent] = function_aws.recorder.sent("AssumeRole")
    assert "sns:Publish" in json.dumps(sent) or any(k.startswith("PolicyArns") for k in sent), (
        "the draft reaches the session policies"
    )
    log = json.loads(stand_in.functions["iam-sudo-drafts"].logs[-1])
    assert log["added_policies"] == [fix]


TEMPLATE = """\
Resources:
  Orders: {Type: AWS::DynamoDB::Table}
  NewTaskRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: app
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: !GetAtt Orders.Arn}
              - Effect: Allow
                Action: sqs:SendMessage
                Resource: !Sub "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:jobs"
"""


def test_a_role_that_does_not_exist_yet_is_simulated_from_its_template(
    cli: Any, tmp_path: Path, local_aws: Any, iam: Any
) -> None:
    template = write(tmp_path, "stack.yaml", TEMPLATE)
    args = ["simulate", "--local", "--role-name", "NewTaskRole", "--role-template", template]
    result = cli(*args, "--dry-run")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["Role"] == "arn:aws:iam::123456789012:role/NewTaskRole"
    sent = sent_statements(shown)
    queue = "arn:aws:sqs:us-east-1:123456789012:jobs"
    assert allowed(sent, Request("sqs:SendMessage", queue, {}))
    assert not allowed(sent, Request("dynamodb:GetItem", "*", {}))
    [narrowed] = [f for f in shown["Findings"] if f["Kind"] == "narrower"]
    assert narrowed["Policy"] == "app"
    assert "Fn::GetAtt Orders.Arn" in narrowed["Reason"]
    # What cannot be known before deployment makes the simulation inexact.
    refused = cli(*args, "--exact", "--dry-run")
    assert refused.returncode == 1
    assert "Fn::GetAtt Orders.Arn" in refused.stderr
    # And the session runs: the role never existed in IAM.
    local_aws.recorder.clear()
    ran = cli(*args, "true")
    assert ran.returncode == 0, ran.stderr
    assert all(sent.get("RoleName") != "NewTaskRole" for sent in local_aws.recorder.sent("GetRole"))
    [assumed] = local_aws.recorder.sent("AssumeRole")
    assert allowed(
        json.loads(assumed["Policy"])["Statement"], Request("sqs:SendMessage", queue, {})
    )


def test_a_template_is_local_only_and_a_bad_one_is_refused_before_any_request(
    cli: Any, tmp_path: Path, local_aws: Any
) -> None:
    template = write(tmp_path, "stack.yaml", TEMPLATE)
    local_aws.recorder.clear()
    remote = cli("simulate", "--role-name", "NewTaskRole", "--role-template", template, "true")
    one_line_error(remote, 2, "--role-template goes with --local")
    bad = write(tmp_path, "bad.yaml", "Resources: [1]\n")
    result = cli("simulate", "--local", "--role-name", "X", "--role-template", bad, "true")
    one_line_error(result, 2, f"{bad}: not a CloudFormation template")
    parameter = cli(
        "simulate", "--local", "--role-name", "X", "--template-parameter", "Stage=dev", "true"
    )
    one_line_error(parameter, 2, "--template-parameter goes with --role-template")
    assert local_aws.recorder.requests == []


def test_console_takes_the_same_option_and_refuses_it_with_assume(
    cli: Any, tmp_path: Path, local_aws: Any
) -> None:
    bad = write(tmp_path, "bad.json", "[]")
    local_aws.recorder.clear()
    result = cli("console", "--local", "--role-name", "x", "--add-policy", bad, "--url")
    one_line_error(result, 2, f"{bad}: a policy document is a JSON object")
    fix = write(tmp_path, "fix.json", json.dumps(FIX))
    result = cli("console", "--assume", "--role-name", "x", "--add-policy", fix, "--url")
    one_line_error(result, 2, "--assume assumes the role itself: drop --add-policy")
    assert local_aws.recorder.requests == []

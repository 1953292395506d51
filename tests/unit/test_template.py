"""A role that does not exist yet, from a CloudFormation template: what resolves
("Intrinsic function reference", CloudFormation User Guide), and what is narrowed —
never guessed, never wider — and reported."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.iam_reference import Request, allowed
from iam_sudo.core.exceptions import AmbiguousRole, InvalidRequest, RoleNotFound, UnsupportedRole
from iam_sudo.core.template import load_template, template_role

ACCOUNT = "123456789012"
YAML = """\
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Orders: {Type: AWS::DynamoDB::Table}
  TaskRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "orders-${Stage}-TaskRole"
      Path: /app/
      AssumeRolePolicyDocument:
        Statement:
          - {Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}
      ManagedPolicyArns:
        - !Sub "arn:${AWS::Partition}:iam::aws:policy/AmazonS3ReadOnlyAccess"
        - !Ref SomeManagedPolicy
      Tags: [{Key: team, Value: orders}]
      Policies:
        - PolicyName: orders
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [dynamodb:GetItem]
                Resource:
                  - !GetAtt Orders.Arn
                  - !Sub "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/static"
              - Effect: Allow
                Action: sqs:SendMessage
                Resource:
                  !Join [":", ["arn:aws:sqs", !Ref "AWS::Region", !Ref "AWS::AccountId", "q"]]
              - Effect: Deny
                Action: s3:DeleteObject
                Resource: !Sub "${Bucket.Arn}/*"
              - Effect: Allow
                Action: s3:PutObject
                Resource: "*"
                Condition: {StringEquals: {"s3:x-amz-acl": !Ref Acl}}
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref TaskRole]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: sns:Publish
            Resource: !Sub "arn:aws:sns:${AWS::Region}:${AWS::AccountId}:t"
  Other:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Statement: []}
"""


def picked(name: str = "TaskRole", **kwargs: Any) -> Any:
    options: dict[str, Any] = {"account": ACCOUNT, "partition": "aws", "region": "eu-west-1"}
    return template_role(load_template("t.yaml", YAML), name, **{**options, **kwargs})


def allows(role: Any, action: str, resource: str) -> bool:
    statements = [s for d in role.inline.values() for s in d["Statement"]]
    return allowed(statements, Request(action, resource, {}))


def test_what_resolves_is_the_role_as_it_will_be_deployed() -> None:
    role = picked()
    assert role.logical_id == "TaskRole"
    assert role.role.name == "orders-dev-TaskRole"
    assert role.role.arn == f"arn:aws:iam::{ACCOUNT}:role/app/orders-dev-TaskRole"
    assert role.details.tags == {"team": "orders"}
    assert role.managed_arns == ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",)
    assert [str(p) for p in role.role.principals] == ["Service:ecs-tasks.amazonaws.com"]
    assert allows(role, "sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q")
    assert allows(role, "dynamodb:GetItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/static")
    # AWS::IAM::Policy resources naming the role in Roles are its inline policies too.
    assert allows(role, "sns:Publish", f"arn:aws:sns:eu-west-1:{ACCOUNT}:t")
    # A parameter's value given overrides its Default.
    assert picked(parameters={"Stage": "prod"}).role.name == "orders-prod-TaskRole"


def test_what_cannot_be_known_narrows_the_session_and_is_reported() -> None:
    role = picked()
    # The table's ARN is the stack's: the Allow keeps only the value it can know.
    assert not allows(role, "dynamodb:GetItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/x")
    # A Deny on an unknown resource denies everywhere: more than the role, never less.
    assert not allows(role, "s3:DeleteObject", "arn:aws:s3:::any/thing")
    # An Allow with an unknown condition value goes.
    assert not allows(role, "s3:PutObject", "arn:aws:s3:::any/thing")
    lines = [finding.line for finding in role.findings]
    assert all(finding.kind == "narrower" for finding in role.findings)
    assert any(
        "Fn::GetAtt Orders.Arn" in line and "unknown values left out" in line for line in lines
    )
    assert any(
        "Bucket.Arn" in line and "this Deny is denied more broadly" in line for line in lines
    )
    assert any("Ref Acl" in line and "this Allow is left out" in line for line in lines)
    assert any("Ref SomeManagedPolicy" in line for line in lines)


def test_without_a_region_what_needs_it_is_unknown_too() -> None:
    role = picked(region=None)
    assert not allows(role, "sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q")
    assert any("AWS::Region" in finding.line for finding in role.findings)


def test_a_role_is_picked_by_logical_id_or_name_and_never_guessed() -> None:
    assert picked("orders-dev-TaskRole").logical_id == "TaskRole"
    assert picked("Other").role.name == "Other"
    with pytest.raises(RoleNotFound, match="no AWS::IAM::Role matching 'Nope'"):
        picked("Nope")
    with pytest.raises(AmbiguousRole):
        picked("e")


def test_an_unknown_permissions_boundary_is_refused() -> None:
    text = YAML.replace(
        "      Path: /app/\n", "      Path: /app/\n      PermissionsBoundary: !Ref B\n"
    )
    with pytest.raises(UnsupportedRole, match="permissions boundary of TaskRole cannot be known"):
        template_role(
            load_template("t.yaml", text), "TaskRole", account=ACCOUNT, partition="aws", region=None
        )


@pytest.mark.parametrize(
    ("text", "problem"),
    [("a: [", "neither JSON nor YAML"), ("{}", "not a CloudFormation template")],
)
def test_a_file_that_is_no_template_is_refused_naming_it(text: str, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=f"t.yaml: {problem}"):
        load_template("t.yaml", text)


def test_a_template_with_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["Resources:", "  R:", "    Type: AWS::IAM::Role", "    Metadata:"]
    lines.append("      k0: &a0 [x, x, x, x, x, x, x, x, x, x]")
    for level in range(1, 9):
        lines.append(f"      k{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    with pytest.raises(InvalidRequest, match=r"^t\.yaml: anchors and aliases"):
        load_template("t.yaml", "\n".join(lines) + "\n")

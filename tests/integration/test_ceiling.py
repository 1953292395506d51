"""The base role is the ceiling, through the client, the CLI and the function on the local AWS.

The matching rules and their sources in the IAM User Guide: tests/unit/test_ceiling.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.test_ceiling import DEPLOY, POWER_USER

ISSUE_LINE = (
    "iam:PassRole, iam:CreateRole (inline policy deploy, statement 1): the base role "
    "IAMSudoUser cannot grant them (PowerUserAccess allows NotAction iam:*)"
)


def test_the_local_aws_serves_power_user_access_as_aws_documents_it(iam: Any) -> None:
    """AWS Managed Policy reference, PowerUserAccess, v12 (default, edited 2026-02-12)."""
    version = iam.get_policy(PolicyArn=POWER_USER)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=POWER_USER, VersionId=version)["PolicyVersion"]
    assert version == "v12"
    assert document["Document"]["Statement"] == [
        {
            "Effect": "Allow",
            "NotAction": ["iam:*", "organizations:*", "account:*"],
            "Resource": "*",
        },
        {
            "Action": [
                "account:GetAccountInformation",
                "account:GetGovCloudAccountInformation",
                "account:GetPrimaryEmail",
                "account:ListRegions",
                "iam:CreateServiceLinkedRole",
                "iam:DeleteServiceLinkedRole",
                "iam:ListRoles",
                "organizations:DescribeEffectivePolicy",
                "organizations:DescribeOrganization",
            ],
            "Effect": "Allow",
            "Resource": "*",
        },
    ]


@pytest.fixture
def deploy_role(iam: Any, prefix: str) -> str:
    from devtools import localaws

    name = f"{prefix}app-DeployFnRole-X1"
    localaws.create_role(iam, name, inline={"deploy": DEPLOY})
    return name


def test_dry_run_reports_what_the_base_role_cannot_grant(cli: Any, deploy_role: str) -> None:
    result = cli("simulate", "--local", "--dry-run", "--role-name", deploy_role.removesuffix("-X1"))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert ISSUE_LINE in shown["Fidelity"]
    narrower = [f for f in shown["Findings"] if f["Kind"] == "narrower"]
    assert narrower == [
        {
            "Policy": "deploy",
            "Statement": 1,
            "Actions": ["iam:PassRole", "iam:CreateRole"],
            "ConditionKeys": [],
            "Kind": "narrower",
            "Reason": "the base role IAMSudoUser cannot grant them (PowerUserAccess allows "
            "NotAction iam:*)",
        }
    ]
    kinds = {f["Kind"] for f in shown["Findings"]}
    assert "not-reproduced" in kinds  # the resource-based policies note, as before
    assert len(shown["Findings"]) == len(shown["Fidelity"])


def test_exact_refuses_a_narrower_simulation_one_line_per_narrowing(
    cli: Any, deploy_role: str, local_aws: Any
) -> None:
    result = cli("simulate", "--local", "--exact", "--role-name", deploy_role, "--format", "env")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"iam-sudo: error: role {deploy_role} cannot be simulated")
    assert result.stderr.splitlines()[1:] == [ISSUE_LINE]
    assert "Traceback" not in result.stderr
    assert "AssumeRole" not in local_aws.recorder.actions()


def test_exact_simulates_a_role_within_the_ceiling(
    cli: Any, iam: Any, prefix: str, local_aws: Any
) -> None:
    from devtools import localaws

    name = f"{prefix}app-ReaderRole"
    localaws.create_role(
        iam,
        name,
        inline={"read": localaws.allow("s3:GetObject"), "roles": localaws.allow("iam:ListRoles")},
        managed=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
    )
    result = cli("simulate", "--local", "--exact", "--role-name", name, "--format", "env")
    assert result.returncode == 0, result.stderr
    assert "AWS_ACCESS_KEY_ID=" in result.stdout
    assert local_aws.recorder.actions().count("AssumeRole") == 1


async def test_the_library_raises_inexact_simulation_and_returns_findings(
    aws_env: dict[str, str], deploy_role: str, local_aws: Any
) -> None:
    from iam_sudo import IamSudo, InexactSimulation

    async with IamSudo() as sudo:
        with pytest.raises(InexactSimulation) as raised:
            await sudo.simulate(deploy_role, exact=True)
        session = await sudo.session(deploy_role, explain=True)
        again = await sudo.session(deploy_role, explain=True)
    assert raised.value.lines == [ISSUE_LINE]
    [finding] = [f for f in session.findings if f.kind == "narrower"]
    assert (finding.policy, finding.statement) == ("deploy", 1)
    assert finding.actions == ("iam:PassRole", "iam:CreateRole")
    assert again.findings == session.findings
    # The base role's policies are read once per client, however many sessions.
    assert local_aws.recorder.actions().count("ListAttachedRolePolicies") == 1 + 3
    assert "AssumeRole" not in local_aws.recorder.actions()


async def test_a_boundary_variant_is_the_ceiling_of_a_role_with_that_boundary(
    aws_env: dict[str, str], iam: Any, prefix: str
) -> None:
    from devtools import localaws
    from iam_sudo import IamSudo, InexactSimulation
    from iam_sudo.core.roles import boundary_variant_name

    boundary_doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:PassRole"], "Resource": "*"}],
    }
    boundary = iam.create_policy(
        PolicyName=f"{prefix}Boundary", PolicyDocument=json.dumps(boundary_doc)
    )["Policy"]["Arn"]
    localaws.create_role(
        iam,
        boundary_variant_name("IAMSudoUser", boundary),
        trust=localaws.trust_policy(("AWS", f"arn:aws:iam::{localaws.ACCOUNT_ID}:root")),
        inline=localaws.guard(),
        managed=[POWER_USER],
        PermissionsBoundary=boundary,
    )
    name = f"{prefix}Bounded-DeployRole"
    localaws.create_role(iam, name, inline={"deploy": DEPLOY}, PermissionsBoundary=boundary)
    async with IamSudo() as sudo:
        with pytest.raises(InexactSimulation) as raised:
            await sudo.session(name, exact=True)
    # iam:CreateRole is outside the role's own boundary: only iam:PassRole is narrower.
    assert raised.value.lines == [
        "iam:PassRole (inline policy deploy, statement 1): the base role "
        f"{boundary_variant_name('IAMSudoUser', boundary)} cannot grant them "
        "(PowerUserAccess allows NotAction iam:*)"
    ]


def test_the_function_refuses_an_inexact_simulation_with_the_lines(
    cli: Any, remote_env: dict[str, str], deploy_role: str, stand_in: Any, function_aws: Any
) -> None:
    function_aws.recorder.clear()
    result = cli(
        "simulate", "--exact", "--role-name", deploy_role, "--profile", "p", env=remote_env
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [ISSUE_LINE]
    assert "AssumeRole" not in function_aws.recorder.actions()
    log = json.loads(stand_in.functions["iam-sudo"].logs[-1])
    assert log["decision"] == "inexact"
    assert log["exact"] is True
    # Without --exact the function simulates it, narrower, as before.
    result = cli("simulate", "--role-name", deploy_role, "--profile", "p", env=remote_env)
    assert result.returncode == 0, result.stderr


def test_roles_says_which_roles_simulate_exactly_under_the_base_role(
    cli: Any, iam: Any, prefix: str, deploy_role: str
) -> None:
    from devtools import localaws

    reader = f"{prefix}app-ReaderRole"
    localaws.create_role(iam, reader, inline={"read": localaws.allow("s3:GetObject")})
    result = cli("roles", "--local", "--exact", "--json")
    assert result.returncode == 0, result.stderr
    listed = {r["name"]: r for r in json.loads(result.stdout)}
    assert listed[reader]["exact"] is True
    assert listed[reader]["narrowings"] == []
    assert listed[deploy_role]["exact"] is False
    assert listed[deploy_role]["narrowings"] == [ISSUE_LINE]
    text = cli("roles", "--local", "--exact").stdout.splitlines()
    assert f"{reader}\tService:ecs-tasks.amazonaws.com\texact" in text
    assert f"{deploy_role}\tService:ecs-tasks.amazonaws.com\tnarrower (1)" in text
    refused = cli("roles", "--exact")
    assert refused.returncode == 2
    assert "--exact goes with --local" in refused.stderr


async def test_an_allow_the_role_never_gets_is_not_a_narrowing_of_the_ceiling(
    aws_env: dict[str, str], iam: Any, prefix: str
) -> None:
    from devtools import localaws
    from iam_sudo import IamSudo

    never = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "platform"}},
            },
        ],
    }
    name = f"{prefix}Untagged-Role"
    localaws.create_role(iam, name, inline={"p": never})  # no team tag: never holds
    async with IamSudo() as sudo:
        session = await sudo.session(name, exact=True)
    kinds = [(f.kind, f.statement) for f in session.findings if f.policy == "p"]
    assert kinds == [("exact", 2)]

"""Roles of other duties are never base roles; a base role carries the packed-policy Deny."""

from pathlib import Path
from typing import Any

import pulumi
import pytest

from devtools import pulumi_program
from iam_sudo import Role, SudoPolicy, UnsafeBaseRole
from iam_sudo.core.duties import (
    GUARD_POLICY_NAME,
    PACKED_POLICY_WRITES,
    guards_packed_policies,
    packed_policies_arn,
    packed_policy_guard,
)
from tests.conftest import ALLOW_ALL_POLICY

ACCOUNT = "123456789012"
GUARD = packed_policy_guard(packed_policies_arn("aws", ACCOUNT))
ANY = 'allowed-role-names: ["*"]\nallowed-principals: [{"*": "*"}]\n'
TASK = Role(
    "TaskRole",
    f"arn:aws:iam::{ACCOUNT}:role/TaskRole",
    {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]},
)


def deny(**statement: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", **statement}]}


def test_the_program_s_guard_is_a_guard_in_its_account_and_partition_only() -> None:
    assert guards_packed_policies(GUARD, "aws", ACCOUNT)
    assert not guards_packed_policies(GUARD, "aws", "111111111111")
    assert not guards_packed_policies(GUARD, "aws-cn", ACCOUNT)
    china = packed_policy_guard(packed_policies_arn("aws-cn", ACCOUNT))
    assert guards_packed_policies(china, "aws-cn", ACCOUNT)


@pytest.mark.parametrize(
    ("document", "guards"),
    [
        (deny(Action="iam:*", Resource="*"), True),
        (deny(Action="*", Resource="arn:aws:iam::*:policy/*"), True),
        (deny(Action=["IAM:CreatePolicyVersion", "iam:*Policy*", "iam:*Tag*"], Resource="*"), True),
        (deny(NotAction="s3:*", Resource="*"), True),
        (deny(NotAction="iam:DeletePolicy", Resource="*"), False),  # one write left out
        (deny(Action=list(PACKED_POLICY_WRITES[:-1]), Resource="*"), False),
        # Only some packed policies: a name after the prefix is not all of them.
        (deny(Action="iam:*", Resource=f"arn:aws:iam::{ACCOUNT}:policy/iam-sudo/a*"), False),
        (deny(Action="iam:*", Resource=f"arn:aws:iam::{ACCOUNT}:policy/other/*"), False),
        # A condition may not hold; NotResource and policy variables are not read: none count.
        (deny(Action="iam:*", Resource="*", Condition={"Bool": {"aws:ViaAWSService": "1"}}), False),
        (deny(Action="iam:*", NotResource="arn:aws:s3:::*"), False),
        (deny(Action="iam:*", Resource="arn:aws:iam::${aws:PrincipalAccount}:policy/*"), False),
        ({"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}, False),
        ({"Statement": "nonsense"}, False),
        ({"Statement": 5}, False),
        (None, False),
    ],
)  # fmt: skip
def test_only_an_unconditional_deny_of_every_write_on_every_packed_policy_guards(
    document: Any, guards: bool
) -> None:
    # IAM User Guide, "IAM JSON policy elements: Action / NotAction / Resource": actions
    # match case-insensitively with * and ?; a Resource * at the end matches across colons.
    assert guards_packed_policies(document, "aws", ACCOUNT) is guards


@pytest.mark.parametrize(
    "name",
    [
        "iam-sudo-reader",
        "IAM-SUDO-READER",  # IAM role names are unique case-insensitively
        "iam-sudo-execution",
        "OrganizationAccountAccessRole",
        "AWSCloudFormationStackSetExecutionRole",
        "stacksets-exec-0123456789abcdef0123456789abcdef",
        "AWSControlTowerExecution",
    ],
)
def test_roles_of_other_duties_are_refused_whatever_the_globs(name: str) -> None:
    policy = SudoPolicy.from_yaml(ANY + 'allowed-base-roles: ["*"]\n')
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    assert not policy.allows_base_role(arn)
    assert not policy.allows_base_role_for_anyone(arn)
    with pytest.raises(UnsafeBaseRole, match=rf"the base role {arn} is .*never a base role"):
        policy.check(TASK, arn)
    with pytest.raises(UnsafeBaseRole):
        policy.check_not_reserved(name)
    policy.check(TASK, f"arn:aws:iam::{ACCOUNT}:role/IAMSudoUser")


def test_configured_names_are_reserved_too() -> None:
    policy = SudoPolicy.default().reserving(
        reader_role="corp-reader", function_names=("sudo-eu", None), deploy_role="Deployer"
    )
    for name, duty in (
        ("corp-reader", "iam-sudo's spoke reader"),
        ("sudo-eu-execution", "the execution role of the function sudo-eu"),
        ("Deployer", "iam-sudo's spoke deploy role"),
        ("iam-sudo-reader", "iam-sudo's spoke reader"),  # the defaults stay
    ):
        assert policy.duty_of(f"arn:aws-us-gov:iam::{ACCOUNT}:role/{name}") == duty
    assert SudoPolicy.default().duty_of("corp-reader") is None


def _roles(program: pulumi_program.ProgramRun) -> dict[tuple[str, str], dict[str, str]]:
    """(account, role name) -> {inline policy name: document} of every role registered."""
    import json

    roles: dict[tuple[str, str], dict[str, str]] = {}
    for role in program.of_type("aws:iam/role:Role"):
        account = program.account_of(role)
        roles[(account, role.inputs["name"])] = {
            p.inputs["name"]: json.loads(p.inputs["policy"])
            for p in program.of_type("aws:iam/rolePolicy:RolePolicy")
            if program.account_of(p) == account and p.inputs["role"] in (
                role.inputs["name"], f"{role.inputs['name']}-id"
            )
        }  # fmt: skip
    return roles


def test_every_role_the_program_deploys_is_a_guarded_base_role_or_reserved(
    tmp_path: Path,
) -> None:
    """One list: what the Pulumi program creates for other duties is what the check
    refuses, and every base role it creates (hub, spokes, boundary variants) passes it."""
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/Boundary"
    program = pulumi_program.run(
        {
            "policy": ALLOW_ALL_POLICY.replace("role/IAMSudoUser", "role/IAMSudoUser*"),
            "functionName": "sudo-eu",
            "boundaryVariants": [boundary],
            "spokeAccounts": ["111111111111"],
        },
        tmp_path,
    )
    policy = SudoPolicy.default().reserving(function_names=("sudo-eu",))
    roles = _roles(program)
    base = {key for key in roles if key[1].startswith("IAMSudoUser")}
    assert len(base) == 4  # the base role and its variant, in the hub and the spoke
    for (account, name), inline in roles.items():
        arn = f"arn:aws:iam::{account}:role/{name}"
        if (account, name) in base:
            assert policy.duty_of(arn) is None
            assert guards_packed_policies(inline[GUARD_POLICY_NAME], "aws", account), arn
        else:
            assert policy.duty_of(arn) is not None, arn
            assert GUARD_POLICY_NAME not in inline


@pytest.mark.parametrize(
    ("config", "name"),
    [
        ({"baseRoleName": "iam-sudo-reader"}, "iam-sudo-reader"),
        ({"baseRoleName": "ops-execution", "functionName": "ops"}, "ops-execution"),
        ({"baseRoleName": "Deployer", "spokeDeployRole": "Deployer"}, "Deployer"),
    ],
)
def test_the_program_refuses_a_base_role_named_as_a_role_of_another_duty(
    tmp_path: Path, config: dict[str, str], name: str
) -> None:
    policy = ANY + 'allowed-base-roles: ["arn:aws:iam::*:role/*"]\n'
    with pytest.raises(pulumi.RunError, match=rf"base role arn:aws:iam::{ACCOUNT}:role/{name}, "):
        pulumi_program.run({"policy": policy, **config}, tmp_path)

"""The Pulumi program's function and grants, run: the handler on a real Python with the
program's environment, and the IAM actions granted against what a simulation calls.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import iam_sudo.aws.iam_reader
import iam_sudo.client
from devtools import localaws, pulumi_program
from iam_sudo import IamSudo
from iam_sudo_deploy.permissions import IAM_CREATE_ACTIONS, IAM_READ_ACTIONS
from tests.conftest import ALLOW_ALL_POLICY
from tests.unit.test_component import FUNCTION, statements_by_sid


def test_the_function_runs_the_handler_on_a_current_python_with_the_programs_env(
    program: pulumi_program.ProgramRun,
) -> None:
    function = program.one(FUNCTION)
    assert function.inputs["name"] == "iam-sudo"
    assert function.inputs["handler"] == "handler.handler"
    runtime = function.inputs["runtime"]
    assert runtime.startswith("python3.")
    assert int(runtime.split(".")[1]) >= 12
    assert function.inputs["role"] == "arn:aws:iam::123456789012:role/iam-sudo-execution"
    assert program.function_env == {
        "IAM_SUDO_POLICY": ALLOW_ALL_POLICY,
        "IAM_SUDO_BASE_ROLE": "arn:aws:iam::123456789012:role/IAMSudoUser",
        "IAM_SUDO_BASE_ROLE_ACCOUNTS": "123456789012",
    }


async def test_the_iam_actions_granted_are_exactly_those_a_simulation_calls(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    program: pulumi_program.ProgramRun,
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(iam_sudo.aws.iam_reader, "IAM_PAGE_SIZE", 1)
    localaws.create_role(
        iam,
        f"{prefix}Full",
        inline={"p": localaws.allow("s3:*")},
        managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
    verbose = localaws.too_large_inline("v")
    localaws.create_role(iam, f"{prefix}Packed", inline=verbose)
    async with IamSudo() as sudo:
        await sudo.simulate(f"{prefix}Full")
        # A role that needs packing, with a policy attached after the listings were made.
        new = iam.create_policy(
            PolicyName=f"{prefix}New", PolicyDocument=json.dumps(localaws.allow("sns:Publish"))
        )
        iam.attach_role_policy(RoleName=f"{prefix}Packed", PolicyArn=new["Policy"]["Arn"])
        await sudo.simulate(f"{prefix}Packed")
    called = {f"iam:{action}" for action in local_aws.recorder.actions("iam")}
    statements = statements_by_sid(program)
    granted = {
        action
        for sid in ("ListRolesAndPolicies", "ReadRoles", "ReadPolicies", "CreateSessionPolicies")
        for action in statements[sid]["Action"]
    }
    assert called == granted == set(IAM_READ_ACTIONS + IAM_CREATE_ACTIONS)

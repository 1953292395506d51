"""`iam-sudo simulate` (remote) -> Lambda's Invoke API -> the handler from the archive -> moto."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools import localaws
from iam_sudo import IamSudo
from tests.conftest import PRINT_IDENTITY

ECS = "Service:ecs-tasks.amazonaws.com"


@pytest.fixture
def roles(iam: Any, prefix: str) -> dict[str, str]:
    task = f"{prefix}Allowed-TaskRole"
    function = f"{prefix}Allowed-FnRole"
    other = f"{prefix}Other-TaskRole"
    localaws.create_role(iam, task, inline={"p": localaws.allow("s3:GetObject")})
    localaws.create_role(
        iam,
        function,
        trust=localaws.trust_policy(("Service", "lambda.amazonaws.com")),
        inline={"p": localaws.allow("lambda:*")},
    )
    localaws.create_role(iam, other, inline={"p": localaws.allow("sqs:*")})
    return {"task": task, "function": function, "other": other}


def invoke(stand_in: Any, function: str, payload: bytes) -> dict[str, Any]:
    reply = localaws.client("lambda", stand_in.url).invoke(FunctionName=function, Payload=payload)
    return {"error": reply.get("FunctionError"), "payload": json.loads(reply["Payload"].read())}


def last_log(stand_in: Any, function: str = "iam-sudo") -> dict[str, Any]:
    line: dict[str, Any] = json.loads(stand_in.functions[function].logs[-1])
    return line


def test_remote_is_the_default_and_runs_the_command_as_the_simulated_role(
    cli: Any,
    remote_env: dict[str, str],
    roles: dict[str, str],
    local_aws: localaws.LocalAws,
    function_aws: localaws.LocalAws,
    stand_in: Any,
) -> None:
    function_aws.recorder.clear()
    result = cli(
        "simulate",
        "--role-name",
        roles["task"],
        sys.executable,
        "-c",
        PRINT_IDENTITY,
        env=remote_env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"assumed-role/IAMSudoUser/iam-sudo-{roles['task']}")
    assert local_aws.recorder.requests == [], "the client signs its proof, sends no AWS call"
    [sent] = function_aws.recorder.sent("AssumeRole")
    assert json.loads(sent["Policy"])["Statement"][0]["Action"] == "s3:GetObject"
    log = last_log(stand_in)
    assert log["decision"] == "allow"
    assert log["requested_role"] == roles["task"]
    assert log["resolved_role"].endswith(f":role/{roles['task']}")
    assert log["base_role"] == "arn:aws:iam::123456789012:role/IAMSudoUser"
    assert isinstance(log["duration_ms"], float)
    # moto names every caller of its default credentials as its root user.
    assert log["caller"] == "arn:aws:sts::123456789012:user/moto"
    assert log["source_identity"] == "moto"
    assert sent["SourceIdentity"] == "moto"


def test_remote_saves_a_profile_and_never_logs_or_prints_the_secret(
    cli: Any,
    remote_env: dict[str, str],
    roles: dict[str, str],
    credentials_file: Path,
    stand_in: Any,
) -> None:
    result = cli(
        "simulate", "--remote", "--role-name", roles["task"], "--profile", "remote", env=remote_env
    )
    assert result.returncode == 0, result.stderr
    secret = next(
        line.split("=", 1)[1].strip()
        for line in credentials_file.read_text().splitlines()
        if line.startswith("aws_secret_access_key")
    )
    logs = "\n".join(stand_in.functions["iam-sudo"].logs)
    assert secret not in logs
    assert secret not in result.stdout + result.stderr


async def test_the_library_invokes_the_function(
    remote_env: dict[str, str], roles: dict[str, str]
) -> None:
    async with IamSudo() as sudo:
        credentials = await sudo.simulate_remote(roles["task"], principal=ECS)
    assert credentials.access_key_id.startswith("ASIA")


@pytest.mark.parametrize(
    ("function", "args", "message", "error_type"),
    [
        (
            "iam-sudo-named",
            ["--role-name", "{other}"],
            "sudo policy allows no role matching name '{other}'",
            "SudoPolicyDenied",
        ),
        (
            "iam-sudo-ecs-only",
            ["--role-name", "{function}"],
            "sudo policy allows no role matching name '{function}'",
            "SudoPolicyDenied",
        ),
        (
            "iam-sudo-ecs-only",
            ["--role-name", "{prefix}Allowed-", "--principal", "Service:lambda.amazonaws.com"],
            "allows no role matching name '{prefix}Allowed-' "
            "and principal Service:lambda.amazonaws.com",
            "SudoPolicyDenied",
        ),
        (
            "iam-sudo",
            ["--role-name", "{task}", "--base-role", "arn:aws:iam::123456789012:role/Admin"],
            "does not allow the base role arn:aws:iam::123456789012:role/Admin",
            "SudoPolicyDenied",
        ),
        (
            "iam-sudo",
            [
                "--role-name",
                "{task}",
                "--base-role",
                "arn:aws-cn:iam::123456789012:role/IAMSudoUser",
            ],
            "does not allow the base role arn:aws-cn:",
            "SudoPolicyDenied",
        ),
        (
            "iam-sudo",
            [
                "--role-name",
                "{task}",
                "--base-role",
                "arn:aws:iam::999999999999:role/IAMSudoUser",
            ],
            "(base roles must be in account 123456789012)",
            "SudoPolicyDenied",
        ),
        ("iam-sudo", ["--role-name", "{prefix}Allowed-"], "2 roles match", "AmbiguousRole"),
        ("iam-sudo", ["--role-name", "{prefix}Nothing"], "no role matches", "RoleNotFound"),
        (
            "iam-sudo-without-IAM_SUDO_POLICY",
            ["--role-name", "{task}"],
            "IAM_SUDO_POLICY is not set",
            "ConfigurationError",
        ),
        (
            "iam-sudo-without-IAM_SUDO_BASE_ROLE",
            ["--role-name", "{task}"],
            "IAM_SUDO_BASE_ROLE is not set",
            "ConfigurationError",
        ),
    ],
)
def test_refusals_are_one_line_exit_1_and_nothing_written(
    cli: Any,
    remote_env: dict[str, str],
    roles: dict[str, str],
    prefix: str,
    credentials_file: Path,
    stand_in: Any,
    function_aws: localaws.LocalAws,
    function: str,
    args: list[str],
    message: str,
    error_type: str,
) -> None:
    function_aws.recorder.clear()
    argv = [a.format(prefix=prefix, **roles) for a in args]
    result = cli(
        "simulate", "--function-name", function, *argv, "--profile", "p", "true", env=remote_env
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message.format(prefix=prefix, **roles) in lines[0]
    assert not credentials_file.exists()
    assert "AssumeRole" not in function_aws.recorder.actions()
    log = last_log(stand_in, function)
    assert log["error"].startswith(error_type)
    if error_type == "SudoPolicyDenied":
        assert log["decision"] == "deny"
        # The operator's log names the one forbidden role that matched, where there is one.
        resolved = log["resolved_role"]
        assert resolved is None or resolved.startswith("arn:aws:iam::123456789012:role/")
        assert log["base_role"].startswith("arn:aws")
    else:
        assert log["decision"] == "error"


def test_the_function_name_comes_from_the_environment_too(
    cli: Any, remote_env: dict[str, str], roles: dict[str, str]
) -> None:
    env = {**remote_env, "IAM_SUDO_FUNCTION": "iam-sudo-named"}
    result = cli("simulate", "--role-name", roles["other"], "true", env=env)
    assert result.returncode == 1
    assert "sudo policy allows no role matching name" in result.stderr


def test_a_missing_function_says_how_to_deploy_it(cli: Any, remote_env: dict[str, str]) -> None:
    result = cli("simulate", "--function-name", "nope", "--role-name", "x", "true", env=remote_env)
    assert result.returncode == 1
    assert "Function not found: nope" in result.stderr
    assert "pulumi up" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# The function the stand-in deploys as "iam-sudo": its ARN is every proof's audience.
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo"


async def signed_proof(audience: str = FUNCTION_ARN) -> dict[str, Any]:
    """A caller proof signed with the test's credentials, as the client makes it."""
    async with IamSudo() as sudo:
        proof = await sudo.transport.identity_proof(audience)
    return proof.to_event()


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "no role_name"),
        ({"role_name": "x", "admin": True}, "unknown field 'admin'"),
        ({"role_name": 1}, "role_name must be a string, got int"),
        ({"role_name": ""}, "role_name must not be empty"),
        ({"role_name": "r" * 513}, "longer than 512"),
        ({"role_name": "x", "principal": "nocolon"}, "expected TYPE:ID"),
    ],
)
async def test_malformed_requests_are_function_errors_without_internals(
    remote_env: dict[str, str],
    stand_in: Any,
    function_aws: localaws.LocalAws,
    event: dict[str, Any],
    message: str,
) -> None:
    payload = json.dumps({**event, "proof": await signed_proof()}).encode()
    function_aws.recorder.clear()
    reply = invoke(stand_in, "iam-sudo", payload)
    assert reply["error"] == "Unhandled"
    assert message in reply["payload"]["errorMessage"]
    assert reply["payload"]["errorType"] in ("InvalidRequest", "InvalidPrincipal")
    # Only the handler's own raise: no frame of iam_sudo, boto3 or the runtime leaves.
    trace = reply["payload"]["stackTrace"]
    assert len(trace) <= 1
    assert all("handler.py" in frame for frame in trace)
    assert function_aws.recorder.actions() == ["GetCallerIdentity"], "only the proof reached AWS"
    assert last_log(stand_in)["decision"] == "invalid"


@pytest.mark.parametrize("payload", [b"[]", b'"TaskRole"', b"{}", b'{"role_name": "x"}'])
def test_a_request_without_a_proof_is_unauthenticated_before_anything_else(
    stand_in: Any, function_aws: localaws.LocalAws, payload: bytes
) -> None:
    function_aws.recorder.clear()
    reply = invoke(stand_in, "iam-sudo", payload)
    assert reply["payload"]["errorType"] == "Unauthenticated"
    assert reply["payload"]["errorMessage"] == "the caller's identity proof was refused"
    assert function_aws.recorder.requests == [], "nothing reaches AWS"
    assert last_log(stand_in)["decision"] == "unauthenticated"


def test_the_function_fits_a_large_role_exactly_as_the_local_path_does(
    cli: Any,
    remote_env: dict[str, str],
    iam: Any,
    prefix: str,
    function_aws: localaws.LocalAws,
    stand_in: Any,
) -> None:
    name = f"{prefix}Allowed-LargeRole"
    inline = localaws.too_large_inline("r")
    localaws.create_role(iam, name, inline=inline)
    local = cli("simulate", "--local", "--dry-run", "--role-name", name, env=remote_env)
    planned = json.loads(local.stdout)
    function_aws.recorder.clear()
    result = cli("simulate", "--role-name", name, "--", "true", env=remote_env)
    assert result.returncode == 0, result.stderr
    [sent] = function_aws.recorder.sent("AssumeRole")
    arns = [v for k, v in sent.items() if k.startswith("PolicyArns.member.")]
    assert sorted(arns) == sorted(planned["PolicyArns"])
    assert function_aws.recorder.actions().count("CreatePolicy") == len(planned["PoliciesNeeded"])
    assert last_log(stand_in)["decision"] == "allow"


def test_roles_lists_what_the_verified_caller_may_simulate(
    cli: Any, remote_env: dict[str, str], roles: dict[str, str], stand_in: Any
) -> None:
    result = cli("roles", "--function-name", "iam-sudo-ecs-only", "--json", env=remote_env)
    assert result.returncode == 0, result.stderr
    names = {r["name"] for r in json.loads(result.stdout)}
    assert roles["task"] in names
    assert roles["function"] not in names, "trusts Lambda, which the policy does not allow"
    plain = cli("roles", "--function-name", "iam-sudo-ecs-only", env=remote_env)
    assert f"{roles['task']}\tService:ecs-tasks.amazonaws.com" in plain.stdout.splitlines()
    log = last_log(stand_in, "iam-sudo-ecs-only")
    assert log["caller"] == "arn:aws:sts::123456789012:user/moto"

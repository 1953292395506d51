"""The library API against a local AWS: what it resolves, what it sends, how often."""

import asyncio
import json
from typing import Any

import pytest

import iam_sudo.client
from devtools import localaws
from iam_sudo import (
    AmbiguousRole,
    EndpointUnreachable,
    IamSudo,
    InvalidPrincipal,
    NoCredentials,
    RoleNotFound,
    SessionLimitExceeded,
    SudoPolicy,
    SudoPolicyDenied,
    UnsupportedRole,
)

ECS = "Service:ecs-tasks.amazonaws.com"
BASE_ARN = "arn:aws:iam::123456789012:role/IAMSudoUser"


def sent_policy_arns(params: dict[str, str]) -> set[str]:
    return {value for key, value in params.items() if key.startswith("PolicyArns.member.")}


def statements(documents: list[dict[str, Any]]) -> list[Any]:
    found: list[Any] = []
    for document in documents:
        statement = document["Statement"]
        found.extend([statement] if isinstance(statement, dict) else statement)
    return found


async def assert_refused_before_sts(
    local_aws: localaws.LocalAws,
    role_name: str,
    error: type[Exception],
    match: str,
    sudo: IamSudo | None = None,
    **options: Any,
) -> None:
    """Simulating ``role_name`` raises ``error`` and nothing is sent to sts:AssumeRole."""
    async with sudo or IamSudo() as client:
        with pytest.raises(error, match=match):
            await client.simulate(role_name, **options)
    assert "AssumeRole" not in local_aws.recorder.actions()


async def test_simulate_sends_sts_exactly_the_union_of_the_roles_policies(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any], prefix: str
) -> None:
    async with IamSudo() as sudo:
        credentials = await sudo.simulate(f"{prefix}stack-", principal=ECS)
    assert credentials.access_key_id.startswith("ASIA")

    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["RoleArn"] == BASE_ARN
    assert sent["RoleSessionName"] == f"iam-sudo-{task_role['name']}"
    assert sent_policy_arns(sent) == set(task_role["managed"])
    policy = json.loads(sent["Policy"])
    assert policy["Version"] == "2012-10-17"
    expected = statements(list(task_role["inline"].values()))
    assert sorted(map(json.dumps, policy["Statement"])) == sorted(map(json.dumps, expected))


async def test_one_simulation_makes_each_request_once(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    async with IamSudo() as sudo:
        await sudo.simulate(task_role["name"])
    recorder = local_aws.recorder
    assert recorder.duplicates() == 0
    assert sorted(recorder.actions()) == sorted(
        [
            "ListRoles",
            "GetCallerIdentity",
            "GetRole",
            "ListAttachedRolePolicies",
            "ListRolePolicies",
        ]
        + ["GetRolePolicy"] * 3
        + ["AssumeRole"]
    )


async def test_a_simulation_takes_at_most_four_sequential_rounds(
    aws_env: dict[str, str],
    slow_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", slow_aws.url)
    slow_aws.recorder.clear()
    async with IamSudo() as sudo:
        await sudo.simulate(f"{prefix}stack-", principal=ECS)
    assert len(slow_aws.recorder.requests) == 9
    assert slow_aws.recorder.rounds() <= 4
    assert slow_aws.recorder.max_in_flight >= 3


async def test_the_benchmark_scenario_stays_within_the_round_trip_budget(
    aws_env: dict[str, str],
    slow_aws: localaws.LocalAws,
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """9 inline and 3 managed policies: 15 requests, none twice, in at most 4 rounds."""
    name = f"{prefix}Budget-TaskRole"
    localaws.create_role(
        iam,
        name,
        inline={f"p{i}": localaws.allow(f"sqs:Action{i}") for i in range(9)},
        managed=[
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
            "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess",
            "arn:aws:iam::aws:policy/AmazonSNSReadOnlyAccess",
        ],
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", slow_aws.url)
    slow_aws.recorder.clear()
    async with IamSudo() as sudo:
        await sudo.simulate(name)
    recorder = slow_aws.recorder
    assert len(recorder.requests) == 6 + 9
    assert recorder.duplicates() == 0
    assert recorder.rounds() <= 4
    assert recorder.actions().count("ListRoles") == 1


async def test_concurrency_toward_iam_is_bounded(
    aws_env: dict[str, str],
    slow_aws: localaws.LocalAws,
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = [f"{prefix}bounded-{i:02d}" for i in range(12)]
    for name in names:
        localaws.create_role(
            iam, name, inline={"a": localaws.allow("s3:A"), "b": localaws.allow("s3:B")}
        )
    monkeypatch.setenv("AWS_ENDPOINT_URL", slow_aws.url)
    slow_aws.recorder.clear()
    async with IamSudo(max_concurrency=3) as sudo:
        await asyncio.gather(*(sudo.simulate(name) for name in names))
    assert slow_aws.recorder.max_concurrent("iam") == 3
    assert slow_aws.recorder.actions().count("AssumeRole") == 12


async def test_every_page_is_read_and_every_document_fetched_once(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(iam_sudo.client, "IAM_PAGE_SIZE", 2)
    inline = {f"p{i}": localaws.allow(f"s3:Get{i}") for i in range(5)}
    managed = [
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonSNSReadOnlyAccess",
    ]
    localaws.create_role(iam, f"{prefix}Paged", inline=inline, managed=managed)
    async with IamSudo() as sudo:
        session = await sudo.session(f"{prefix}Paged")
    assert set(session.request.policy_arns) == set(managed)
    assert len(json.loads(session.request.policy or "")["Statement"]) == 5
    recorder = local_aws.recorder
    assert recorder.duplicates() == 0
    assert recorder.actions().count("GetRolePolicy") == 5
    # moto pages ListRoles by MaxItems (but not the role policy listings).
    assert recorder.actions().count("ListRoles") > 1


async def test_session_resolves_and_builds_without_calling_sts_assume_role(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any], prefix: str
) -> None:
    async with IamSudo() as sudo:
        session = await sudo.session(f"{prefix}stack-", principal=ECS)
    assert session.role.arn == task_role["arn"]
    assert session.base_role_arn == BASE_ARN
    assert "AssumeRole" not in local_aws.recorder.actions()


async def test_twenty_simulations_through_one_client_list_roles_once(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    names = [f"{prefix}batch-{i:02d}" for i in range(20)]
    for name in names:
        localaws.create_role(iam, name, inline={"p": localaws.allow("s3:GetObject")})
    local_aws.recorder.clear()
    async with IamSudo(max_concurrency=4) as sudo:
        results = await asyncio.gather(*(sudo.simulate(name) for name in names))
    assert len({c.access_key_id for c in results}) == 20
    actions = local_aws.recorder.actions()
    assert actions.count("ListRoles") == 1
    assert actions.count("GetCallerIdentity") == 1
    assert actions.count("AssumeRole") == 20
    assert local_aws.recorder.duplicates() == 0


async def test_assume_resolves_a_bare_name_in_the_callers_account(
    aws_env: dict[str, str], local_aws: localaws.LocalAws
) -> None:
    async with IamSudo() as sudo:
        credentials = await sudo.assume("IAMSudoUser")
    assert credentials.session_token
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["RoleArn"] == BASE_ARN
    assert "Policy" not in sent
    assert not sent_policy_arns(sent)


async def test_the_base_role_comes_from_iam_sudo_base_role_when_not_given(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    iam: Any,
    task_role: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    localaws.create_base_role(iam, "CustomSudoBase")
    monkeypatch.setenv("IAM_SUDO_BASE_ROLE", "CustomSudoBase")
    async with IamSudo() as sudo:
        await sudo.simulate(task_role["name"])
        await sudo.simulate(task_role["name"], base_role=BASE_ARN)
    sent = [params["RoleArn"] for params in local_aws.recorder.sent("AssumeRole")]
    assert sent == ["arn:aws:iam::123456789012:role/CustomSudoBase", BASE_ARN]


async def test_assume_uses_an_arn_as_given(
    aws_env: dict[str, str], local_aws: localaws.LocalAws
) -> None:
    async with IamSudo() as sudo:
        await sudo.assume(BASE_ARN)
    assert local_aws.recorder.actions() == ["AssumeRole"]
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["RoleArn"] == BASE_ARN
    assert sent["RoleSessionName"] == "iam-sudo-IAMSudoUser"


async def test_an_explicit_base_role_arn_needs_no_caller_identity(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    async with IamSudo(base_role=BASE_ARN) as sudo:
        await sudo.simulate(task_role["name"])
    assert "GetCallerIdentity" not in local_aws.recorder.actions()


@pytest.mark.parametrize(
    ("name", "principal", "error", "message"),
    [
        ("NoSuchRoleAnywhere", None, RoleNotFound, "no role matches name 'NoSuchRoleAnywhere'"),
        ("stack-", None, AmbiguousRole, "2 roles match"),
        ("stack-", "Service:ec2.amazonaws.com", RoleNotFound, "principal Service:ec2"),
        ("stack-", "ecs", InvalidPrincipal, "expected TYPE:ID"),
    ],
)
async def test_resolution_errors_stop_before_sts(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    prefix: str,
    name: str,
    principal: str | None,
    error: type[Exception],
    message: str,
) -> None:
    role_name = prefix + name if name != "NoSuchRoleAnywhere" else name
    await assert_refused_before_sts(local_aws, role_name, error, message, principal=principal)


async def test_the_sudo_policy_from_the_environment_denies_before_sts(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "IAM_SUDO_POLICY",
        "allowed-role-names: ['*']\nallowed-principals: [{Service: lambda.amazonaws.com}]\n"
        "allowed-base-roles: ['*']",
    )
    async with IamSudo() as sudo:
        with pytest.raises(SudoPolicyDenied, match="sudo policy allows no role matching name"):
            await sudo.simulate(task_role["name"])
    actions = local_aws.recorder.actions()
    assert "AssumeRole" not in actions
    assert "GetRolePolicy" not in actions


async def test_a_denied_base_role_is_refused(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    policy = SudoPolicy.from_document(
        {
            "allowed-role-names": ["*"],
            "allowed-principals": [{"*": "*"}],
            "allowed-base-roles": ["*/Other"],
        }
    )
    message = "base role arn:aws:iam::123456789012:role/IAMSudoUser"
    sudo = IamSudo(policy=policy)
    await assert_refused_before_sts(local_aws, task_role["name"], SudoPolicyDenied, message, sudo)


async def test_over_the_arn_limit_nothing_is_sent_to_sts(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    managed = [
        arn
        for page in iam.get_paginator("list_policies").paginate(Scope="AWS")
        for arn in (p["Arn"] for p in page["Policies"])
        if arn.endswith("ReadOnlyAccess")
    ][:11]
    name = f"{prefix}Overloaded"
    localaws.create_role(iam, name)
    for arn in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    message = "11 managed policies, 1 over"
    await assert_refused_before_sts(local_aws, name, SessionLimitExceeded, message)


async def test_over_the_inline_size_limit_nothing_is_sent_to_sts(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Verbose"
    inline = {
        f"p{i}": localaws.allow(f"s3:GetObject{i}", f"arn:aws:s3:::{'b' * 180}{i}/*")
        for i in range(10)
    }
    localaws.create_role(iam, name, inline=inline)
    message = "over STS's limit of 2048"
    await assert_refused_before_sts(local_aws, name, SessionLimitExceeded, message)


async def test_a_role_with_a_permissions_boundary_is_refused(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Bounded"
    localaws.create_role(
        iam,
        name,
        inline={"p": localaws.allow("s3:*")},
        PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess",
    )
    message = "permissions boundary arn:aws:iam::aws:policy/ReadOnlyAccess"
    await assert_refused_before_sts(local_aws, name, UnsupportedRole, message)


async def test_without_credentials_the_error_says_how_to_configure_them(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    async with IamSudo() as sudo:
        with pytest.raises(NoCredentials, match="no AWS credentials found"):
            await sudo.simulate("TaskRole")


async def test_an_unreachable_endpoint_is_reported_as_such(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{localaws.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    async with IamSudo(retry_mode="standard") as sudo:
        with pytest.raises(EndpointUnreachable, match=r"cannot reach the (iam|sts) endpoint"):
            await sudo.simulate("TaskRole")


async def test_a_role_listing_is_reused_only_for_its_lifetime(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    localaws.create_role(iam, f"{prefix}First", inline={"p": localaws.allow("s3:GetObject")})
    async with IamSudo(roles_ttl=3600) as kept, IamSudo(roles_ttl=0) as fresh:
        for sudo in (kept, fresh):
            await sudo.session(f"{prefix}First")
        localaws.create_role(iam, f"{prefix}Later", inline={"p": localaws.allow("s3:GetObject")})
        with pytest.raises(RoleNotFound):
            await kept.session(f"{prefix}Later")
        assert (await fresh.session(f"{prefix}Later")).role.name == f"{prefix}Later"
    assert local_aws.recorder.actions("iam").count("ListRoles") == 3, "kept: 1, fresh: 1 + 1"

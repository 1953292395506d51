"""The library API against a local AWS: what it resolves, what it sends, how often."""

import asyncio
import json
import time
from typing import Any

import pytest

import iam_sudo.aws.iam_reader
import iam_sudo.aws.sts
import iam_sudo.client
from devtools import localaws
from iam_sudo import (
    AmbiguousRole,
    AwsError,
    EndpointUnreachable,
    IamReader,
    IamSudo,
    InvalidPrincipal,
    NoCredentials,
    PackedPolicyConflict,
    RoleNotFound,
    SudoPolicy,
    SudoPolicyDenied,
    UnsupportedRole,
)
from tests.grants import grants

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
    assert grants(policy["Statement"]) == grants(expected)


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
            "ListPolicies",
            "GetRole",
            "GetRole",  # the base role's, for its ARN (its IAM path)
            "ListAttachedRolePolicies",
            "ListRolePolicies",
            "GetRolePolicy",  # the base role's guard of packed policies (core/duties.py)
        ]
        + ["GetRolePolicy"] * 3
        + ["GetPolicyVersion"] * 2
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
    # A part of a name: a GetRole of it and its policy listings (no such role, so two
    # requests find nothing) beside the roles listing, which decides; the base role's
    # GetRole gives its ARN, its GetRolePolicy its guard of packed policies (beside the
    # role's reads: no round more).
    assert len(slow_aws.recorder.requests) == 17
    assert slow_aws.recorder.rounds() <= 4
    assert slow_aws.recorder.max_in_flight >= 3


async def test_the_benchmark_scenario_stays_within_the_round_trip_budget(
    aws_env: dict[str, str],
    slow_aws: localaws.LocalAws,
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """9 inline and 3 managed policies: 19 requests, none twice, in at most 4 rounds."""
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
    # 8 (the base role's GetRole among them) + inline documents + managed documents (read
    # to check for principal conditions) + the base role's guard of packed policies.
    assert len(recorder.requests) == 8 + 9 + 3 + 1
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
    monkeypatch.setattr(iam_sudo.aws.iam_reader, "IAM_PAGE_SIZE", 2)
    inline = {f"p{i}": localaws.allow(f"s3:Get{i}") for i in range(5)}
    managed = [
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonSNSReadOnlyAccess",
    ]
    localaws.create_role(iam, f"{prefix}Paged", inline=inline, managed=managed)
    for decoy in ("A", "B"):  # more roles than one page of 2 holds, whatever ran before
        localaws.create_role(iam, f"{prefix}Decoy{decoy}")
    async with IamSudo() as sudo:
        session = await sudo.plan(f"{prefix}Page")  # a part of the name: the listing decides
    assert set(session.request.policy_arns) == set(managed)
    sent = json.loads(session.request.policy or "")["Statement"]
    assert grants(sent) == grants(statements(list(inline.values())))
    recorder = local_aws.recorder
    assert recorder.duplicates() == 0
    read = [p for p in recorder.sent("GetRolePolicy") if p["RoleName"] == f"{prefix}Paged"]
    assert len(read) == 5
    # moto pages ListRoles by MaxItems (but not the role policy listings).
    assert recorder.actions().count("ListRoles") > 1


async def test_session_resolves_and_builds_without_calling_sts_assume_role(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any], prefix: str
) -> None:
    async with IamSudo() as sudo:
        session = await sudo.plan(f"{prefix}stack-", principal=ECS)
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


async def test_a_known_caller_and_base_role_arn_need_no_caller_identity(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    async with IamSudo(base_role=BASE_ARN) as sudo:
        session = await sudo.plan(task_role["name"], caller="arn:aws:iam::123456789012:user/alice")
        await sudo.assume_session(session)
    assert "GetCallerIdentity" not in local_aws.recorder.actions()
    assert session.request.source_identity == "alice"


async def test_locally_the_caller_is_you_and_named_as_source_identity(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    async with IamSudo() as sudo:
        await sudo.simulate(task_role["name"])
        unnamed = await sudo.plan(task_role["name"], source_identity=False)
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["SourceIdentity"] == "moto"  # moto's name for its default credentials
    assert unnamed.request.source_identity is None


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
        assert "AssumeRole" not in local_aws.recorder.actions()
    started = time.monotonic()
    # For another caller (as in the function) the role's policies are not even read.
    local_aws.recorder.clear()
    async with IamSudo() as sudo:
        with pytest.raises(SudoPolicyDenied, match="sudo policy allows no role matching name"):
            await sudo.plan(task_role["name"], caller="arn:aws:iam::123456789012:user/x")
    read = [
        r.params.get("RoleName")
        for r in local_aws.recorder.requests
        if r.action in ("GetRolePolicy", "ListRolePolicies") and r.start > started
    ]
    assert task_role["name"] not in read
    assert "AssumeRole" not in local_aws.recorder.actions()


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


def read_only_policies(iam: Any, count: int) -> list[str]:
    return [
        arn
        for page in iam.get_paginator("list_policies").paginate(Scope="AWS")
        for arn in (p["Arn"] for p in page["Policies"])
        if arn.endswith("ReadOnlyAccess")
    ][:count]


def sent_session(local_aws: localaws.LocalAws) -> tuple[list[str], str | None]:
    [sent] = local_aws.recorder.sent("AssumeRole")
    arns = [
        sent[f"PolicyArns.member.{i}.arn"]
        for i in range(1, 11)
        if f"PolicyArns.member.{i}.arn" in sent
    ]
    return arns, sent.get("Policy")


def role_grants(iam: Any, name: str) -> set[Any]:
    """What the role's own policies grant (its managed documents read from moto)."""
    documents = [
        iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        documents.append(managed_document(iam, attached["PolicyArn"]))
    return grants(statements(documents))


def managed_document(iam: Any, arn: str) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document: dict[str, Any] = iam.get_policy_version(PolicyArn=arn, VersionId=version)[
        "PolicyVersion"
    ]["Document"]
    return document


def session_grants(iam: Any, arns: list[str], policy: str | None) -> set[Any]:
    documents = [managed_document(iam, arn) for arn in arns]
    return grants(statements(documents + ([json.loads(policy)] if policy else [])))


async def simulate_exactly(
    local_aws: localaws.LocalAws, iam: Any, name: str
) -> tuple[list[str], str | None, int]:
    """Simulate ``name``; check the session grants exactly the role's; (ARNs, policy, created)."""
    local_aws.recorder.clear()
    async with IamSudo() as sudo:
        await sudo.simulate(name)
    arns, policy = sent_session(local_aws)
    assert len(arns) <= 10
    assert len(policy or "") + sum(map(len, arns)) <= 2048
    assert session_grants(iam, arns, policy) == role_grants(iam, name)
    return arns, policy, local_aws.recorder.actions().count("CreatePolicy")


def one_action_statements(count: int, prefix: str = "s3:GetObject") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": f"{prefix}{i}",
                "Resource": f"arn:aws:s3:::bucket-{i % 4}/*",
            }
            for i in range(count)
        ],
    }


async def test_thirteen_managed_policies_and_inline_ones_fit_by_packing_the_smallest_ones(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Thirteen"
    localaws.create_role(iam, name, inline={"own": localaws.allow("sqs:SendMessage")})
    for arn in read_only_policies(iam, 13):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    arns, _, _ = await simulate_exactly(local_aws, iam, name)
    # The smallest managed policies' statements travel inline or in created policies.
    assert len([arn for arn in arns if ":aws:policy/" in arn]) < 13


async def test_nine_thousand_characters_of_inline_policy_go_into_created_policies(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Verbose"
    inline = {
        f"p{i}": localaws.allow(f"s3:GetObject{i}", f"arn:aws:s3:::{'b' * 180}{i}/*")
        for i in range(40)
    }
    localaws.create_role(iam, name, inline=inline)
    assert sum(len(json.dumps(d, separators=(",", ":"))) for d in inline.values()) > 9000
    arns, _, created = await simulate_exactly(local_aws, iam, name)
    assert created == len([a for a in arns if "/iam-sudo/" in a]) >= 2


async def test_ten_managed_policies_and_1300_inline_characters_fit_within_2048(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}TenAndText"
    inline = {
        f"p{i}": localaws.allow(f"dynamodb:Query{i}", f"arn:aws:dynamodb:*:*:table/{'t' * 90}{i}")
        for i in range(9)
    }
    localaws.create_role(iam, name, inline=inline)
    for arn in read_only_policies(iam, 10):
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    _, _, created = await simulate_exactly(local_aws, iam, name)
    assert created >= 1


async def test_forty_one_action_statements_merge_and_fit_without_creating_anything(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Merged"
    document = one_action_statements(40)
    assert len(json.dumps(document, separators=(",", ":"))) > 2048
    localaws.create_role(iam, name, inline={"many": document})
    arns, policy, created = await simulate_exactly(local_aws, iam, name)
    assert (arns, created) == ([], 0)
    assert policy is not None
    assert len(json.loads(policy)["Statement"]) == 4, "one statement per resource"


async def test_the_same_role_twice_creates_nothing_the_second_time(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Twice"
    inline = localaws.too_large_inline("x")
    localaws.create_role(iam, name, inline=inline)
    first = await simulate_exactly(local_aws, iam, name)
    second = await simulate_exactly(local_aws, iam, name)
    assert first[2] >= 1
    assert second[2] == 0
    assert first[0] == second[0]


async def test_a_tampered_iam_sudo_policy_is_never_used(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Tampered"
    inline = localaws.too_large_inline("y")
    localaws.create_role(iam, name, inline=inline)
    async with IamSudo() as sudo:
        session = await sudo.plan(name)
    [packed, *_] = session.plan.packed
    iam.create_policy(
        PolicyName=packed.name, Path="/iam-sudo/", PolicyDocument=json.dumps(localaws.allow("*"))
    )
    local_aws.recorder.clear()
    await assert_refused_before_sts(local_aws, name, PackedPolicyConflict, "does not hold")


async def test_a_packed_policy_whose_default_version_was_replaced_is_never_used(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    # The policy holds iam-sudo's document as v1, but someone made a v2 the default (IAM
    # User Guide, "Versioning IAM policies": the default version is the one in force).
    name = f"{prefix}Reversioned"
    localaws.create_role(iam, name, inline=localaws.too_large_inline("w"))
    async with IamSudo() as sudo:
        session = await sudo.session(name)
        await sudo.assume_session(session)
    [packed, *_] = session.plan.packed
    iam.create_policy_version(
        PolicyArn=packed.arn,
        PolicyDocument=json.dumps(localaws.allow("*")),
        SetAsDefault=True,
    )
    local_aws.recorder.clear()
    await assert_refused_before_sts(local_aws, name, PackedPolicyConflict, "does not hold")


async def test_policies_not_yet_visible_to_sts_are_waited_for(
    aws_env: dict[str, str],
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env, faults, recorder = faulty_aws
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    monkeypatch.setattr(iam_sudo.aws.sts, "CONSISTENCY_DELAYS", (0.01, 0.01, 0.01))
    name = f"{prefix}Fresh"
    inline = localaws.too_large_inline("z")
    localaws.create_role(iam, name, inline=inline)
    faults["AssumeRole"] = "policy-not-visible*2"
    async with IamSudo() as sudo:
        credentials = await sudo.simulate(name)
    assert credentials.access_key_id.startswith("ASIA")
    assert recorder.actions().count("AssumeRole") == 3
    faults["AssumeRole"] = "policy-not-visible*9"
    async with IamSudo() as sudo:
        with pytest.raises(AwsError, match="MalformedPolicyDocument"):
            await sudo.simulate(name)  # the policies exist now: nothing new, no waiting


async def test_the_roles_tags_go_as_session_tags(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Tagged"
    tags = [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "dev"}]
    localaws.create_role(iam, name, inline={"p": localaws.allow("s3:*")}, Tags=tags)
    async with IamSudo() as sudo:
        await sudo.simulate(name)
        [sent] = local_aws.recorder.sent("AssumeRole")
        assert {(sent[f"Tags.member.{i}.Key"], sent[f"Tags.member.{i}.Value"]) for i in (1, 2)} == {
            ("team", "payments"),
            ("env", "dev"),
        }
        session = await sudo.plan(name, session_tags=False)
    assert session.request.tags == ()
    assert any("are not passed as session tags" in line for line in session.fidelity)


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
    message = (
        "permissions boundary arn:aws:iam::aws:policy/ReadOnlyAccess.*a base role with the "
        "same boundary, arn:aws:iam::123456789012:role/IAMSudoUser-ReadOnlyAccess: add"
    )
    await assert_refused_before_sts(local_aws, name, UnsupportedRole, message)


async def test_a_base_role_variant_with_the_same_boundary_simulates_it(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, iam: Any, prefix: str
) -> None:
    boundary = "arn:aws:iam::aws:policy/AWSLambdaExecute"
    name = f"{prefix}BoundedToo"
    localaws.create_role(
        iam, name, inline={"p": localaws.allow("s3:*")}, PermissionsBoundary=boundary
    )
    variant = localaws.create_role(
        iam,
        "IAMSudoUser-AWSLambdaExecute",
        trust=localaws.trust_policy(("AWS", "arn:aws:iam::123456789012:root")),
        inline=localaws.guard(),
        PermissionsBoundary=boundary,
    )
    async with IamSudo() as sudo:
        session = await sudo.plan(name)
        await sudo.assume_session(session)
    assert session.request.role_arn == variant
    assert any("carries the same boundary" in line for line in session.fidelity)


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
            await sudo.plan(f"{prefix}Firs")
        localaws.create_role(iam, f"{prefix}Later", inline={"p": localaws.allow("s3:GetObject")})
        # Parts of names, resolved through the listing (exact names are looked up directly).
        with pytest.raises(RoleNotFound):
            await kept.plan(f"{prefix}Late")
        assert (await fresh.plan(f"{prefix}Late")).role.name == f"{prefix}Later"
    assert local_aws.recorder.actions("iam").count("ListRoles") == 3, "kept: 1, fresh: 1 + 1"


async def test_an_exact_name_does_not_page_through_the_roles(
    aws_env: dict[str, str],
    slow_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", slow_aws.url)  # 50 ms a request, as in AWS
    monkeypatch.setattr(
        iam_sudo.aws.iam_reader, "IAM_PAGE_SIZE", 2
    )  # many pages, as in a big account
    slow_aws.recorder.clear()
    async with IamSudo() as sudo:
        session = await sudo.plan(task_role["name"])
    assert session.role.arn == task_role["arn"]
    # Stopped as soon as GetRole found it: the page in flight beside it, one more at most
    # on a busy machine; a part of a name pages through them all (below).
    assert slow_aws.recorder.actions().count("ListRoles") <= 3
    target = [p for p in slow_aws.recorder.sent("GetRole") if p["RoleName"] == task_role["name"]]
    assert len(target) == 1, "its details are reused"
    slow_aws.recorder.clear()
    async with IamSudo() as sudo:
        await sudo.plan(task_role["name"][:-2])
    assert slow_aws.recorder.actions().count("ListRoles") > 10, "a part of a name pages through"


async def test_a_role_arn_is_resolved_without_any_listing(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    async with IamSudo() as sudo:
        session = await sudo.plan(task_role["arn"])
        assert session.role.name == task_role["name"]
        other_path = task_role["arn"].replace(":role/", ":role/elsewhere/")
        with pytest.raises(RoleNotFound):
            await sudo.plan(other_path)
    assert "ListRoles" not in local_aws.recorder.actions()


async def test_an_exact_name_the_policy_forbids_falls_back_to_the_allowed_roles(
    aws_env: dict[str, str], iam: Any, prefix: str
) -> None:
    localaws.create_role(iam, f"{prefix}Exact", inline={"p": localaws.allow("s3:*")})
    allowed = f"{prefix}Exact-Allowed"
    localaws.create_role(iam, allowed, inline={"p": localaws.allow("s3:*")})
    policy = SudoPolicy.from_document(
        {
            "allowed-role-names": ["*-Allowed"],
            "allowed-principals": [{"*": "*"}],
            "allowed-base-roles": ["*"],
        }
    )
    async with IamSudo(policy=policy) as sudo:
        assert (await sudo.plan(f"{prefix}Exact")).role.name == allowed


async def test_a_dropped_policy_lookup_does_not_cancel_the_shared_versions_listing() -> None:
    # The exact-name fast path drops the speculative policy reads of a name; they wait on
    # the session's shared listing of policy versions, which the session itself still needs.
    class Transport:
        async def __aenter__(self) -> Any:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
            return {"AttachedPolicies": [], "PolicyNames": [], "IsTruncated": False}

    async with IamReader(Transport()) as reader:  # type: ignore[arg-type]
        listing_done = asyncio.get_running_loop().create_future()

        async def versions() -> dict[str, str]:
            return await listing_done  # type: ignore[no-any-return]

        shared = asyncio.ensure_future(versions())
        lookup = asyncio.ensure_future(reader.role_policies("Exact", shared))
        for _ in range(20):  # until the lookup waits on the shared listing
            await asyncio.sleep(0)
        assert not lookup.done()
        lookup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lookup
        assert not shared.cancelled(), "the dropped lookup cancelled the shared listing"
        listing_done.set_result({})
        assert await shared == {}

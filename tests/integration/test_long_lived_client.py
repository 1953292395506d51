"""A long-lived IamSudo keeps nothing about IAM longer than roles_ttl (issue 22, item 7):
after a trust change a simulation the new trust refuses is refused within that bound,
also across a suspend (the monotonic clock stands still). A fake clock; nothing sleeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

import iam_sudo.aws.tasks
from devtools import localaws
from iam_sudo import IamSudo, RoleNotFound
from iam_sudo.aws.iam_reader import DEFAULT_ROLES_TTL
from tests.fake_clock import FakeClock

ECS = "Service:ecs-tasks.amazonaws.com"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(iam_sudo.aws.tasks, "system_clock", clock)
    return clock


def ecs_role(iam: Any, name: str) -> None:
    localaws.create_role(
        iam,
        name,
        trust=localaws.trust_policy(("Service", "ecs-tasks.amazonaws.com")),
        inline={"read": localaws.allow("s3:GetObject")},
    )


def trust_lambda_only(iam: Any, name: str) -> None:
    trust = localaws.trust_policy(("Service", "lambda.amazonaws.com"))
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))


async def test_a_trust_change_is_seen_within_roles_ttl_by_a_long_lived_client(
    aws_env: dict[str, str], iam: Any, base_role: str, prefix: str, clock: FakeClock
) -> None:
    name = f"{prefix}svc-TaskRole"
    ecs_role(iam, name)
    async with IamSudo() as sudo:
        # A part of the name: resolved among the shared listing, with its trust policies.
        await sudo.plan(f"{prefix}svc-Task", principal=ECS)
        trust_lambda_only(iam, name)
        clock.advance(DEFAULT_ROLES_TTL - 1)
        await sudo.plan(f"{prefix}svc-Task", principal=ECS)  # within the bound: may be old
        clock.advance(1)
        with pytest.raises(RoleNotFound, match="no role matches"):
            await sudo.plan(f"{prefix}svc-Task", principal=ECS)


async def test_the_exact_name_is_judged_by_its_fresh_trust_at_once(
    aws_env: dict[str, str], iam: Any, base_role: str, prefix: str, clock: FakeClock
) -> None:
    name = f"{prefix}svc-TaskRole"
    ecs_role(iam, name)
    async with IamSudo() as sudo:
        await sudo.plan(name, principal=ECS)
        trust_lambda_only(iam, name)
        # GetRole has just said the role no longer trusts ECS: the listing read a moment
        # ago does not overrule it.
        with pytest.raises(RoleNotFound, match="no role matches"):
            await sudo.plan(name, principal=ECS)


async def test_a_client_waking_from_suspend_reads_iam_anew(
    aws_env: dict[str, str], iam: Any, base_role: str, prefix: str, clock: FakeClock
) -> None:
    name = f"{prefix}svc-TaskRole"
    ecs_role(iam, name)
    async with IamSudo() as sudo:
        await sudo.plan(f"{prefix}svc-Task", principal=ECS)
        trust_lambda_only(iam, name)
        clock.suspend(2 * 3600)  # wall clock only
        with pytest.raises(RoleNotFound, match="no role matches"):
            await sudo.plan(f"{prefix}svc-Task", principal=ECS)


async def test_role_arns_and_identity_are_read_again_once_roles_ttl_old(
    aws_env: dict[str, str],
    iam: Any,
    base_role: str,
    prefix: str,
    clock: FakeClock,
    local_aws: localaws.LocalAws,
) -> None:
    name = f"{prefix}svc-TaskRole"
    ecs_role(iam, name)
    async with IamSudo() as sudo:
        await sudo.role_arn(name)
        await sudo.identity()
        local_aws.recorder.clear()
        await sudo.role_arn(name)
        await sudo.identity()
        assert local_aws.recorder.actions() == []
        clock.advance(DEFAULT_ROLES_TTL)
        await sudo.role_arn(name)
        await sudo.identity()
        assert sorted(local_aws.recorder.actions()) == ["GetCallerIdentity", "GetRole"]

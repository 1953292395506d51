"""AWS partitions through the CLI and the function: GovCloud and China, end to end on the
local AWS (the table and the rules reading it: tests/unit/test_partitions.py)."""

import sys
from typing import Any

import pytest

from devtools import localaws
from iam_sudo.core.sudo_policy import DEFAULT_POLICY_YAML
from tests.conftest import PRINT_IDENTITY

IN_PARTITIONS = pytest.mark.parametrize(
    ("region", "partition"), [("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
)


def _seed(local_aws: localaws.LocalAws, prefix: str, region: str, partition: str) -> str:
    """A base role (with its guard) and a role ``<prefix>TaskRole`` trusting EC2 in the
    China spelling, in ``region``'s partition of the local AWS; the base role's ARN."""
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=local_aws.moto_url,
        region_name=region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="local",
    )
    base_arn = localaws.create_base_role(iam, f"{prefix}IAMSudoUser", partition)
    localaws.create_role(
        iam,
        f"{prefix}TaskRole",
        trust=localaws.trust_policy(("Service", "ec2.amazonaws.com.cn")),
        inline={"read": localaws.allow("s3:GetObject", f"arn:{partition}:s3:::bucket/*")},
    )
    return base_arn


@IN_PARTITIONS
def test_simulate_local_and_assume_work_in_govcloud_and_china_with_no_sudo_policy(
    local_aws: localaws.LocalAws,
    aws_env: dict[str, str],
    cli: Any,
    prefix: str,
    region: str,
    partition: str,
) -> None:
    # The example: in us-gov-west-1, no IAM_SUDO_POLICY, `simulate --local
    # --role-name TaskRole` was refused "sudo policy does not allow the base role
    # arn:aws-us-gov:iam::..."; the default policy now names no partition.
    # In China, an EC2 role's trust written with the China spelling of the service.
    _seed(local_aws, prefix, region, partition)
    base, task = f"{prefix}IAMSudoUser", f"{prefix}TaskRole"
    env = {**aws_env, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    identity = ["--", sys.executable, "-c", PRINT_IDENTITY]
    simulated = cli(
        "simulate", "--local", "--role-name", task, "--base-role", base,
        "--principal", "Service:ec2.amazonaws.com", *identity, env=env,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr
    assert simulated.stdout.strip() == (
        f"arn:{partition}:sts::{localaws.ACCOUNT_ID}:assumed-role/{base}/iam-sudo-{task}"
    )
    assumed = cli("assume", "--role-name", task, *identity, env=env)
    assert assumed.returncode == 0, assumed.stderr
    assert assumed.stdout.strip().startswith(f"arn:{partition}:sts::")
    sent = local_aws.recorder.sent("AssumeRole")
    assert sent[0]["RoleArn"] == f"arn:{partition}:iam::{localaws.ACCOUNT_ID}:role/{base}"


@IN_PARTITIONS
def test_simulate_through_the_function_in_govcloud_and_china(
    local_aws: localaws.LocalAws,
    function_aws: localaws.LocalAws,
    remote_env: dict[str, str],
    stand_in: Any,
    program: Any,
    cli: Any,
    prefix: str,
    region: str,
    partition: str,
) -> None:
    # The caller's proof names the function by its ARN in its partition (arn:aws-us-gov:
    # lambda:...), signed for the region's STS; the function's base role is of its partition.
    base_arn = _seed(local_aws, prefix, region, partition)
    base, task = f"{prefix}IAMSudoUser", f"{prefix}TaskRole"
    name = f"{prefix}fn"
    stand_in.add_function(
        name,
        program.archive,
        {
            **function_aws.env(),
            "AWS_ENDPOINT_URL": function_aws.url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            # The client's default policy: no partition named.
            "IAM_SUDO_POLICY": DEFAULT_POLICY_YAML,
            "IAM_SUDO_BASE_ROLE": base_arn,
        },
    )
    env = {**remote_env, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    function_aws.recorder.clear()
    result = cli(
        "simulate", "--function-name", name, "--role-name", task,
        "--", sys.executable, "-c", PRINT_IDENTITY, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"arn:{partition}:sts::{localaws.ACCOUNT_ID}:assumed-role/{base}/iam-sudo-{task}"
    )
    [sent] = function_aws.recorder.sent("AssumeRole")
    assert sent["RoleArn"] == base_arn

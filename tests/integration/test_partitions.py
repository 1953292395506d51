"""AWS partitions: one table, the SDK's facts, and every built-in rule reading it."""

import sys
from typing import Any

import pytest
from botocore.loaders import create_loader

from devtools import localaws
from iam_sudo import Principal, Role, SudoPolicy
from iam_sudo.core import partitions
from iam_sudo.core.principal import admits
from iam_sudo.core.roles import is_role_arn, role_name_of
from iam_sudo.core.sudo_policy import DEFAULT_POLICY_YAML
from tests.conftest import PRINT_IDENTITY


def test_the_table_is_botocores_partitions_names_regions_and_dns_suffixes() -> None:
    # botocore's partitions.json: id, regionRegex, outputs.dnsSuffix (what every SDK resolves).
    known = create_loader().load_data("partitions")["partitions"]
    assert {p["id"]: (p["regionRegex"], p["outputs"]["dnsSuffix"]) for p in known} == {
        p.name: (p.region_regex, p.dns_suffix) for p in partitions.PARTITIONS.values()
    }
    for partition in known:
        for region in partition["regions"]:
            if not region.endswith("-global"):
                assert partitions.partition_of_region(region).name == partition["id"], region


@pytest.mark.parametrize(
    ("region", "partition"),
    [
        ("us-gov-west-1", "aws-us-gov"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("eu-west-1", "aws"),
        ("us-iso-east-1", "aws-iso"),
        ("eusc-de-east-1", "aws-eusc"),
        ("xx-future-1", "aws"),  # a region no SDK knows yet: botocore's default, aws
    ],
)
def test_a_region_is_in_the_partition_whose_pattern_it_matches(region: str, partition: str) -> None:
    assert partitions.partition_of_region(region).name == partition


@pytest.mark.parametrize("partition", ["aws", "aws-us-gov", "aws-cn", "aws-iso-b"])
def test_role_arns_of_every_partition_are_role_arns(partition: str) -> None:
    arn = f"arn:{partition}:iam::123456789012:role/ci/Deployer"
    assert is_role_arn(arn)
    assert role_name_of(arn) == "Deployer"
    assert partitions.partition_of_arn(arn) == partition
    assert not is_role_arn("arn:awsx:iam::123456789012:role/Deployer")
    assert partitions.partition_of_arn("arn:awsx:iam::123456789012:role/Deployer") is None


def test_a_service_principal_answers_to_its_china_spelling_and_back() -> None:
    # In AWS in China some services' roles trust X.amazonaws.com.cn (ec2, elasticmapreduce),
    # others X.amazonaws.com (ecs-tasks, lambda): both name the same service there.
    china = Role(
        "app-Ec2Role",
        "arn:aws-cn:iam::123456789012:role/app-Ec2Role",
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com.cn"},
                    "Action": "sts:AssumeRole",
                }
            ]
        },
    )
    ec2 = Principal("Service", "ec2.amazonaws.com")
    assert admits(china.trust_policy, ec2)
    assert admits(china.trust_policy, Principal("Service", "ec2.amazonaws.com.cn"))
    assert not admits(china.trust_policy, Principal("Service", "ecs-tasks.amazonaws.com"))
    assert not admits(china.trust_policy, Principal("AWS", "ec2.amazonaws.com"))
    # A sudo policy written with the global spelling allows the China one, and no other.
    policy = SudoPolicy.from_yaml(
        'allowed-role-names: ["*"]\n'
        'allowed-principals: [{Service: "ec2.amazonaws.com"}]\n'
        'allowed-base-roles: ["arn:*:iam::*:role/IAMSudoUser"]\n'
    )
    policy.check(china, "arn:aws-cn:iam::123456789012:role/IAMSudoUser", ec2)
    assert Principal("Service", "lambda.amazonaws.com").aliases == (
        "lambda.amazonaws.com",
        "lambda.amazonaws.com.cn",
    )
    assert Principal("Service", "example.com").aliases == ("example.com",)


def test_service_principals_are_the_global_spelling_in_every_partition() -> None:
    assert partitions.service_principal("lambda") == "lambda.amazonaws.com"


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

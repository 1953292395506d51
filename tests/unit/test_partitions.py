"""AWS partitions: one table, the SDK's facts, and every built-in rule reading it (the
runs in GovCloud and China through the CLI and the function: tests/integration)."""

import pytest
from botocore.loaders import create_loader

from iam_sudo import Principal, Role, SudoPolicy
from iam_sudo.core import partitions
from iam_sudo.core.principal import admits
from iam_sudo.core.roles import is_role_arn, role_name_of


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

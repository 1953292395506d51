"""The enforcement harness applies AWS's cross-account rules that moto alone does not.

Each refusal is shown to be the rule's: the same call succeeds once the one thing the rule
looks at (the trust policy in the target account, the role's existence, the caller being a
role session) is changed, and the caller's own identity policy allows it throughout.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
import pytest

from devtools import enforced, localaws

# An enforced world of its own: moto in this process.
pytestmark = pytest.mark.aws

HUB = "100000000001"
SPOKE = "100000000002"
ASSUME_ANY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
}


@dataclass
class Accounts:
    aws: enforced.EnforcedAws
    user: dict[str, str]
    hub_session: dict[str, str]
    spoke_iam: Any


def sts_as(aws: enforced.EnforcedAws, env: dict[str, str]) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=aws.url,
        region_name=localaws.REGION,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
    )


def trust(principal: str) -> str:
    return enforced.document(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
            ],
        }
    )


@pytest.fixture(scope="module")
def accounts() -> Iterator[Accounts]:
    aws = enforced.start()
    hub_iam = enforced.admin(aws, "iam", HUB)
    user = enforced.user_with_keys(hub_iam, "deployer")
    hub_iam.put_user_policy(
        UserName="deployer", PolicyName="p", PolicyDocument=enforced.document(ASSUME_ANY)
    )
    hub_iam.create_role(
        RoleName="hub", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{HUB}:user/deployer")
    )
    hub_iam.put_role_policy(
        RoleName="hub", PolicyName="p", PolicyDocument=enforced.document(ASSUME_ANY)
    )
    spoke_iam = enforced.admin(aws, "iam", SPOKE)
    spoke_iam.create_role(
        RoleName="reader",
        AssumeRolePolicyDocument=trust(f"arn:aws:iam::{HUB}:role/hub"),
        MaxSessionDuration=7200,
    )
    aws.enforce()
    hub_session = enforced.session_env(
        sts_as(aws, user).assume_role(RoleArn=f"arn:aws:iam::{HUB}:role/hub", RoleSessionName="fn")[
            "Credentials"
        ]
    )
    yield Accounts(aws, user, hub_session, spoke_iam)
    aws.stop()


def assume(accounts: Accounts, env: dict[str, str], role: str, **extra: Any) -> dict[str, Any]:
    reply: dict[str, Any] = sts_as(accounts.aws, env).assume_role(
        RoleArn=f"arn:aws:iam::{SPOKE}:role/{role}", RoleSessionName="ss", **extra
    )
    return reply


def refused(accounts: Accounts, env: dict[str, str], role: str, **extra: Any) -> dict[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        assume(accounts, env, role, **extra)
    error: dict[str, str] = caught.value.response["Error"]
    return error


def test_a_cross_account_role_is_assumed_only_if_its_own_trust_policy_allows_the_caller(
    accounts: Accounts,
) -> None:
    credentials = assume(accounts, accounts.hub_session, "reader")["Credentials"]
    identity = sts_as(accounts.aws, enforced.session_env(credentials)).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{SPOKE}:assumed-role/reader/ss"
    # The user's identity policy allows sts:AssumeRole on "*": the trust policy refuses.
    assert refused(accounts, accounts.user, "reader")["Code"] == "AccessDenied"
    accounts.aws.enforce(False)
    accounts.spoke_iam.update_assume_role_policy(
        RoleName="reader", PolicyDocument=trust(f"arn:aws:iam::{HUB}:user/deployer")
    )
    accounts.aws.enforce()
    try:
        assume(accounts, accounts.user, "reader")
        assert refused(accounts, accounts.hub_session, "reader")["Code"] == "AccessDenied"
    finally:
        accounts.aws.enforce(False)
        accounts.spoke_iam.update_assume_role_policy(
            RoleName="reader", PolicyDocument=trust(f"arn:aws:iam::{HUB}:role/hub")
        )
        accounts.aws.enforce()


def test_a_role_that_does_not_exist_is_refused_as_sts_does(accounts: Accounts) -> None:
    error = refused(accounts, accounts.hub_session, "missing")
    assert error["Code"] == "AccessDenied"
    accounts.aws.enforce(False)
    accounts.spoke_iam.create_role(
        RoleName="missing", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{HUB}:role/hub")
    )
    accounts.aws.enforce()
    assert assume(accounts, accounts.hub_session, "missing")["Credentials"]


def test_a_chained_session_is_capped_at_one_hour(accounts: Accounts) -> None:
    error = refused(accounts, accounts.hub_session, "reader", DurationSeconds=7200)
    assert error["Code"] == "ValidationError"
    assert error["Message"] == enforced.CHAINING_MESSAGE
    assert assume(accounts, accounts.hub_session, "reader", DurationSeconds=3600)
    # Not a role session: the role's own MaxSessionDuration (7200 s) is the limit.
    accounts.aws.enforce(False)
    accounts.spoke_iam.update_assume_role_policy(
        RoleName="reader", PolicyDocument=trust(f"arn:aws:iam::{HUB}:user/deployer")
    )
    accounts.aws.enforce()
    try:
        assert assume(accounts, accounts.user, "reader", DurationSeconds=7200)
    finally:
        accounts.aws.enforce(False)
        accounts.spoke_iam.update_assume_role_policy(
            RoleName="reader", PolicyDocument=trust(f"arn:aws:iam::{HUB}:role/hub")
        )
        accounts.aws.enforce()

"""The local AWS denies a role session as AWS does, in AWS's words, through boto3.

A session's permissions are the role's identity-based policies intersected with the session
policies given to AssumeRole, within the role's permissions boundary, and an explicit deny
anywhere wins (IAM User Guide, "Policy evaluation logic" and "Session policies"). Each
message is the one the guide's "Troubleshoot access denied error messages" gives for the
cause ("because no <type> policy allows the <action> action", "with an explicit deny in a
<type> policy"), in the error shape of the service (S3 REST-XML, SQS and DynamoDB JSON, SNS,
STS and IAM query), as botocore parses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
import pytest

from devtools import enforced, localaws

ACCOUNT = localaws.ACCOUNT_ID
ROLE = "TaskRole"
BOUNDED = "BoundedRole"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/ss"
BUCKET = "orders-bucket"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action: str | list[str], resource: str = "*") -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


@dataclass
class World:
    aws: enforced.EnforcedAws
    user: dict[str, str]

    def client(self, service: str, env: dict[str, str]) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws.url,
            region_name=localaws.REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
        )

    def session(self, role: str = ROLE, **given: Any) -> dict[str, str]:
        """Credentials of a session of ``role`` given these session policies."""
        if "Policy" in given:
            given["Policy"] = json.dumps(given["Policy"])
        credentials = self.client("sts", self.user).assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="ss", **given
        )["Credentials"]
        return enforced.session_env(credentials)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    aws = enforced.start()
    iam = enforced.admin(aws, "iam", ACCOUNT)
    user = enforced.user_with_keys(iam, "developer")
    iam.put_user_policy(
        UserName="developer",
        PolicyName="assume",
        PolicyDocument=json.dumps(policy(allow("sts:AssumeRole"))),
    )
    trust = json.dumps(localaws.trust_policy(("AWS", f"arn:aws:iam::{ACCOUNT}:user/developer")))
    # The role can do S3, DynamoDB, SNS and IAM reads; it is explicitly denied deleting
    # tables; it has no SQS permission at all.
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName="work",
        PolicyDocument=json.dumps(
            policy(
                allow(["s3:*", "dynamodb:*", "sns:*", "iam:Get*", "sts:AssumeRole"]),
                deny("dynamodb:DeleteTable"),
            )
        ),
    )
    boundary = iam.create_policy(
        PolicyName="boundary",
        PolicyDocument=json.dumps(policy(allow(["sns:*", "iam:*"]), deny("iam:GetUser"))),
    )["Policy"]["Arn"]
    iam.create_role(RoleName=BOUNDED, AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary)
    iam.put_role_policy(
        RoleName=BOUNDED, PolicyName="all", PolicyDocument=json.dumps(policy(allow("*")))
    )
    iam.create_policy(
        PolicyName="read-orders", PolicyDocument=json.dumps(policy(allow("s3:GetObject")))
    )
    s3 = enforced.admin(aws, "s3", ACCOUNT)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="o/1", Body=b"one")
    s3.put_object(Bucket=BUCKET, Key="secret", Body=b"no")
    enforced.admin(aws, "dynamodb", ACCOUNT).create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    enforced.admin(aws, "sqs", ACCOUNT).create_queue(QueueName="events")
    aws.enforce()
    yield World(aws, user)
    aws.stop()


def denied(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(*args, **kwargs)
    response: dict[str, Any] = caught.value.response
    return response


def error(response: dict[str, Any]) -> tuple[int, str, str]:
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_what_the_session_policy_allows_passes_and_what_it_does_not_is_denied_in_s3_words(
    world: World,
) -> None:
    s3 = world.client("s3", world.session(Policy=policy(allow("s3:GetObject"))))
    assert s3.get_object(Bucket=BUCKET, Key="o/1")["Body"].read() == b"one"
    assert error(denied(s3.put_object, Bucket=BUCKET, Key="o/2", Body=b"two")) == (
        403,
        "AccessDenied",
        f"User: {SESSION} is not authorized to perform: s3:PutObject on resource: "
        f'"arn:aws:s3:::{BUCKET}/o/2" because no session policy allows the s3:PutObject action',
    )


def test_a_session_without_session_policies_has_the_roles_permissions(world: World) -> None:
    s3 = world.client("s3", world.session())
    s3.put_object(Bucket=BUCKET, Key="o/3", Body=b"three")
    assert s3.get_object(Bucket=BUCKET, Key="o/3")["Body"].read() == b"three"


def test_an_explicit_deny_in_a_session_policy_wins_over_its_allow(world: World) -> None:
    s3 = world.client(
        "s3",
        world.session(
            Policy=policy(
                allow("s3:GetObject"), deny("s3:GetObject", f"arn:aws:s3:::{BUCKET}/secret")
            )
        ),
    )
    assert s3.get_object(Bucket=BUCKET, Key="o/1")["Body"].read() == b"one"
    assert error(denied(s3.get_object, Bucket=BUCKET, Key="secret"))[2] == (
        f"User: {SESSION} is not authorized to perform: s3:GetObject on resource: "
        f'"arn:aws:s3:::{BUCKET}/secret" with an explicit deny in a session policy'
    )


def test_a_session_policy_cannot_grant_what_the_role_lacks_sqs_json_shape(world: World) -> None:
    sqs = world.client("sqs", world.session(Policy=policy(allow("sqs:*"))))
    url = f"{world.aws.url}/{ACCOUNT}/events"
    # SQS answers in JSON (awsQueryCompatible): botocore takes the code from
    # x-amzn-query-error; SQS writes the action in lower case.
    assert error(denied(sqs.send_message, QueueUrl=url, MessageBody="x")) == (
        403,
        "AccessDenied",
        f"User: {SESSION} is not authorized to perform: sqs:sendmessage on resource: "
        f"arn:aws:sqs:{localaws.REGION}:{ACCOUNT}:events because no identity-based policy "
        "allows the sqs:sendmessage action",
    )


def test_an_explicit_deny_in_an_identity_based_policy_dynamodb_json_shape(world: World) -> None:
    dynamodb = world.client("dynamodb", world.session(Policy=policy(allow("dynamodb:*"))))
    assert dynamodb.describe_table(TableName="orders")["Table"]["TableName"] == "orders"
    assert error(denied(dynamodb.delete_table, TableName="orders")) == (
        400,
        "AccessDeniedException",
        f"User: {SESSION} is not authorized to perform: dynamodb:DeleteTable on resource: "
        f"arn:aws:dynamodb:{localaws.REGION}:{ACCOUNT}:table/orders "
        "with an explicit deny in an identity-based policy",
    )


def test_managed_session_policies_given_as_policy_arns_count_as_session_policies(
    world: World,
) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:policy/read-orders"
    dynamodb_too = policy(allow("dynamodb:DescribeTable"))
    env = world.session(PolicyArns=[{"arn": arn}], Policy=dynamodb_too)
    assert world.client("s3", env).get_object(Bucket=BUCKET, Key="o/1")["Body"].read() == b"one"
    assert world.client("dynamodb", env).describe_table(TableName="orders")["Table"]
    assert error(denied(world.client("dynamodb", env).scan, TableName="orders"))[2].endswith(
        "because no session policy allows the dynamodb:Scan action"
    )


def test_a_permissions_boundary_limits_the_session_sns_and_iam_query_shapes(world: World) -> None:
    bounded = f"arn:aws:sts::{ACCOUNT}:assumed-role/{BOUNDED}/ss"
    env = world.session(BOUNDED)
    sns = world.client("sns", env)
    sns.create_topic(Name="alerts")
    # SNS answers its modelled AuthorizationError; the boundary allows no S3.
    s3 = world.client("s3", env)
    assert error(denied(s3.get_object, Bucket=BUCKET, Key="o/1")) == (
        403,
        "AccessDenied",
        f"User: {bounded} is not authorized to perform: s3:GetObject on resource: "
        f'"arn:aws:s3:::{BUCKET}/o/1" because no permissions boundary allows the '
        "s3:GetObject action",
    )
    iam = world.client("iam", env)
    assert iam.get_role(RoleName=BOUNDED)["Role"]["RoleName"] == BOUNDED
    assert error(denied(iam.get_user, UserName="developer")) == (
        403,
        "AccessDenied",
        f"User: {bounded} is not authorized to perform: iam:GetUser on resource: user developer "
        "with an explicit deny in a permissions boundary",
    )
    limited = world.client("sns", world.session(BOUNDED, Policy=policy(allow("sns:CreateTopic"))))
    topic = f"arn:aws:sns:{localaws.REGION}:{ACCOUNT}:alerts"
    assert error(denied(limited.publish, TopicArn=topic, Message="m")) == (
        403,
        "AuthorizationError",
        f"User: {bounded} is not authorized to perform: SNS:Publish on resource: {topic} "
        "because no session policy allows the SNS:Publish action",
    )


def test_iam_names_a_role_by_kind_and_name(world: World) -> None:
    iam = world.client("iam", world.session(Policy=policy(allow("s3:*"))))
    assert error(denied(iam.get_role, RoleName=ROLE)) == (
        403,
        "AccessDenied",
        f"User: {SESSION} is not authorized to perform: iam:GetRole on resource: role {ROLE} "
        "because no session policy allows the iam:GetRole action",
    )


def test_a_session_assuming_a_role_is_limited_by_its_session_policies(world: World) -> None:
    sts = world.client("sts", world.session(Policy=policy(allow("s3:*"))))
    target = f"arn:aws:iam::{ACCOUNT}:role/{BOUNDED}"
    assert error(denied(sts.assume_role, RoleArn=target, RoleSessionName="chain")) == (
        403,
        "AccessDenied",
        f"User: {SESSION} is not authorized to perform: sts:AssumeRole on resource: {target} "
        "because no session policy allows the sts:AssumeRole action",
    )
    # sts:GetCallerIdentity needs no permission, whatever the policies say.
    assert sts.get_caller_identity()["Arn"] == SESSION


def test_a_multipart_upload_needs_s3_put_object_at_every_step(world: World) -> None:
    allowed = world.client("s3", world.session(Policy=policy(allow("s3:PutObject"))))
    upload = allowed.create_multipart_upload(Bucket=BUCKET, Key="big")["UploadId"]
    part = allowed.upload_part(
        Bucket=BUCKET, Key="big", UploadId=upload, PartNumber=1, Body=b"x" * 1024
    )
    allowed.complete_multipart_upload(
        Bucket=BUCKET,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    reader = world.client("s3", world.session(Policy=policy(allow("s3:GetObject"))))
    assert reader.get_object(Bucket=BUCKET, Key="big")["Body"].read() == b"x" * 1024
    assert error(denied(reader.create_multipart_upload, Bucket=BUCKET, Key="big2"))[2] == (
        f"User: {SESSION} is not authorized to perform: s3:PutObject on resource: "
        f'"arn:aws:s3:::{BUCKET}/big2" because no session policy allows the s3:PutObject action'
    )


def test_a_bucket_policy_deny_is_a_resource_based_deny_and_its_grant_to_the_session_is_final(
    world: World,
) -> None:
    admin = world.aws
    admin.enforce(False)
    enforced.admin(admin, "s3", ACCOUNT).put_bucket_policy(
        Bucket=BUCKET,
        Policy=json.dumps(
            policy(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"},
                    "Action": "s3:DeleteObject",
                    "Resource": f"arn:aws:s3:::{BUCKET}/*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": SESSION},
                    "Action": "s3:GetObjectTagging",
                    "Resource": f"arn:aws:s3:::{BUCKET}/*",
                },
            )
        ),
    )
    admin.enforce()
    try:
        s3 = world.client("s3", world.session(Policy=policy(allow("s3:DeleteObject"))))
        assert error(denied(s3.delete_object, Bucket=BUCKET, Key="o/1"))[2] == (
            f"User: {SESSION} is not authorized to perform: s3:DeleteObject on resource: "
            f'"arn:aws:s3:::{BUCKET}/o/1" with an explicit deny in a resource-based policy'
        )
        # "Permissions granted directly to a session are not limited by an implicit deny
        # in ... session policy" (Policy evaluation logic, resource-based policies).
        assert "TagSet" in s3.get_object_tagging(Bucket=BUCKET, Key="o/1")
    finally:
        admin.enforce(False)
        enforced.admin(admin, "s3", ACCOUNT).delete_bucket_policy(Bucket=BUCKET)
        admin.enforce()

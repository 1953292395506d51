"""Reading AWS's access-denied messages: one test per wording.

The messages are the IAM User Guide's own examples ("Troubleshoot access denied error
messages", section "Access denied error message examples"), the AWS Security Blog's
("Enhanced access denied error messages with policy ARNs"), and the forms services and
moto use that give no reason.
"""

from __future__ import annotations

import pytest

from iam_sudo.core.denials import Denial, parse

GUIDE = "User: arn:aws:iam::123456789012:user/JohnDoe is not authorized to perform: "


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # Service control policy: "always includes ... explicit deny ..., even if implicit"
        (
            "User: arn:aws:iam::777788889999:user/JohnDoe is not authorized to perform: "
            "codecommit:ListRepositories with an explicit deny in a service control policy",
            Denial(
                "codecommit:ListRepositories",
                None,
                "arn:aws:iam::777788889999:user/JohnDoe",
                True,
                "service-control",
            ),
        ),
        # VPC endpoint policy, implicit
        (
            GUIDE + "codecommit:ListRepositories because no VPC endpoint policy allows the "
            "codecommit:ListRepositories action",
            Denial(
                "codecommit:ListRepositories",
                None,
                "arn:aws:iam::123456789012:user/JohnDoe",
                False,
                "vpc-endpoint",
            ),
        ),
        # VPC endpoint policy, explicit, with a resource
        (
            GUIDE + "codedeploy:ListDeployments on resource: "
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:* with an explicit deny "
            "in a VPC endpoint policy",
            Denial(
                "codedeploy:ListDeployments",
                "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*",
                "arn:aws:iam::123456789012:user/JohnDoe",
                True,
                "vpc-endpoint",
            ),
        ),
        # Permissions boundary, implicit and explicit
        (
            GUIDE + "codedeploy:ListDeployments on resource: "
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:* because no "
            "permissions boundary allows the codedeploy:ListDeployments action",
            Denial(
                "codedeploy:ListDeployments",
                "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*",
                "arn:aws:iam::123456789012:user/JohnDoe",
                False,
                "permissions-boundary",
            ),
        ),
        (
            "User: arn:aws:iam::777788889999:user/JohnDoe is not authorized to perform: "
            "sagemaker:ListModels with an explicit deny in a permissions boundary",
            Denial(
                "sagemaker:ListModels",
                None,
                "arn:aws:iam::777788889999:user/JohnDoe",
                True,
                "permissions-boundary",
            ),
        ),
        # Session policies, implicit, and explicit in the guide's own spelling
        (
            GUIDE + "codecommit:ListRepositories because no session policy allows the "
            "codecommit:ListRepositories action",
            Denial(
                "codecommit:ListRepositories",
                None,
                "arn:aws:iam::123456789012:user/JohnDoe",
                False,
                "session",
            ),
        ),
        (
            GUIDE + "codedeploy:ListDeployments on resource: "
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:* with an explicit deny "
            "in a sessions policy",
            Denial(
                "codedeploy:ListDeployments",
                "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*",
                "arn:aws:iam::123456789012:user/JohnDoe",
                True,
                "session",
            ),
        ),
        # Resource-based policies
        (
            GUIDE + "secretsmanager:GetSecretValue because no resource-based policy allows the "
            "secretsmanager:GetSecretValue action",
            Denial(
                "secretsmanager:GetSecretValue",
                None,
                "arn:aws:iam::123456789012:user/JohnDoe",
                False,
                "resource-based",
            ),
        ),
        (
            GUIDE + "secretsmanager:GetSecretValue on resource: "
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:* with an explicit deny in a "
            "resource-based policy",
            Denial(
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
                "arn:aws:iam::123456789012:user/JohnDoe",
                True,
                "resource-based",
            ),
        ),
        # Role trust policies (the guide's implicit example has no "no")
        (
            GUIDE + "sts:AssumeRole because the role trust policy allows the sts:AssumeRole action",
            Denial(
                "sts:AssumeRole",
                None,
                "arn:aws:iam::123456789012:user/JohnDoe",
                False,
                "role-trust",
            ),
        ),
        (
            "User: arn:aws:iam::777788889999:user/JohnDoe is not authorized to perform: "
            "sts:AssumeRole with an explicit deny in the role trust policy",
            Denial(
                "sts:AssumeRole", None, "arn:aws:iam::777788889999:user/JohnDoe", True, "role-trust"
            ),
        ),
        # Identity-based policies
        (
            GUIDE + "codecommit:ListRepositories because no identity-based policy allows the "
            "codecommit:ListRepositories action",
            Denial(
                "codecommit:ListRepositories",
                None,
                "arn:aws:iam::123456789012:user/JohnDoe",
                False,
                "identity-based",
            ),
        ),
        (
            GUIDE + "codedeploy:ListDeployments on resource: "
            "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:* with an explicit deny "
            "in an identity-based policy",
            Denial(
                "codedeploy:ListDeployments",
                "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:*",
                "arn:aws:iam::123456789012:user/JohnDoe",
                True,
                "identity-based",
            ),
        ),
        # A VPC endpoint's denial that came through an SCP
        (
            "User: arn:aws:sts::111122223333:assumed-role/role-name/role-session-name is not "
            "authorized to perform: SNS:Publish on resource: "
            "arn:aws:sns:us-east-1:444455556666:role-name-2 with an explicit deny in a VPC "
            "endpoint policy transitively through a service control policy",
            Denial(
                "SNS:Publish",
                "arn:aws:sns:us-east-1:444455556666:role-name-2",
                "arn:aws:sts::111122223333:assumed-role/role-name/role-session-name",
                True,
                "vpc-endpoint",
                None,
                "service-control",
            ),
        ),
        # The enhanced form names the policy (AWS Security Blog)
        (
            "User: arn:aws:iam::123456789012:user/Matt is not authorized to perform: "
            "iam:ListRoles on resource: arn:aws:iam::123456789012:role/* with an explicit deny "
            "in a service control policy: "
            "arn:aws:organizations::987654321098:policy/o-qv5af4abcd/service_control_policy/p-2kgnabcd",
            Denial(
                "iam:ListRoles",
                "arn:aws:iam::123456789012:role/*",
                "arn:aws:iam::123456789012:user/Matt",
                True,
                "service-control",
                "arn:aws:organizations::987654321098:policy/o-qv5af4abcd/"
                "service_control_policy/p-2kgnabcd",
            ),
        ),
        # A resource control policy, and S3's quoted resource
        (
            "User: arn:aws:sts::123456789012:assumed-role/R/s is not authorized to perform: "
            's3:GetObject on resource: "arn:aws:s3:::bucket/key" with an explicit deny in a '
            "resource control policy",
            Denial(
                "s3:GetObject",
                "arn:aws:s3:::bucket/key",
                "arn:aws:sts::123456789012:assumed-role/R/s",
                True,
                "resource-control",
            ),
        ),
        # EC2's form goes on after the reason
        (
            "You are not authorized to perform this operation. User: "
            "arn:aws:sts::123456789012:assumed-role/R/s is not authorized to perform: "
            "ec2:RunInstances on resource: arn:aws:ec2:us-east-1:123456789012:instance/* "
            "because no identity-based policy allows the ec2:RunInstances action. Encoded "
            "authorization failure message: AbC123",
            Denial(
                "ec2:RunInstances",
                "arn:aws:ec2:us-east-1:123456789012:instance/*",
                "arn:aws:sts::123456789012:assumed-role/R/s",
                False,
                "identity-based",
            ),
        ),
    ],
)
def test_each_wording_of_the_guide_is_read(message: str, expected: Denial) -> None:
    assert parse(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "Access Denied",  # S3
        "Access to the resource https://sqs.us-east-1.amazonaws.com/ is denied.",  # SQS
        "",
        None,
    ],
)
def test_a_message_without_the_format_says_nothing(message: str | None) -> None:
    assert parse(message) == Denial()
    assert not parse(message).says_why


def test_moto_names_the_action_but_gives_no_reason() -> None:
    # moto's core/exceptions.py AccessDeniedError
    denial = parse(
        "User: arn:aws:sts::123456789012:assumed-role/IAMSudoUser/s is not authorized to "
        "perform: sqs:SendMessage"
    )
    assert denial.action == "sqs:SendMessage"
    assert denial.explicit is None
    assert denial.policy_type is None
    assert not denial.says_why


# A reason is read only where AWS puts it, once, and in its own words: anything else
# ("garbled") gives no policy type, so that the report says "unknown", never "the role
# lacks it". A resource's name is the requester's text (an S3 key may say anything).
SESSION_REASON = "because no session policy allows the s3:GetObject action"


@pytest.mark.parametrize(
    "message",
    [
        # the key names a reason; AWS gave none
        GUIDE + f's3:GetObject on resource: "arn:aws:s3:::b/k {SESSION_REASON}"',
        # the reason's action is not the denied one
        GUIDE + "s3:GetObject because no session policy allows the s3:PutObject action",
        # words after the policy type that no guide's form has
        GUIDE + "s3:GetObject because no session policy statement in the permissions "
        "boundary allows the s3:GetObject action",
        # two reasons that contradict each other
        GUIDE + f"s3:GetObject {SESSION_REASON} with an explicit deny in a service control policy",
        GUIDE + f"s3:GetObject {SESSION_REASON}; because no identity-based policy allows the "
        "s3:GetObject action",
    ],
)
def test_a_garbled_or_injected_reason_gives_no_policy_type(message: str) -> None:
    assert parse(message).policy_type is None


def test_a_reason_inside_a_quoted_resource_does_not_replace_awss_own() -> None:
    message = (
        GUIDE + f's3:GetObject on resource: "arn:aws:s3:::b/k {SESSION_REASON}" because no '
        "identity-based policy allows the s3:GetObject action"
    )
    denial = parse(message)
    assert denial.policy_type == "identity-based"
    assert denial.resource == f"arn:aws:s3:::b/k {SESSION_REASON}"


def test_an_scp_denial_worded_due_to_an_explicit_deny_is_read() -> None:
    # The guide's note: "When an SCP denies access, the error message can include the
    # phrase due to an explicit deny in a Service Control Policy, even if the denial is
    # implicit."
    denial = parse(GUIDE + "s3:GetObject due to an explicit deny in a Service Control Policy")
    assert (denial.explicit, denial.policy_type) == (True, "service-control")

import pytest

from iam_sudo import AmbiguousRole, InvalidRequest, Principal, Role, RoleNotFound, resolve_role
from iam_sudo.core.roles import check_role_reference, is_role_arn, role_arn, role_name_of

ECS = Principal("Service", "ecs-tasks.amazonaws.com")


def role(name: str, *services: str) -> Role:
    statements = [
        {"Effect": "Allow", "Principal": {"Service": s}, "Action": "sts:AssumeRole"}
        for s in services
    ]
    return Role(name, f"arn:aws:iam::123456789012:role/{name}", {"Statement": statements})


ROLES = [
    role("my-stack-TaskRole-9AO01PCC7I0T", "ecs-tasks.amazonaws.com"),
    role("my-stack-LambdaRole-1X2Y3Z", "lambda.amazonaws.com"),
    role("other-TaskRole-QQQ", "lambda.amazonaws.com"),
    role("Deploy", "codebuild.amazonaws.com"),
    role("DeployHelper", "codebuild.amazonaws.com"),
]


def test_a_substring_finds_the_one_role_whose_name_contains_it() -> None:
    assert resolve_role(ROLES, "LambdaRole").name == "my-stack-LambdaRole-1X2Y3Z"
    assert resolve_role(ROLES, "my-stack-TaskRole").name == "my-stack-TaskRole-9AO01PCC7I0T"


def test_the_principal_narrows_substring_matches_by_trust_policy() -> None:
    assert resolve_role(ROLES, "TaskRole", ECS).name == "my-stack-TaskRole-9AO01PCC7I0T"


def test_an_exact_name_wins_over_names_that_contain_it() -> None:
    assert resolve_role(ROLES, "Deploy").name == "Deploy"


def test_several_matches_are_ambiguous_and_the_error_names_them() -> None:
    with pytest.raises(AmbiguousRole) as caught:
        resolve_role(ROLES, "TaskRole")
    assert caught.value.candidates == ["my-stack-TaskRole-9AO01PCC7I0T", "other-TaskRole-QQQ"]
    assert "my-stack-TaskRole-9AO01PCC7I0T, other-TaskRole-QQQ" in str(caught.value)
    assert "--principal" in str(caught.value)


def test_the_ambiguity_message_shows_at_most_ten_candidates() -> None:
    many = [role(f"app-{i:02d}-Role", "ecs-tasks.amazonaws.com") for i in range(14)]
    with pytest.raises(AmbiguousRole) as caught:
        resolve_role(many, "Role")
    message = str(caught.value)
    assert "app-09-Role" in message
    assert "app-10-Role" not in message
    assert "and 4 more" in message
    assert len(caught.value.candidates) == 14
    assert "\n" not in message


def test_no_match_names_the_criteria() -> None:
    with pytest.raises(RoleNotFound, match="name 'TaskRole' and principal Service:ec2"):
        resolve_role(ROLES, "TaskRole", Principal("Service", "ec2.amazonaws.com"))
    with pytest.raises(RoleNotFound, match="no role matches name 'Nope'"):
        resolve_role(ROLES, "Nope")


def test_role_arns_are_recognised_in_every_partition() -> None:
    assert is_role_arn("arn:aws:iam::123456789012:role/IAMSudoUser")
    assert is_role_arn("arn:aws-cn:iam::123456789012:role/path/to/Role")
    assert is_role_arn("arn:aws-us-gov:iam::123456789012:role/R")
    assert not is_role_arn("arn:aws:iam::123456789012:user/bob")
    assert not is_role_arn("arn:aws:iam::12345:role/R")
    assert not is_role_arn("arn:aws-xx:iam::123456789012:role/R")
    assert role_name_of("arn:aws:iam::123456789012:role/path/to/Role") == "Role"


def test_a_bare_name_resolves_in_the_callers_account_and_partition() -> None:
    assert role_arn("IAMSudoUser", partition="aws-cn", account="123456789012") == (
        "arn:aws-cn:iam::123456789012:role/IAMSudoUser"
    )
    arn = "arn:aws:iam::999999999999:role/Other"
    assert role_arn(arn, partition="aws-cn", account="123456789012") == arn


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "arn:aws:s3:::bucket"])
def test_invalid_role_references_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        role_arn(bad, partition="aws", account="123456789012")


@pytest.mark.parametrize("given", ["app/Admin", "/app/Admin", "app/team/Admin"])
def test_a_name_with_its_path_is_refused_naming_the_name_alone(given: str) -> None:
    # IAM User Guide, "IAM identifiers": a role's name has no path; the path is in its ARN.
    with pytest.raises(InvalidRequest, match="use Admin \\(the name alone\\) or the role's ARN"):
        check_role_reference(given)

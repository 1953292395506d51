import pytest

from iam_sudo import InvalidSudoPolicy, Principal, Role, SudoPolicy, SudoPolicyDenied

BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"
ECS = Principal("Service", "ecs-tasks.amazonaws.com")
ECS_ONLY = """
allowed-role-names: ["*"]
allowed-principals:
  - "Service" : "ecs-tasks.amazonaws.com"
allowed-base-roles:
  - "arn:aws:iam::123456789012:role/IAMSudoUser"
"""


def role(name: str, principal: object) -> Role:
    trust = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    return Role(name, f"arn:aws:iam::123456789012:role/{name}", trust)


TASK = role("app-TaskRole-1", {"Service": "ecs-tasks.amazonaws.com"})
LAMBDA = role("app-Fn-1", {"Service": "lambda.amazonaws.com"})


def test_the_default_policy_allows_any_role_principal_and_base_role_in_aws() -> None:
    policy = SudoPolicy.default()
    assert policy.allowed_role_names == ("*",)
    assert policy.allowed_principals == (Principal("*", "*"),)
    assert policy.allowed_base_roles == ("arn:aws:iam::*:role/*",)
    policy.check(TASK, BASE, ECS)
    policy.check(LAMBDA, BASE)


def test_a_principal_restricted_policy_allows_only_roles_that_trust_that_principal() -> None:
    policy = SudoPolicy.from_yaml(ECS_ONLY)
    policy.check(TASK, BASE)
    with pytest.raises(SudoPolicyDenied, match=r"none of the principals of role app-Fn-1$"):
        policy.check(LAMBDA, BASE)
    with pytest.raises(SudoPolicyDenied, match=r"principal Service:lambda\.amazonaws\.com"):
        policy.check(TASK, BASE, Principal("Service", "lambda.amazonaws.com"))


def test_base_roles_must_be_role_arns_matching_a_glob() -> None:
    policy = SudoPolicy.from_yaml(ECS_ONLY)
    with pytest.raises(SudoPolicyDenied, match="base role arn:aws:iam::123456789012:role/Admin"):
        policy.check(TASK, "arn:aws:iam::123456789012:role/Admin")
    with pytest.raises(SudoPolicyDenied, match="base role"):
        policy.check(TASK, "arn:aws:iam::123456789012:user/IAMSudoUser")
    assert not SudoPolicy.default().allows_base_role("arn:aws:iam::123456789012:user/x")


def test_partitions_other_than_aws_need_their_own_base_role_globs() -> None:
    policy = SudoPolicy.from_document(
        {
            "allowed-role-names": ["*"],
            "allowed-principals": [{"*": "*"}],
            "allowed-base-roles": ["arn:aws-cn:iam::*:role/*", "arn:aws-us-gov:iam::*:role/Sudo"],
        }
    )
    assert policy.allows_base_role("arn:aws-cn:iam::123456789012:role/X")
    assert policy.allows_base_role("arn:aws-us-gov:iam::123456789012:role/Sudo")
    assert not policy.allows_base_role("arn:aws:iam::123456789012:role/X")


def test_role_names_are_matched_as_case_sensitive_globs_on_the_resolved_name() -> None:
    policy = SudoPolicy.from_document(
        {
            "allowed-role-names": ["app-*-1", "exact[name]"],
            "allowed-principals": [{"*": "*"}],
            "allowed-base-roles": ["*"],
        }
    )
    assert policy.allows_role_name("app-TaskRole-1")
    assert policy.allows_role_name("exact[name]")
    assert not policy.allows_role_name("APP-TaskRole-1")
    with pytest.raises(SudoPolicyDenied, match="role other"):
        policy.check(role("other", {"Service": "x"}), BASE)


def test_a_role_trusting_everyone_needs_a_policy_that_allows_the_wildcard() -> None:
    everyone = role("open", "*")
    SudoPolicy.default().check(everyone, BASE)
    with pytest.raises(SudoPolicyDenied):
        SudoPolicy.from_yaml(ECS_ONLY).check(everyone, BASE)


def test_an_empty_list_allows_nothing() -> None:
    policy = SudoPolicy.from_yaml(
        "allowed-role-names: []\nallowed-principals: []\nallowed-base-roles: ['*']"
    )
    with pytest.raises(SudoPolicyDenied):
        policy.check(TASK, BASE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allowed-role-names: [", "invalid sudo policy: .* at line"),
        ("- a\n- b", "expected a mapping"),
        ("", "expected a mapping"),
        (
            "allowed-role-names: ['*']\nallowed-principals: [{'*': '*'}]",
            "missing field allowed-base-roles",
        ),
        (ECS_ONLY + "allowed-base-role: ['*']", "unknown field 'allowed-base-role'"),
        (ECS_ONLY.replace('["*"]', '"*"'), "allowed-role-names must be a list"),
        (
            ECS_ONLY.replace('["*"]', "[7]"),
            r"allowed-role-names\[0\] must be a non-empty glob string",
        ),
        (
            ECS_ONLY.replace('"Service" : "ecs-tasks.amazonaws.com"', "Service"),
            r"allowed-principals\[0\] must be a mapping",
        ),
        (
            ECS_ONLY.replace('"ecs-tasks.amazonaws.com"', "[a, b]"),
            r"allowed-principals\[0\] must map",
        ),
        (
            ECS_ONLY.replace('- "arn:aws:iam::123456789012:role/IAMSudoUser"', "- null"),
            r"allowed-base-roles\[0\]",
        ),
    ],
)
def test_a_malformed_policy_is_one_line_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidSudoPolicy, match=message) as caught:
        SudoPolicy.from_yaml(text)
    assert "\n" not in str(caught.value)

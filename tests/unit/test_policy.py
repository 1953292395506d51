from typing import Any

import pytest

from iam_sudo import (
    InvalidSudoPolicy,
    Principal,
    Role,
    RoleNotFound,
    SudoPolicy,
    SudoPolicyDenied,
)
from iam_sudo.core.partitions import NAMES

BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"
ECS = Principal("Service", "ecs-tasks.amazonaws.com")
ECS_ONLY = """
allowed-role-names: ["*"]
allowed-principals:
  - "Service" : "ecs-tasks.amazonaws.com"
allowed-base-roles:
  - "arn:aws:iam::123456789012:role/IAMSudoUser"
"""


def role(name: str, principal: object, partition: str = "aws") -> Role:
    trust = {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}
    return Role(name, f"arn:{partition}:iam::123456789012:role/{name}", trust)


TASK = role("app-TaskRole-1", {"Service": "ecs-tasks.amazonaws.com"})
LAMBDA = role("app-Fn-1", {"Service": "lambda.amazonaws.com"})


def test_the_default_policy_allows_any_role_principal_and_base_role_in_every_partition() -> None:
    policy = SudoPolicy.default()
    assert policy.allowed_role_names == ("*",)
    assert policy.allowed_principals == (Principal("*", "*"),)
    assert policy.allowed_base_roles == ("arn:*:iam::*:role/*",)
    policy.check(TASK, BASE, ECS)
    policy.check(LAMBDA, BASE)
    # The example: in us-gov-west-1 the base role is arn:aws-us-gov:... (IAM User
    # Guide, "AWS partitions"); so in China, and in every partition botocore knows.
    for partition in NAMES:
        task = role("app-TaskRole-1", {"Service": "ecs-tasks.amazonaws.com"}, partition)
        policy.check(task, f"arn:{partition}:iam::123456789012:role/IAMSudoUser", ECS)


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


def billion_laughs() -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{refs}]")
    lines.append("allowed-role-names: *l9")
    return "\n".join(lines) + "\n"


def test_an_account_principal_glob_matches_either_spelling() -> None:
    policy = SudoPolicy.from_document(
        {
            "allowed-role-names": ["*"],
            "allowed-principals": [{"AWS": "arn:aws:iam::111111111111:root"}],
            "allowed-base-roles": ["*"],
        }
    )
    short = role("app-X", {"AWS": "111111111111"})
    policy.check(short, BASE)
    assert policy.allows_principal(Principal("AWS", "111111111111"))
    assert not policy.allows_principal(Principal("AWS", "222222222222"))


def test_resolution_sees_only_allowed_roles_and_names_only_what_was_asked() -> None:
    policy = SudoPolicy.from_yaml(ECS_ONLY)
    roles = [TASK, LAMBDA, role("app-Fn-2", {"Service": "lambda.amazonaws.com"})]
    # Three roles contain "app-", but only one may be simulated: no ambiguity, no names.
    assert policy.resolve(roles, "app-", None, BASE) == TASK
    with pytest.raises(SudoPolicyDenied) as caught:
        policy.resolve(roles, "app-Fn", None, BASE)
    assert str(caught.value) == "sudo policy allows no role matching name 'app-Fn'"
    assert caught.value.role_arn is None  # two forbidden roles matched: none is named
    with pytest.raises(RoleNotFound):
        policy.resolve(roles, "nothing", None, BASE)


def test_base_roles_can_be_scoped_to_accounts() -> None:
    policy = SudoPolicy.default().scoped_to_accounts(["123456789012"])
    assert policy.allows_base_role(BASE)
    assert not policy.allows_base_role("arn:aws:iam::999999999999:role/IAMSudoUser")
    with pytest.raises(SudoPolicyDenied, match="must be in account 123456789012"):
        policy.check(TASK, "arn:aws:iam::999999999999:role/IAMSudoUser")


RULES = """
rules:
  - allowed-callers: ["arn:aws:iam::123456789012:user/alice"]
    allowed-role-names: ["*TaskRole*"]
    allowed-principals: [{Service: ecs-tasks.amazonaws.com}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
  - allowed-callers: ["arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Builders_*/*"]
    allowed-role-names: ["*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/Builder"]
"""
ALICE = "arn:aws:iam::123456789012:user/alice"
SSO = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Builders_0a1b/carol"


def test_each_rule_is_for_its_callers() -> None:
    policy = SudoPolicy.from_yaml(RULES)
    policy.check(TASK, BASE, caller=ALICE)
    with pytest.raises(SudoPolicyDenied, match="does not allow the role app-Fn-1"):
        policy.check(LAMBDA, BASE, caller=ALICE)
    builder = "arn:aws:iam::123456789012:role/Builder"
    policy.check(LAMBDA, builder, caller=SSO)
    # A rule is all or nothing: alice's role with the builders' base role is no rule of hers.
    with pytest.raises(SudoPolicyDenied, match="does not allow the base role"):
        policy.check(TASK, builder, caller=ALICE)
    with pytest.raises(SudoPolicyDenied, match="allows arn:aws:iam::123456789012:user/eve no"):
        policy.check(TASK, BASE, caller="arn:aws:iam::123456789012:user/eve")
    with pytest.raises(SudoPolicyDenied, match="an unknown caller"):
        policy.check(TASK, BASE)


def test_the_seed_form_with_allowed_callers_is_one_rule() -> None:
    policy = SudoPolicy.from_yaml(ECS_ONLY + f'allowed-callers: ["{ALICE}"]\n')
    policy.check(TASK, BASE, caller=ALICE)
    with pytest.raises(SudoPolicyDenied):
        policy.check(TASK, BASE, caller="arn:aws:iam::123456789012:user/bob")
    assert SudoPolicy.from_yaml(ECS_ONLY).rules[0].allowed_callers is None


def test_resolution_sees_the_roles_of_the_callers_rules_only() -> None:
    policy = SudoPolicy.from_yaml(RULES)
    roles = [TASK, LAMBDA]
    assert policy.resolve(roles, "app-", None, BASE, caller=ALICE) == TASK
    with pytest.raises(SudoPolicyDenied, match="allows no role matching name 'app-Fn'"):
        policy.resolve(roles, "app-Fn", None, BASE, caller=ALICE)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rules": []}, "rules must be a non-empty list"),
        ({"rules": ["x"]}, "rules[0] must be a mapping"),
        ({"rules": [{"allowed-role-names": ["*"]}]}, "missing field rules[0].allowed-principals"),
        (
            {
                "rules": [
                    {
                        **{k: ["*"] for k in ("allowed-role-names", "allowed-base-roles")},
                        "allowed-principals": [{"*": "*"}],
                        "allowed-callers": "alice",
                    }
                ]
            },
            "rules[0].allowed-callers must be a list of glob strings",
        ),
        (
            {
                "rules": [
                    {
                        "allowed-role-names": ["*"],
                        "allowed-principals": [{"*": "*"}],
                        "allowed-base-roles": ["*"],
                        "sudo": True,
                    }
                ]
            },
            "unknown field rules[0].'sudo'",
        ),
        ({"allowed-callers": ["*"]}, "missing field allowed-role-names"),
    ],
)
def test_the_validator_names_the_field_of_a_mistake_in_a_rule(
    document: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSudoPolicy) as caught:
        SudoPolicy.from_document(document)
    assert message in str(caught.value)


# allowed-accounts (issue 17): where, as 12-digit account globs.
DEV = "111111111111"
PROD = "222222222222"


def in_account(account: str, name: str = "app-TaskRole-1") -> Role:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    return Role(name, f"arn:aws:iam::{account}:role/{name}", trust)


def base_in(account: str) -> str:
    return f"arn:aws:iam::{account}:role/IAMSudoUser"


ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
PER_RULE_ACCOUNTS = """
rules:
  - allowed-callers: ["arn:aws:iam::123456789012:user/alice"]
    allowed-accounts: ["1111111111*"]
    allowed-role-names: ["*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
  - allowed-callers: ["arn:aws:iam::123456789012:user/bob"]
    allowed-role-names: ["*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
"""


def test_without_allowed_accounts_every_account_within_reach_is_allowed() -> None:
    policy = SudoPolicy.default()
    for account in (DEV, PROD):
        policy.check(in_account(account), base_in(account))
        assert policy.allows_account(account)


def test_a_rule_s_allowed_accounts_say_where_its_callers_may_simulate() -> None:
    policy = SudoPolicy.from_yaml(PER_RULE_ACCOUNTS)
    policy.check(in_account(DEV), base_in(DEV), caller=ALICE)
    with pytest.raises(SudoPolicyDenied) as denied:
        policy.check(in_account(PROD), base_in(PROD), caller=ALICE)
    assert str(denied.value) == (
        f"sudo policy does not allow simulating roles in account {PROD}; ask for it in the "
        "policy's allowed-accounts"
    )
    policy.check(in_account(PROD), base_in(PROD), caller=BOB)
    # A role of a forbidden account is not seen: resolution names nothing of it.
    assert not policy.allows_role(in_account(PROD), ALICE)
    with pytest.raises(SudoPolicyDenied) as hidden:
        policy.resolve([in_account(PROD)], "TaskRole", None, base_in(PROD), ALICE)
    assert PROD not in str(hidden.value)


def test_the_base_role_must_be_in_an_allowed_account_too() -> None:
    policy = SudoPolicy.from_yaml(PER_RULE_ACCOUNTS)
    assert policy.allows_base_role(base_in(DEV), ALICE)
    assert not policy.allows_base_role(base_in(PROD), ALICE)
    with pytest.raises(SudoPolicyDenied, match="base role"):
        policy.check(in_account(DEV), base_in(PROD), caller=ALICE)


def test_top_level_allowed_accounts_bound_every_rule() -> None:
    text = "allowed-accounts: ['111111111111', '3333????????']\n" + PER_RULE_ACCOUNTS
    policy = SudoPolicy.from_yaml(text)
    assert policy.allowed_accounts == ("111111111111", "3333????????")
    policy.check(in_account(DEV), base_in(DEV), caller=BOB)
    policy.check(in_account("333344445555"), base_in("333344445555"), caller=BOB)
    with pytest.raises(SudoPolicyDenied, match=f"account {PROD}"):
        policy.check(in_account(PROD), base_in(PROD), caller=BOB)
    # Alice's own rule narrows further: both must match.
    with pytest.raises(SudoPolicyDenied, match="account 333344445555"):
        policy.check(in_account("333344445555"), base_in("333344445555"), caller=ALICE)
    seed_form = SudoPolicy.from_yaml(ECS_ONLY + "allowed-accounts: ['123456789012']\n")
    seed_form.check(TASK, BASE)
    with pytest.raises(SudoPolicyDenied, match=f"account {DEV}"):
        seed_form.check(in_account(DEV), base_in(DEV))


def test_base_roles_scoped_to_the_deployment_s_accounts_reach_its_spokes() -> None:
    policy = SudoPolicy.default().scoped_to_accounts(["123456789012", DEV])
    policy.check(in_account(DEV), base_in(DEV))
    with pytest.raises(SudoPolicyDenied, match="base roles must be in account"):
        policy.check(in_account(PROD), base_in(PROD))


@pytest.mark.parametrize(
    "accounts",
    ["['1234']", "['12345678901a']", "['[0-9]*']", "['1234567890123']", "'111111111111'", "[1]"],
)
def test_allowed_accounts_must_be_account_id_globs(accounts: str) -> None:
    with pytest.raises(InvalidSudoPolicy, match="allowed-accounts"):
        SudoPolicy.from_yaml(ECS_ONLY + f"allowed-accounts: {accounts}\n")
    rule = PER_RULE_ACCOUNTS.replace("['1111111111*']", accounts).replace(
        '["1111111111*"]', accounts
    )
    with pytest.raises(InvalidSudoPolicy, match=r"rules\[0\]\.allowed-accounts"):
        SudoPolicy.from_yaml(rule)


@pytest.mark.parametrize(
    "written",
    ["arn:aws:iam::123456789012:role/Ops", "arn:aws:iam::123456789012:role/team/a/Ops"],
)
def test_a_role_arn_as_caller_means_any_session_of_that_role(written: str) -> None:
    # STS names a role's caller arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION, without the
    # role's path (IAM User Guide, IAM identifiers: "IAM ARNs", assumed-role); a role's
    # name is unique in its account whatever its path.
    policy = SudoPolicy.from_yaml(ECS_ONLY + f'allowed-callers: ["{written}"]\n')
    assert policy.allows_role(TASK, "arn:aws:sts::123456789012:assumed-role/Ops/alice")
    assert policy.allows_role(TASK, "arn:aws:sts::123456789012:assumed-role/Ops/bob@x.com")
    for other in (
        "arn:aws:sts::123456789012:assumed-role/Ops2/alice",
        "arn:aws:sts::123456789012:assumed-role/XOps/alice",
        "arn:aws:sts::111111111111:assumed-role/Ops/alice",
        "arn:aws:iam::123456789012:user/Ops",
        written,
    ):
        assert not policy.allows_role(TASK, other), other


def test_a_role_name_glob_as_caller_means_any_session_of_matching_roles() -> None:
    policy = SudoPolicy.from_yaml(ECS_ONLY + 'allowed-callers: ["arn:aws:iam::*:role/Dev*"]\n')
    assert policy.allows_role(TASK, "arn:aws:sts::111111111111:assumed-role/DevOps/x")
    assert not policy.allows_role(TASK, "arn:aws:sts::111111111111:assumed-role/Ops/Dev")
    # The name glob cannot reach past the role's name into its session: a session ARN
    # has exactly one "/" after the role name (names and session names have none).
    assert not policy.allows_role(TASK, "arn:aws:sts::111111111111:assumed-role/Ops/Dev-x")


def test_an_account_glob_in_a_role_caller_means_that_role_name_in_every_account() -> None:
    # Written explicitly, as the same glob in the assumed-role form would be: any account
    # that may invoke the function (its resource policy decides which) with a role so named.
    policy = SudoPolicy.from_yaml(ECS_ONLY + 'allowed-callers: ["arn:aws:iam::*:role/Ops"]\n')
    for account in ("111111111111", "222222222222"):
        assert policy.allows_role(TASK, f"arn:aws:sts::{account}:assumed-role/Ops/x")
        assert not policy.allows_role(TASK, f"arn:aws:sts::{account}:assumed-role/Admin/Ops")
        assert not policy.allows_role(TASK, f"arn:aws:iam::{account}:user/Ops")


ALL_FORMS = (
    "write arn:PARTITION:iam::ACCOUNT:role/NAME or arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/* "
    "(NAME may be a glob), arn:PARTITION:iam::ACCOUNT:user/[PATH/]NAME or "
    "arn:PARTITION:iam::ACCOUNT:root (PARTITION: aws, aws-us-gov, aws-cn, ...)"
)


@pytest.mark.parametrize(
    ("written", "why"),
    [
        # IAM User Guide, IAM identifiers ("Friendly names and paths"): role/ci/* names the
        # roles under the path /ci/. The session ARN has no path: matched by name, this
        # would be every role of the account (an Admin role's sessions too).
        ("arn:aws:iam::123456789012:role/ci/*", "chooses roles by path"),
        ("arn:aws:iam::123456789012:role/ci/deploy-*", "chooses roles by path"),
        ("arn:aws:iam::123456789012:role/team/*/Ops", "chooses roles by path"),
        ("arn:aws:iam::123456789012:role/*/Ops", "chooses roles by path"),
        ("arn:aws:iam::123456789012:role/", "names no role"),
        ("arn:aws:iam::123456789012:role/ci/", "names no role"),
    ],
)
def test_a_role_caller_chosen_by_path_is_refused_showing_the_forms(written: str, why: str) -> None:
    with pytest.raises(InvalidSudoPolicy) as caught:
        SudoPolicy.from_yaml(ECS_ONLY + f'allowed-callers: ["{written}"]\n')
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid sudo policy: allowed-callers[0] {written!r} {why}")
    assert message.endswith(ALL_FORMS)


def test_a_path_glob_in_allowed_callers_is_not_every_role_of_the_account() -> None:
    # Review r1: role/ci/* became assumed-role/*/*, admitting an Untrusted role's session.
    from iam_sudo.core.sudo_policy import Rule

    document = {
        "allowed-role-names": ["*"],
        "allowed-principals": [{"*": "*"}],
        "allowed-base-roles": ["arn:aws:iam::123456789012:role/IAMSudoUser"],
        "allowed-callers": ["arn:aws:iam::123456789012:role/ci/*"],
    }
    with pytest.raises(InvalidSudoPolicy, match="chooses roles by path"):
        Rule.from_document(document)


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("123456789012", "is not a caller ARN"),
        ("alice", "is not a caller ARN"),
        ("arn:aws:iam::123456789012:assumed-role/Ops/alice", "is no ARN that STS names"),
        ("arn:aws:sts::123456789012:role/Ops", "is no ARN that STS names"),
        ("arn:aws:sts::123456789012:user/alice", "is no ARN that STS names"),
        ("arn:aws:iam::123456789012:federated-user/alice", "is no ARN that STS names"),
        ("arn:aws:sts::123456789012:assumed-role/Ops", "names no session"),
    ],
)
def test_a_caller_no_caller_arn_can_be_is_refused_not_silently_matched_by_nobody(
    written: str, why: str
) -> None:
    with pytest.raises(InvalidSudoPolicy) as caught:
        SudoPolicy.from_yaml(ECS_ONLY + f'allowed-callers: ["{written}"]\n')
    assert str(caught.value).startswith(
        f"invalid sudo policy: allowed-callers[0] {written!r} {why}"
    )
    assert str(caught.value).endswith(ALL_FORMS)


@pytest.mark.parametrize(
    ("written", "admitted", "refused"),
    [
        # The ARNs sts:GetCallerIdentity returns (IAM User Guide, IAM identifiers, IAM ARNs):
        # a user's carries its path, so a path in a user rule is compared as written.
        (
            "arn:aws:iam::123456789012:user/ci/*",
            ["arn:aws:iam::123456789012:user/ci/deployer"],
            ["arn:aws:iam::123456789012:user/admin", "arn:aws:iam::123456789012:user/cix/a"],
        ),
        (
            "arn:aws:iam::123456789012:root",
            ["arn:aws:iam::123456789012:root"],
            ["arn:aws:iam::123456789012:user/root", "arn:aws:iam::111111111111:root"],
        ),
        (
            "arn:aws:sts::123456789012:federated-user/alice",
            ["arn:aws:sts::123456789012:federated-user/alice"],
            [
                "arn:aws:iam::123456789012:user/alice",
                "arn:aws:sts::123456789012:assumed-role/alice/x",
            ],
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/Ops/*",
            ["arn:aws:sts::123456789012:assumed-role/Ops/alice"],
            ["arn:aws:sts::123456789012:assumed-role/OpsAdmin/alice"],
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/Ops*",
            ["arn:aws:sts::123456789012:assumed-role/OpsAdmin/alice"],
            ["arn:aws:sts::123456789012:assumed-role/Dev/Ops"],
        ),
        (
            "arn:aws:iam::123456789012:role/team/Ops",
            ["arn:aws:sts::123456789012:assumed-role/Ops/alice"],
            ["arn:aws:sts::123456789012:assumed-role/team/Ops"],
        ),
        (
            "arn:aws:*::123456789012:*",
            [
                "arn:aws:iam::123456789012:user/a",
                "arn:aws:sts::123456789012:assumed-role/R/s",
                "arn:aws:iam::123456789012:root",
            ],
            ["arn:aws:iam::111111111111:user/a"],
        ),
    ],
)
def test_every_caller_form_admits_what_it_names_and_nothing_wider(
    written: str, admitted: list[str], refused: list[str]
) -> None:
    policy = SudoPolicy.from_yaml(ECS_ONLY + f'allowed-callers: ["{written}"]\n')
    for caller in admitted:
        assert policy.allows_role(TASK, caller), caller
    for caller in refused:
        assert not policy.allows_role(TASK, caller), caller

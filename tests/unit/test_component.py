"""The Pulumi program under Pulumi's mocks: what it would create, and what it refuses."""

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from devtools import localaws, pulumi_program
from iam_sudo import InvalidSudoPolicy, SudoPolicy
from iam_sudo.core.duties import PACKED_POLICY_WRITES
from iam_sudo_deploy.component import (
    MAX_ENVIRONMENT_BYTES,
    environment_bytes,
    function_environment,
)
from tests.conftest import ALLOW_ALL_POLICY, ROOT

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"


def document(resource: pulumi_program.Resource, key: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(resource.inputs[key])
    return parsed


def statements_by_sid(program: pulumi_program.ProgramRun) -> dict[str, dict[str, Any]]:
    policy = document(program.one("aws:iam/rolePolicy:RolePolicy", "execution-policy"), "policy")
    return {s["Sid"]: s for s in policy["Statement"]}


def test_the_base_role_trusts_the_function_not_the_account(
    program: pulumi_program.ProgramRun,
) -> None:
    base = program.one(ROLE, "base-role")
    assert base.inputs["name"] == "IAMSudoUser"
    assert base.inputs["maxSessionDuration"] == 3600
    [statement] = document(base, "assumeRolePolicy")["Statement"]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::123456789012:role/iam-sudo-execution"]}
    assert statement["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    attachment = program.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "base-role")
    assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/PowerUserAccess"


def test_the_execution_role_may_read_roles_assume_allowed_base_roles_and_log(
    program: pulumi_program.ProgramRun,
) -> None:
    execution = program.one(ROLE, "execution")
    [trust] = document(execution, "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    statements = statements_by_sid(program)
    assert set(statements) == {
        "ListRolesAndPolicies",
        "ReadRoles",
        "ReadPolicies",
        "CreateSessionPolicies",
        "AssumeBaseRoles",
        "NeverRolesOfOtherDuties",
        "Log",
    }
    assert statements["ListRolesAndPolicies"]["Resource"] == "*"
    assert statements["ReadRoles"]["Resource"] == "arn:aws:iam::123456789012:role/*"
    assert statements["ReadPolicies"]["Resource"] == [
        "arn:aws:iam::aws:policy/*",
        "arn:aws:iam::123456789012:policy/*",
    ]
    # Creating policies only under iam-sudo's own path.
    assert statements["CreateSessionPolicies"] == {
        "Sid": "CreateSessionPolicies",
        "Effect": "Allow",
        "Action": ["iam:CreatePolicy"],
        "Resource": "arn:aws:iam::123456789012:policy/iam-sudo/*",
    }
    assert statements["AssumeBaseRoles"] == {
        "Sid": "AssumeBaseRoles",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        # The policy's glob says any account; the grant says this one.
        "Resource": ["arn:aws:iam::123456789012:role/IAMSudoUser"],
    }
    assert statements["Log"]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements["Log"]["Resource"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/iam-sudo:*"
    )
    # IAM's own bound on what the function checks by name (core/duties.py): no role of
    # another duty in any account, whatever the policy's globs; never the spoke reader,
    # which the hub reads spokes through.
    never = statements.pop("NeverRolesOfOtherDuties")
    assert (never["Effect"], never["Action"]) == ("Deny", "sts:AssumeRole")
    assert {
        "arn:aws:iam::*:role/iam-sudo-execution",
        "arn:aws:iam::*:role/OrganizationAccountAccessRole",
        "arn:aws:iam::*:role/stacksets-exec-*",
    } <= set(never["Resource"])
    assert not [r for r in never["Resource"] if r.endswith("/iam-sudo-reader")]
    assert all(s["Effect"] == "Allow" for s in statements.values())


def test_the_log_group_keeps_logs_30_days_by_default(program: pulumi_program.ProgramRun) -> None:
    group = program.one("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == "/aws/lambda/iam-sudo"
    assert group.inputs["retentionInDays"] == 30


def test_the_invoker_policy_allows_invoking_only_the_function(
    program: pulumi_program.ProgramRun,
) -> None:
    invoker = program.one("aws:iam/policy:Policy", "invoker")
    assert document(invoker, "policy")["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo",
        }
    ]


def test_the_stack_exports_function_base_role_and_invoker_policy(
    program: pulumi_program.ProgramRun,
) -> None:
    assert program.outputs == {
        "functionName": "iam-sudo",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo",
        "baseRoleArn": "arn:aws:iam::123456789012:role/IAMSudoUser",
        "invokerPolicyArn": "arn:aws:iam::123456789012:policy/iam-sudo-invoker",
    }


def test_every_resource_belongs_to_the_component(program: pulumi_program.ProgramRun) -> None:
    types = [r.type for r in program.resources]
    assert types[0] == "iam-sudo:index:IamSudoDeployment"
    assert len(types) == 9  # with the base role's packed-policy Deny


def test_configuration_changes_names_policies_trust_and_invokers(tmp_path: Path) -> None:
    run = pulumi_program.run(
        {
            "policy": ALLOW_ALL_POLICY.replace("IAMSudoUser", "Sudo"),
            "functionName": "sudo-fn",
            "runtime": "python3.12",
            "baseRoleName": "Sudo",
            "baseRolePolicies": [
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                "arn:aws:iam::aws:policy/AmazonS3FullAccess",
            ],
            "baseRoleTrustedPrincipals": ["arn:aws:iam::123456789012:role/Developer"],
            "maxSessionDuration": 7200,
            "logRetentionDays": 7,
            "invokerUsers": ["alice"],
            "invokerGroups": ["developers"],
            "invokerRoles": ["ci"],
        },
        tmp_path,
    )
    assert run.one(FUNCTION).inputs["runtime"] == "python3.12"
    assert run.function_env["IAM_SUDO_BASE_ROLE"] == "arn:aws:iam::123456789012:role/Sudo"
    base = run.one(ROLE, "base-role")
    assert base.inputs["maxSessionDuration"] == 7200
    [trust] = document(base, "assumeRolePolicy")["Statement"]
    assert trust["Principal"]["AWS"] == [
        "arn:aws:iam::123456789012:role/sudo-fn-execution",
        "arn:aws:iam::123456789012:role/Developer",
    ]
    attached = {
        r.inputs["policyArn"]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if "base-role" in r.name
    }
    assert attached == {
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
    }
    assert run.one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 7
    invoker_arn = "arn:aws:iam::123456789012:policy/sudo-fn-invoker"
    assert run.one("aws:iam/userPolicyAttachment:UserPolicyAttachment").inputs == {
        "user": "alice",
        "policyArn": invoker_arn,
    }
    assert (
        run.one("aws:iam/groupPolicyAttachment:GroupPolicyAttachment").inputs["group"]
        == "developers"
    )
    assert (
        run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "invoker").inputs["role"]
        == "ci"
    )


@pytest.mark.parametrize(
    "policy",
    [
        "allowed-role-names: [",
        "allowed-role-names: ['*']\nallowed-principals: [{'*': '*'}]",
        ALLOW_ALL_POLICY + "extra: 1\n",
        ALLOW_ALL_POLICY.replace('"*": "*"', "nope"),
    ],
)
def test_an_invalid_policy_fails_with_the_validators_message_before_any_resource(
    tmp_path: Path, policy: str
) -> None:
    with pytest.raises(InvalidSudoPolicy) as expected:
        SudoPolicy.from_yaml(policy)
    mocks = pulumi_program.Mocks()
    with pytest.raises(pulumi.RunError) as caught:
        pulumi_program.run({"policy": policy}, tmp_path, mocks)
    assert str(caught.value) == str(expected.value)
    assert str(caught.value).startswith("invalid sudo policy")
    assert mocks.resources == [], "no resource, not even the component, is registered"
    assert not (tmp_path / "build").exists(), "not even the archive is built"


def test_a_policy_that_excludes_the_base_role_fails(tmp_path: Path) -> None:
    policy = ALLOW_ALL_POLICY.replace("IAMSudoUser", "Other")
    with pytest.raises(
        Exception, match="do not include the base role arn:aws:iam::123456789012:role/IAMSudoUser"
    ):
        pulumi_program.run({"policy": policy}, tmp_path)


def test_a_missing_policy_fails(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="iam-sudo:policy"):
        pulumi_program.run({}, tmp_path)


def test_every_config_key_is_documented_in_pulumi_yaml_and_the_deploy_page() -> None:
    import yaml

    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    deploy_page = (ROOT / "docs" / "deploy.md").read_text()
    used = {
        "policy",
        "functionName",
        "runtime",
        "baseRoleName",
        "baseRolePolicies",
        "baseRoleTrustedPrincipals",
        "maxSessionDuration",
        "logRetentionDays",
        "invokerUsers",
        "invokerGroups",
        "invokerRoles",
        "baseRoleAccounts",
        "boundaryVariants",
        "spokeAccounts",
        "spokeOrganizationalUnits",
        "spokeDeployRole",
        "spokeStackSet",
    }
    component = (ROOT / "function" / "component.py").read_text()
    assert all(f'"{key}"' in component for key in used)
    assert declared == {f"iam-sudo:{key}" for key in used}
    assert all(f"iam-sudo:{key}" in deploy_page for key in used)


def test_other_accounts_base_roles_only_when_configured(tmp_path: Path) -> None:
    policy = ALLOW_ALL_POLICY + '  - "arn:aws:iam::210987654321:role/Sudo*"\n'
    program = pulumi_program.run({"policy": policy, "baseRoleAccounts": ["210987654321"]}, tmp_path)
    assert statements_by_sid(program)["AssumeBaseRoles"]["Resource"] == [
        "arn:aws:iam::123456789012:role/IAMSudoUser",
        "arn:aws:iam::210987654321:role/IAMSudoUser",
        "arn:aws:iam::210987654321:role/Sudo*",
    ]
    assert program.function_env["IAM_SUDO_BASE_ROLE_ACCOUNTS"] == "123456789012,210987654321"


def test_a_malformed_base_role_account_fails(tmp_path: Path) -> None:
    with pytest.raises(pulumi.RunError, match="12-digit account ids, got '1234'"):
        pulumi_program.run({"policy": ALLOW_ALL_POLICY, "baseRoleAccounts": ["1234"]}, tmp_path)


def test_boundary_variants_of_the_base_role_carry_each_boundary(tmp_path: Path) -> None:
    boundary = "arn:aws:iam::123456789012:policy/DeveloperBoundary"
    policy = ALLOW_ALL_POLICY.replace("role/IAMSudoUser", "role/IAMSudoUser*")
    program = pulumi_program.run({"policy": policy, "boundaryVariants": [boundary]}, tmp_path)
    variant = program.one(ROLE, "base-role-0")
    assert variant.inputs["name"] == "IAMSudoUser-DeveloperBoundary"
    assert variant.inputs["permissionsBoundary"] == boundary
    [base] = [r for r in program.of_type(ROLE) if r.inputs["name"] == "IAMSudoUser"]
    assert variant.inputs["assumeRolePolicy"] == base.inputs["assumeRolePolicy"]
    attachments = program.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert [a.inputs["policyArn"] for a in attachments if "base-role-0" in a.name] == [
        "arn:aws:iam::aws:policy/PowerUserAccess"
    ]


def test_a_boundary_variant_the_policy_does_not_allow_fails(tmp_path: Path) -> None:
    boundary = "arn:aws:iam::123456789012:policy/DeveloperBoundary"
    with pytest.raises(pulumi.RunError, match="role/IAMSudoUser-DeveloperBoundary"):
        pulumi_program.run({"policy": ALLOW_ALL_POLICY, "boundaryVariants": [boundary]}, tmp_path)


def test_a_policy_too_large_for_lambdas_environment_is_refused(tmp_path: Path) -> None:
    rules = "".join(
        f"  - allowed-callers: ['arn:aws:iam::123456789012:user/user{i:03d}']\n"
        "    allowed-role-names: ['*TaskRole*']\n"
        "    allowed-principals: [{Service: ecs-tasks.amazonaws.com}]\n"
        "    allowed-base-roles: ['arn:aws:iam::*:role/IAMSudoUser']\n"
        for i in range(40)
    )
    with pytest.raises(pulumi.RunError, match=r"Lambda allows 4096 bytes for all its variables"):
        pulumi_program.run({"policy": "rules:\n" + rules}, tmp_path)


def test_the_size_check_counts_every_variable_the_function_gets(tmp_path: Path) -> None:
    # Lambda quotas: 4 KB for all of a function's environment variables together. A policy
    # that fits beside one account does not beside 200 baseRoleAccounts (13 bytes each).
    policy = ALLOW_ALL_POLICY + "#" * (3000 - len(ALLOW_ALL_POLICY))
    program = pulumi_program.run({"policy": policy}, tmp_path / "one")
    assert environment_bytes(program.function_env) <= MAX_ENVIRONMENT_BYTES
    accounts = [f"{i:012d}" for i in range(1, 201)]
    with pytest.raises(pulumi.RunError) as caught:
        pulumi_program.run({"policy": policy, "baseRoleAccounts": accounts}, tmp_path / "many")
    message = str(caught.value)
    assert "\n" not in message
    assert "would take" in message
    assert message.endswith("or list fewer baseRoleAccounts")


# 223 quoted role names, one a line, and a comment: 3,525 bytes of names and values, but
# each newline and quote is two bytes (\n, \") of the JSON that Lambda measures.
NAMES_POLICY = (
    'allowed-principals: [{"*": "*"}]\n'
    'allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]\n'
    "allowed-role-names:\n"
    + "".join(f'  - "app{i:03d}"\n' for i in range(223))
    + '#"'
    + "-" * 400
    + "\n"
)


def test_the_size_check_counts_the_json_lambda_measures_not_names_and_values(
    tmp_path: Path,
) -> None:
    # Lambda refuses a set over 4 KB with "... exceeded the 4KB limit. String measured:
    # {"NAME":"value",...}": quotes, colons, commas, braces and escapes count.
    variables = function_environment(
        NAMES_POLICY, "arn:aws:iam::123456789012:role/IAMSudoUser", ["123456789012"]
    )
    assert sum(len(k) + len(v) for k, v in variables.items()) == 3525  # the old count
    measured = json.dumps(variables, separators=(",", ":"))
    assert environment_bytes(variables) == len(measured.encode()) == 4224
    with pytest.raises(pulumi.RunError, match=r"would take 4224 bytes as Lambda counts them"):
        pulumi_program.run({"policy": NAMES_POLICY}, tmp_path)


def test_what_the_function_gets_is_what_was_counted_up_to_the_last_byte(tmp_path: Path) -> None:
    base = {"policy": ALLOW_ALL_POLICY, "spokeAccounts": ["111111111111"]}
    program = pulumi_program.run(base, tmp_path / "base")
    room = MAX_ENVIRONMENT_BYTES - environment_bytes(program.function_env)
    # A comment line of exactly the room left (its newline is two bytes): 4096, accepted.
    fits = ALLOW_ALL_POLICY + "#" * (room - 2) + "\n"
    program = pulumi_program.run({**base, "policy": fits}, tmp_path / "fits")
    env = program.function_env
    assert environment_bytes(env) == MAX_ENVIRONMENT_BYTES
    assert set(env) == {
        "IAM_SUDO_POLICY",
        "IAM_SUDO_BASE_ROLE",
        "IAM_SUDO_BASE_ROLE_ACCOUNTS",
        "IAM_SUDO_SPOKE_ACCOUNTS",
    }
    assert env["IAM_SUDO_BASE_ROLE"] == program.outputs["baseRoleArn"]
    # One byte more (4097): refused, naming the spoke list as what no longer fits.
    with pytest.raises(pulumi.RunError, match=r"take 41 bytes .* other variables' 4056;"):
        pulumi_program.run({**base, "policy": fits + "#"}, tmp_path / "over")


def test_every_base_role_may_not_rewrite_or_delete_packed_policies(tmp_path: Path) -> None:
    # A live session names a packed /iam-sudo/ policy by ARN (STS API reference,
    # AssumeRole: PolicyArns): a simulated session allowed iam:CreatePolicyVersion (under a
    # base role granted AdministratorAccess) could otherwise make another user's session
    # policy a new default version. IAM User Guide, "Policy evaluation logic": an explicit
    # Deny in an identity-based policy overrides every Allow, boundary or not.
    from iam_sudo.core.ceiling import Ceiling

    boundary = "arn:aws:iam::123456789012:policy/DeveloperBoundary"
    policy = ALLOW_ALL_POLICY.replace("role/IAMSudoUser", "role/IAMSudoUser*")
    program = pulumi_program.run(
        {
            "policy": policy,
            "boundaryVariants": [boundary],
            "baseRolePolicies": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        },
        tmp_path,
    )
    roles = {r.name: r.inputs["name"] for r in program.of_type(ROLE) if "base-role" in r.name}
    denies = [
        r for r in program.of_type("aws:iam/rolePolicy:RolePolicy") if "packed-policies" in r.name
    ]
    assert sorted(d.inputs["role"] for d in denies) == sorted(roles.values())
    assert len(denies) == 2
    for deny in denies:
        [statement] = document(deny, "policy")["Statement"]
        assert statement["Effect"] == "Deny"
        assert "Condition" not in statement
        assert (
            set(statement["Action"])
            == {
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:DeletePolicy",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            }
            == set(PACKED_POLICY_WRITES)
        )
        assert statement["Resource"] == "arn:aws:iam::123456789012:policy/iam-sudo/*"
    # The ceiling report shows it: a role allowed iam:* loses these on /iam-sudo/ policies.
    [deny] = [d for d in denies if d.inputs["role"] == "IAMSudoUser"]
    ceiling = Ceiling.from_policies(
        "IAMSudoUser",
        {
            "AdministratorAccess": localaws.allow("*"),
            "iam-sudo-packed-policies": document(deny, "policy"),
        },
    )
    admin = localaws.allow("iam:*")
    [found] = ceiling.narrowings([("p", "inline policy p", admin)])
    assert found.actions == ("iam:*",)
    assert found.partly
    assert found.certain
    assert "iam-sudo-packed-policies" in found.line("IAMSudoUser")
    assert not ceiling.narrowings([("p", "inline policy p", localaws.allow("s3:*"))])


def _strings(value: Any) -> list[str]:
    """Every string in a resource's inputs, JSON documents (policies, templates) opened."""
    if isinstance(value, str):
        try:
            opened = json.loads(value)
        except ValueError:
            return [value]
        return _strings(opened) if isinstance(opened, dict | list) else [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
@pytest.mark.parametrize("stack_set", [False, True])
def test_the_program_writes_the_partition_it_deploys_in_never_aws(
    tmp_path: Path, region: str, partition: str, stack_set: bool
) -> None:
    # IAM User Guide, "AWS partitions": every ARN names its partition, and nothing crosses
    # between them; a policy naming arn:aws: in China grants nothing there.
    unit = "ou-ab12-cdefgh34"
    mocks = pulumi_program.Mocks(
        organizational_units={unit: [("333333333333", "ACTIVE")]}, region=region
    )
    config: dict[str, Any] = {
        "policy": ALLOW_ALL_POLICY.replace("arn:aws:", f"arn:{partition}:").replace(
            "role/IAMSudoUser", "role/IAMSudoUser*"
        ),
        "boundaryVariants": [f"arn:{partition}:iam::123456789012:policy/Boundary"],
        "spokeOrganizationalUnits": [unit],
        "spokeStackSet": stack_set,
    }
    if not stack_set:
        config["spokeAccounts"] = ["111111111111"]
    program = pulumi_program.run(config, tmp_path, mocks)
    arns = [s for r in program.resources for s in _strings(r.inputs) if s.startswith("arn:")]
    assert arns, "the program names ARNs"
    assert {arn.split(":")[1] for arn in arns} == {partition}
    assert f"arn:{partition}:iam::aws:policy/PowerUserAccess" in arns
    execution = program.one("aws:iam/role:Role", "execution")
    [trust] = json.loads(execution.inputs["assumeRolePolicy"])["Statement"]
    # Lambda's service principal is lambda.amazonaws.com in China too (core/partitions.py).
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert program.function_env["IAM_SUDO_BASE_ROLE"].startswith(f"arn:{partition}:iam::")


def test_the_default_base_role_glob_is_refused_where_it_names_another_partition(
    tmp_path: Path,
) -> None:
    mocks = pulumi_program.Mocks(region="cn-north-1")
    with pytest.raises(pulumi.RunError, match=r"do not include the base role arn:aws-cn:iam::"):
        pulumi_program.run({"policy": ALLOW_ALL_POLICY}, tmp_path, mocks)

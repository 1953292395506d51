"""Spokes: one definition, rendered as Pulumi resources per account and as a StackSet."""

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from devtools import pulumi_program
from devtools.pulumi_program import ACCOUNT, MANAGEMENT_ACCOUNT, Mocks, ProgramRun
from iam_sudo.core.duties import PACKED_POLICY_WRITES
from iam_sudo_deploy.permissions import IAM_CREATE_ACTIONS, IAM_READ_ACTIONS
from iam_sudo_deploy.spoke import in_account
from tests.conftest import ALLOW_ALL_POLICY

ROLE = "aws:iam/role:Role"
PROVIDER = "pulumi:providers:aws"
SPOKES = ["111111111111", "222222222222"]
OU = "ou-ab12-cdefgh34"
HUB_EXECUTION = f"arn:aws:iam::{ACCOUNT}:role/iam-sudo-execution"


def statements(run: ProgramRun) -> dict[str, dict[str, Any]]:
    policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "execution").inputs["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


def run_with(tmp_path: Path, mocks: Mocks | None = None, **config: Any) -> ProgramRun:
    return pulumi_program.run({"policy": ALLOW_ALL_POLICY, **config}, tmp_path, mocks)


@pytest.fixture(scope="module")
def spokes(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    mocks = Mocks(organizational_units={OU: [("333333333333", "ACTIVE")]})
    return run_with(
        tmp_path_factory.mktemp("spokes"),
        mocks,
        spokeAccounts=SPOKES,
        spokeOrganizationalUnits=[OU],
    )


def spoke_roles(run: ProgramRun, account: str) -> dict[str, dict[str, Any]]:
    """The roles of one account as CloudFormation would write them, from the resources."""
    roles = {}
    for role in run.of_type(ROLE):
        if run.account_of(role) != account:
            continue
        name = role.inputs["name"]
        inline = {
            p.inputs["name"]: json.loads(p.inputs["policy"])
            for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
            if run.account_of(p) == account and p.inputs["role"] == f"{name}-id"
        }
        managed = [
            a.inputs["policyArn"]
            for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
            if run.account_of(a) == account and a.inputs["role"] == name
        ]
        roles[name] = {
            "trust": json.loads(role.inputs["assumeRolePolicy"]),
            "inline": inline,
            "managed": managed,
            "boundary": role.inputs.get("permissionsBoundary"),
        }
    return roles


def test_every_spoke_resource_lands_in_its_account_through_the_deploy_role(
    spokes: ProgramRun,
) -> None:
    accounts = [*SPOKES, "333333333333"]
    providers = spokes.of_type(PROVIDER)
    assert sorted(pulumi_program.assumed_account(p) for p in providers) == accounts
    for provider in providers:
        account = pulumi_program.assumed_account(provider)
        [assumed] = json.loads(provider.inputs["assumeRoles"])
        assert assumed["roleArn"] == f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        assert json.loads(provider.inputs["allowedAccountIds"]) == [account]
    for account in accounts:
        in_it = [r for r in spokes.resources if f"-spoke-{account}-" in r.name]
        assert len(in_it) == 5  # reader, its policy, base role, its Deny, its attachment
        assert {spokes.account_of(r) for r in in_it} == {account}
        assert sorted(spoke_roles(spokes, account)) == ["IAMSudoUser", "iam-sudo-reader"]
    hub = [r for r in spokes.resources if "-spoke-" not in r.name and r.type != PROVIDER]
    assert {spokes.account_of(r) for r in hub} == {ACCOUNT}


def test_the_hub_is_granted_exactly_the_spoke_roles_never_a_wildcard_account(
    spokes: ProgramRun,
) -> None:
    granted = statements(spokes)["AssumeSpokeRoles"]
    assert granted["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert granted["Resource"] == [
        f"arn:aws:iam::{account}:role/{name}"
        for account in [*SPOKES, "333333333333"]
        for name in ("iam-sudo-reader", "IAMSudoUser")
    ]
    for statement in statements(spokes).values():
        if statement["Effect"] == "Deny":
            continue  # a Deny in every account narrows
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else [resources]:
            if resource != "*":
                assert resource.split(":")[4] not in ("*", ""), resource
    env = spokes.function_env
    assert env["IAM_SUDO_SPOKE_ACCOUNTS"] == "111111111111,222222222222,333333333333"
    # The function adds its spokes to the accounts base roles may be in; listed once only.
    assert env["IAM_SUDO_BASE_ROLE_ACCOUNTS"] == ACCOUNT


def test_more_spokes_than_lambda_s_environment_can_list_are_refused(tmp_path: Path) -> None:
    many = [f"{100000000000 + i}" for i in range(400)]
    with pytest.raises(pulumi.RunError, match=r"400 spoke accounts take 5228 bytes.* at most \d+"):
        run_with(tmp_path, spokeAccounts=many)


def test_spoke_roles_trust_exactly_the_hub_function_and_the_reader_reads_its_own_account(
    spokes: ProgramRun,
) -> None:
    roles = spoke_roles(spokes, "222222222222")
    for role in roles.values():
        [trust] = role["trust"]["Statement"]
        assert trust["Principal"] == {"AWS": [HUB_EXECUTION]}
    assert roles["IAMSudoUser"]["trust"]["Statement"][0]["Action"] == [
        "sts:AssumeRole",
        "sts:SetSourceIdentity",
        "sts:TagSession",
    ]
    assert roles["IAMSudoUser"]["managed"] == ["arn:aws:iam::aws:policy/PowerUserAccess"]
    # Like the hub's: no simulated session rewrites or deletes this account's packed policies.
    [deny] = roles["IAMSudoUser"]["inline"]["iam-sudo-packed-policies"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert set(deny["Action"]) == set(PACKED_POLICY_WRITES)
    assert deny["Resource"] == "arn:aws:iam::222222222222:policy/iam-sudo/*"
    [reader_policy] = roles["iam-sudo-reader"]["inline"].values()
    by_sid = {s["Sid"]: s for s in reader_policy["Statement"]}
    actions = {a for s in by_sid.values() for a in s["Action"]}
    # What a simulation calls (tests/unit/test_component.py checks those against the core), plus
    # what prune needs; nothing else.
    assert actions == set(IAM_READ_ACTIONS + IAM_CREATE_ACTIONS) | {"iam:DeletePolicy"}
    assert by_sid["CreateAndPruneSessionPolicies"]["Resource"] == (
        "arn:aws:iam::222222222222:policy/iam-sudo/*"
    )
    assert by_sid["ReadRoles"]["Resource"] == "arn:aws:iam::222222222222:role/*"
    assert roles["iam-sudo-reader"]["managed"] == []


def test_the_stack_set_carries_the_same_roles_and_policies(
    spokes: ProgramRun, tmp_path: Path
) -> None:
    mocks = Mocks(organizational_units={OU: [("333333333333", "ACTIVE")]})
    run = run_with(tmp_path, mocks, spokeOrganizationalUnits=[OU], spokeStackSet=True)
    assert run.of_type(PROVIDER) == []
    stack_set = run.one("aws:cloudformation/stackSet:StackSet")
    assert stack_set.inputs["permissionModel"] == "SERVICE_MANAGED"
    assert stack_set.inputs["autoDeployment"]["enabled"] is True
    assert stack_set.inputs["capabilities"] == ["CAPABILITY_NAMED_IAM"]
    # The hub is not the management account: it acts as the StackSets delegated admin.
    assert stack_set.inputs["callAs"] == "DELEGATED_ADMIN"
    instance = run.one("aws:cloudformation/stackSetInstance:StackSetInstance")
    assert instance.inputs["deploymentTargets"]["organizationalUnitIds"] == [OU]
    # IAM names are global: one region only.
    assert instance.inputs["stackSetInstanceRegion"] == pulumi_program.REGION
    template = json.loads(stack_set.inputs["templateBody"])

    def resolved(value: Any, account: str) -> Any:
        # What CloudFormation makes of Fn::Sub with ${AWS::AccountId} in that account.
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            return in_account(value["Fn::Sub"], account)
        if isinstance(value, list):
            return [resolved(v, account) for v in value]
        if isinstance(value, dict):
            return {k: resolved(v, account) for k, v in value.items()}
        return value

    account = "333333333333"
    from_template = {}
    for resource in template["Resources"].values():
        assert resource["Type"] == "AWS::IAM::Role"
        properties = resolved(resource["Properties"], account)
        from_template[properties["RoleName"]] = {
            "trust": properties["AssumeRolePolicyDocument"],
            "inline": {
                p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])
            },
            "managed": properties.get("ManagedPolicyArns", []),
            "boundary": properties.get("PermissionsBoundary"),
        }
    assert from_template == spoke_roles(spokes, account)
    assert statements(run)["AssumeSpokeRoles"]["Resource"] == [
        f"arn:aws:iam::{account}:role/iam-sudo-reader",
        f"arn:aws:iam::{account}:role/IAMSudoUser",
    ]


def test_boundary_variants_and_trusted_principals_reach_the_spokes(tmp_path: Path) -> None:
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/Boundary"
    policy = ALLOW_ALL_POLICY + '  - "arn:aws:iam::*:role/IAMSudoUser-Boundary"\n'
    user = f"arn:aws:iam::{ACCOUNT}:user/alice"
    run = pulumi_program.run(
        {
            "policy": policy,
            "boundaryVariants": [boundary],
            "baseRoleTrustedPrincipals": [user],
            "spokeAccounts": ["111111111111"],
        },
        tmp_path,
    )
    roles = spoke_roles(run, "111111111111")
    # A boundary must be a policy of the role's own account: the spoke's of that name.
    assert roles["IAMSudoUser-Boundary"]["boundary"] == "arn:aws:iam::111111111111:policy/Boundary"
    assert all(
        r["trust"]["Statement"][0]["Principal"] == {"AWS": [HUB_EXECUTION, user]}
        for r in roles.values()
    )
    assert (
        "arn:aws:iam::111111111111:role/IAMSudoUser-Boundary"
        in (statements(run)["AssumeSpokeRoles"]["Resource"])
    )


def test_the_management_account_and_the_hub_are_never_spokes_nor_suspended_accounts(
    tmp_path: Path,
) -> None:
    members = [
        ("333333333333", "ACTIVE"),
        (MANAGEMENT_ACCOUNT, "ACTIVE"),
        (ACCOUNT, "ACTIVE"),
        ("444444444444", "SUSPENDED"),
    ]
    mocks = Mocks(organizational_units={"r-ab12": members})
    run = run_with(tmp_path, mocks, spokeOrganizationalUnits=["r-ab12"], spokeStackSet=True)
    # A service-managed StackSet never deploys to the management account: not granted.
    assert run.function_env["IAM_SUDO_SPOKE_ACCOUNTS"] == "333333333333"


def test_one_account_deployments_are_unchanged(program: ProgramRun) -> None:
    assert program.of_type(PROVIDER) == []
    assert "AssumeSpokeRoles" not in statements(program)
    assert "IAM_SUDO_SPOKE_ACCOUNTS" not in program.function_env


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"spokeAccounts": ["1234"]}, "iam-sudo:spokeAccounts must list 12-digit account ids"),
        ({"spokeAccounts": [ACCOUNT]}, f"lists the hub's own account {ACCOUNT}"),
        ({"spokeOrganizationalUnits": ["dev"]}, "must list OU ids"),
        ({"spokeAccounts": SPOKES, "spokeDeployRole": "a/b"}, "spokeDeployRole must be"),
        ({"spokeStackSet": True}, "set iam-sudo:spokeOrganizationalUnits"),
        (
            {"spokeStackSet": True, "spokeOrganizationalUnits": [OU], "spokeAccounts": SPOKES},
            "deploys to OUs only",
        ),
    ],
)
def test_bad_spoke_configuration_fails_before_any_spoke_resource(
    tmp_path: Path, config: dict[str, Any], message: str
) -> None:
    mocks = Mocks(organizational_units={OU: []})
    with pytest.raises(pulumi.RunError, match=message):
        run_with(tmp_path, mocks, **config)
    assert not [r for r in mocks.resources if r.type == PROVIDER or "-spoke" in r.name]


def test_another_program_can_import_the_spoke_component() -> None:
    from iam_sudo_deploy import spoke

    assert issubclass(spoke.SpokeComponent, pulumi.ComponentResource)
    definition = spoke.spoke_definition(
        partition="aws",
        hub_execution_role_arn=HUB_EXECUTION,
        base_role_name="IAMSudoUser",
        base_role_policies=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    )
    assert definition.role_arns("555555555555") == [
        "arn:aws:iam::555555555555:role/iam-sudo-reader",
        "arn:aws:iam::555555555555:role/IAMSudoUser",
    ]


def test_the_stack_set_template_deploys_the_same_roles_into_a_member_account(
    spokes: ProgramRun, tmp_path: Path
) -> None:
    """moto's service-managed StackSets create the template's roles in the OU's accounts
    (Fn::Sub resolved there); it ignores ManagedPolicyArns, so those are compared above."""
    import ast

    import boto3
    from moto import mock_aws

    mocks = Mocks(organizational_units={OU: [("333333333333", "ACTIVE")]})
    run = run_with(tmp_path, mocks, spokeOrganizationalUnits=[OU], spokeStackSet=True)
    template = run.one("aws:cloudformation/stackSet:StackSet").inputs["templateBody"]
    with mock_aws():
        org = boto3.client("organizations", region_name="us-east-1")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        unit = org.create_organizational_unit(ParentId=root, Name="dev")["OrganizationalUnit"]
        created = org.create_account(Email="dev@example.com", AccountName="dev")
        member = created["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=member, SourceParentId=root, DestinationParentId=unit["Id"])
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack_set(
            StackSetName="iam-sudo-spokes",
            TemplateBody=template,
            PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False},
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        cloudformation.create_stack_instances(
            StackSetName="iam-sudo-spokes",
            DeploymentTargets={"OrganizationalUnitIds": [unit["Id"]]},
            Regions=["us-east-1"],
        )
        credentials = boto3.client("sts", region_name="us-east-1").assume_role(
            RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
            RoleSessionName="check",
        )["Credentials"]
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        deployed = {r["RoleName"]: r for r in iam.list_roles()["Roles"]}
        reader = iam.get_role_policy(RoleName="iam-sudo-reader", PolicyName="iam-sudo-reader")
    # The provider variant of the same definition, in the member's account.
    provider_variant = json.dumps(spoke_roles(spokes, "333333333333"))
    expected = json.loads(provider_variant.replace("333333333333", member))
    for name in ("iam-sudo-reader", "IAMSudoUser"):
        assert deployed[name]["AssumeRolePolicyDocument"] == expected[name]["trust"]
    document = reader["PolicyDocument"]
    # moto keeps a template's inline policy as the text of a Python dict.
    document = ast.literal_eval(document) if isinstance(document, str) else document
    assert document == expected["iam-sudo-reader"]["inline"]["iam-sudo-reader"]

"""A spoke: what iam-sudo needs in a member account of an Organization, defined once.

The hub (``IamSudoDeployment``) runs the function in a tooling account; each spoke holds
two kinds of role, both trusting exactly the hub function's execution role (and the
configured ``baseRoleTrustedPrincipals``, for ``iam-sudo simulate --local`` users):

* the reader (``iam-sudo-reader``): the IAM reads a simulation makes, ``iam:CreatePolicy``
  and ``iam:DeletePolicy`` only on ``policy/iam-sudo/*`` (packed session policies must be
  in the simulated role's account; ``prune`` deletes them), nothing else;
* the base role and its boundary variants: same names and policies as the hub's.

:func:`spoke_definition` describes those roles as plain data, with the spoke's account
written ``${AWS::AccountId}``. Two renderings come from it, never two definitions:
:class:`SpokeComponent` (Pulumi resources through a provider in the spoke account) and
:func:`stack_set_template` (a CloudFormation template for a service-managed StackSet).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pulumi
import pulumi_aws as aws

from iam_sudo.core.arn import is_account_id, is_role_name
from iam_sudo.core.duties import (
    DEPLOY_ROLE,
    GUARD_POLICY_NAME,
    READER_ROLE,
    packed_policies_arn,
    packed_policy_guard,
)
from iam_sudo.core.roles import boundary_variant_name

from .permissions import IAM_LIST_ACTIONS, IAM_POLICY_ACTIONS, IAM_ROLE_ACTIONS

#: Stands for the spoke's own account id; CloudFormation resolves it itself (Fn::Sub).
ACCOUNT = "${AWS::AccountId}"
#: What ``iam-sudo prune`` needs beyond the reads: deleting iam-sudo's own policies.
IAM_PRUNE_ACTIONS = ("iam:DeletePolicy",)
#: The actions of the spoke roles that the hub function's execution role is trusted for.
BASE_ROLE_TRUST_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession")
READER_TRUST_ACTIONS = ("sts:AssumeRole", "sts:SetSourceIdentity")
DEFAULT_DEPLOY_ROLE = DEPLOY_ROLE
_OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32}")


@dataclass(frozen=True)
class SpokeRole:
    """One IAM role of a spoke: documents are dicts whose strings may hold :data:`ACCOUNT`."""

    logical_id: str
    name: str
    description: str
    trust: dict[str, Any]
    inline: Mapping[str, dict[str, Any]]
    managed: tuple[str, ...]
    boundary: str | None
    max_session_duration: int


@dataclass(frozen=True)
class SpokeDefinition:
    """Every role of a spoke; :meth:`in_account` gives the ARNs the hub is granted."""

    partition: str
    roles: tuple[SpokeRole, ...]

    def role_arns(self, account: str) -> list[str]:
        """The ARN of each role of this spoke in ``account`` (a 12-digit id)."""
        return [f"arn:{self.partition}:iam::{account}:role/{role.name}" for role in self.roles]


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def spoke_definition(
    *,
    partition: str,
    hub_execution_role_arn: str,
    base_role_name: str,
    base_role_policies: Sequence[str],
    trusted_principals: Sequence[str] = (),
    boundary_variants: Sequence[str] = (),
    max_session_duration: int = 3600,
    reader_role_name: str = READER_ROLE,
) -> SpokeDefinition:
    """The roles of a spoke, trusting ``hub_execution_role_arn`` and ``trusted_principals``.

    Boundary policy ARNs name a policy by name: a boundary must be a policy of the role's
    own account (or an AWS managed one), so a customer-managed boundary is taken as the
    policy of that name in each spoke, which must exist there (IAM User Guide,
    "Permissions boundaries for IAM entities").
    """
    principals = {"AWS": [hub_execution_role_arn, *trusted_principals]}
    in_spoke = f"arn:{partition}:iam::{ACCOUNT}"
    reader_policy = _document(
        {"Sid": "ListRolesAndPolicies", "Effect": "Allow", "Action": list(IAM_LIST_ACTIONS),
         "Resource": "*"},
        {"Sid": "ReadRoles", "Effect": "Allow", "Action": list(IAM_ROLE_ACTIONS),
         "Resource": f"{in_spoke}:role/*"},
        {"Sid": "ReadPolicies", "Effect": "Allow", "Action": list(IAM_POLICY_ACTIONS),
         "Resource": [f"arn:{partition}:iam::aws:policy/*", f"{in_spoke}:policy/*"]},
        {"Sid": "CreateAndPruneSessionPolicies", "Effect": "Allow",
         "Action": ["iam:CreatePolicy", *IAM_PRUNE_ACTIONS],
         "Resource": packed_policies_arn(partition, ACCOUNT)},
    )  # fmt: skip
    reader = SpokeRole(
        logical_id="Reader",
        name=reader_role_name,
        description="iam-sudo reads roles here and creates its session policies under /iam-sudo/",
        trust=_document(
            {"Effect": "Allow", "Principal": principals, "Action": list(READER_TRUST_ACTIONS)}
        ),
        inline={"iam-sudo-reader": reader_policy},
        managed=(),
        boundary=None,
        max_session_duration=3600,
    )
    base_trust = _document(
        {"Effect": "Allow", "Principal": principals, "Action": list(BASE_ROLE_TRUST_ACTIONS)}
    )
    # As the hub's base roles: a simulated session must not rewrite or delete the packed
    # policies other sessions in this account pass by ARN (see component.py).
    keep_packed = packed_policy_guard(packed_policies_arn(partition, ACCOUNT))
    roles = [reader]
    for index, boundary in enumerate([None, *boundary_variants]):
        name = base_role_name
        spoke_boundary = None
        if boundary is not None:
            name = boundary_variant_name(base_role_name, boundary)
            spoke_boundary = re.sub(r"^(arn:[^:]+:iam::)\d{12}(:)", rf"\g<1>{ACCOUNT}\2", boundary)
        roles.append(
            SpokeRole(
                logical_id="BaseRole" if boundary is None else f"BaseRole{index}",
                name=name,
                description="The role iam-sudo assumes with session policies to simulate roles",
                trust=base_trust,
                inline={GUARD_POLICY_NAME: keep_packed},
                managed=tuple(base_role_policies),
                boundary=spoke_boundary,
                max_session_duration=max_session_duration,
            )
        )
    return SpokeDefinition(partition, tuple(roles))


def in_account(value: Any, account: str) -> Any:
    """``value`` (a document) with :data:`ACCOUNT` replaced by ``account``."""
    if isinstance(value, str):
        return value.replace(ACCOUNT, account)
    if isinstance(value, list):
        return [in_account(item, account) for item in value]
    if isinstance(value, dict):
        return {key: in_account(item, account) for key, item in value.items()}
    return value


def _cfn(value: Any) -> Any:
    """``value`` for a CloudFormation template: strings naming the account become Fn::Sub."""
    if isinstance(value, str):
        return {"Fn::Sub": value} if ACCOUNT in value else value
    if isinstance(value, list):
        return [_cfn(item) for item in value]
    if isinstance(value, dict):
        return {key: _cfn(item) for key, item in value.items()}
    return value


def stack_set_template(definition: SpokeDefinition) -> dict[str, Any]:
    """The spoke as a CloudFormation template (one ``AWS::IAM::Role`` per role)."""
    resources: dict[str, Any] = {}
    for role in definition.roles:
        properties: dict[str, Any] = {
            "RoleName": role.name,
            "Description": role.description,
            "AssumeRolePolicyDocument": _cfn(role.trust),
            "MaxSessionDuration": role.max_session_duration,
        }
        if role.inline:
            properties["Policies"] = [
                {"PolicyName": name, "PolicyDocument": _cfn(document)}
                for name, document in role.inline.items()
            ]
        if role.managed:
            properties["ManagedPolicyArns"] = _cfn(list(role.managed))
        if role.boundary:
            properties["PermissionsBoundary"] = _cfn(role.boundary)
        resources[role.logical_id] = {"Type": "AWS::IAM::Role", "Properties": properties}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "iam-sudo spoke: the reader and base roles the iam-sudo hub assumes",
        "Resources": resources,
    }


class SpokeComponent(pulumi.ComponentResource):
    """The roles of :func:`spoke_definition` in one account, created through ``opts.provider``.

    Outputs: ``role_arns`` (reader first, then the base role and its variants).
    """

    role_arns: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        definition: SpokeDefinition,
        account: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("iam-sudo:index:Spoke", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        arns = []
        for role in definition.roles:
            created = aws.iam.Role(
                f"{name}-{role.logical_id}",
                name=role.name,
                description=role.description,
                assume_role_policy=json.dumps(in_account(role.trust, account)),
                max_session_duration=role.max_session_duration,
                permissions_boundary=in_account(role.boundary, account),
                opts=child,
            )
            arns.append(created.arn)
            for policy_name, document in role.inline.items():
                aws.iam.RolePolicy(
                    f"{name}-{role.logical_id}-{policy_name}",
                    role=created.id,
                    name=policy_name,
                    policy=json.dumps(in_account(document, account)),
                    opts=child,
                )
            for index, policy_arn in enumerate(role.managed):
                aws.iam.RolePolicyAttachment(
                    f"{name}-{role.logical_id}-policy-{index}",
                    role=created.name,
                    policy_arn=in_account(policy_arn, account),
                    opts=child,
                )
        self.role_arns = pulumi.Output.all(*arns)
        self.register_outputs({"role_arns": self.role_arns})


@dataclass(frozen=True)
class SpokeTargets:
    """Where spokes go: accounts, OUs, the role that deploys them, and how.

    ``stack_set`` sends them out as a service-managed StackSet with automatic deployment
    to ``organizational_units`` instead of one provider per account.
    """

    accounts: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    deploy_role: str = DEFAULT_DEPLOY_ROLE
    stack_set: bool = False

    def __post_init__(self) -> None:
        for account in self.accounts:
            if not is_account_id(account):
                raise pulumi.RunError(
                    f"iam-sudo:spokeAccounts must list 12-digit account ids, got {account!r}"
                )
        for unit in self.organizational_units:
            if not isinstance(unit, str) or not _OU_ID.fullmatch(unit):
                raise pulumi.RunError(
                    "iam-sudo:spokeOrganizationalUnits must list OU ids (ou-xxxx-xxxxxxxx) or "
                    f"the root id (r-xxxx), got {unit!r}"
                )
        if not is_role_name(self.deploy_role):
            raise pulumi.RunError(
                f"iam-sudo:spokeDeployRole must be an IAM role name, got {self.deploy_role!r}"
            )
        if self.stack_set and not self.organizational_units:
            raise pulumi.RunError(
                "iam-sudo:spokeStackSet deploys to OUs: set iam-sudo:spokeOrganizationalUnits"
            )
        if self.stack_set and self.accounts:
            raise pulumi.RunError(
                "iam-sudo:spokeStackSet deploys to OUs only: move iam-sudo:spokeAccounts into "
                "an OU listed in iam-sudo:spokeOrganizationalUnits, or turn spokeStackSet off"
            )

    @property
    def configured(self) -> bool:
        return bool(self.accounts or self.organizational_units)


def resolve_accounts(targets: SpokeTargets, hub_account: str) -> list[str]:
    """The spoke accounts: those listed and the active accounts under the OUs (Organizations).

    The hub's own account is never a spoke (its base role already has the spoke's name).
    A StackSet never deploys to the Organization's management account (AWS CloudFormation
    User Guide, "Create a stack set with service-managed permissions"), so in that mode it
    is left out too: the hub is granted only roles that will exist.
    """
    found = list(targets.accounts)
    management = None
    if targets.organizational_units:
        if targets.stack_set:
            management = aws.organizations.get_organization().master_account_id
        for unit in targets.organizational_units:
            listed = aws.organizations.get_organizational_unit_descendant_accounts(parent_id=unit)
            found += [a.id for a in listed.accounts if a.state == "ACTIVE"]
    if hub_account in targets.accounts:
        raise pulumi.RunError(
            f"iam-sudo:spokeAccounts lists the hub's own account {hub_account}; the hub "
            "already holds its base role: remove it"
        )
    return [a for a in dict.fromkeys(found) if a not in (hub_account, management)]


SPOKE_ACCOUNTS_VARIABLE = "IAM_SUDO_SPOKE_ACCOUNTS"


def refuse_spokes(accounts: Sequence[str], *, size: int, used: int, limit: int) -> NoReturn:
    """RunError: the function's environment, ``size`` bytes with the spoke list and ``used``
    without it (as Lambda counts them, ``component.environment_bytes``), is over ``limit``.

    Says how many spokes one hub could serve with this policy: each takes 13 bytes (an
    account id and a comma) of Lambda's 4 KB (Lambda Developer Guide, "Lambda quotas").
    """
    listed = size - used
    # The variable itself (name, quotes, colon, comma) costs what one account does not.
    fixed = listed - 13 * len(accounts) + 1
    fit = max(0, (limit - used - fixed + 1) // 13)
    raise pulumi.RunError(
        f"{len(accounts)} spoke accounts take {listed} bytes of the function's environment "
        f"beside the other variables' {used}; Lambda allows {limit} bytes for "
        "all its variables together: "
        f"one hub serves at most {fit} spokes with this policy (shorten the policy, or "
        "split the Organization between hubs)"
    )


def deploy_spokes(
    name: str,
    definition: SpokeDefinition,
    targets: SpokeTargets,
    accounts: Sequence[str],
    region: str,
    opts: pulumi.ResourceOptions,
    hub_account: str = "",
) -> list[pulumi.Resource]:
    """Create the spokes: a provider and :class:`SpokeComponent` per account, or a StackSet.

    ``opts`` carries the parent and the dependency on the hub's execution role (a trust
    policy naming a role is refused until that role exists). A StackSet created from
    another account than the Organization's management account is created as its delegated
    administrator (``CallAs: DELEGATED_ADMIN``; the account must be registered as one for
    CloudFormation StackSets).
    """
    if targets.stack_set:
        management = aws.organizations.get_organization().master_account_id
        call_as = "SELF" if hub_account == management else "DELEGATED_ADMIN"
        stack_set = aws.cloudformation.StackSet(
            f"{name}-spokes",
            name=f"{name}-spokes",
            description="iam-sudo spokes: reader and base roles trusting the iam-sudo hub",
            permission_model="SERVICE_MANAGED",
            auto_deployment=aws.cloudformation.StackSetAutoDeploymentArgs(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            capabilities=["CAPABILITY_NAMED_IAM"],
            template_body=json.dumps(stack_set_template(definition)),
            call_as=call_as,
            opts=opts,
        )
        # IAM names are global: one region only, or the second instance fails on
        # EntityAlreadyExists.
        instance = aws.cloudformation.StackSetInstance(
            f"{name}-spokes-instances",
            stack_set_name=stack_set.name,
            stack_set_instance_region=region,
            call_as=call_as,
            deployment_targets=aws.cloudformation.StackSetInstanceDeploymentTargetsArgs(
                organizational_unit_ids=list(targets.organizational_units)
            ),
            opts=opts,
        )
        return [stack_set, instance]
    created: list[pulumi.Resource] = []
    for account in accounts:
        provider = aws.Provider(
            f"{name}-provider-{account}",
            region=region,
            allowed_account_ids=[account],
            assume_roles=[
                aws.ProviderAssumeRoleArgs(
                    role_arn=f"arn:{definition.partition}:iam::{account}:role/{targets.deploy_role}",
                    session_name="iam-sudo-spoke-deploy",
                )
            ],
            opts=pulumi.ResourceOptions(parent=opts.parent),
        )
        created.append(
            SpokeComponent(
                f"{name}-spoke-{account}",
                definition,
                account,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=provider)),
            )
        )
    return created

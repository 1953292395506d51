"""``IamSudoDeployment``: everything iam-sudo needs in one AWS account, as one Pulumi component."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from iam_sudo import IamSudoError, SudoPolicy
from iam_sudo.core.arn import is_account_id
from iam_sudo.core.duties import (
    DEPLOY_ROLE,
    FUNCTION_NAME,
    GUARD_POLICY_NAME,
    execution_role_name,
    never_assumed,
    packed_policies_arn,
    packed_policy_guard,
)
from iam_sudo.core.globs import shell_glob
from iam_sudo.core.partitions import service_principal
from iam_sudo.core.roles import boundary_variant_arn, boundary_variant_name

from . import spoke
from .archive import build_archive
from .permissions import (
    IAM_CREATE_ACTIONS,
    IAM_LIST_ACTIONS,
    IAM_POLICY_ACTIONS,
    IAM_ROLE_ACTIONS,
)


@dataclass
class IamSudoDeploymentArgs:
    """What to deploy; every field but ``policy`` has the documented default."""

    policy: str
    function_name: str = FUNCTION_NAME
    runtime: str = "python3.13"
    base_role_name: str = "IAMSudoUser"
    base_role_policies: Sequence[str] | None = None
    base_role_trusted_principals: Sequence[str] = ()
    max_session_duration: int = 3600
    log_retention_days: int = 30
    invoker_users: Sequence[str] = ()
    invoker_groups: Sequence[str] = ()
    invoker_roles: Sequence[str] = ()
    base_role_accounts: Sequence[str] = ()
    boundary_variants: Sequence[str] = ()
    # Spokes (function/spoke.py): member accounts the hub reaches through their roles.
    spoke_accounts: Sequence[str] = ()
    spoke_organizational_units: Sequence[str] = ()
    spoke_deploy_role: str = DEPLOY_ROLE
    spoke_stack_set: bool = False
    build_dir: Path = field(default_factory=lambda: Path.cwd() / "build")

    @classmethod
    def from_config(cls, config: pulumi.Config) -> IamSudoDeploymentArgs:
        """Read the ``iam-sudo:*`` stack configuration documented in Pulumi.yaml."""
        defaults = cls(policy="")
        return cls(
            policy=config.require("policy"),
            function_name=config.get("functionName") or defaults.function_name,
            runtime=config.get("runtime") or defaults.runtime,
            base_role_name=config.get("baseRoleName") or defaults.base_role_name,
            base_role_policies=config.get_object("baseRolePolicies"),
            base_role_trusted_principals=config.get_object("baseRoleTrustedPrincipals") or (),
            max_session_duration=config.get_int("maxSessionDuration")
            or defaults.max_session_duration,
            log_retention_days=config.get_int("logRetentionDays") or defaults.log_retention_days,
            invoker_users=config.get_object("invokerUsers") or (),
            invoker_groups=config.get_object("invokerGroups") or (),
            invoker_roles=config.get_object("invokerRoles") or (),
            base_role_accounts=config.get_object("baseRoleAccounts") or (),
            boundary_variants=config.get_object("boundaryVariants") or (),
            spoke_accounts=config.get_object("spokeAccounts") or (),
            spoke_organizational_units=config.get_object("spokeOrganizationalUnits") or (),
            spoke_deploy_role=config.get("spokeDeployRole") or defaults.spoke_deploy_role,
            spoke_stack_set=config.get_bool("spokeStackSet") or False,
        )


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def base_role_accounts(args: IamSudoDeploymentArgs, account: str) -> list[str]:
    """The accounts whose roles may serve as base roles: this one, and those configured."""
    for extra in args.base_role_accounts:
        if not is_account_id(extra):
            raise pulumi.RunError(
                f"iam-sudo:baseRoleAccounts must list 12-digit account ids, got {extra!r}"
            )
    return list(dict.fromkeys([account, *args.base_role_accounts]))


def scoped_base_role_globs(
    globs: Sequence[str], partition: str, accounts: Sequence[str]
) -> list[str]:
    """The sudo policy's base-role globs as IAM resources, narrowed to ``accounts``.

    ``arn:aws:iam::*:role/IAMSudoUser`` would let the function assume a role of that name
    in any account that trusts it; the grant names each allowed account instead. A glob
    that is not a whole ARN pattern becomes every role of the allowed accounts (the
    function still checks the glob itself).
    """
    scoped: list[str] = []
    for glob in globs:
        parts = glob.split(":", 5)
        for account in accounts:
            if len(parts) != 6:
                if shell_glob(f"arn:{partition}:iam::{account}:role/x", (glob,)):
                    scoped.append(f"arn:{partition}:iam::{account}:role/*")
                continue
            _, partition_glob, service, region, account_glob, resource = parts
            if shell_glob(partition, (partition_glob,)) and shell_glob(account, (account_glob,)):
                scoped.append(f"arn:{partition}:{service}:{region}:{account}:{resource}")
    return list(dict.fromkeys(scoped))


# Lambda caps all environment variables of a function together (names and values) at 4 KB
# (Lambda Developer Guide, "Lambda quotas": "Function environment variables: 4 KB, for all
# environment variables associated with the function, in aggregate"). What Lambda measures
# is the variables as one compact JSON object: its refusal quotes the "String measured",
# {"NAME":"value",...}, quotes, braces, commas and escapes included (an InvalidParameter
# ValueException "... exceeded the 4KB limit. String measured: {...}"). A YAML policy's
# newlines and quotes each take two bytes there (\n, \").
MAX_ENVIRONMENT_BYTES = 4096


def function_environment(
    policy: str,
    base_role_arn: str,
    accounts: Sequence[str],
    spoke_accounts: Sequence[str] = (),
) -> dict[str, str]:
    """Every environment variable the function gets, exactly as the deployment sets them."""
    variables = {
        "IAM_SUDO_POLICY": policy,
        "IAM_SUDO_BASE_ROLE": base_role_arn,
        "IAM_SUDO_BASE_ROLE_ACCOUNTS": ",".join(accounts),
    }
    if spoke_accounts:
        variables[spoke.SPOKE_ACCOUNTS_VARIABLE] = ",".join(spoke_accounts)
    return variables


def environment_bytes(variables: Mapping[str, str]) -> int:
    """What ``variables`` take of Lambda's 4 KB, counted as Lambda counts: the UTF-8 bytes
    of the compact JSON object it measures (see :data:`MAX_ENVIRONMENT_BYTES`).

    Characters beyond ASCII are counted as JSON's ``\\uXXXX`` escapes, the longer of the
    two spellings a serializer may choose: the count never passes a set Lambda refuses.
    """
    return len(json.dumps(dict(variables), separators=(",", ":")).encode())


def check_environment_size(variables: Mapping[str, str]) -> None:
    """RunError unless ``variables`` (all of them, as the function gets them) fit Lambda's
    4 KB as Lambda counts them (:func:`environment_bytes`)."""
    size = environment_bytes(variables)
    if size <= MAX_ENVIRONMENT_BYTES:
        return
    spokes = variables.get(spoke.SPOKE_ACCOUNTS_VARIABLE)
    others = {k: v for k, v in variables.items() if k != spoke.SPOKE_ACCOUNTS_VARIABLE}
    if spokes and environment_bytes(others) <= MAX_ENVIRONMENT_BYTES:
        # The rest fits: the spoke list is what does not.
        spoke.refuse_spokes(
            spokes.split(","),
            size=size,
            used=environment_bytes(others),
            limit=MAX_ENVIRONMENT_BYTES,
        )
    policy = environment_bytes({"IAM_SUDO_POLICY": variables.get("IAM_SUDO_POLICY", "")}) - 2
    raise pulumi.RunError(
        f"the function's environment would take {size} bytes as Lambda counts them (the "
        f"sudo policy {policy}, the base role and accounts {size - policy}); Lambda allows "
        f"{MAX_ENVIRONMENT_BYTES} bytes for all its variables together: shorten the policy "
        f"(YAML flow style, fewer comments and line breaks, broader globs) by at least "
        f"{size - MAX_ENVIRONMENT_BYTES} bytes, or list fewer baseRoleAccounts"
    )


def _base_role_arn(args: IamSudoDeploymentArgs, partition: str, account: str) -> str:
    """The base role's ARN, as its resource will have it (the role has no path)."""
    return f"arn:{partition}:iam::{account}:role/{args.base_role_name}"


def validate(args: IamSudoDeploymentArgs, partition: str, account: str) -> SudoPolicy:
    """The function's own validator, plus what a deployment needs; RunError if invalid."""
    try:
        policy = SudoPolicy.from_yaml(args.policy)
    except IamSudoError as error:
        raise pulumi.RunError(str(error)) from None
    if any("[" in glob for glob in policy.allowed_base_roles):
        raise pulumi.RunError(
            "invalid sudo policy: allowed-base-roles may only use * and ? globs, "
            "since they also limit the function's sts:AssumeRole in IAM"
        )
    base_role_arn = _base_role_arn(args, partition, account)
    variants = [boundary_variant_arn(base_role_arn, b) for b in args.boundary_variants]
    # The roles this deployment creates or uses for other duties, by their configured names.
    policy = policy.reserving(
        function_names=(args.function_name,), deploy_role=args.spoke_deploy_role
    )
    for arn in [base_role_arn, *variants]:
        duty = policy.duty_of(arn)
        if duty is not None:
            raise pulumi.RunError(
                f"iam-sudo:baseRoleName makes the base role {arn}, the name of {duty}: a "
                "role of another duty is never a base role; choose another baseRoleName"
            )
        if not policy.allows_base_role_for_anyone(arn):
            raise pulumi.RunError(
                f"the sudo policy's allowed-base-roles do not include the base role {arn}; "
                "add it to iam-sudo:policy"
            )
    return policy


class IamSudoDeployment(pulumi.ComponentResource):
    """The iam-sudo Lambda function, its execution role, the base role and an invoker policy.

    Outputs: ``function_name``, ``function_arn``, ``base_role_arn``, ``invoker_policy_arn``.
    """

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    base_role_arn: pulumi.Output[str]
    invoker_policy_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: IamSudoDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        partition = aws.get_partition().partition
        account = aws.get_caller_identity().account_id
        policy = validate(args, partition, account)
        accounts = base_role_accounts(args, account)
        assumable = scoped_base_role_globs(policy.allowed_base_roles, partition, accounts)
        targets = spoke.SpokeTargets(
            accounts=tuple(args.spoke_accounts),
            organizational_units=tuple(args.spoke_organizational_units),
            deploy_role=args.spoke_deploy_role,
            stack_set=args.spoke_stack_set,
        )
        spoke_accounts = spoke.resolve_accounts(targets, account) if targets.configured else []
        # Built once, checked, and given to the function as is: what is counted is what
        # Lambda gets (the base role's ARN is the one its resource will have, no path).
        variables = function_environment(
            args.policy, _base_role_arn(args, partition, account), accounts, spoke_accounts
        )
        check_environment_size(variables)
        managed = args.base_role_policies
        if managed is None:
            managed = [f"arn:{partition}:iam::aws:policy/PowerUserAccess"]
        definition = spoke.spoke_definition(
            partition=partition,
            hub_execution_role_arn=f"arn:{partition}:iam::{account}:role/"
            f"{execution_role_name(args.function_name)}",
            base_role_name=args.base_role_name,
            base_role_policies=managed,
            trusted_principals=args.base_role_trusted_principals,
            boundary_variants=args.boundary_variants,
            max_session_duration=args.max_session_duration,
        )
        # Exactly the spoke roles, account by account: never a `*` account.
        spoke_roles = [arn for a in spoke_accounts for arn in definition.role_arns(a)]
        super().__init__("iam-sudo:index:IamSudoDeployment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{args.function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )

        execution_role = aws.iam.Role(
            f"{name}-execution",
            name=execution_role_name(args.function_name),
            description="Runs the iam-sudo function: reads roles, assumes the base roles",
            assume_role_policy=_policy(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service_principal("lambda")},
                    "Action": "sts:AssumeRole",
                }
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=execution_role.id,
            name="iam-sudo",
            policy=log_group.arn.apply(
                lambda log_group_arn: _policy(
                    {
                        "Sid": "ListRolesAndPolicies",
                        "Effect": "Allow",
                        "Action": list(IAM_LIST_ACTIONS),
                        "Resource": "*",
                    },
                    {
                        "Sid": "ReadRoles",
                        "Effect": "Allow",
                        "Action": list(IAM_ROLE_ACTIONS),
                        "Resource": f"arn:{partition}:iam::{account}:role/*",
                    },
                    {
                        "Sid": "ReadPolicies",
                        "Effect": "Allow",
                        "Action": list(IAM_POLICY_ACTIONS),
                        "Resource": [
                            f"arn:{partition}:iam::aws:policy/*",
                            f"arn:{partition}:iam::{account}:policy/*",
                        ],
                    },
                    {
                        "Sid": "CreateSessionPolicies",
                        "Effect": "Allow",
                        "Action": list(IAM_CREATE_ACTIONS),
                        "Resource": packed_policies_arn(partition, account),
                    },
                    {
                        "Sid": "AssumeBaseRoles",
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Resource": assumable,
                    },
                    {
                        # What the function checks by name, IAM refuses too, whatever the
                        # policy's globs: the roles of other duties (core/duties.py).
                        "Sid": "NeverRolesOfOtherDuties",
                        "Effect": "Deny",
                        "Action": "sts:AssumeRole",
                        "Resource": [
                            f"arn:{partition}:iam::*:role/{name}"
                            for name in never_assumed(
                                function_names=(args.function_name,),
                                deploy_role=args.spoke_deploy_role,
                            )
                        ],
                    },
                    *(
                        [
                            {
                                "Sid": "AssumeSpokeRoles",
                                "Effect": "Allow",
                                "Action": list(spoke.BASE_ROLE_TRUST_ACTIONS),
                                "Resource": spoke_roles,
                            }
                        ]
                        if spoke_roles
                        else []
                    ),
                    {
                        "Sid": "Log",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": f"{log_group_arn}:*",
                    },
                )
            ),
            opts=child,
        )

        base_trust = execution_role.arn.apply(
            lambda execution_arn: _policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [execution_arn, *args.base_role_trusted_principals]},
                    # TagSession: the target's tags travel as session tags;
                    # SetSourceIdentity: the verified caller is named in CloudTrail.
                    "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                }
            )
        )
        # The base role, and one variant per boundary: a role with a permissions boundary
        # is simulated exactly through a base role that carries the same boundary.
        variants: list[tuple[str, str, str | None]] = [("base-role", args.base_role_name, None)]
        variants += [
            (f"base-role-{index}", boundary_variant_name(args.base_role_name, boundary), boundary)
            for index, boundary in enumerate(args.boundary_variants)
        ]
        base_roles = []
        for suffix, role_name, boundary in variants:
            base_role_variant = aws.iam.Role(
                f"{name}-{suffix}",
                name=role_name,
                description="The role iam-sudo assumes with session policies to simulate roles",
                max_session_duration=args.max_session_duration,
                assume_role_policy=base_trust,
                permissions_boundary=boundary,
                opts=child,
            )
            base_roles.append(base_role_variant)
            # Packed session policies are passed by ARN; a simulated session allowed
            # iam:CreatePolicyVersion (AdministratorAccess) must not rewrite another's.
            aws.iam.RolePolicy(
                f"{name}-{suffix}-packed-policies",
                role=base_role_variant.name,
                name=GUARD_POLICY_NAME,
                policy=json.dumps(packed_policy_guard(packed_policies_arn(partition, account))),
                opts=child,
            )
            for index, policy_arn in enumerate(managed):
                aws.iam.RolePolicyAttachment(
                    f"{name}-{suffix}-policy-{index}",
                    role=base_role_variant.name,
                    policy_arn=policy_arn,
                    opts=child,
                )
        base_role = base_roles[0]

        archive = build_archive(args.build_dir / f"{args.function_name}.zip")
        function = aws.lambda_.Function(
            f"{name}-function",
            name=args.function_name,
            description="iam-sudo: credentials of simulated IAM roles",
            runtime=args.runtime,
            handler="handler.handler",
            architectures=["arm64"],
            memory_size=256,
            timeout=30,
            role=execution_role.arn,
            code=pulumi.FileArchive(str(archive)),
            # Exactly the variables checked; created after its base roles, which they name.
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=variables),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, *base_roles]),
        )

        invoker_policy = aws.iam.Policy(
            f"{name}-invoker",
            name=f"{args.function_name}-invoker",
            description="Allows invoking the iam-sudo function (iam-sudo simulate --remote)",
            policy=function.arn.apply(
                lambda function_arn: _policy(
                    {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn}
                )
            ),
            opts=child,
        )
        for user in args.invoker_users:
            aws.iam.UserPolicyAttachment(
                f"{name}-invoker-user-{user}", user=user, policy_arn=invoker_policy.arn, opts=child
            )
        for group in args.invoker_groups:
            aws.iam.GroupPolicyAttachment(
                f"{name}-invoker-group-{group}",
                group=group,
                policy_arn=invoker_policy.arn,
                opts=child,
            )
        for role in args.invoker_roles:
            aws.iam.RolePolicyAttachment(
                f"{name}-invoker-role-{role}", role=role, policy_arn=invoker_policy.arn, opts=child
            )

        if targets.configured:
            spoke.deploy_spokes(
                name,
                definition,
                targets,
                spoke_accounts,
                aws.get_region().region,
                pulumi.ResourceOptions(parent=self, depends_on=[execution_role]),
                hub_account=account,
            )

        self.function_name = function.name
        self.function_arn = function.arn
        self.base_role_arn = base_role.arn
        self.invoker_policy_arn = invoker_policy.arn
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "base_role_arn": self.base_role_arn,
                "invoker_policy_arn": self.invoker_policy_arn,
            }
        )

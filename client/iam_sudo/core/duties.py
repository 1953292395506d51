"""The roles iam-sudo deploys, each for one duty, and what makes a role fit to be a base role.

A *base role* is assumed with session policies for whoever the sudo policy allows: what it
can do is the ceiling of every simulation through it. The Pulumi program (function/) also
deploys roles for other duties, and uses the Organization's deploy role; none of them may
ever serve as a base role, whatever a sudo policy's globs say:

* the spoke reader (``iam-sudo-reader``) may create and delete ``/iam-sudo/`` policies:
  a simulated session through it could delete another user's packed policy and create one
  of the same ARN with other statements;
* the function's execution role (``<function>-execution``) may assume every base role;
* the deploy roles (``OrganizationAccountAccessRole``, CloudFormation StackSets' and
  Control Tower's execution roles) are administrators of their account.

Every role accepted as a base role carries :func:`packed_policy_guard` (the program puts it
on each base role it deploys, hub and spokes): an explicit Deny of rewriting or deleting
the account's packed ``/iam-sudo/`` policies, which a live session names by ARN (STS API
reference, AssumeRole ``PolicyArns``). An explicit Deny in an identity policy overrides
every Allow, session policies included (IAM User Guide, "Policy evaluation logic"), so a
session granted ``iam:*`` still cannot change what another session's policy ARN means.
:func:`guards_packed_policies` says whether a document is that Deny; iam-sudo reads the
base role's guard at use and refuses a base role without it.

This module is the one list of those names and of the guard: the Pulumi program builds
its roles from it, and the check refuses by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .fitting import POLICY_PATH
from .globs import shell_glob

#: The spoke reader's name (``IAM_SUDO_READER_ROLE`` may name another).
READER_ROLE = "iam-sudo-reader"
#: The function's name (``iam-sudo:functionName``); its execution role is named after it.
FUNCTION_NAME = "iam-sudo"
#: The role the program deploys spokes through (``iam-sudo:spokeDeployRole``).
DEPLOY_ROLE = "OrganizationAccountAccessRole"
#: The inline policy of every base role that holds :func:`packed_policy_guard`.
GUARD_POLICY_NAME = "iam-sudo-packed-policies"
#: What could change the document a live session's packed policy ARN stands for (a new
#: default version), or remove it: denied to every base role, whatever it is granted.
PACKED_POLICY_WRITES = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
)
# Roles AWS creates for deploying into member accounts, administrators there: the
# self-managed StackSets role, the service-managed StackSets one (stacksets-exec-<hash>,
# CloudFormation User Guide, "Grant permissions for StackSet operations"), Control Tower's.
_AWS_DEPLOY_ROLES = {
    "AWSCloudFormationStackSetExecutionRole": "CloudFormation StackSets' deploy role",
    "stacksets-exec-*": "CloudFormation StackSets' deploy role",
    "AWSControlTowerExecution": "Control Tower's deploy role",
}


def execution_role_name(function_name: str = FUNCTION_NAME) -> str:
    """The name of the execution role of the function ``function_name``."""
    return f"{function_name}-execution"


def reserved_roles(
    *,
    reader_role: str = READER_ROLE,
    function_names: tuple[str, ...] = (FUNCTION_NAME,),
    deploy_role: str = DEPLOY_ROLE,
) -> dict[str, str]:
    """Role name globs that are never base roles -> the duty each serves (for messages).

    The defaults, plus the configured names where they are known (a deployment's
    ``functionName`` and ``spokeDeployRole``, ``IAM_SUDO_READER_ROLE``, the running
    function's own name).
    """
    reserved = {
        READER_ROLE: "iam-sudo's spoke reader",
        reader_role: "iam-sudo's spoke reader",
        DEPLOY_ROLE: "the Organization's deploy role",
        **_AWS_DEPLOY_ROLES,
    }
    reserved.setdefault(deploy_role, "iam-sudo's spoke deploy role")
    for name in dict.fromkeys((FUNCTION_NAME, *function_names)):
        reserved[execution_role_name(name)] = f"the execution role of the function {name}"
    return reserved


def never_assumed(
    *, function_names: tuple[str, ...] = (FUNCTION_NAME,), deploy_role: str = DEPLOY_ROLE
) -> list[str]:
    """The role name globs of :func:`reserved_roles` the function never assumes at all:
    all but the spoke readers (which it assumes to read spokes). The program denies its
    execution role ``sts:AssumeRole`` on them in every account, as IAM's own bound."""
    readers = {READER_ROLE}
    reserved = reserved_roles(function_names=function_names, deploy_role=deploy_role)
    return [name for name in reserved if name not in readers]


def reserved_duty(role_name: str, reserved: Mapping[str, str]) -> str | None:
    """The other duty of the role ``role_name`` if ``reserved`` names it, else None.

    IAM role names are unique case-insensitively (IAM User Guide, "IAM object names"):
    ``IAM-SUDO-READER`` is the reader too.
    """
    lowered = role_name.lower()
    for glob, duty in reserved.items():
        if shell_glob(lowered, (glob.lower(),)):
            return duty
    return None


def packed_policies_arn(partition: str, account: str) -> str:
    """The ARN pattern of ``account``'s packed policies: ``.../policy/iam-sudo/*``."""
    return f"arn:{partition}:iam::{account}:policy{POLICY_PATH}*"


def packed_policy_guard(resource: str) -> dict[str, Any]:
    """The base roles' inline policy :data:`GUARD_POLICY_NAME`: deny
    :data:`PACKED_POLICY_WRITES` on ``resource`` (:func:`packed_policies_arn`, or a
    template's spelling of it)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "KeepPackedPoliciesAsWritten",
                "Effect": "Deny",
                "Action": list(PACKED_POLICY_WRITES),
                "Resource": resource,
            }
        ],
    }


def guards_packed_policies(document: object, partition: str, account: str) -> bool:
    """Whether ``document`` denies every one of :data:`PACKED_POLICY_WRITES` on every
    packed policy of ``account``, unconditionally.

    Read to fail closed: only ``Deny`` statements without a ``Condition``, with an
    ``Action`` (or ``NotAction``) and a ``Resource`` (never ``NotResource``) that can be
    read count; an action is denied if a statement's actions match it (IAM's case-
    insensitive globs), and the packed policies are covered if a resource pattern ending
    in ``*`` matches the ``.../policy/iam-sudo/`` prefix up to that ``*`` (so it matches
    every name after it), with IAM's resource matching (:mod:`.ceiling`).
    """
    # Imported here: the sudo policy reads this module's names on every path, cache hits too.
    from .ceiling import Spec, _spec, matching, statements_of

    if not isinstance(document, Mapping) or not isinstance(
        document.get("Statement"), list | Mapping
    ):
        return False
    prefix = packed_policies_arn(partition, account).removesuffix("*")
    denied: set[str] = set()
    for statement in statements_of(document):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
            continue
        actions, resources = _spec(statement, "Action"), _spec(statement, "Resource")
        if "Condition" in statement or actions is None or resources is None:
            continue
        if resources.negated or not any(
            pattern.endswith("*")
            and "${" not in pattern
            and matching(prefix, [Spec((pattern.rstrip("*") + "*",))], resource=True)
            for pattern in resources.patterns
        ):
            continue
        denied |= {a for a in PACKED_POLICY_WRITES if matching(a, [actions], resource=False)}
    return denied == set(PACKED_POLICY_WRITES)

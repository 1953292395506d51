"""Planning a found role's session: what to read beyond the lookup, then the pure plan.

The role's details and policies (unless the lookup read them), the base role's variant
for a permissions boundary, the base role's ceiling (what it can grant) when the report
or ``exact`` needs it; then :func:`iam_sudo.core.simulated.simulated_session` plans. Also the
account-wide plans built on it: the policies prune must keep, and which roles simulate
exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ..aws.caller import source_identity as caller_source_identity
from ..aws.iam_reader import IamReader
from ..aws.tasks import task_group
from ..core.arn import account_of, is_role_name, partition_of
from ..core.ceiling import Ceiling
from ..core.drafts import Draft, with_drafts
from ..core.duties import (
    GUARD_POLICY_NAME,
    PACKED_POLICY_WRITES,
    guards_packed_policies,
    packed_policies_arn,
)
from ..core.exceptions import (
    AwsError,
    IamSudoError,
    RoleNotFound,
    SessionLimitExceeded,
    SudoPolicyDenied,
    UnsafeBaseRole,
    UnsupportedRole,
)
from ..core.fidelity import Finding, narrowing_lines
from ..core.principal import Principal
from ..core.roles import (
    Role,
    RoleDetails,
    RolePolicies,
    boundary_variant_arn,
    is_role_arn,
    role_name_of,
)
from ..core.session import DEFAULT_DURATION_SECONDS
from ..core.simulated import SimulatedSession, simulated_session
from ..core.sudo_policy import SudoPolicy
from ..core.template import Template, template_role
from .lookup import Found


def _ready(versions: dict[str, str]) -> asyncio.Future[dict[str, str]]:
    """``versions`` as an awaitable that may be dropped unawaited (a sibling task failed
    first) without a "coroutine was never awaited" warning on stderr."""
    future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    future.set_result(versions)
    return future


async def read_role(reader: IamReader, found: Found) -> tuple[RoleDetails, RolePolicies]:
    """The found role's details and policies: read now unless the lookup read them already."""

    async def details() -> RoleDetails:
        if found.details is not None:
            return found.details
        return await reader.role_details(found.role.name)

    async def policies() -> RolePolicies:
        if found.policies is not None:
            return found.policies
        return await reader.role_policies(found.role.name, _ready(found.versions))

    async with task_group() as group:
        read_details = group.create_task(details())
        read_policies = group.create_task(policies())
    return read_details.result(), read_policies.result()


async def boundary_variant(reader: IamReader, role: Role, base_arn: str, boundary: str) -> str:
    """The variant of the base role that carries ``boundary``, or :class:`UnsupportedRole`.

    A session of a base role with the target's boundary is exact: session policies
    intersect the boundary there just as the role's own policies do (IAM User Guide,
    "Evaluating effective permissions with boundaries").
    """
    variant = boundary_variant_arn(base_arn, boundary)
    try:
        details: RoleDetails | None = await reader.role_details(role_name_of(variant))
    except RoleNotFound:
        details = None
    if details is None or details.boundary != boundary:
        raise UnsupportedRole(
            f"role {role.name} has the permissions boundary {boundary}, which session "
            f"policies cannot reproduce; simulating it needs a base role with the same "
            f"boundary, {variant}: add {boundary} to iam-sudo:boundaryVariants and "
            "`pulumi up`"
        )
    return variant


async def read_ceiling(reader: IamReader, base_arn: str) -> Ceiling | str:
    """What the base role can grant (its policies and boundary), read once per base role
    and ``roles_ttl``; or why it cannot be read (another account, a refusal)."""

    async def fetch() -> Ceiling | str:
        here = await reader.account()
        if account_of(base_arn) != here:
            return f"it is in account {account_of(base_arn)}, read from {here}"
        name = role_name_of(base_arn)
        versions = _ready(await reader.policy_versions())
        try:
            async with task_group() as group:
                details = group.create_task(reader.base_role_details(base_arn))
                policies = group.create_task(reader.role_policies(name, versions))
            arns, documents, inline = policies.result()
            boundary = details.result().boundary
            boundary_documents = (
                await reader.managed_documents([boundary], await reader.policy_versions())
                if boundary
                else {}
            )
        except (AwsError, RoleNotFound) as error:
            return str(error)
        return Ceiling.from_policies(
            name,
            {**inline, **{arn: documents[arn] for arn in arns}},
            (boundary, boundary_documents[boundary]) if boundary else None,
        )

    return await reader.memo(f"ceiling:{base_arn}", fetch)


def prefetch_guard(reader: IamReader, base_role: str) -> None:
    """Start reading ``base_role``'s guard (a name or an ARN) beside the lookup, so that
    :func:`check_base_role` finds it read or in flight. Reads the base role only, never
    the target role; what it finds is told to nobody before the sudo policy has decided."""
    if is_role_name(base_role) or is_role_arn(base_role):
        reader.prefetch_base_role_guard(base_role, GUARD_POLICY_NAME)


async def check_base_role(
    reader: IamReader, policy: SudoPolicy, base_arn: str, role_arn: str | None = None
) -> None:
    """Raise :class:`UnsafeBaseRole` unless ``base_arn`` may serve as a base role: it is no
    role of another duty, and it carries the Deny that keeps the account's packed policies
    as written (:func:`duties.guards_packed_policies`, read from its inline policy
    :data:`duties.GUARD_POLICY_NAME`; one GetRolePolicy per ``roles_ttl``).

    A base role without it would let a session granted ``iam:*`` delete another user's
    packed policy and create one of the same ARN: that session's policy ARN would then
    mean something else. AccessDenied reading it fails closed.
    """
    policy.check_not_reserved(base_arn, role_arn)
    document = await reader.base_role_guard(base_arn, GUARD_POLICY_NAME)
    partition, account = partition_of(base_arn), account_of(base_arn)
    if not guards_packed_policies(document, partition, account):
        raise UnsafeBaseRole(
            f"the base role {base_arn} lacks iam-sudo's Deny on rewriting packed policies "
            f"(its inline policy {GUARD_POLICY_NAME} must deny "
            f"{', '.join(PACKED_POLICY_WRITES)} on {packed_policies_arn(partition, account)}): "
            "through it a simulated session could rewrite the session policies of others; "
            "use a base role the iam-sudo Pulumi program deployed, or add that policy",
            role_arn=role_arn,
            base_role_arn=base_arn,
        )


async def template_found(
    reader: IamReader, template: Template, name: str, base_role: str, caller: str | None
) -> tuple[Found, tuple[Finding, ...]]:
    """The role ``name`` of a CloudFormation ``template`` as if the lookup had found it
    in this account, and what could not be resolved of it (:mod:`iam_sudo.core.template`).

    Its managed policies' documents are read from IAM (AWS managed, or the account's).
    """
    async with task_group() as group:
        me = group.create_task(reader.identity())
        base_arn = group.create_task(reader.base_role_arn(base_role))
        versions = group.create_task(reader.policy_versions())
    identity = me.result()
    picked = template_role(
        template.document,
        name,
        account=identity.account,
        partition=identity.partition,
        region=template.region,
        parameters=template.parameters,
    )
    arns = list(picked.managed_arns)
    documents = await reader.managed_documents(arns, versions.result())
    found = Found(
        picked.role,
        [picked.role],
        base_arn.result(),
        caller if caller is not None else identity.arn,
        versions.result(),
        picked.details,
        (arns, documents, {k: dict(v) for k, v in picked.inline.items()}),
    )
    return found, picked.findings


async def plan_found(
    reader: IamReader,
    policy: SudoPolicy,
    found: Found,
    *,
    principal: Principal | None = None,
    duration_seconds: int = DEFAULT_DURATION_SECONDS,
    session_tags: bool = True,
    full_report: bool = False,
    boundary_variants: bool = True,
    ceiling: bool = False,
    source_identity: bool = False,
    account: str | None = None,
    guard: bool = False,
    drafts: Sequence[Draft] = (),
    defined: bool = False,
) -> SimulatedSession:
    """Read what the found role's session needs, decide it by the sudo policy, and plan it
    (see :meth:`IamSudo.plan`): the one place a simulation is decided and its request built.

    The sudo policy judges the role, ``principal`` and the base role the session will
    really use (a boundary variant, when the role has a boundary), for ``found.caller``;
    :class:`SudoPolicyDenied` otherwise. ``full_report`` also reads the base role's tags;
    ``ceiling`` its policies, so that what it cannot grant of the role becomes
    ``narrower`` findings. ``source_identity`` names the caller in the request (STS
    SourceIdentity); ``account`` is the other account the role is in. Without
    ``boundary_variants`` (prune's view: it plans every role with the caller's own IAM
    rights, to learn which policies are needed, and grants nothing) a role's boundary is
    not looked up and no sudo policy decides. ``guard`` (a session to be assumed) checks
    the base role as :func:`check_base_role` does, its guard read alongside the role's
    policies. ``drafts`` are planned as more inline policies of the role
    (:mod:`iam_sudo.core.drafts`); they, and a role ``defined`` by the caller (a
    template's), need the sudo policy's ``allowed-added-policies``.
    """
    role, base_role_arn = found.role, found.base_role_arn
    async with task_group() as group:
        read = group.create_task(read_role(reader, found))
        if guard:
            group.create_task(reader.base_role_guard(base_role_arn, GUARD_POLICY_NAME))
    details, policies = read.result()
    if boundary_variants:
        if details.boundary:
            base_role_arn = await boundary_variant(reader, role, base_role_arn, details.boundary)
        added = bool(drafts) or defined
        policy.check(role, base_role_arn, principal, found.caller, added_policies=added)
    if guard:
        await check_base_role(reader, policy, base_role_arn, role.arn)
    # The base role's account is where the session lives: its own users keep bare names.
    identity = (
        caller_source_identity(found.caller, home_account=account_of(found.base_role_arn))
        if source_identity
        else None
    )
    ceiling_read = await read_ceiling(reader, base_role_arn) if ceiling else None
    base_role_tags = None
    if full_report:
        base_role_tags = (await reader.base_role_details(base_role_arn)).tags
    return simulated_session(
        role,
        base_role_arn,
        details,
        with_drafts(policies, drafts),
        listing=found.listing,
        session_tags=session_tags,
        duration_seconds=duration_seconds,
        base_role_tags=base_role_tags,
        ceiling=ceiling_read,
        source_identity=identity,
        account=account,
    )


async def needed_policies(
    reader: IamReader, policy: SudoPolicy, roles: Sequence[Role], base_arn: str
) -> set[str]:
    """The /iam-sudo/ policies some role of ``roles`` needs (prune keeps them).

    Raises :class:`IamSudoError` naming a role that cannot be planned: then nothing may
    be deleted. A role too large for STS needs none.
    """
    versions = await reader.policy_versions()
    me = (await reader.identity()).arn

    async def needed_by(role: Role) -> set[str]:
        found = Found(role, list(roles), base_arn, me, versions)
        try:
            planned = await plan_found(reader, policy, found, boundary_variants=False)
        except SessionLimitExceeded:
            return set()
        except IamSudoError as error:
            raise IamSudoError(
                f"cannot tell which iam-sudo policies role {role.name} needs ({error}); "
                "nothing was deleted"
            ) from None
        return {packed.arn for packed in planned.plan.packed}

    async with task_group() as group:
        needs = [group.create_task(needed_by(role)) for role in roles]
    return set().union(*(task.result() for task in needs))


async def narrowings(
    reader: IamReader, policy: SudoPolicy, roles: Sequence[Role], base_role: str
) -> dict[str, list[str]]:
    """Per role ARN, the lines of what a simulation would not grant of it ([] = exact).

    Each role is planned as :meth:`IamSudo.plan` would with ``exact``, under
    ``base_role`` (name or ARN) or the variant carrying its boundary; a role that cannot
    be simulated at all (no such variant, too large for STS, a base role the sudo policy
    does not allow) has that error as its line.
    """
    async with task_group() as group:
        base_arn = group.create_task(reader.base_role_arn(base_role))
        versions = group.create_task(reader.policy_versions())
        me = group.create_task(reader.identity())

    async def lines(role: Role) -> list[str]:
        found = Found(role, list(roles), base_arn.result(), me.result().arn, versions.result())
        try:
            planned = await plan_found(reader, policy, found, ceiling=True)
        except (UnsupportedRole, SessionLimitExceeded, SudoPolicyDenied) as error:
            return [str(error)]
        return narrowing_lines(planned.findings)

    async with task_group() as group:
        tasks = {role.arn: group.create_task(lines(role)) for role in roles}
    return {arn: task.result() for arn, task in tasks.items()}

"""What iam-sudo reads of one account: identity, roles, their details and policy documents.

An :class:`IamReader` is bound to one transport, that is to one account's credentials;
an orchestrator that serves several accounts holds one reader per account. It pages
through IAM's listings, keeps at most ``max_concurrency`` IAM requests in flight, and
shares a listing (or the caller's identity) between every caller that asks for it at
once, for ``roles_ttl`` seconds.

What a reader keeps has a bound age, so that a long-lived client sees IAM change: every
shared reading (the roles listing with their trust policies and tags, the policy
versions, a role name's ARN, the base role's details and ceiling, the caller's identity)
is read again once it is ``roles_ttl`` seconds old (default 60), counted on the wall
and the monotonic clock alike (a machine waking from suspend reads anew). A role's own
details and policies are read afresh for each plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from ..core.arn import partition_of
from ..core.exceptions import RoleNotFound
from ..core.refresh import Clock
from ..core.roles import (
    Role,
    RoleDetails,
    RolePolicies,
    check_role_reference,
    role_name_of,
)
from .errors import Transport, base_role_refusals, reading_answer, role_arn_refusals
from .tasks import SingleFlight, consume_failure, task_group

IAM_PAGE_SIZE = 1000  # IAM's largest page: one request lists most accounts' roles
DEFAULT_ROLES_TTL = 60.0
DEFAULT_MAX_CONCURRENCY = 16
ROLES = "roles"  # the key of the shared roles listing

T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """Who the client is, per sts:GetCallerIdentity."""

    account: str
    arn: str

    @property
    def partition(self) -> str:
        """The AWS partition of the caller (aws, aws-cn, aws-us-gov)."""
        return partition_of(self.arn)


def _document(reply: dict[str, Any], *path: str) -> dict[str, Any]:
    value: Any = reply
    for key in path:
        value = value[key]
    if not isinstance(value, dict):
        raise TypeError(path[-1])
    return value


class IamReader:
    """Reads one account's IAM (and its caller identity) through one transport.

    Use it as an async context manager: it enters its transport, and on exit cancels the
    listings still running. Raises only :class:`IamSudoError`. Nothing it keeps is older
    than ``roles_ttl`` seconds (see the module).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        roles_ttl: float = DEFAULT_ROLES_TTL,
        identity: Identity | None = None,
        account: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``roles_ttl``: the most seconds any reading is reused (listings, ARNs, identity).

        ``identity``: the caller's, when known already (a spoke's reader signs STS calls
        with the hub's credentials, whose identity the hub's reader has read); ``account``:
        the account whose IAM the transport reads, when not the caller's own. ``clock``:
        see :class:`SingleFlight` (tests move it).
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if roles_ttl < 0:
            raise ValueError("roles_ttl must not be negative")
        self.transport = transport
        self._roles_ttl = roles_ttl
        self._iam_slots = asyncio.Semaphore(max_concurrency)
        self._shared = SingleFlight(clock)
        self._identity = identity
        self._account = account

    async def __aenter__(self) -> Self:
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._shared.cancel_all()
        await self.transport.__aexit__(*exc_info)

    async def call(
        self, service: str, operation: str, read: Callable[[dict[str, Any]], T], **params: Any
    ) -> T:
        """Make one AWS call and read what iam-sudo needs of its answer (see reading_answer)."""
        reply = await self.transport.call(service, operation, **params)
        with reading_answer(service, operation):
            return read(reply)

    async def iam(self, operation: str, read: Callable[[dict[str, Any]], T], **params: Any) -> T:
        """One IAM call, within the concurrency limit."""
        async with self._iam_slots:
            return await self.call("iam", operation, read, **params)

    async def pages(self, operation: str, key: str, **params: Any) -> AsyncIterator[list[Any]]:
        """The ``key`` list of every page of an IAM listing, one page at a time."""

        def read(page: dict[str, Any]) -> tuple[list[Any], str | None]:
            items = page.get(key, [])
            if not isinstance(items, list):
                raise TypeError(key)
            return items, str(page["Marker"]) if page.get("IsTruncated") else None

        marker: dict[str, str] = {}
        while True:
            items, next_marker = await self.iam(
                operation, read, MaxItems=IAM_PAGE_SIZE, **params, **marker
            )
            yield items
            if next_marker is None:
                return
            marker = {"Marker": next_marker}

    async def identity(self) -> Identity:
        """The caller's account and ARN (read again once ``roles_ttl`` old)."""
        if self._identity is not None:
            return self._identity

        def read(reply: dict[str, Any]) -> Identity:
            return Identity(account=str(reply["Account"]), arn=str(reply["Arn"]))

        async def fetch() -> Identity:
            return await self.call("sts", "get_caller_identity", read)

        # Shielded: one caller's cancellation must not cancel the others' shared lookup.
        return await asyncio.shield(self._shared.run("identity", fetch, self._roles_ttl))

    async def account(self) -> str:
        """The account whose IAM this reader reads (the caller's own unless told)."""
        return self._account or (await self.identity()).account

    def roles_listing(self) -> asyncio.Task[list[Role]]:
        """The shared task listing every role (all pages; one listing per ``roles_ttl`` s)."""

        async def fetch() -> list[Role]:
            roles = []
            async for page in self.pages("list_roles", "Roles"):
                with reading_answer("iam", "list_roles"):
                    roles += [Role.from_iam(item) for item in page]
            return roles

        return self._shared.run(ROLES, fetch, self._roles_ttl)

    async def roles(self) -> list[Role]:
        """Every role of the account (see :meth:`roles_listing`)."""
        return await asyncio.shield(self.roles_listing())

    def stop_roles_listing(self) -> None:
        """Stop paging through the roles (when nobody waits for them any more)."""
        if self._shared.running(ROLES) is not None:
            self._shared.cancel(ROLES)

    async def role_arn(self, name_or_arn: str) -> str:
        """The ARN of a role given by ARN, or by name in the caller's account, as IAM says.

        A name's ARN comes from GetRole (once per ``roles_ttl``), never from concatenation: a
        role's ARN holds its IAM path (``role/ci/deployer``). Raises :class:`RoleNotFound`
        if there is no such role, :class:`AccessDenied` if GetRole is not allowed.
        """
        check_role_reference(name_or_arn)
        if name_or_arn.startswith("arn:"):
            return name_or_arn

        async def fetch() -> str:
            with role_arn_refusals(name_or_arn):
                return await self.iam(
                    "get_role", lambda reply: str(reply["Role"]["Arn"]), RoleName=name_or_arn
                )

        key = f"role-arn:{name_or_arn}"
        return await asyncio.shield(self._shared.run(key, fetch, self._roles_ttl))

    async def base_role_arn(self, name_or_arn: str) -> str:
        """:meth:`role_arn` of the base role; its :class:`RoleNotFound` says it is the base
        role, and how to choose another."""
        with base_role_refusals(name_or_arn):
            return await self.role_arn(name_or_arn)

    async def get_role(self, name_or_arn: str) -> tuple[Role, RoleDetails] | None:
        """The role of exactly this name (or ARN's name) and its details, or None if none."""
        name = role_name_of(name_or_arn) if name_or_arn.startswith("arn:") else name_or_arn

        def read(reply: dict[str, Any]) -> tuple[Role, RoleDetails]:
            return Role.from_iam(reply["Role"]), RoleDetails.from_iam(reply["Role"])

        try:
            return await self.iam("get_role", read, RoleName=name)
        except RoleNotFound:
            return None

    async def memo(self, key: str, factory: Callable[[], Awaitable[T]]) -> T:
        """``factory()``'s answer, shared by every caller and renewed like the roles listing.

        For what a caller reads about the account once per ``roles_ttl`` (a base role's
        details and policies); a failure is not kept.
        """

        async def run() -> T:
            return await factory()

        return await asyncio.shield(self._shared.run(key, run, self._roles_ttl))

    async def base_role_details(self, base_arn: str) -> RoleDetails:
        """The details of the base role ``base_arn``, read once per ``roles_ttl``."""
        name = role_name_of(base_arn)
        return await self.memo(f"base-role:{base_arn}", lambda: self.role_details(name))

    def _guard_read(self, base_role: str, policy_name: str) -> asyncio.Task[dict[str, Any] | None]:
        # Keyed by the role's name (unique in the account): a read started with the name
        # serves the check made later with the ARN.
        name = role_name_of(base_role) if base_role.startswith("arn:") else base_role

        async def fetch() -> dict[str, Any] | None:
            try:
                return await self.iam(
                    "get_role_policy",
                    lambda reply: _document(reply, "PolicyDocument"),
                    RoleName=name,
                    PolicyName=policy_name,
                )
            except RoleNotFound:
                return None

        return self._shared.run(f"guard:{name}", fetch, self._roles_ttl)

    def prefetch_base_role_guard(self, base_role: str, policy_name: str) -> None:
        """Start :meth:`base_role_guard`'s read now (``base_role`` a valid name or ARN), so
        that it costs no round of its own; a failure is the later call's to report."""
        self._guard_read(base_role, policy_name).add_done_callback(consume_failure)

    async def base_role_guard(self, base_role: str, policy_name: str) -> dict[str, Any] | None:
        """The base role's inline policy ``policy_name`` (its guard of the packed policies,
        :mod:`iam_sudo.core.duties`), read once per ``roles_ttl`` (shared with a prefetch);
        None if it has none (or the role does not exist). One GetRolePolicy."""
        return await asyncio.shield(self._guard_read(base_role, policy_name))

    async def role_details(self, role_name: str) -> RoleDetails:
        """The boundary and tags of the role ``role_name``; :class:`RoleNotFound` if none."""
        return await self.iam(
            "get_role", lambda reply: RoleDetails.from_iam(reply["Role"]), RoleName=role_name
        )

    async def attached_policy_arns(self, role_name: str) -> list[str]:
        """The ARNs of the managed policies attached to the role."""
        arns = []
        async for page in self.pages(
            "list_attached_role_policies", "AttachedPolicies", RoleName=role_name
        ):
            with reading_answer("iam", "list_attached_role_policies"):
                arns += [str(item["PolicyArn"]) for item in page]
        return arns

    async def inline_policies(self, role_name: str) -> dict[str, dict[str, Any]]:
        """The role's inline policies (name -> document)."""

        async def document(name: str) -> dict[str, Any]:
            return await self.iam(
                "get_role_policy",
                lambda reply: _document(reply, "PolicyDocument"),
                RoleName=role_name,
                PolicyName=name,
            )

        # Each page's documents are fetched while the next page of names is listed.
        async with task_group() as group:
            documents = {
                name: group.create_task(document(name))
                async for page in self.pages(
                    "list_role_policies", "PolicyNames", RoleName=role_name
                )
                for name in page
            }
        return {name: task.result() for name, task in documents.items()}

    async def role_policies(
        self, role_name: str, versions: Awaitable[dict[str, str]]
    ) -> RolePolicies:
        """The role's managed policy ARNs and documents, and its inline policies.

        ``versions`` (see :meth:`policy_versions`) is awaited only once the attached
        policies are listed, so that both listings run at once.
        """

        async def managed() -> tuple[list[str], dict[str, dict[str, Any]]]:
            arns = await self.attached_policy_arns(role_name)
            # Shielded: `versions` is shared (the session's listing of policy versions); a
            # lookup dropped by the exact-name fast path must not cancel it for the others.
            return arns, await self.managed_documents(arns, await asyncio.shield(versions))

        async with task_group() as group:
            attached = group.create_task(managed())
            inline = group.create_task(self.inline_policies(role_name))
        arns, documents = attached.result()
        return arns, documents, inline.result()

    async def policy_versions(self) -> dict[str, str]:
        """Default version of every attached managed policy (ARN -> version id).

        One listing (ListPolicies OnlyAttached) serves every role, like the roles listing.
        """

        async def fetch() -> dict[str, str]:
            versions: dict[str, str] = {}
            async for page in self.pages("list_policies", "Policies", OnlyAttached=True):
                with reading_answer("iam", "list_policies"):
                    versions.update({str(p["Arn"]): str(p["DefaultVersionId"]) for p in page})
            return versions

        return await asyncio.shield(self._shared.run("policy-versions", fetch, self._roles_ttl))

    async def managed_documents(
        self, arns: list[str], versions: dict[str, str]
    ) -> dict[str, dict[str, Any]]:
        """The default version's document of each managed policy (ARN -> document)."""

        async def document(arn: str) -> dict[str, Any]:
            version = versions.get(arn)
            if version is None:  # attached after the listing was made
                version = await self.iam(
                    "get_policy",
                    lambda r: str(r["Policy"]["DefaultVersionId"]),
                    PolicyArn=arn,
                )
            return await self.iam(
                "get_policy_version",
                lambda reply: _document(reply, "PolicyVersion", "Document"),
                PolicyArn=arn,
                VersionId=version,
            )

        async with task_group() as group:
            tasks = {arn: group.create_task(document(arn)) for arn in arns}
        return {arn: task.result() for arn, task in tasks.items()}

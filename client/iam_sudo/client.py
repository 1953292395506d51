"""The async client: one layer of AWS I/O around the pure core, shared by CLI and function."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from . import accounts
from ._aws import AioTransport, RetryMode, Timeouts, Transport, reading_answer
from ._exceptions import (
    AccessDenied,
    AccountUnreachable,
    AwsError,
    ConfigurationError,
    IamSudoError,
    InexactSimulation,
    InvalidRequest,
    PackedPolicyConflict,
    RoleNotFound,
    SessionLimitExceeded,
    SudoPolicyDenied,
    UnsupportedRole,
)
from .caller import (
    CallerProof,
    caller_from_answer,
    check_proof,
    deployment_audience,
    needs_caller_account,
)
from .caller import source_identity as caller_source_identity
from .ceiling import Ceiling
from .conditions import Target
from .credentials import Credentials
from .fidelity import Finding, narrowing_lines, report, rewrite_finding, statement_left_out
from .fitting import POLICY_PATH, PackedPolicy
from .policy import SudoPolicy
from .principal import Principal, admits
from .remote import (
    DEFAULT_FUNCTION_NAME,
    RolesRequest,
    SimulateRequest,
    parse_reply,
    parse_roles_reply,
)
from .roles import Role, boundary_variant_arn, check_role_reference, role_arn, role_name_of
from .session import (
    DEFAULT_DURATION_SECONDS,
    SessionPlan,
    SessionRequest,
    check_assume_options,
    plan_session,
)
from .session import session_name as default_session_name

DEFAULT_BASE_ROLE = "IAMSudoUser"
IAM_PAGE_SIZE = 1000  # IAM's largest page: one request lists most accounts' roles
DEFAULT_ROLES_TTL = 60.0
# How long to wait for STS to see just-created policies: about 15 s in all.
CONSISTENCY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
# What STS answers while a policy ARN it was given is not yet visible to it.
NOT_YET_VISIBLE_CODES = {"MalformedPolicyDocument", "InvalidParameterValue", "NoSuchEntity"}

log = logging.getLogger("iam_sudo")
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException"}

T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """Who the client is, per sts:GetCallerIdentity."""

    account: str
    arn: str

    @property
    def partition(self) -> str:
        """The AWS partition of the caller (aws, aws-cn, aws-us-gov)."""
        return self.arn.split(":")[1]


@dataclass(frozen=True)
class SimulatedSession:
    """A resolved role and the plan that simulates it, before anything is created or sent.

    ``findings`` (:class:`~iam_sudo.fidelity.Finding`) say what the session will not
    reproduce of the role; ``fidelity`` is their lines.
    """

    role: Role
    base_role_arn: str
    principal: Principal | None
    plan: SessionPlan
    findings: tuple[Finding, ...] = ()
    #: The account of a role read through its spoke's reader (None: the client's own).
    account: str | None = None

    @property
    def fidelity(self) -> tuple[str, ...]:
        """The fidelity report: one line per finding."""
        return tuple(str(finding) for finding in self.findings)

    @property
    def request(self) -> SessionRequest:
        """Exactly what is sent to sts:AssumeRole."""
        return self.plan.request


# A role's managed policy ARNs, their documents (ARN -> document), and inline policies.
RolePolicies = tuple[list[str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class RoleDetails:
    """What GetRole tells of a role beyond the listing."""

    arn: str
    boundary: str | None
    tags: dict[str, str]


# A policy younger than this may be about to be passed by ARN by a concurrent simulation.
PRUNE_MIN_AGE = timedelta(minutes=15)


def _seen(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _details(role: dict[str, Any]) -> RoleDetails:
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    tags = {str(t["Key"]): str(t["Value"]) for t in role.get("Tags") or []}
    return RoleDetails(str(role["Arn"]), str(boundary) if boundary else None, tags)


def _as_principal(principal: Principal | str | None) -> Principal | None:
    return Principal.parse(principal) if isinstance(principal, str) else principal


@contextlib.asynccontextmanager
async def _task_group() -> AsyncIterator[asyncio.TaskGroup]:
    """A TaskGroup that re-raises the error that stopped it rather than an ExceptionGroup."""
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as errors:
        ours: list[BaseException] = [e for e in errors.exceptions if isinstance(e, IamSudoError)]
        raise (ours or list(errors.exceptions))[0] from None


class IamSudo:
    """Gets credentials of real and simulated IAM roles.

    Use it as an async context manager; it creates its AWS clients inside it::

        async with IamSudo() as sudo:
            ecs = "Service:ecs-tasks.amazonaws.com"
            credentials = await sudo.simulate("TaskRole", principal=ecs)

    One client lists the account's roles at most once per ``roles_ttl`` seconds (default
    60), however many roles it simulates, and keeps at most ``max_concurrency`` IAM
    requests in flight.
    """

    def __init__(
        self,
        *,
        policy: SudoPolicy | None = None,
        base_role: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        max_concurrency: int = 16,
        retry_mode: RetryMode = "standard",
        timeouts: Timeouts | None = None,
        roles_ttl: float = DEFAULT_ROLES_TTL,
        transport: Transport | None = None,
        readers: accounts.AccountReaders | None = None,
    ) -> None:
        """Create a client.

        ``policy`` defaults to the YAML in ``IAM_SUDO_POLICY``, else allow-all;
        ``base_role`` (name or ARN) to ``IAM_SUDO_BASE_ROLE``, else ``IAMSudoUser``.
        ``transport`` replaces the aiobotocore transport (the function passes a
        thread-based one). ``timeouts`` default to :class:`Timeouts` from the environment.
        ``roles_ttl`` is how long a listing of the account's roles is reused: a long-lived
        client sees roles created or deleted since within that many seconds.
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if roles_ttl < 0:
            raise ValueError("roles_ttl must not be negative")
        self._roles_ttl = roles_ttl
        self._policy = policy
        self.base_role = base_role or os.environ.get("IAM_SUDO_BASE_ROLE") or DEFAULT_BASE_ROLE
        self._transport: Transport = transport or AioTransport(
            profile=profile,
            region=region,
            retry_mode=retry_mode,
            # IAM is bounded by the semaphore; the pool also serves STS's concurrent calls.
            max_pool_connections=max(max_concurrency, 20),
            timeouts=timeouts,
        )
        self._iam_slots = asyncio.Semaphore(max_concurrency)
        self._sessions_in_flight = 0
        self._cache: dict[str, tuple[asyncio.Task[Any], float]] = {}
        # Other accounts (accounts.py): spoke readers, shared with the function's container.
        self._max_concurrency = max_concurrency
        self._readers = readers
        self._own_readers = readers is None
        self._in_accounts: dict[tuple[str, int], IamSudo] = {}
        self._account: str | None = None  # set on a client for another account's roles

    @property
    def policy(self) -> SudoPolicy:
        """The sudo policy; read from ``IAM_SUDO_POLICY`` when first needed."""
        if self._policy is None:
            text = os.environ.get("IAM_SUDO_POLICY")
            self._policy = SudoPolicy.from_yaml(text) if text else SudoPolicy.default()
        return self._policy

    async def __aenter__(self) -> Self:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task, _ in self._cache.values():
            task.cancel()
        self._cache.clear()
        for other in self._in_accounts.values():
            await other.__aexit__(exc_type, exc, tb)
        self._in_accounts.clear()
        if self._own_readers and self._readers is not None:
            await self._readers.aclose()
        await self._transport.__aexit__(exc_type, exc, tb)

    async def in_account(self, account: str, *, caller: str | None = None) -> IamSudo:
        """A client for ``account``'s roles, read through its spoke's reader role.

        Same sudo policy; the base role is this one's namesake in ``account``. Raises
        :class:`SudoPolicyDenied` if ``caller``'s rules allow no role there (checked before
        anything is assumed), :class:`AccountUnreachable` if the account is not a spoke or
        its reader refuses (see :mod:`iam_sudo.accounts`).
        """
        accounts.check_account(account)
        me = await self.identity()
        caller = caller if caller is not None else me.arn
        if not self.policy.allows_account(account, caller):
            raise SudoPolicyDenied(
                f"sudo policy does not allow simulating roles in account {account}; ask for it "
                "in the policy's allowed-accounts",
                role_arn=None,
                base_role_arn=None,
            )
        return await self._account_client(account)

    async def _account_client(self, account: str) -> IamSudo:
        """The client for ``account`` (see :meth:`in_account`), without the policy's check."""
        me = await self.identity()
        if self._readers is None:
            make = getattr(self._transport, "with_credentials", None)
            if make is None:
                raise ConfigurationError("this transport cannot act in other accounts")
            self._readers = accounts.AccountReaders(self._transport, make)
        self._readers.check_reachable(account, me.account)
        transport = await self._readers.transport(account, me.partition, me.arn)
        base = self._base_role_in(self.base_role, account, me.partition)
        # One client per reader session, so its listings serve every request meanwhile;
        # looked up and stored with no await between, so concurrent requests share it.
        key = (account, id(transport._reader))
        other = self._in_accounts.get(key)
        if other is None:
            other = IamSudo(
                policy=self.policy,
                base_role=base,
                max_concurrency=self._max_concurrency,
                roles_ttl=self._roles_ttl,
                transport=transport,
            )
            other._account = account
            other._cache["identity"] = (asyncio.ensure_future(self.identity()), time.monotonic())
            self._in_accounts[key] = other
            await other.__aenter__()
        return other

    @staticmethod
    def _base_role_in(base_role: str, account: str, partition: str) -> str:
        """The base role of that name (or the namesake of that ARN) in ``account``.

        A spoke's base role is created without a path (function/spoke.py): its ARN is
        known without asking IAM, which the caller may not be allowed here.
        """
        if base_role.startswith("arn:"):
            return accounts.role_in_account(base_role, account)
        return role_arn(base_role, partition=partition, account=account)

    async def _target_account(self, role_name: str, account: str | None) -> str | None:
        """The other account a request is for (None: this client's own)."""
        if account is None and not role_name.startswith("arn:"):
            return None
        here = self._account or (await self.identity()).account
        return accounts.target_account(role_name, account, here)

    def _once(
        self,
        key: str,
        factory: Callable[[], Coroutine[Any, Any, T]],
        ttl: float | None = None,
    ) -> asyncio.Task[T]:
        """One shared task per key, renewed after ``ttl`` seconds (None: kept for good).

        A failed task is forgotten so that a later call retries.
        """
        now = time.monotonic()
        task, started = self._cache.get(key, (None, now))
        if (
            task is None
            or (task.done() and (task.cancelled() or task.exception()))
            or (ttl is not None and now - started >= ttl)
        ):
            task = asyncio.create_task(factory())
            self._cache[key] = (task, now)
        return task

    async def _call(
        self, service: str, operation: str, read: Callable[[dict[str, Any]], T], **params: Any
    ) -> T:
        """Make one AWS call and read what iam-sudo needs of its answer (see reading_answer)."""
        reply = await self._transport.call(service, operation, **params)
        with reading_answer(service, operation):
            return read(reply)

    async def _iam(self, operation: str, read: Callable[[dict[str, Any]], T], **params: Any) -> T:
        async with self._iam_slots:
            return await self._call("iam", operation, read, **params)

    async def _iam_pages(self, operation: str, key: str, **params: Any) -> AsyncIterator[list[Any]]:
        def read(page: dict[str, Any]) -> tuple[list[Any], str | None]:
            items = page.get(key, [])
            if not isinstance(items, list):
                raise TypeError(key)
            return items, str(page["Marker"]) if page.get("IsTruncated") else None

        marker: dict[str, str] = {}
        while True:
            items, next_marker = await self._iam(
                operation, read, MaxItems=IAM_PAGE_SIZE, **params, **marker
            )
            yield items
            if next_marker is None:
                return
            marker = {"Marker": next_marker}

    async def identity(self) -> Identity:
        """The caller's account and ARN (fetched once per client)."""

        def read(reply: dict[str, Any]) -> Identity:
            return Identity(account=str(reply["Account"]), arn=str(reply["Arn"]))

        async def fetch() -> Identity:
            return await self._call("sts", "get_caller_identity", read)

        # Shielded: one caller's cancellation must not cancel the others' shared lookup.
        return await asyncio.shield(self._once("identity", fetch))

    async def roles(self) -> list[Role]:
        """Every role of the account (all pages; one listing serves for ``roles_ttl`` s)."""

        async def fetch() -> list[Role]:
            roles = []
            async for page in self._iam_pages("list_roles", "Roles"):
                with reading_answer("iam", "list_roles"):
                    roles += [Role.from_iam(item) for item in page]
            return roles

        return await asyncio.shield(self._once("roles", fetch, self._roles_ttl))

    async def role_arn(self, name_or_arn: str) -> str:
        """The ARN of a role given by ARN, or by name in the caller's account, as IAM says.

        A name's ARN comes from GetRole (once per client), never from concatenation: a
        role's ARN holds its IAM path (``role/ci/deployer``). Raises :class:`RoleNotFound`
        if there is no such role, :class:`AccessDenied` if GetRole is not allowed.
        """
        check_role_reference(name_or_arn)
        if name_or_arn.startswith("arn:"):
            return name_or_arn

        async def fetch() -> str:
            try:
                return await self._iam(
                    "get_role", lambda reply: str(reply["Role"]["Arn"]), RoleName=name_or_arn
                )
            except AccessDenied as error:
                raise AccessDenied(
                    f"{error}; iam-sudo needs iam:GetRole to learn role {name_or_arn}'s ARN "
                    "(with its path): give the role's ARN instead",
                    code=error.code,
                ) from None

        return await asyncio.shield(self._once(f"role-arn:{name_or_arn}", fetch))

    async def _attached_policy_arns(self, role_name: str) -> list[str]:
        arns = []
        async for page in self._iam_pages(
            "list_attached_role_policies", "AttachedPolicies", RoleName=role_name
        ):
            with reading_answer("iam", "list_attached_role_policies"):
                arns += [str(item["PolicyArn"]) for item in page]
        return arns

    async def _inline_policies(self, role_name: str) -> dict[str, dict[str, Any]]:
        def read(reply: dict[str, Any]) -> dict[str, Any]:
            policy = reply["PolicyDocument"]
            if not isinstance(policy, dict):
                raise TypeError("PolicyDocument")
            return policy

        async def document(name: str) -> dict[str, Any]:
            return await self._iam("get_role_policy", read, RoleName=role_name, PolicyName=name)

        # Each page's documents are fetched while the next page of names is listed.
        async with _task_group() as group:
            documents = {
                name: group.create_task(document(name))
                async for page in self._iam_pages(
                    "list_role_policies", "PolicyNames", RoleName=role_name
                )
                for name in page
            }
        return {name: task.result() for name, task in documents.items()}

    async def _role_policies(
        self, role_name: str, versions: Awaitable[dict[str, str]]
    ) -> RolePolicies:
        """The role's managed policy ARNs and documents, and its inline policies."""

        async def managed() -> tuple[list[str], dict[str, dict[str, Any]]]:
            arns = await self._attached_policy_arns(role_name)
            # Shielded: `versions` is shared (the session's listing of policy versions); a
            # lookup dropped by the exact-name fast path must not cancel it for the others.
            return arns, await self._managed_documents(arns, await asyncio.shield(versions))

        async with _task_group() as group:
            attached = group.create_task(managed())
            inline = group.create_task(self._inline_policies(role_name))
        arns, documents = attached.result()
        return arns, documents, inline.result()

    async def _get_role(self, name_or_arn: str) -> tuple[Role, RoleDetails] | None:
        """The role of exactly this name (or ARN) and its details, or None if there is none."""
        name = role_name_of(name_or_arn) if name_or_arn.startswith("arn:") else name_or_arn

        def read(reply: dict[str, Any]) -> tuple[Role, RoleDetails]:
            return Role.from_iam(reply["Role"]), _details(reply["Role"])

        try:
            return await self._iam("get_role", read, RoleName=name)
        except RoleNotFound:
            return None

    def _drop_listing(self, waiter: asyncio.Future[Any]) -> None:
        """Stop paging through the roles when nobody else waits for them."""
        waiter.cancel()
        entry = self._cache.get("roles")
        if entry is not None and not entry[0].done() and self._sessions_in_flight == 1:
            entry[0].cancel()
            del self._cache["roles"]

    async def _role_details(self, role_name: str) -> RoleDetails:
        return await self._iam(
            "get_role", lambda reply: _details(reply["Role"]), RoleName=role_name
        )

    async def _policy_versions(self) -> dict[str, str]:
        """Default version of every attached managed policy (ARN -> version id).

        One listing (ListPolicies OnlyAttached) serves every role, like the roles listing.
        """

        async def fetch() -> dict[str, str]:
            versions: dict[str, str] = {}
            async for page in self._iam_pages("list_policies", "Policies", OnlyAttached=True):
                with reading_answer("iam", "list_policies"):
                    versions.update({str(p["Arn"]): str(p["DefaultVersionId"]) for p in page})
            return versions

        return await asyncio.shield(self._once("policy-versions", fetch, self._roles_ttl))

    async def _managed_documents(
        self, arns: list[str], versions: dict[str, str]
    ) -> dict[str, dict[str, Any]]:
        """The default version's document of each managed policy."""

        def read_document(reply: dict[str, Any]) -> dict[str, Any]:
            policy = reply["PolicyVersion"]["Document"]
            if not isinstance(policy, dict):
                raise TypeError("Document")
            return policy

        async def document(arn: str) -> dict[str, Any]:
            version = versions.get(arn)
            if version is None:  # attached after the listing was made
                version = await self._iam(
                    "get_policy",
                    lambda r: str(r["Policy"]["DefaultVersionId"]),
                    PolicyArn=arn,
                )
            return await self._iam(
                "get_policy_version", read_document, PolicyArn=arn, VersionId=version
            )

        async with _task_group() as group:
            tasks = {arn: group.create_task(document(arn)) for arn in arns}
        return {arn: task.result() for arn, task in tasks.items()}

    async def _base_role_for(self, role: Role, base_arn: str, boundary: str) -> str:
        """The variant of the base role that carries ``boundary``, or UnsupportedRole.

        A session of a base role with the target's boundary is exact: session policies
        intersect the boundary there just as the role's own policies do.
        """
        variant = boundary_variant_arn(base_arn, boundary)
        try:
            details = await self._role_details(role_name_of(variant))
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

    async def _base_role_tags(self, base_arn: str) -> dict[str, str]:
        return (await self._base_role_details(base_arn)).tags

    async def _base_role_details(self, base_arn: str) -> RoleDetails:
        factory = functools.partial(self._role_details, role_name_of(base_arn))
        return await asyncio.shield(self._once(f"base-role:{base_arn}", factory, self._roles_ttl))

    async def _ceiling(self, base_arn: str) -> Ceiling | str:
        """What the base role can grant (its policies and boundary), read once per base
        role and client (renewed like the roles listing); or why it cannot be read."""

        async def fetch() -> Ceiling | str:
            identity = await self.identity()
            if base_arn.split(":")[4] != identity.account:
                return f"it is in account {base_arn.split(':')[4]}, read from {identity.account}"
            name = role_name_of(base_arn)
            versions = asyncio.sleep(0, await self._policy_versions())
            try:
                async with _task_group() as group:
                    details = group.create_task(self._base_role_details(base_arn))
                    policies = group.create_task(self._role_policies(name, versions))
                arns, documents, inline = policies.result()
                boundary = details.result().boundary
                boundary_documents = (
                    await self._managed_documents([boundary], await self._policy_versions())
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

        return await asyncio.shield(self._once(f"ceiling:{base_arn}", fetch, self._roles_ttl))

    async def session(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        session_tags: bool = True,
        explain: bool = False,
        caller: str | None = None,
        source_identity: bool = True,
        exact: bool = False,
        account: str | None = None,
    ) -> SimulatedSession:
        """Resolve ``role_name`` and plan the AssumeRole request that simulates it exactly.

        Checks the sudo policy and fits the role's policies within STS's limits (see
        :mod:`iam_sudo.fitting`); sends nothing to STS and creates nothing. ``role_name``
        is a substring of the role's name; ``principal`` (``TYPE:ID``) keeps roles whose
        trust policy allows it. ``session_tags`` passes the role's tags as session tags;
        ``explain`` also reads the base role's tags for the fidelity report. ``caller`` is
        whom the sudo policy's rules are for (a verified ARN; default: this client's own
        identity, from STS); ``source_identity`` names the caller as the session's STS
        SourceIdentity, so that CloudTrail ties every action of the session to them.

        With ``explain`` or ``exact`` the base role's policies are read too, and what it
        cannot grant of the role becomes findings of kind ``narrower`` (see
        :mod:`iam_sudo.ceiling`); ``exact`` then raises :class:`InexactSimulation`, one
        line per narrowing, rather than plan a session that grants less than the role.
        """
        if not role_name:
            raise InvalidRequest("the role name must not be empty")
        check_role_reference(role_name)
        other = await self._target_account(role_name, account)
        if other is not None:
            # Another account: its reader reads the role, its base role is assumed.
            own = await self.identity()
            accounts.check_chained_duration(own.arn, duration_seconds, other)
            spoke = await self.in_account(other, caller=caller)
            if base_role is not None:
                check_role_reference(base_role)
                if base_role.startswith("arn:") and accounts.account_of(base_role) not in (
                    own.account,
                    other,
                ):
                    raise InvalidRequest(
                        f"the base role must be in account {other}, the role's: STS takes "
                        "session policy ARNs only from the assumed role's account"
                    )
                base_role = self._base_role_in(base_role, other, own.partition)
            planned = await spoke.session(
                role_name,
                principal=principal,
                base_role=base_role,
                duration_seconds=duration_seconds,
                session_tags=session_tags,
                explain=explain,
                caller=caller if caller is not None else own.arn,
                source_identity=source_identity,
                exact=exact,
            )
            return replace(planned, account=other)
        wanted = _as_principal(principal)
        base = base_role or self.base_role
        check_role_reference(base)
        policy = self.policy
        by_arn = role_name.startswith("arn:")
        self._sessions_in_flight += 1
        # The listing runs alongside a GetRole of the exact name (an ARN needs no listing):
        # when that role exists and may be simulated, the listing is not waited for.
        listing = None if by_arn else asyncio.ensure_future(self.roles())
        # Locally, the exact role's policies are read at once, too: for a full name or an
        # ARN this saves a round; for a part of a name it costs two requests that find
        # nothing. Not for another caller (the function): the policy decides first there.
        exact_name = role_name_of(role_name) if by_arn else role_name
        versions = asyncio.ensure_future(self._policy_versions())
        speculative = (
            asyncio.ensure_future(self._role_policies(exact_name, versions))
            if caller is None
            else None
        )
        for started in (listing, versions, speculative):
            if started is not None:
                # Whatever becomes of them, a failure nobody waits for is not an error:
                # the call reports the failure that decides it.
                started.add_done_callback(_seen)
        details: RoleDetails | None = None
        try:
            async with _task_group() as group:
                by_name = group.create_task(self._get_role(role_name))
                base_arn = group.create_task(self.role_arn(base))
                group.create_task(asyncio.wait([versions]))
                me = group.create_task(self.identity()) if caller is None else None
                found = await by_name
                if me is not None:
                    caller = (await me).arn
                if found is not None and by_arn and found[0].arn != role_name:
                    found = None  # the same name on another path is another role
                use_exact = (
                    found is not None
                    and policy.allows_role(found[0], caller)
                    and (wanted is None or admits(found[0].trust_policy, wanted))
                )
                if use_exact and listing is not None and not explain:
                    self._drop_listing(listing)  # at once: no page more than needed
            if found is not None and use_exact:
                role, details = found
                roles = await listing if explain and listing is not None else [role]
            elif by_arn:
                roles = [found[0]] if found is not None else []
                role = policy.resolve(
                    roles, role_name_of(role_name), wanted, base_arn.result(), caller
                )
            else:
                assert listing is not None
                roles = await listing
                role = policy.resolve(roles, role_name, wanted, base_arn.result(), caller)
        finally:
            self._sessions_in_flight -= 1
            for pending in (listing, speculative, versions):
                if pending is not None and (pending is not speculative or details is None):
                    pending.cancel()
        policies = await speculative if details is not None and speculative is not None else None
        policy.check(role, base_arn.result(), wanted, caller)
        session = await self._plan(
            role,
            base_arn.result(),
            versions.result(),
            listing=roles,
            principal=wanted,
            duration_seconds=duration_seconds,
            session_tags=session_tags,
            explain=explain,
            caller=caller,
            details=details,
            policies=policies,
            ceiling=explain or exact,
        )
        narrower = narrowing_lines(session.findings)
        if exact and narrower:
            raise InexactSimulation(session.role.name, narrower)
        if not source_identity or caller is None:
            return session
        # The base role's account is where the session lives: its own users keep bare names.
        named = caller_source_identity(caller, home_account=base_arn.result().split(":")[4])
        request = replace(session.request, source_identity=named)
        return replace(session, plan=replace(session.plan, request=request))

    async def _plan(
        self,
        role: Role,
        base_role_arn: str,
        versions: dict[str, str],
        *,
        listing: list[Role],
        principal: Principal | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        session_tags: bool = True,
        explain: bool = False,
        boundary_variants: bool = True,
        caller: str | None = None,
        details: RoleDetails | None = None,
        policies: RolePolicies | None = None,
        ceiling: bool = False,
    ) -> SimulatedSession:
        """Read the role's policies and plan its session (see :meth:`session`).

        ``details`` and ``policies`` are used when already read (the exact-name path);
        ``ceiling`` reads the base role's policies and reports what it cannot grant.
        """

        async def read_details() -> RoleDetails:
            return details if details is not None else await self._role_details(role.name)

        async def read_policies() -> RolePolicies:
            if policies is not None:
                return policies
            return await self._role_policies(role.name, asyncio.sleep(0, versions))

        async with _task_group() as group:
            role_details = group.create_task(read_details())
            role_policies = group.create_task(read_policies())
        arns, documents, inline_policies = role_policies.result()
        boundary = role_details.result().boundary
        if boundary and boundary_variants:
            base_role_arn = await self._base_role_for(role, base_role_arn, boundary)
            self.policy.check(role, base_role_arn, principal, caller)
        tags = role_details.result().tags
        plan = plan_session(
            role_name=role.name,
            base_role_arn=base_role_arn,
            attached_policy_arns=arns,
            inline_policies=inline_policies,
            managed_documents=documents,
            target=Target(role.arn, tags),
            tags=tags if session_tags else {},
            duration_seconds=duration_seconds,
        )
        narrowings, ceiling_unknown = [], None
        if ceiling:
            found = await self._ceiling(base_role_arn)
            if isinstance(found, str):
                ceiling_unknown = found
            else:
                role_documents = [(n, f"inline policy {n}", d) for n, d in inline_policies.items()]
                role_documents += [(a, f"managed policy {a}", documents[a]) for a in documents]
                left_out = {
                    (str(f.policy), int(f.statement or 0))
                    for f in map(rewrite_finding, plan.rewrites)
                    if statement_left_out(f)
                }
                narrowings = found.narrowings(
                    role_documents, role_boundary=boundary, left_out=left_out
                )
        findings = report(
            role=role,
            plan=plan,
            roles=listing,
            boundary=boundary,
            role_tags=tags,
            tags_passed=session_tags,
            base_role_tags=await self._base_role_tags(base_role_arn) if explain else None,
            narrowings=narrowings,
            ceiling_unknown=ceiling_unknown,
        )
        return SimulatedSession(role, base_role_arn, principal, plan, tuple(findings))

    async def prune_policies(
        self,
        *,
        dry_run: bool = False,
        min_age: timedelta = PRUNE_MIN_AGE,
        account: str | None = None,
    ) -> list[str]:
        """Delete the /iam-sudo/ policies that no role of the account needs any more.

        ``account``: another account's, through its spoke's reader (which may delete only
        under ``/iam-sudo/``).

        Every role is planned (with the caller's own IAM permissions; nothing is assumed)
        to learn which content-addressed policies are still needed. Only policies under
        ``/iam-sudo/`` named ``iam-sudo-*`` are ever considered. If any role cannot be
        planned, nothing is deleted. Returns the ARNs deleted (or, with ``dry_run``, that
        would be). A policy attached to anything, or created less than ``min_age`` ago, is
        never deleted (see :meth:`_own_policies`).
        """
        if account is not None and await self._target_account("", account) is not None:
            spoke = await self.in_account(account)
            return await spoke.prune_policies(dry_run=dry_run, min_age=min_age)
        async with _task_group() as group:
            listing = group.create_task(self.roles())
            base_arn = group.create_task(self.role_arn(self.base_role))
            versions = group.create_task(self._policy_versions())
            ours = group.create_task(self._own_policies(min_age))

        async def needed_by(role: Role) -> set[str]:
            try:
                planned = await self._plan(
                    role,
                    base_arn.result(),
                    versions.result(),
                    listing=listing.result(),
                    boundary_variants=False,
                )
            except SessionLimitExceeded:
                return set()
            except IamSudoError as error:
                raise IamSudoError(
                    f"cannot tell which iam-sudo policies role {role.name} needs ({error}); "
                    "nothing was deleted"
                ) from None
            return {packed.arn for packed in planned.plan.packed}

        async with _task_group() as group:
            needs = [group.create_task(needed_by(role)) for role in listing.result()]
        needed = set().union(*(task.result() for task in needs))
        unneeded = sorted(set(ours.result()) - needed)
        if not dry_run:
            for arn in unneeded:
                await self._iam("delete_policy", lambda reply: None, PolicyArn=arn)
                log.info("deleted %s", arn)
        return unneeded

    async def _own_policies(self, min_age: timedelta = PRUNE_MIN_AGE) -> list[str]:
        """The content-addressed policies iam-sudo created in this account, that prune may delete.

        Never one attached to anything (``AttachmentCount`` > 0: iam-sudo never attaches its
        own, so someone else relies on it), nor one created less than ``min_age`` (default
        :data:`PRUNE_MIN_AGE`) ago (a simulation may be about to pass it by ARN), nor one
        whose count or creation date the answer does not give (unknown: kept).
        """
        now = datetime.now(UTC)
        arns: list[str] = []
        async for page in self._iam_pages(
            "list_policies", "Policies", Scope="Local", PathPrefix=POLICY_PATH
        ):
            with reading_answer("iam", "list_policies"):
                for p in page:
                    if p.get("Path") != POLICY_PATH or not str(p["PolicyName"]).startswith(
                        "iam-sudo-"
                    ):
                        continue
                    attached, created = p.get("AttachmentCount"), p.get("CreateDate")
                    if (
                        isinstance(attached, int)
                        and attached == 0
                        and isinstance(created, datetime)
                        and created.tzinfo is not None
                        and now - created >= min_age
                    ):
                        arns.append(str(p["Arn"]))
                    else:
                        log.info("kept %s: attached, recent or of unknown age", p["Arn"])
        return arns

    async def _ensure_policy(self, packed: PackedPolicy) -> bool:
        """Create ``packed`` unless it exists with exactly its document; True if created.

        The name is the document's hash, so an existing policy of that name is reused,
        after checking that its default version is still the document iam-sudo wrote.
        """
        wanted = json.loads(packed.document)

        def read(reply: dict[str, Any]) -> Any:
            return reply["PolicyVersion"]["Document"], reply["PolicyVersion"]["IsDefaultVersion"]

        async def existing() -> Any:
            try:
                return await self._iam(
                    "get_policy_version", read, PolicyArn=packed.arn, VersionId="v1"
                )
            except AwsError as error:
                if error.code == "NoSuchEntity":
                    return None
                raise

        found = await existing()
        created = False
        if found is None:
            try:
                await self._iam(
                    "create_policy",
                    lambda reply: reply["Policy"]["Arn"],
                    PolicyName=packed.name,
                    Path=POLICY_PATH,
                    PolicyDocument=packed.document,
                    Description="iam-sudo session policy statements (content-addressed); "
                    "re-created when needed",
                )
                created = True
                log.info("created the session policy %s", packed.arn)
            except AwsError as error:
                if error.code != "EntityAlreadyExists":
                    raise
                found = await existing()  # created meanwhile by another simulation
        if not created and (found is None or found != (wanted, True)):
            raise PackedPolicyConflict(
                f"{packed.arn} does not hold the document iam-sudo created it with (or has "
                "another default version); delete it (iam-sudo prune) and try again"
            )
        return created

    async def assume_session(self, session: SimulatedSession | SessionRequest) -> Credentials:
        """Create the policies a session needs, send its AssumeRole request, return credentials.

        Policies created just now may not be visible to STS at once (IAM is eventually
        consistent): AssumeRole is retried on that failure with a bounded backoff.
        """
        if isinstance(session, SimulatedSession) and session.account is not None:
            # Packed policies are created in the role's account, through its reader.
            # The session was planned, and the policy checked, by :meth:`session`.
            spoke = await self._account_client(session.account)
            try:
                return await spoke.assume_session(replace(session, account=None))
            except AccessDenied as error:
                me = await self.identity()
                raise AccountUnreachable(
                    f"cannot assume {session.base_role_arn} in account {session.account}: it "
                    f"does not exist or does not trust {me.arn} for sts:AssumeRole, "
                    "sts:SetSourceIdentity and sts:TagSession; redeploy the account's spoke "
                    "(`pulumi up` in the hub)",
                    code=error.code,
                ) from None
        request = session.request if isinstance(session, SimulatedSession) else session
        packed = session.plan.packed if isinstance(session, SimulatedSession) else ()
        created = False
        if packed:
            async with _task_group() as group:
                results = [group.create_task(self._ensure_policy(p)) for p in packed]
            created = any(task.result() for task in results)

        def read(reply: dict[str, Any]) -> Credentials:
            credentials = Credentials.from_sts(reply["Credentials"])
            size = reply.get("PackedPolicySize")
            if size is not None:
                log.info("STS packed the session policies and tags to %s%% of its limit", size)
            return credentials

        delays = list(CONSISTENCY_DELAYS) if created else []
        while True:
            try:
                return await self._call("sts", "assume_role", read, **request.to_params())
            except AwsError as error:
                if error.code in _ACCESS_DENIED and (request.source_identity or request.tags):
                    raise AccessDenied(
                        f"{error}; to pass the caller as SourceIdentity and the role's tags, "
                        f"the base role's trust policy must allow sts:SetSourceIdentity and "
                        f"sts:TagSession for you (or use --no-source-identity / "
                        f"--no-session-tags)",
                        code=error.code,
                    ) from None
                if error.code == "PackedPolicyTooLarge":
                    raise SessionLimitExceeded(
                        f"STS refused the session as too large once packed "
                        f"(PackedPolicyTooLarge): sent {len(request.policy_arns)} policy ARNs, "
                        f"{request.plaintext_chars} plaintext characters and "
                        f"{len(request.tags)} session tags; try --no-session-tags"
                    ) from None
                if not delays or error.code not in NOT_YET_VISIBLE_CODES:
                    raise
                delay = delays.pop(0)
                log.info(
                    "STS does not see the new session policies yet (%s; IAM is eventually "
                    "consistent): retrying in %.1f s",
                    error.code,
                    delay,
                )
                await asyncio.sleep(delay)

    async def simulate(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        exact: bool = False,
        account: str | None = None,
    ) -> Credentials:
        """Credentials of the base role limited to the policies of the role ``role_name``.

        ``exact`` raises :class:`InexactSimulation` where the base role cannot grant all
        the role can (see :meth:`session`). ``account`` (or a role ARN in another account)
        simulates a role of that account through its spoke (see :meth:`in_account`).
        """
        session = await self.session(
            role_name,
            principal=principal,
            base_role=base_role,
            duration_seconds=duration_seconds,
            exact=exact,
            account=account,
        )
        return await self.assume_session(session)

    async def assume(
        self,
        role: str,
        *,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        session_name: str | None = None,
        external_id: str | None = None,
        mfa_serial: str | None = None,
        token_code: str | None = None,
    ) -> Credentials:
        """Credentials of the real role ``role`` (a name in the caller's account, or an ARN).

        ``session_name`` defaults to ``iam-sudo-<role>``; ``external_id`` is what the role's
        trust may require; ``mfa_serial`` and ``token_code`` authenticate with MFA.
        """
        check_assume_options(
            mfa_serial=mfa_serial,
            token_code=token_code,
            external_id=external_id,
            session_name=session_name,
        )
        if mfa_serial is not None and token_code is None:
            raise InvalidRequest("an MFA device needs its current token code")
        arn = await self.role_arn(role)
        request = SessionRequest(
            role_arn=arn,
            session_name=session_name or default_session_name(role_name_of(arn)),
            duration_seconds=duration_seconds,
            external_id=external_id,
            serial_number=mfa_serial,
            token_code=token_code,
        )
        return await self.assume_session(request)

    async def simulate_remote(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        function_name: str = DEFAULT_FUNCTION_NAME,
        exact: bool = False,
        account: str | None = None,
    ) -> Credentials:
        """Ask the iam-sudo Lambda function to simulate the role, with its own permissions.

        Only ``lambda:InvokeFunction`` is needed; the function's sudo policy decides. A
        function error raises :class:`RemoteError` carrying the function's message;
        ``exact`` has the function refuse an inexact simulation (``InexactSimulation``).
        """
        event: dict[str, Any] = SimulateRequest(
            role_name, _as_principal(principal), base_role, exact, account
        ).to_event()
        # The function's own validation, so that a bad request fails here, before any call.
        SimulateRequest.from_event(event)
        return parse_reply(*await self._invoke(function_name, event))

    async def _invoke(self, function_name: str, event: dict[str, Any]) -> tuple[bytes, str | None]:
        """Invoke the function with ``event`` and a caller proof; (payload, function error).

        The proof says who asks, signed with this client's own credentials, for this
        function only.
        """
        proof = await self._transport.identity_proof(await self.function_audience(function_name))
        reply = await self._transport.call(
            "lambda",
            "invoke",
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps({**event, "proof": proof.to_event()}).encode(),
        )
        return reply.get("Payload", b""), reply.get("FunctionError")

    async def visible_roles(
        self,
        *,
        principal: Principal | str | None = None,
        caller: str | None = None,
        account: str | None = None,
    ) -> list[Role]:
        """The roles ``caller`` (default: you) may simulate, trusting ``principal`` if given.

        ``account``: those of another account, read through its spoke.
        """
        if account is not None and await self._target_account("", account) is not None:
            spoke = await self.in_account(account, caller=caller)
            own = await self.identity()
            return await spoke.visible_roles(
                principal=principal, caller=caller if caller is not None else own.arn
            )
        wanted = _as_principal(principal)
        async with _task_group() as group:
            listing = group.create_task(self.roles())
            me = group.create_task(self.identity()) if caller is None else None
        if me is not None:
            caller = me.result().arn
        return sorted(
            (
                role
                for role in listing.result()
                if self.policy.allows_role(role, caller)
                and (wanted is None or admits(role.trust_policy, wanted))
            ),
            key=lambda role: role.name,
        )

    async def visible_roles_everywhere(
        self, *, principal: Principal | str | None = None, caller: str | None = None
    ) -> tuple[list[Role], dict[str, str]]:
        """The roles ``caller`` may simulate in this account and every spoke, concurrently.

        At most ``ACCOUNTS_IN_FLIGHT`` (32) accounts are read at once. Returns (roles, account ->
        one-line error for each account that could not be read); a denial by the policy
        for a whole account is not an error, that account just has no roles.
        """
        me = await self.identity()
        spokes = self._readers.spokes if self._readers is not None else None
        if spokes is None:
            raise InvalidRequest(
                "listing every account needs the deployment's list of spokes: ask the "
                "function (--remote), or name one account with --account"
            )
        caller = caller if caller is not None else me.arn

        def job(account: str) -> Callable[[], Awaitable[list[Role]]]:
            async def run() -> list[Role]:
                if not self.policy.allows_account(account, caller):
                    return []
                return await self.visible_roles(principal=principal, caller=caller, account=account)

            return run

        results = await accounts.gather_bounded(
            {a: job(a) for a in dict.fromkeys([me.account, *spokes])},
            accounts.ACCOUNTS_IN_FLIGHT,
        )
        roles = [r for result in results.values() if isinstance(result, list) for r in result]
        errors = {a: str(e) for a, e in results.items() if isinstance(e, IamSudoError)}
        return roles, errors

    async def narrowings(
        self, roles: list[Role], *, base_role: str | None = None
    ) -> dict[str, list[str]]:
        """Per role ARN, the lines of what a simulation would not grant of it ([] = exact).

        Each role is planned as :meth:`session` would with ``exact``, under ``base_role``
        (default: the client's) or the variant carrying its boundary; a role that cannot
        be simulated at all (no such variant, too large for STS) has that error as its line.
        """
        async with _task_group() as group:
            base_arn = group.create_task(self.role_arn(base_role or self.base_role))
            versions = group.create_task(self._policy_versions())
            me = group.create_task(self.identity())

        async def lines(role: Role) -> list[str]:
            try:
                planned = await self._plan(
                    role,
                    base_arn.result(),
                    versions.result(),
                    listing=roles,
                    caller=me.result().arn,
                    ceiling=True,
                )
            except (UnsupportedRole, SessionLimitExceeded) as error:
                return [str(error)]
            return narrowing_lines(planned.findings)

        async with _task_group() as group:
            tasks = {role.arn: group.create_task(lines(role)) for role in roles}
        return {arn: task.result() for arn, task in tasks.items()}

    async def roles_remote(
        self,
        *,
        principal: Principal | str | None = None,
        function_name: str = DEFAULT_FUNCTION_NAME,
        account: str | None = None,
        all_accounts: bool = False,
    ) -> list[dict[str, Any]]:
        """The roles the function's sudo policy lets *you* (the verified caller) simulate.

        ``account``: in that account; ``all_accounts``: in every account the function
        reaches (an account it cannot read is reported in an ``error`` entry, see
        :func:`iam_sudo.remote.parse_roles_reply`).
        """
        event: dict[str, Any] = RolesRequest(
            _as_principal(principal), account, all_accounts
        ).to_event()
        return parse_roles_reply(*await self._invoke(function_name, event))

    async def function_audience(self, function_name: str) -> str:
        """The audience of a proof for ``function_name``: the function's unqualified ARN.

        A full or partial ARN needs no request (a partial one is in the Lambda client's
        region and partition); a bare name is invoked in the caller's own account, which
        costs one sts:GetCallerIdentity (no permission needed; cached for this client).
        Not lambda:GetFunction: another request, and a permission callers may lack.
        """
        partition, region = await self._transport.scope("lambda")
        account = (await self.identity()).account if needs_caller_account(function_name) else None
        return deployment_audience(
            function_name, partition=partition, region=region, account=account
        )

    async def verify_caller(self, proof: object, *, audience: str) -> str:
        """The ARN of whoever signed ``proof``, as STS says; :class:`Unauthenticated` if not.

        The function's first step: the proof must be a GetCallerIdentity request for this
        transport's own STS endpoint, for ``audience`` (the function's unqualified ARN, see
        :func:`iam_sudo.caller.own_audience`), signed in the last 15 minutes, carrying only
        signed headers; STS then checks the signature and names the signer.
        """
        checked = check_proof(
            CallerProof.from_event(proof),
            sts_endpoint=await self._transport.sts_endpoint(),
            audience=audience,
            now=datetime.now(UTC),
        )
        status, body = await self._transport.send_proof(checked)
        return caller_from_answer(status, body)

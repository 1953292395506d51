"""The async client: one layer of AWS I/O around the pure core, shared by CLI and function."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from ._aws import AioTransport, RetryMode, Timeouts, Transport, reading_answer
from ._exceptions import IamSudoError, InvalidRequest, UnsupportedRole
from .credentials import Credentials
from .policy import SudoPolicy
from .principal import Principal
from .remote import DEFAULT_FUNCTION_NAME, SimulateRequest, parse_reply
from .roles import Role, check_role_reference, role_arn, role_name_of
from .session import DEFAULT_DURATION_SECONDS, SessionRequest, build_session, session_name

DEFAULT_BASE_ROLE = "IAMSudoUser"
IAM_PAGE_SIZE = 1000  # IAM's largest page: one request lists most accounts' roles
DEFAULT_ROLES_TTL = 60.0

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
    """A resolved role and the AssumeRole request that simulates it, before it is sent."""

    role: Role
    base_role_arn: str
    principal: Principal | None
    request: SessionRequest


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
        self._cache: dict[str, tuple[asyncio.Task[Any], float]] = {}

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
        await self._transport.__aexit__(exc_type, exc, tb)

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
        """The ARN of a role given by ARN or by name in the caller's account and partition."""
        check_role_reference(name_or_arn)
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        identity = await self.identity()
        return role_arn(name_or_arn, partition=identity.partition, account=identity.account)

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

    async def _check_no_permissions_boundary(self, role_name: str) -> None:
        def read(reply: dict[str, Any]) -> str | None:
            boundary = reply["Role"].get("PermissionsBoundary") or {}
            arn = boundary.get("PermissionsBoundaryArn")
            return str(arn) if arn else None

        boundary = await self._iam("get_role", read, RoleName=role_name)
        if boundary:
            raise UnsupportedRole(
                f"role {role_name} has the permissions boundary {boundary}, which session "
                "policies cannot reproduce; simulating it could grant more than the role has"
            )

    async def session(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
    ) -> SimulatedSession:
        """Resolve ``role_name`` and build the AssumeRole request that simulates it.

        Checks the sudo policy and STS's limits; sends nothing to STS. ``role_name`` is a
        substring of the role's name; ``principal`` (``TYPE:ID``) keeps roles whose trust
        policy allows it.
        """
        if not role_name:
            raise InvalidRequest("the role name must not be empty")
        check_role_reference(role_name)
        wanted = _as_principal(principal)
        base = base_role or self.base_role
        check_role_reference(base)
        policy = self.policy
        async with _task_group() as group:
            listing = group.create_task(self.roles())
            base_arn = group.create_task(self.role_arn(base))
        role = policy.resolve(listing.result(), role_name, wanted, base_arn.result())
        policy.check(role, base_arn.result(), wanted)

        async with _task_group() as group:
            group.create_task(self._check_no_permissions_boundary(role.name))
            attached = group.create_task(self._attached_policy_arns(role.name))
            inline = group.create_task(self._inline_policies(role.name))
        request = build_session(
            role_name=role.name,
            base_role_arn=base_arn.result(),
            attached_policy_arns=attached.result(),
            inline_policies=inline.result(),
            duration_seconds=duration_seconds,
        )
        return SimulatedSession(role, base_arn.result(), wanted, request)

    async def assume_session(self, session: SimulatedSession | SessionRequest) -> Credentials:
        """Send the AssumeRole request of a session and return its credentials."""
        request = session.request if isinstance(session, SimulatedSession) else session
        return await self._call(
            "sts",
            "assume_role",
            lambda reply: Credentials.from_sts(reply["Credentials"]),
            **request.to_params(),
        )

    async def simulate(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
    ) -> Credentials:
        """Credentials of the base role limited to the policies of the role ``role_name``."""
        session = await self.session(
            role_name, principal=principal, base_role=base_role, duration_seconds=duration_seconds
        )
        return await self.assume_session(session)

    async def assume(
        self, role: str, *, duration_seconds: int = DEFAULT_DURATION_SECONDS
    ) -> Credentials:
        """Credentials of the real role ``role`` (a name in the caller's account, or an ARN)."""
        arn = await self.role_arn(role)
        request = SessionRequest(
            role_arn=arn,
            session_name=session_name(role_name_of(arn)),
            duration_seconds=duration_seconds,
        )
        return await self.assume_session(request)

    async def simulate_remote(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        function_name: str = DEFAULT_FUNCTION_NAME,
    ) -> Credentials:
        """Ask the iam-sudo Lambda function to simulate the role, with its own permissions.

        Only ``lambda:InvokeFunction`` is needed; the function's sudo policy decides. A
        function error raises :class:`RemoteError` carrying the function's message.
        """
        event = SimulateRequest(role_name, _as_principal(principal), base_role).to_event()
        # The function's own validation, so that a bad request fails here, before any call.
        SimulateRequest.from_event(event)
        reply = await self._transport.call(
            "lambda",
            "invoke",
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        return parse_reply(reply.get("Payload", b""), reply.get("FunctionError"))

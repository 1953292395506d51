"""The async client: one layer of AWS I/O around the pure core, shared by CLI and function."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from ._aws import AioTransport, RetryMode, Transport
from ._exceptions import IamSudoError, InvalidRequest, UnsupportedRole
from .credentials import Credentials
from .policy import SudoPolicy
from .principal import Principal
from .remote import DEFAULT_FUNCTION_NAME, SimulateRequest, parse_reply
from .roles import Role, check_role_reference, resolve_role, role_arn, role_name_of
from .session import DEFAULT_DURATION_SECONDS, SessionRequest, build_session, session_name

DEFAULT_BASE_ROLE = "IAMSudoUser"
IAM_PAGE_SIZE = 1000  # IAM's largest page: one request lists most accounts' roles

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

    One client lists the account's roles once, however many roles it simulates, and keeps
    at most ``max_concurrency`` IAM requests in flight.
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
        transport: Transport | None = None,
    ) -> None:
        """Create a client.

        ``policy`` defaults to the YAML in ``IAM_SUDO_POLICY``, else allow-all;
        ``base_role`` (name or ARN) to ``IAM_SUDO_BASE_ROLE``, else ``IAMSudoUser``.
        ``transport`` replaces the aiobotocore transport (the function passes a
        thread-based one).
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._policy = policy
        self.base_role = base_role or os.environ.get("IAM_SUDO_BASE_ROLE") or DEFAULT_BASE_ROLE
        self._transport: Transport = transport or AioTransport(
            profile=profile,
            region=region,
            retry_mode=retry_mode,
            # IAM is bounded by the semaphore; the pool also serves STS's concurrent calls.
            max_pool_connections=max(max_concurrency, 20),
        )
        self._iam_slots = asyncio.Semaphore(max_concurrency)
        self._cache: dict[str, asyncio.Task[Any]] = {}

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
        for task in self._cache.values():
            task.cancel()
        self._cache.clear()
        await self._transport.__aexit__(exc_type, exc, tb)

    def _once(self, key: str, factory: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """One shared task per key; a failed one is forgotten so that a later call retries."""
        task = self._cache.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception())):
            task = self._cache[key] = asyncio.create_task(factory())
        return task

    async def _iam(self, operation: str, **params: Any) -> dict[str, Any]:
        async with self._iam_slots:
            return await self._transport.call("iam", operation, **params)

    async def _iam_pages(self, operation: str, key: str, **params: Any) -> AsyncIterator[list[Any]]:
        marker: dict[str, str] = {}
        while True:
            page = await self._iam(operation, MaxItems=IAM_PAGE_SIZE, **params, **marker)
            yield page.get(key, [])
            if not page.get("IsTruncated"):
                return
            marker = {"Marker": page["Marker"]}

    async def identity(self) -> Identity:
        """The caller's account and ARN (fetched once per client)."""

        async def fetch() -> Identity:
            reply = await self._transport.call("sts", "get_caller_identity")
            return Identity(account=reply["Account"], arn=reply["Arn"])

        # Shielded: one caller's cancellation must not cancel the others' shared lookup.
        return await asyncio.shield(self._once("identity", fetch))

    async def roles(self) -> list[Role]:
        """Every role of the account (listed once per client, all pages)."""

        async def fetch() -> list[Role]:
            return [
                Role.from_iam(item)
                async for page in self._iam_pages("list_roles", "Roles")
                for item in page
            ]

        return await asyncio.shield(self._once("roles", fetch))

    async def role_arn(self, name_or_arn: str) -> str:
        """The ARN of a role given by ARN or by name in the caller's account and partition."""
        check_role_reference(name_or_arn)
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        identity = await self.identity()
        return role_arn(name_or_arn, partition=identity.partition, account=identity.account)

    async def _attached_policy_arns(self, role_name: str) -> list[str]:
        return [
            item["PolicyArn"]
            async for page in self._iam_pages(
                "list_attached_role_policies", "AttachedPolicies", RoleName=role_name
            )
            for item in page
        ]

    async def _inline_policies(self, role_name: str) -> dict[str, dict[str, Any]]:
        async def document(name: str) -> dict[str, Any]:
            reply = await self._iam("get_role_policy", RoleName=role_name, PolicyName=name)
            policy: dict[str, Any] = reply["PolicyDocument"]
            return policy

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
        role = (await self._iam("get_role", RoleName=role_name))["Role"]
        boundary = role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
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
        wanted = _as_principal(principal)
        base = base_role or self.base_role
        check_role_reference(base)
        policy = self.policy
        async with _task_group() as group:
            listing = group.create_task(self.roles())
            base_arn = group.create_task(self.role_arn(base))
        role = resolve_role(listing.result(), role_name, wanted)
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
        reply = await self._transport.call("sts", "assume_role", **request.to_params())
        return Credentials.from_sts(reply["Credentials"])

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

"""The async client: ``IamSudo`` orchestrates the steps of getting role credentials.

Each step is a few lines over the modules that do the work: :mod:`iam_sudo.aws.iam_reader` reads
an account, :mod:`iam_sudo.steps.lookup` resolves which role a request means,
:mod:`iam_sudo.core.session` plans the AssumeRole request, :mod:`iam_sudo.aws.policy_store`
keeps the policies it needs, :mod:`iam_sudo.steps.remote` and :mod:`iam_sudo.aws.caller` speak
the function's protocol, and :mod:`iam_sudo.aws.errors` is the one edge where AWS is called.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .aws.caller import verify
from .aws.errors import RetryMode, Timeouts, Transport, exact_name_refusals
from .aws.iam_reader import DEFAULT_MAX_CONCURRENCY, DEFAULT_ROLES_TTL, IamReader, Identity
from .aws.policy_store import PRUNE_MIN_AGE
from .aws.sts import RoleOptions, assume_role
from .aws.tasks import task_group
from .aws.transports import AioTransport
from .core.drafts import Draft
from .core.exceptions import InexactSimulation, InvalidRequest
from .core.fidelity import Finding, narrowing_lines
from .core.principal import Principal
from .core.roles import Role
from .core.session import (
    DEFAULT_DURATION_SECONDS,
    SessionRequest,
)
from .core.simulated import SimulatedSession
from .core.sudo_policy import SudoPolicy
from .core.template import Template
from .settings.credentials import Credentials
from .steps.lookup import visible_roles
from .steps.organization import Accounts
from .steps.planning import (
    narrowings,
    needed_policies,
    plan_found,
    prefetch_guard,
    template_found,
)
from .steps.remote import (
    DEFAULT_FUNCTION_NAME,
    RolesRequest,
    SimulateRequest,
    invoke,
    parse_reply,
    parse_roles_reply,
)
from .steps.spokes import AccountReaders, reader_role_name

if TYPE_CHECKING:
    from .aws.recorder import RecordingEndpoint

__all__ = ["DEFAULT_BASE_ROLE", "IamSudo", "Identity", "SimulatedSession"]

DEFAULT_BASE_ROLE = "IAMSudoUser"


def _as_principal(principal: Principal | str | None) -> Principal | None:
    return Principal.parse(principal) if isinstance(principal, str) else principal


class IamSudo:
    """Gets credentials of real and simulated IAM roles.

    Use it as an async context manager; it creates its AWS clients inside it::

        async with IamSudo() as sudo:
            ecs = "Service:ecs-tasks.amazonaws.com"
            credentials = await sudo.simulate("TaskRole", principal=ecs)

    One client lists the account's roles at most once per ``roles_ttl`` seconds (default
    60), however many roles it simulates, and keeps at most ``max_concurrency`` IAM
    requests in flight.

    A long-lived client keeps nothing about IAM longer than ``roles_ttl`` seconds,
    counted on the wall and the monotonic clock alike (a laptop waking from suspend reads
    anew): the roles listing with each role's trust policy and tags, the attached
    policies' default versions, role ARNs, the base role's details and policies, the
    caller's identity. A trust, tag or policy change is therefore seen within
    ``roles_ttl`` seconds; the role named exactly is read afresh for every plan. The
    spokes' reader sessions are renewed by the refresh rule (:mod:`iam_sudo.core.refresh`).
    """

    def __init__(
        self,
        *,
        policy: SudoPolicy | None = None,
        base_role: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry_mode: RetryMode = "standard",
        timeouts: Timeouts | None = None,
        roles_ttl: float = DEFAULT_ROLES_TTL,
        transport: Transport | None = None,
        readers: AccountReaders | None = None,
    ) -> None:
        """Create a client.

        ``policy`` defaults to the YAML in ``IAM_SUDO_POLICY``, else allow-all;
        ``base_role`` (name or ARN) to ``IAM_SUDO_BASE_ROLE``, else ``IAMSudoUser``.
        ``transport`` replaces the aiobotocore transport (the function passes a
        thread-based one). ``timeouts`` default to :class:`Timeouts` from the environment.
        ``roles_ttl`` is how long a listing of the account's roles is reused: a long-lived
        client sees roles created or deleted since within that many seconds.
        ``readers``: the spokes' reader sessions (the function shares one; see accounts).
        """
        self._policy = policy
        self.base_role = base_role or os.environ.get("IAM_SUDO_BASE_ROLE") or DEFAULT_BASE_ROLE
        transport = transport or AioTransport(
            profile=profile,
            region=region,
            retry_mode=retry_mode,
            # IAM is bounded by the reader; the pool also serves STS's concurrent calls.
            max_pool_connections=max(max_concurrency, 20),
            timeouts=timeouts,
        )
        # One reader per account: this one's, and a spoke's for each other account.
        self._reader = IamReader(transport, max_concurrency=max_concurrency, roles_ttl=roles_ttl)
        self._accounts = Accounts(
            self._reader, readers, max_concurrency=max_concurrency, roles_ttl=roles_ttl
        )

    @property
    def transport(self) -> Transport:
        """The transport of this client's account (its IAM reader's)."""
        return self._reader.transport

    @property
    def policy(self) -> SudoPolicy:
        """The sudo policy; read from ``IAM_SUDO_POLICY`` when first needed."""
        if self._policy is None:
            text = os.environ.get("IAM_SUDO_POLICY")
            policy = SudoPolicy.from_yaml(text) if text else SudoPolicy.default()
            # The spoke reader this client would read through is never a base role either.
            self._policy = policy.reserving(reader_role=reader_role_name())
        return self._policy

    async def __aenter__(self) -> Self:
        await self._reader.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._accounts.aclose()
        await self._reader.__aexit__(*exc_info)

    async def identity(self) -> Identity:
        """The caller's account and ARN (read again once ``roles_ttl`` old)."""
        return await self._reader.identity()

    async def roles(self) -> list[Role]:
        """Every role of the account (all pages; one listing serves for ``roles_ttl`` s)."""
        return await self._reader.roles()

    async def role_arn(self, name_or_arn: str) -> str:
        """The ARN of a role given by ARN or by name in the caller's account and partition."""
        return await self._reader.role_arn(name_or_arn)

    async def plan(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        session_tags: bool = True,
        full_report: bool = False,
        caller: str | None = None,
        source_identity: bool = True,
        exact: bool = False,
        account: str | None = None,
        drafts: Sequence[Draft] = (),
        template: Template | None = None,
    ) -> SimulatedSession:
        """Resolve ``role_name`` and plan the AssumeRole request that simulates it exactly.

        Checks the sudo policy and fits the role's policies within STS's limits (see
        :mod:`iam_sudo.core.fitting`); sends nothing to STS and creates nothing. ``role_name``
        is a substring of the role's name; ``principal`` (``TYPE:ID``) keeps roles whose
        trust policy allows it. ``session_tags`` passes the role's tags as session tags.
        ``full_report`` makes the fidelity report complete at the cost of more requests:
        it waits for the whole roles listing even when the exact name is found, and reads
        the base role's tags. ``caller`` is whom the sudo policy's rules are for (a
        verified ARN; default: this client's own identity, from STS); ``source_identity``
        names the caller as the session's STS SourceIdentity, so that CloudTrail ties
        every action of the session to them. With ``full_report`` or ``exact`` the base
        role's policies are read too, and what it cannot grant of the role becomes
        ``narrower`` findings (:mod:`iam_sudo.core.ceiling`); ``exact`` then raises
        :class:`InexactSimulation`, one line per narrowing, rather than plan a session that
        grants less than the role. ``account`` (or a role ARN in another account) plans in
        that account, through its spoke (:meth:`organization.Accounts.for_plan`).
        ``drafts`` (:class:`~iam_sudo.core.drafts.Draft`) are added to the role's own policies,
        through the same fitting, report and ``exact``; the sudo policy must allow it.
        ``template`` (:class:`~iam_sudo.core.template.Template`): simulate the role
        ``role_name`` of this CloudFormation template, which need not exist yet, as a role
        of this account; what cannot be known before deployment is narrowed and reported
        (``narrower`` findings). The sudo policy treats it as added policies.
        """
        wanted = _as_principal(principal)
        policy = self.policy
        if template is not None and account is not None:
            raise InvalidRequest(
                "a template's role is simulated in your own account: drop --account"
            )
        steps, base_role, caller = await self._accounts.for_plan(
            role_name,
            account,
            policy=policy,
            base_role=base_role,
            default_base_role=self.base_role,
            duration_seconds=duration_seconds,
            caller=caller,
        )
        # A role of another duty is refused by its name before anything is read of it.
        policy.check_not_reserved(base_role)
        prefetch_guard(steps.reader, base_role)
        unresolved: tuple[Finding, ...] = ()
        if template is None:
            found = await steps.lookup.find(
                role_name,
                policy=policy,
                base_role=base_role,
                principal=wanted,
                caller=caller,
                whole_listing=full_report,
            )
        else:
            found, unresolved = await template_found(
                steps.reader, template, role_name, base_role, caller
            )
        session = await plan_found(
            steps.reader,
            policy,
            found,
            principal=wanted,
            duration_seconds=duration_seconds,
            session_tags=session_tags,
            full_report=full_report,
            ceiling=full_report or exact,
            source_identity=source_identity,
            account=steps.account,
            guard=True,
            drafts=drafts,
            defined=template is not None,
        )
        session = replace(session, findings=session.findings + unresolved)
        narrower = narrowing_lines(session.findings)
        if exact and narrower:
            raise InexactSimulation(session.role.name, narrower)
        return session

    async def session(
        self, role_name: str, *, explain: bool = False, **options: Any
    ) -> SimulatedSession:
        """Deprecated name of :meth:`plan` (``explain`` is its ``full_report``)."""
        warnings.warn("IamSudo.session() is now IamSudo.plan()", DeprecationWarning, stacklevel=2)
        return await self.plan(role_name, full_report=explain, **options)

    async def assume_session(self, session: SimulatedSession | SessionRequest) -> Credentials:
        """Create the policies a session needs, send its AssumeRole request, return credentials.

        Policies created just now may not be visible to STS at once: see :func:`sts.assume_role`.
        """
        if isinstance(session, SessionRequest):
            return await assume_role(self._reader, session)
        # Packed policies are created in the role's account (through its spoke's reader).
        return await self._accounts.assume(session)

    @contextlib.asynccontextmanager
    async def recording(
        self,
        credentials: Credentials,
        path: str | os.PathLike[str] | None = None,
        *,
        session: SimulatedSession | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> AsyncIterator[RecordingEndpoint]:
        """Record the AWS calls made with ``credentials`` through a loopback endpoint.

        Yields a started :class:`~iam_sudo.aws.recorder.RecordingEndpoint` on this event
        loop: point clients at ``endpoint.url`` (with ``credentials``), or give a child
        process ``endpoint.env(credentials.env(os.environ))``, run with
        :func:`asyncio.create_subprocess_exec` (a blocking wait would stop the loop that
        serves it). On leaving, the record (:class:`~iam_sudo.core.record.Record`, also
        ``endpoint.record``) is complete and written to ``path`` (JSON, 0600, atomically;
        None: kept in memory only). ``session``, the simulation that gave ``credentials``,
        puts the session policies sent and the findings declared in the record, so that
        :func:`iam_sudo.core.report.build` can tell the causes of denials. ``environ`` says
        where requests would have gone (``AWS_ENDPOINT_URL``...; default ``os.environ``).

        Example::

            async with IamSudo() as sudo:
                session = await sudo.plan("TaskRole")
                credentials = await sudo.assume_session(session)
                async with sudo.recording(credentials, "run.json", session=session) as rec:
                    child = await asyncio.create_subprocess_exec(
                        "python", "app.py", env=rec.env(credentials.env(os.environ)))
                    await child.wait()
                print(len(rec.record.calls))

        Raises :class:`~iam_sudo.core.record.RecordError` for a ``path`` that cannot take a
        record, :class:`ConfigurationError` for an unreadable AWS config file.
        """
        from .aws.recorder import RecordingEndpoint, record_path
        from .core.record import Run, simulated_run

        target: Path | None = record_path(path) if path is not None else None
        run = (
            simulated_run(session, command="library")
            if session is not None
            else Run("library", "library", None)
        )
        endpoint = RecordingEndpoint(
            lambda: credentials, run, target, environ=os.environ if environ is None else environ
        )
        await endpoint.start()
        try:
            yield endpoint
        finally:
            await endpoint.stop()

    async def simulate(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        duration_seconds: int = DEFAULT_DURATION_SECONDS,
        exact: bool = False,
        account: str | None = None,
        drafts: Sequence[Draft] = (),
        template: Template | None = None,
    ) -> Credentials:
        """Credentials of the base role limited to the policies of the role ``role_name``.

        ``exact`` raises :class:`InexactSimulation` where the base role cannot grant all
        the role can; ``account`` simulates a role of that account; ``drafts`` are added
        to the role's policies; ``template``: the role is that template's (see :meth:`plan`).
        """
        session = await self.plan(
            role_name,
            principal=principal,
            base_role=base_role,
            duration_seconds=duration_seconds,
            exact=exact,
            account=account,
            drafts=drafts,
            template=template,
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
        # Checked before any request is made.
        options = RoleOptions(duration_seconds, session_name, external_id, mfa_serial, token_code)
        with exact_name_refusals(role):
            arn = await self.role_arn(role)
        return await self.assume_session(options.request(arn))

    async def simulate_remote(
        self,
        role_name: str,
        *,
        principal: Principal | str | None = None,
        base_role: str | None = None,
        function_name: str = DEFAULT_FUNCTION_NAME,
        exact: bool = False,
        account: str | None = None,
        drafts: Sequence[Draft] = (),
    ) -> Credentials:
        """Ask the iam-sudo Lambda function to simulate the role, with its own permissions.

        Only ``lambda:InvokeFunction`` is needed; the function's sudo policy decides. A
        function error raises :class:`RemoteError` carrying the function's message;
        ``exact`` has the function refuse an inexact simulation (``InexactSimulation``);
        ``account``: a role of that account, through the function's spoke there;
        ``drafts``: added to the role's policies (the function's sudo policy must allow it).
        """
        event: dict[str, Any] = SimulateRequest(
            role_name, _as_principal(principal), base_role, exact, account, tuple(drafts)
        ).to_event()
        # The function's own validation, so that a bad request fails here, before any call.
        SimulateRequest.from_event(event)
        return parse_reply(*await invoke(self._reader, function_name, event))

    async def roles_remote(
        self,
        *,
        principal: Principal | str | None = None,
        function_name: str = DEFAULT_FUNCTION_NAME,
        account: str | None = None,
        all_accounts: bool = False,
    ) -> list[dict[str, Any]]:
        """The roles the function's sudo policy lets *you* (the verified caller) simulate,
        here, in ``account``, or in ``all_accounts`` (see :func:`remote.parse_roles_reply`)."""
        event = RolesRequest(_as_principal(principal), account, all_accounts).to_event()
        return parse_roles_reply(*await invoke(self._reader, function_name, event))

    async def verify_caller(self, proof: object, *, audience: str) -> str:
        """Who signed ``proof`` for ``audience`` (the function's ARN), per STS: caller.verify."""
        return await verify(self.transport, proof, audience=audience)

    async def narrowings(
        self, roles: list[Role], *, base_role: str | None = None
    ) -> dict[str, list[str]]:
        """Per role ARN, what a simulation would not grant of it (see planning.narrowings)."""
        return await narrowings(self._reader, self.policy, roles, base_role or self.base_role)

    async def visible_roles(
        self,
        *,
        principal: Principal | str | None = None,
        caller: str | None = None,
        account: str | None = None,
    ) -> list[Role]:
        """The roles ``caller`` (default: you) may simulate, trusting ``principal`` if given,
        in this account or ``account`` (through its spoke)."""
        steps = await self._accounts.reading(account, self.policy, caller)
        return await visible_roles(steps.reader, self.policy, _as_principal(principal), caller)

    async def visible_roles_everywhere(
        self, *, principal: Principal | str | None = None, caller: str | None = None
    ) -> tuple[list[Role], dict[str, str]]:
        """The roles ``caller`` may simulate here and in every spoke; account -> error for
        those that could not be read (see :meth:`Accounts.visible_everywhere`)."""
        return await self._accounts.visible_everywhere(
            self.policy, _as_principal(principal), caller
        )

    async def prune_policies(
        self,
        *,
        dry_run: bool = False,
        min_age: timedelta = PRUNE_MIN_AGE,
        account: str | None = None,
    ) -> list[str]:
        """Delete the /iam-sudo/ policies that no role of the account needs any more.

        Every role is planned (with the caller's own IAM permissions; nothing is assumed)
        to learn which content-addressed policies are still needed. Only policies under
        ``/iam-sudo/`` named ``iam-sudo-*`` are ever considered. If any role cannot be
        planned, nothing is deleted. Returns the ARNs deleted (or, with ``dry_run``, that
        would be). A policy attached to anything, or created less than ``min_age`` ago, is
        never deleted (see :meth:`PolicyStore.ours`). ``account``: another account's,
        through its spoke's reader (which may delete only under ``/iam-sudo/``).
        """
        reader = (steps := await self._accounts.reading(account, self.policy, None)).reader
        async with task_group() as group:
            listing = group.create_task(reader.roles())
            base_arn = group.create_task(reader.base_role_arn(steps.base_role(self.base_role)))
            group.create_task(reader.policy_versions())  # shared: read once for every plan
            ours = group.create_task(steps.store.ours(min_age))

        needed = await needed_policies(reader, self.policy, listing.result(), base_arn.result())
        unneeded = sorted(set(ours.result()) - needed)
        if not dry_run:
            await steps.store.delete(unneeded)
        return unneeded

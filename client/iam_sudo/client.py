"""The async client: ``IamSudo`` orchestrates the steps of getting role credentials.

Each step is a few lines over the modules that do the work: :mod:`iam_sudo.iam` reads
an account, :mod:`iam_sudo.lookup` resolves which role a request means,
:mod:`iam_sudo.session` plans the AssumeRole request, :mod:`iam_sudo.policy_store`
keeps the policies it needs, :mod:`iam_sudo.remote` and :mod:`iam_sudo.caller` speak
the function's protocol, and :mod:`iam_sudo._aws` is the one edge where AWS is called.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Self

from . import accounts
from ._aws import RetryMode, Timeouts, Transport, exact_name_refusals
from ._exceptions import (
    AccessDenied,
    AccountUnreachable,
    ConfigurationError,
    IamSudoError,
    InexactSimulation,
    InvalidRequest,
    SudoPolicyDenied,
)
from ._tasks import task_group
from ._transports import AioTransport
from .caller import source_identity as caller_source_identity
from .caller import verify
from .credentials import Credentials
from .fidelity import narrowing_lines
from .iam import DEFAULT_MAX_CONCURRENCY, DEFAULT_ROLES_TTL, IamReader, Identity
from .lookup import RoleLookup, visible_roles
from .planning import narrowings, needed_policies, plan_found
from .policy import SudoPolicy
from .policy_store import PRUNE_MIN_AGE, PolicyStore
from .principal import Principal
from .remote import (
    DEFAULT_FUNCTION_NAME,
    RolesRequest,
    SimulateRequest,
    invoke,
    parse_reply,
    parse_roles_reply,
)
from .roles import Role, check_role_reference, role_arn
from .session import (
    DEFAULT_DURATION_SECONDS,
    SessionRequest,
)
from .simulated import SimulatedSession
from .sts import RoleOptions, assume_role

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
        readers: accounts.AccountReaders | None = None,
    ) -> None:
        """Create a client.

        ``policy`` defaults to the YAML in ``IAM_SUDO_POLICY``, else allow-all;
        ``base_role`` (name or ARN) to ``IAM_SUDO_BASE_ROLE``, else ``IAMSudoUser``.
        ``transport`` replaces the aiobotocore transport (the function passes a
        thread-based one). ``timeouts`` default to :class:`Timeouts` from the environment.
        ``readers`` reach other accounts' spokes (:mod:`iam_sudo.accounts`; the function
        keeps one per container); by default one is made when first needed.
        ``roles_ttl`` is how long a listing of the account's roles is reused: a long-lived
        client sees roles created or deleted since within that many seconds.
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
        # One reader per account: the seam where more accounts' readers would go.
        self._reader = IamReader(transport, max_concurrency=max_concurrency, roles_ttl=roles_ttl)
        self._lookup = RoleLookup(self._reader)
        self._store = PolicyStore(self._reader)
        # Other accounts (accounts.py): spoke readers, shared with the function's container.
        self._max_concurrency = max_concurrency
        self._roles_ttl = roles_ttl
        self._readers = readers
        self._own_readers = readers is None
        self._in_accounts: dict[tuple[str, int], IamSudo] = {}
        self._account: str | None = None  # set on a client for another account's roles

    @property
    def transport(self) -> Transport:
        """The transport of this client's account (its IAM reader's)."""
        return self._reader.transport

    @property
    def policy(self) -> SudoPolicy:
        """The sudo policy; read from ``IAM_SUDO_POLICY`` when first needed."""
        if self._policy is None:
            text = os.environ.get("IAM_SUDO_POLICY")
            self._policy = SudoPolicy.from_yaml(text) if text else SudoPolicy.default()
        return self._policy

    async def __aenter__(self) -> Self:
        await self._reader.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        for other in self._in_accounts.values():
            await other.__aexit__(*exc_info)
        self._in_accounts.clear()
        if self._own_readers and self._readers is not None:
            await self._readers.aclose()
        await self._reader.__aexit__(*exc_info)

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
            make = getattr(self.transport, "with_credentials", None)
            if make is None:
                raise ConfigurationError("this transport cannot act in other accounts")
            self._readers = accounts.AccountReaders(self.transport, make)
        self._readers.check_reachable(account, me.account)
        transport = await self._readers.transport(
            account, me.partition, me.arn, {"Account": me.account, "Arn": me.arn}
        )
        base = self._base_role_in(self.base_role, account, me.partition)
        # One client per reader session, so its listings serve every request meanwhile;
        # looked up and stored with no await between, so concurrent requests share it.
        key = (account, id(transport.reader))
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

    async def identity(self) -> Identity:
        """The caller's account and ARN (fetched once per client)."""
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
    ) -> SimulatedSession:
        """Resolve ``role_name`` and plan the AssumeRole request that simulates it exactly.

        Checks the sudo policy and fits the role's policies within STS's limits (see
        :mod:`iam_sudo.fitting`); sends nothing to STS and creates nothing. ``role_name``
        is a substring of the role's name; ``principal`` (``TYPE:ID``) keeps roles whose
        trust policy allows it. ``session_tags`` passes the role's tags as session tags.
        ``full_report`` makes the fidelity report complete at the cost of more requests:
        it waits for the whole roles listing even when the exact name is found, and reads
        the base role's tags. ``caller`` is whom the sudo policy's rules are for (a
        verified ARN; default: this client's own identity, from STS); ``source_identity``
        names the caller as the session's STS SourceIdentity, so that CloudTrail ties
        every action of the session to them. With ``full_report`` or ``exact`` the base
        role's policies are read too, and what it cannot grant of the role becomes
        ``narrower`` findings (:mod:`iam_sudo.ceiling`); ``exact`` then raises
        :class:`InexactSimulation`, one line per narrowing, rather than plan a session that
        grants less than the role. ``account`` (or a role ARN in another account) plans in
        that account, through its spoke (see :meth:`in_account`).
        """
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
            planned = await spoke.plan(
                role_name,
                principal=principal,
                base_role=base_role,
                duration_seconds=duration_seconds,
                session_tags=session_tags,
                full_report=full_report,
                caller=caller if caller is not None else own.arn,
                source_identity=source_identity,
                exact=exact,
            )
            return replace(planned, account=other)
        wanted = _as_principal(principal)
        policy = self.policy
        found = await self._lookup.find(
            role_name,
            policy=policy,
            base_role=base_role or self.base_role,
            principal=wanted,
            caller=caller,
            whole_listing=full_report,
        )
        policy.check(found.role, found.base_role_arn, wanted, found.caller)
        session = await plan_found(
            self._reader,
            policy,
            found,
            principal=wanted,
            duration_seconds=duration_seconds,
            session_tags=session_tags,
            full_report=full_report,
            ceiling=full_report or exact,
        )
        narrower = narrowing_lines(session.findings)
        if exact and narrower:
            raise InexactSimulation(session.role.name, narrower)
        if not source_identity or found.caller is None:
            return session
        # The base role's account is where the session lives: its own users keep bare names.
        identity = caller_source_identity(
            found.caller, home_account=found.base_role_arn.split(":")[4]
        )
        request = replace(session.request, source_identity=identity)
        return replace(session, plan=replace(session.plan, request=request))

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
        if session.account is not None:
            # Packed policies are created in the role's account, through its reader; the
            # session was planned, and the policy checked, by :meth:`plan`.
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
        created = (
            await self._store.ensure_all(session.plan.packed) if session.plan.packed else False
        )
        return await assume_role(self._reader, session.request, policies_just_created=created)

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
        the role can (see :meth:`plan`). ``account`` (or a role ARN in another account)
        simulates a role of that account through its spoke (see :meth:`in_account`).
        """
        session = await self.plan(
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
        return parse_reply(*await invoke(self._reader, function_name, event))

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
        """The roles ``caller`` (default: you) may simulate, trusting ``principal`` if given.

        ``account``: those of another account, read through its spoke.
        """
        if account is not None and await self._target_account("", account) is not None:
            spoke = await self.in_account(account, caller=caller)
            own = await self.identity()
            return await spoke.visible_roles(
                principal=principal, caller=caller if caller is not None else own.arn
            )
        return await visible_roles(self._reader, self.policy, _as_principal(principal), caller)

    async def visible_roles_everywhere(
        self, *, principal: Principal | str | None = None, caller: str | None = None
    ) -> tuple[list[Role], dict[str, str]]:
        """The roles ``caller`` may simulate in this account and every spoke, concurrently.

        At most ``ACCOUNTS_IN_FLIGHT`` (32) accounts are read at once. Returns (roles,
        account -> one-line error for each account that could not be read); a denial by
        the policy for a whole account is not an error, that account just has no roles.
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
        never deleted (see :meth:`PolicyStore.ours`). ``account``: another account's, through
        its spoke's reader (which may delete only under ``/iam-sudo/``).
        """
        if account is not None and await self._target_account("", account) is not None:
            spoke = await self.in_account(account)
            return await spoke.prune_policies(dry_run=dry_run, min_age=min_age)
        reader = self._reader
        async with task_group() as group:
            listing = group.create_task(reader.roles())
            base_arn = group.create_task(reader.base_role_arn(self.base_role))
            group.create_task(reader.policy_versions())  # shared: read once for every plan
            ours = group.create_task(self._store.ours(min_age))

        needed = await needed_policies(reader, self.policy, listing.result(), base_arn.result())
        unneeded = sorted(set(ours.result()) - needed)
        if not dry_run:
            await self._store.delete(unneeded)
        return unneeded

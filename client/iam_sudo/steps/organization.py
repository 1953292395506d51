"""The accounts one client acts in: its own, and each spoke of an Organization it reaches.

Per account, the steps :class:`~iam_sudo.client.IamSudo` orchestrates: an
:class:`~iam_sudo.aws.iam_reader.IamReader`, a role lookup and a ``/iam-sudo/`` policy store. A
spoke's reader reads IAM through the spoke's reader role session and calls STS with the
client's own credentials (:class:`~iam_sudo.steps.spokes.AccountTransport`), so that packed
policies are created in the role's account (STS takes ``PolicyArns`` only from the
assumed role's account: IAM User Guide, "Session policies") and the spoke's base role
is assumed by the client itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from ..aws.errors import spoke_base_role_refusals
from ..aws.iam_reader import IamReader
from ..aws.policy_store import PolicyStore
from ..aws.sts import assume_role
from ..core.arn import account_of
from ..core.exceptions import ConfigurationError, IamSudoError, InvalidRequest, SudoPolicyDenied
from ..core.principal import Principal
from ..core.roles import Role
from ..core.simulated import SimulatedSession
from ..core.sudo_policy import SudoPolicy
from ..settings.credentials import Credentials
from .lookup import RoleLookup, visible_roles
from .spokes import (
    ACCOUNTS_IN_FLIGHT,
    AccountReaders,
    base_role_in,
    check_account,
    check_chained_duration,
    gather_bounded,
    target_account,
)


@dataclass(frozen=True)
class AccountSteps:
    """One account's steps: its IAM reader, role lookup and ``/iam-sudo/`` policy store."""

    reader: IamReader
    lookup: RoleLookup
    store: PolicyStore
    #: The other account these steps act in (None: the client's own).
    account: str | None = None

    @classmethod
    def over(cls, reader: IamReader, account: str | None = None) -> AccountSteps:
        """The steps over ``reader`` (one lookup and one store per reader)."""
        return cls(reader, RoleLookup(reader), PolicyStore(reader), account)

    def base_role(self, base_role: str) -> str:
        """The namesake in this account of the base role ``base_role`` (name or ARN)."""
        return base_role_in(base_role, self.account) if self.account else base_role


class Accounts:
    """The accounts one client acts in: its own, and each spoke it reaches.

    A spoke's steps read through an :class:`IamReader` over an :class:`AccountTransport`
    (IAM with the spoke's reader session, STS with the client's own credentials), one
    per reader session, so that its listings serve every request meanwhile. ``readers``
    is shared (the function's container keeps one); by default one is made from the own
    transport's ``with_credentials`` and closed with the client.
    """

    def __init__(
        self,
        own: IamReader,
        readers: AccountReaders | None = None,
        *,
        max_concurrency: int,
        roles_ttl: float,
    ) -> None:
        self.own = AccountSteps.over(own)
        self._readers = readers
        self._own_readers = readers is None
        self._max_concurrency = max_concurrency
        self._roles_ttl = roles_ttl
        # Per account, the reader session's transport and the steps over it. A renewal
        # retires them (requests may still use them) until the next renewal closes them,
        # as AccountReaders does with the transports themselves.
        self._spokes: dict[str, tuple[Any, AccountSteps]] = {}
        self._retired: dict[str, AccountSteps] = {}

    async def aclose(self) -> None:
        """Close the spokes' readers (and the reader sessions, unless shared)."""
        every = [steps for _, steps in self._spokes.values()] + list(self._retired.values())
        self._spokes.clear()
        self._retired.clear()
        for steps in every:
            await steps.reader.__aexit__(None, None, None)
        if self._own_readers and self._readers is not None:
            await self._readers.aclose()

    async def target(self, role: str, account: str | None) -> str | None:
        """The other account a request for ``role`` is for (None: the client's own)."""
        if account is None and not role.startswith("arn:"):
            return None
        return target_account(role, account, await self.own.reader.account())

    async def steps(self, account: str | None) -> AccountSteps:
        """The steps acting in ``account`` (None: the own), with no policy check.

        :class:`AccountUnreachable` if it is not a spoke or its reader refuses.
        """
        if account is None:
            return self.own
        me = await self.own.reader.identity()
        if self._readers is None:
            make = getattr(self.own.reader.transport, "with_credentials", None)
            if make is None:
                raise ConfigurationError("this transport cannot act in other accounts")
            self._readers = AccountReaders(self.own.reader.transport, make)
        self._readers.check_reachable(account, me.account)
        transport = await self._readers.transport(account, me.partition, me.arn)
        # Looked up and stored with no await between, so concurrent requests share it.
        held = self._spokes.get(account)
        if held is not None and held[0] is transport.reader:
            return held[1]
        reader = IamReader(
            transport,
            max_concurrency=self._max_concurrency,
            roles_ttl=self._roles_ttl,
            identity=me,
            account=account,
        )
        steps = AccountSteps.over(reader, account)
        self._spokes[account] = (transport.reader, steps)
        older = self._retired.pop(account, None)
        if held is not None:
            self._retired[account] = held[1]
        await reader.__aenter__()
        if older is not None:
            await older.reader.__aexit__(None, None, None)
        return steps

    async def allowed(self, account: str, policy: SudoPolicy, caller: str | None) -> AccountSteps:
        """The steps in ``account`` if ``caller``'s rules allow it, checked before anything
        is assumed (:class:`SudoPolicyDenied` otherwise); see :meth:`steps`."""
        check_account(account)
        caller = caller if caller is not None else (await self.own.reader.identity()).arn
        if not policy.allows_account(account, caller):
            raise SudoPolicyDenied(
                f"sudo policy does not allow simulating roles in account {account}; ask for it "
                "in the policy's allowed-accounts",
                role_arn=None,
                base_role_arn=None,
            )
        return await self.steps(account)

    async def reading(
        self, account: str | None, policy: SudoPolicy, caller: str | None
    ) -> AccountSteps:
        """The steps in ``account`` (None or the own: the own), policy-checked as
        :meth:`allowed` does for another account."""
        other = await self.target("", account)
        return await self.allowed(other, policy, caller) if other else self.own

    async def assume(self, session: SimulatedSession) -> Credentials:
        """Create the policies ``session`` needs in its account, then assume its base role.

        A spoke's base role refusing is :class:`AccountUnreachable` (its spoke is missing
        or outdated): see :func:`_aws.spoke_base_role_refusals`.
        """
        steps = await self.steps(session.account)
        packed = session.plan.packed
        created = await steps.store.ensure_all(packed) if packed else False
        refusals: AbstractContextManager[None] = nullcontext()
        if session.account is not None:
            who = (await self.own.reader.identity()).arn
            refusals = spoke_base_role_refusals(session.base_role_arn, session.account, who)
        with refusals:
            return await assume_role(steps.reader, session.request, policies_just_created=created)

    async def for_plan(
        self,
        role: str,
        account: str | None,
        *,
        policy: SudoPolicy,
        base_role: str | None,
        default_base_role: str,
        duration_seconds: int,
        caller: str | None,
    ) -> tuple[AccountSteps, str, str | None]:
        """Where a plan of ``role`` is made: (steps, base role, caller).

        In another account (``account``, or a role ARN's), the base role is the namesake
        there of ``base_role`` (which must be in this account or that one: STS takes
        session policy ARNs only from the assumed role's account) or of the default, and
        a chained session's duration is checked up front.
        """
        other = await self.target(role, account)
        if other is None:
            return self.own, base_role or default_base_role, caller
        own = await self.own.reader.identity()
        check_chained_duration(own.arn, duration_seconds, other)
        steps = await self.allowed(other, policy, caller)
        explicit = base_role is not None and base_role.startswith("arn:")
        if explicit and account_of(str(base_role)) not in (own.account, other):
            raise InvalidRequest(
                f"the base role must be in account {other}, the role's: STS takes "
                "session policy ARNs only from the assumed role's account"
            )
        base = base_role_in(base_role or default_base_role, other)
        return steps, base, caller if caller is not None else own.arn

    async def visible_everywhere(
        self, policy: SudoPolicy, principal: Principal | None, caller: str | None
    ) -> tuple[list[Role], dict[str, str]]:
        """The roles ``caller`` may simulate in the own account and every spoke.

        At most :data:`ACCOUNTS_IN_FLIGHT` accounts are read at once. Returns (roles,
        account -> one-line error for each account that could not be read); an account
        the policy denies wholly is not an error, it just has no roles. InvalidRequest
        without the deployment's list of spokes.
        """
        me = await self.own.reader.identity()
        spokes = self._readers.spokes if self._readers is not None else None
        if spokes is None:
            raise InvalidRequest(
                "listing every account needs the deployment's list of spokes: ask the "
                "function (--remote), or name one account with --account"
            )
        caller = caller if caller is not None else me.arn

        def job(account: str) -> Callable[[], Awaitable[list[Role]]]:
            async def run() -> list[Role]:
                if not policy.allows_account(account, caller):
                    return []
                steps = await self.steps(None if account == me.account else account)
                return await visible_roles(steps.reader, policy, principal, caller)

            return run

        accounts = dict.fromkeys([me.account, *spokes])
        results = await gather_bounded({a: job(a) for a in accounts}, ACCOUNTS_IN_FLIGHT)
        roles = [r for result in results.values() if isinstance(result, list) for r in result]
        errors = {a: str(e) for a, e in results.items() if isinstance(e, IamSudoError)}
        return roles, errors

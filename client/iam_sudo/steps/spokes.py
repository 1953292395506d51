"""Other accounts of an Organization: reading a spoke's IAM through its reader role.

A *spoke* is a member account holding ``iam-sudo-reader`` (``IAM_SUDO_READER_ROLE``) and a
base role of the hub's name, both trusting the hub function's execution role (see
``function/spoke.py``). To simulate a role there, iam-sudo assumes the reader to read the
role's policies and create packed ``/iam-sudo/`` policies *in that account* (STS takes
``PolicyArns`` only from the assumed role's account: IAM User Guide, "Session policies"),
then assumes that account's base role with the hub's own credentials.

:class:`AccountReaders` keeps one reader session per account and reuses it (a warm
function across invocations) until the refresh rule (:mod:`iam_sudo.core.refresh`) says
renew: 20 minutes before its hour is up, counted on both clocks.
:class:`AccountTransport` is what IAM reads go through: IAM calls to the reader, the rest
(STS's AssumeRole of the base role, Lambda) with the hub's own credentials.

A role session assuming a role is *role chaining*, and STS caps such a session at one hour
(IAM User Guide, "Roles terms and concepts": role chaining); the function's execution
role session is a role session, so every spoke session it makes is chained.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from ..aws.caller import CallerProof
from ..aws.refreshing import Refreshing
from ..core.arn import account_of, is_account_id, is_role_name
from ..core.duties import READER_ROLE
from ..core.exceptions import (
    AccessDenied,
    AccountUnreachable,
    ConfigurationError,
    IamSudoError,
    InvalidRequest,
)
from ..core.refresh import Clock, system_clock
from ..settings.credentials import Credentials

#: The role a spoke account's IAM is read through (``IAM_SUDO_READER_ROLE`` overrides it).
DEFAULT_READER_ROLE = READER_ROLE
#: STS's cap on a session made by a role session (role chaining), in seconds.
CHAINED_SESSION_LIMIT = 3600
READER_SESSION_NAME = "iam-sudo"
#: How many accounts ``roles --all-accounts`` reads at once: each is one ListRoles (and, for
#: a cold reader, one AssumeRole) in its own account's IAM quota.
ACCOUNTS_IN_FLIGHT = 32


def check_account(account: object) -> str:
    """``account`` if it is a 12-digit account id; :class:`InvalidRequest` otherwise."""
    if not is_account_id(account):
        shown = repr(account[:20]) if isinstance(account, str) else type(account).__name__
        raise InvalidRequest(f"an account must be a 12-digit account id, got {shown}")
    return account


def reader_role_name(environ: Mapping[str, str] | None = None) -> str:
    """``IAM_SUDO_READER_ROLE``, else :data:`DEFAULT_READER_ROLE`; ConfigurationError if bad."""
    environ = os.environ if environ is None else environ
    name = environ.get("IAM_SUDO_READER_ROLE", "").strip() or DEFAULT_READER_ROLE
    if not is_role_name(name):
        raise ConfigurationError(
            f"IAM_SUDO_READER_ROLE={name[:70]!r} is not an IAM role name (1 to 64 of "
            "letters, digits and +=,.@_-)"
        )
    return name


def spoke_accounts(environ: Mapping[str, str] | None = None) -> tuple[str, ...] | None:
    """The function's spokes (``IAM_SUDO_SPOKE_ACCOUNTS``); None when not set (no limit)."""
    environ = os.environ if environ is None else environ
    listed = environ.get("IAM_SUDO_SPOKE_ACCOUNTS")
    if listed is None:
        return None
    accounts = tuple(a.strip() for a in listed.split(",") if a.strip())
    if not all(is_account_id(a) for a in accounts):
        raise ConfigurationError(
            "IAM_SUDO_SPOKE_ACCOUNTS must be comma-separated 12-digit account ids"
        )
    return accounts


def target_account(role: str, account: str | None, here: str) -> str | None:
    """The other account a request is for: ``account``, or a role ARN's; None if ``here``.

    InvalidRequest if both are given and differ, or ``account`` is not 12 digits.
    """
    if role.startswith("arn:"):
        in_arn = account_of(role)
        if account is not None and account != in_arn:
            raise InvalidRequest(
                f"the role ARN is in account {in_arn}, not {account}: drop --account or give "
                "the role's name"
            )
        account = in_arn
    if account is None:
        return None
    check_account(account)
    return None if account == here else account


def role_in_account(role_arn: str, account: str) -> str:
    """The role of the same partition, path and name as ``role_arn``, in ``account``."""
    parts = role_arn.split(":", 5)
    return ":".join([*parts[:4], account, parts[5]])


def base_role_in(base_role: str, account: str) -> str:
    """The base role's namesake in ``account``: an ARN moved there, a name as is (the
    spoke's reader resolves it there, path and all)."""
    return role_in_account(base_role, account) if base_role.startswith("arn:") else base_role


def is_role_session(arn: str) -> bool:
    """Whether a caller ARN is a role session: what it assumes is chained (1 hour at most)."""
    return ":assumed-role/" in arn


def check_chained_duration(caller_arn: str, duration_seconds: int, account: str) -> None:
    """InvalidRequest if a session in ``account`` would be chained and longer than STS allows.

    Said before anything is sent: retrying cannot help, STS refuses every such request.
    """
    if is_role_session(caller_arn) and duration_seconds > CHAINED_SESSION_LIMIT:
        raise InvalidRequest(
            f"a session in account {account} is assumed by a role session ({caller_arn}): "
            f"that is role chaining, which STS caps at {CHAINED_SESSION_LIMIT} seconds; ask "
            f"for --duration {CHAINED_SESSION_LIMIT} or less"
        )


class AccountTransport:
    """IAM through a spoke's reader session; everything else through the hub's transport."""

    def __init__(self, hub: Any, reader: Any, account: str) -> None:
        self._hub = hub
        self.reader = reader
        self.account = account

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        transport = self.reader if service == "iam" else self._hub
        result: dict[str, Any] = await transport.call(service, operation, **params)
        return result

    async def identity_proof(self, audience: str) -> CallerProof:
        proof: CallerProof = await self._hub.identity_proof(audience)
        return proof

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        answer: tuple[int, bytes] = await self._hub.send_proof(proof)
        return answer

    async def sts_endpoint(self) -> str:
        return str(await self._hub.sts_endpoint())

    async def scope(self, service: str) -> tuple[str, str]:
        transport = self.reader if service == "iam" else self._hub
        scope: tuple[str, str] = await transport.scope(service)
        return scope

    async def __aenter__(self) -> Self:
        # Both are already open: the hub's by its owner, the reader's by AccountReaders.
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


@dataclass
class _Reader:
    credentials: Credentials
    transport: Any


class AccountReaders:
    """One reader session per spoke account, assumed with the hub's transport and reused.

    ``make_transport(credentials)`` builds a transport signing with those credentials (see
    ``AioTransport.with_credentials``); ``spokes`` limits the accounts (None: any, as the
    caller's own permissions allow). Each account's session is a :class:`Refreshing`:
    renewed by the refresh rule, one AssumeRole for concurrent requests, backed off after
    a refusal. ``clock``: see :mod:`iam_sudo.core.refresh` (tests move it).
    """

    def __init__(
        self,
        hub: Any,
        make_transport: Callable[[Credentials], Any],
        *,
        reader_role: str | None = None,
        spokes: Sequence[str] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._hub = hub
        self._make = make_transport
        self.reader_role = reader_role or reader_role_name()
        self.spokes = None if spokes is None else tuple(spokes)
        self._clock = clock
        self._readers: dict[str, _Reader] = {}
        # The transport a renewal replaced, per account: requests may still use it. It is
        # closed at the next renewal (an hour on), so a warm function holds at most two.
        self._retired: dict[str, Any] = {}
        self._sessions: dict[str, Refreshing[_Reader]] = {}

    def check_reachable(self, account: str, own_account: str) -> None:
        """AccountUnreachable unless ``account`` is a spoke of this deployment."""
        if self.spokes is not None and account != own_account and account not in self.spokes:
            raise AccountUnreachable(
                f"account {account} is not a spoke of this iam-sudo deployment; add it to "
                "iam-sudo:spokeAccounts (or its OU to iam-sudo:spokeOrganizationalUnits) "
                "and `pulumi up`",
                code="NotASpoke",
            )

    async def transport(self, account: str, partition: str, who: str) -> AccountTransport:
        """A transport reading ``account``'s IAM, assuming its reader if none is fresh.

        ``who`` is the hub's own ARN, named in the error when the reader refuses it.
        """
        session = self._sessions.get(account)
        if session is None:
            session = Refreshing(
                lambda: self._assume(account, partition, who),
                expiry=_reader_expiry,
                clock=self._clock,
            )
            self._sessions[account] = session
        reader = await session.get()
        return AccountTransport(self._hub, reader.transport, account)

    async def _assume(self, account: str, partition: str, who: str) -> _Reader:
        arn = f"arn:{partition}:iam::{account}:role/{self.reader_role}"
        try:
            reply = await self._hub.call(
                "sts",
                "assume_role",
                RoleArn=arn,
                RoleSessionName=READER_SESSION_NAME,
                DurationSeconds=CHAINED_SESSION_LIMIT,
            )
            credentials = Credentials.from_sts(reply["Credentials"])
        except AccessDenied as error:
            # STS answers alike for a role that does not exist and one that does not trust
            # the caller (AccessDenied): the message names both, and what to do for each.
            raise AccountUnreachable(
                f"cannot read account {account}: its {self.reader_role} role does not exist or "
                f"does not trust {who}; enrol the account as a spoke (iam-sudo:spokeAccounts or "
                f"its OU, then `pulumi up`), or for --local add yourself to "
                "iam-sudo:baseRoleTrustedPrincipals",
                code=error.code,
            ) from None
        except (KeyError, TypeError, ValueError):
            raise AccessDenied(
                f"sts:assume_role of {arn} answered without usable credentials"
            ) from None
        transport = self._make(credentials)
        await transport.__aenter__()
        previous = self._readers.get(account)
        if previous is not None:
            older = self._retired.pop(account, None)
            if older is not None:
                await older.__aexit__(None, None, None)
            self._retired[account] = previous.transport
        reader = _Reader(credentials, transport)
        self._readers[account] = reader
        return reader

    async def aclose(self) -> None:
        """Close every reader transport (a CLI run's end; the function keeps them)."""
        transports = [r.transport for r in self._readers.values()]
        transports += list(self._retired.values())
        self._readers.clear()
        self._retired.clear()
        self._sessions.clear()
        for transport in transports:
            await transport.__aexit__(None, None, None)


def _reader_expiry(reader: _Reader) -> datetime:
    return reader.credentials.expiration


async def gather_bounded(
    jobs: Mapping[str, Callable[[], Awaitable[Any]]], limit: int
) -> dict[str, Any]:
    """Run ``jobs`` (key -> coroutine function) at most ``limit`` at a time; key -> result.

    A job's :class:`IamSudoError` is its result (one account failing does not hide the
    others); anything else propagates.
    """
    slots = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with slots:
            try:
                return await job()
            except IamSudoError as error:
                return error

    keys = list(jobs)
    results = await asyncio.gather(*(run(jobs[key]) for key in keys))
    return dict(zip(keys, results, strict=True))

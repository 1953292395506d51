"""Which role a request means: an exact name or ARN first, the account's listing otherwise.

The lookup is a race run for one round trip's sake. A GetRole of the exact name (or the
ARN's name) runs alongside the account's roles listing; when that role exists and may be
used, the listing is not waited for, and stopped at once if no other lookup waits for it.
Locally (the caller is this client) the exact role's policies are read speculatively at
the same time: for a full name or an ARN this saves a round, for a part of a name it costs
two requests that find nothing. For another caller (the function) the sudo policy decides
first, so nothing of a role it may not see is read.

Cancellation rules, each tested on its own (tests/unit/test_lookup.py):

- a lookup that no longer needs the listing stops waiting for it; the shared listing
  itself is cancelled only when no other lookup is in flight;
- every speculative task is cancelled when the lookup ends, except the policies it uses;
- a speculative task that fails after nobody waits for it any more is consumed, never
  reported ('Task exception was never retrieved'): the lookup reports the failure that
  decides it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ..aws.iam_reader import IamReader
from ..aws.tasks import consume_failure, task_group
from ..core.exceptions import InvalidRequest
from ..core.principal import Principal, admits
from ..core.roles import (
    Role,
    RoleDetails,
    RolePolicies,
    check_role_reference,
    role_name_of,
)
from ..core.sudo_policy import SudoPolicy


@dataclass(frozen=True)
class Found:
    """The resolved role and what was read on the way to it.

    ``listing`` is what the role was resolved among (the role alone on the exact path
    unless the whole listing was asked for); ``details`` and ``policies`` are set when
    the exact path read them already; ``caller`` is who asks, always known by now: the
    verified caller, or this client's own identity as STS gave it.
    """

    role: Role
    listing: list[Role]
    base_role_arn: str
    caller: str
    versions: dict[str, str]
    details: RoleDetails | None = None
    policies: RolePolicies | None = None


class RoleLookup:
    """Resolves role references through one :class:`IamReader`; see the module's rules."""

    def __init__(self, reader: IamReader) -> None:
        self._reader = reader
        self._in_flight = 0

    def _stop_listing(self, waiter: asyncio.Future[Any]) -> None:
        """Stop waiting for the listing; stop the listing too if nobody else waits."""
        waiter.cancel()
        if self._in_flight == 1:
            self._reader.stop_roles_listing()

    async def find(
        self,
        reference: str,
        *,
        policy: SudoPolicy,
        base_role: str,
        principal: Principal | None = None,
        caller: str | None = None,
        whole_listing: bool = False,
    ) -> Found:
        """The role ``reference`` (a part of a name, a name, or an ARN) means for ``caller``.

        ``caller`` is a verified caller's ARN, or None for this client itself, whose ARN
        is read from STS alongside the lookup (and whose own view of the exact role is
        read speculatively): :attr:`Found.caller` is always the ARN.

        ``policy`` decides which roles ``caller`` may use, among those trusting
        ``principal``; ``base_role`` (name or ARN) is resolved to an ARN on the way.
        ``whole_listing`` waits for the account's listing even when the exact name is
        found (the fidelity report names the roles that trust the role). Raises
        :class:`InvalidRequest`, :class:`RoleNotFound`, :class:`AmbiguousRole` or
        :class:`SudoPolicyDenied`.
        """
        if not reference:
            raise InvalidRequest("the role name must not be empty")
        check_role_reference(reference)
        check_role_reference(base_role)
        reader = self._reader
        by_arn = reference.startswith("arn:")
        exact_name = role_name_of(reference) if by_arn else reference
        self._in_flight += 1
        # An ARN needs no listing.
        listing = None if by_arn else asyncio.ensure_future(reader.roles())
        versions = asyncio.ensure_future(reader.policy_versions())
        speculative = (
            asyncio.ensure_future(reader.role_policies(exact_name, versions))
            if caller is None
            else None
        )
        for started in (listing, versions, speculative):
            if started is not None:
                started.add_done_callback(consume_failure)
        details: RoleDetails | None = None
        try:
            async with task_group() as group:
                exact = group.create_task(reader.get_role(reference))
                base_arn = group.create_task(reader.base_role_arn(base_role))
                group.create_task(asyncio.wait([versions]))
                me = group.create_task(reader.identity()) if caller is None else None
                found = await exact
                if me is not None:
                    caller = (await me).arn
                assert caller is not None
                if found is not None and by_arn and found[0].arn != reference:
                    found = None  # the same name on another path is another role
                use_exact = (
                    found is not None
                    and policy.allows_role(found[0], caller)
                    and (principal is None or admits(found[0].trust_policy, principal))
                )
                if use_exact and listing is not None and not whole_listing:
                    self._stop_listing(listing)  # at once: no page more than needed
            if found is not None and use_exact:
                role, details = found
                roles = [role]
                if whole_listing and listing is not None:
                    roles = _with_fresh(await listing, exact_name, found)
            elif by_arn:
                roles = [found[0]] if found is not None else []
                role = policy.resolve(roles, exact_name, principal, base_arn.result(), caller)
            else:
                assert listing is not None
                roles = _with_fresh(await listing, exact_name, found)
                role = policy.resolve(roles, reference, principal, base_arn.result(), caller)
        finally:
            self._in_flight -= 1
            for pending in (listing, speculative, versions):
                if pending is not None and (pending is not speculative or details is None):
                    pending.cancel()
        policies = await speculative if details is not None and speculative is not None else None
        return Found(role, roles, base_arn.result(), caller, versions.result(), details, policies)


def _with_fresh(
    listing: list[Role], name: str, found: tuple[Role, RoleDetails] | None
) -> list[Role]:
    """The shared listing (up to ``roles_ttl`` old) corrected by what GetRole has just
    said of the role named ``name``: its fresh reading (trust policy, tags) replaces the
    listed one, or, if it is gone, the listed one is dropped."""
    if found is None:
        return [role for role in listing if role.name != name]
    return [found[0] if role.arn == found[0].arn else role for role in listing]


async def visible_roles(
    reader: IamReader, policy: SudoPolicy, principal: Principal | None, caller: str | None
) -> list[Role]:
    """The roles ``caller`` (default: the reader's identity) may use, trusting ``principal``.

    Sorted by name; the listing is the reader's shared one.
    """
    async with task_group() as group:
        listing = group.create_task(reader.roles())
        me = group.create_task(reader.identity()) if caller is None else None
    if me is not None:
        caller = me.result().arn
    return sorted(
        (
            role
            for role in listing.result()
            if policy.allows_role(role, caller)
            and (principal is None or admits(role.trust_policy, principal))
        ),
        key=lambda role: role.name,
    )

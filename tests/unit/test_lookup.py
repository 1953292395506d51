"""The role lookup's cancellation rules, each on its own, against a scripted transport.

No AWS and no clock: every request waits for what the test releases, so each race is run
in one chosen order.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from iam_sudo import AccessDenied, IamReader, RoleNotFound, SudoPolicy
from iam_sudo.steps.lookup import RoleLookup

ACCOUNT = "123456789012"
BASE = f"arn:aws:iam::{ACCOUNT}:role/IAMSudoUser"


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def role_item(name: str) -> dict[str, Any]:
    return {
        "RoleName": name,
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AssumeRolePolicyDocument": TRUST,
    }


class ScriptedTransport:
    """Answers IAM and STS from a list of roles; listings wait for ``release_listing``.

    ``deny`` names operations that fail with AccessDenied.
    """

    def __init__(
        self, roles: list[str], deny: tuple[str, ...] = (), hold_denial: bool = False
    ) -> None:
        self.roles = roles
        self.deny = deny
        self.release_denial = asyncio.Event()
        if not hold_denial:
            self.release_denial.set()
        self.release_listing = asyncio.Event()
        self.listing_started = asyncio.Event()
        self.denied = asyncio.Event()
        self.denial_waiting = asyncio.Event()
        self.calls: list[str] = []
        self.cancelled: list[str] = []

    async def __aenter__(self) -> ScriptedTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        self.calls.append(operation)
        try:
            await asyncio.sleep(0)
            if operation in self.deny:
                self.denial_waiting.set()
                await self.release_denial.wait()
                self.denied.set()
                raise AccessDenied(f"{service}:{operation} denied", code="AccessDenied")
            if operation == "get_caller_identity":
                return {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/me"}
            if operation == "list_roles":
                self.listing_started.set()
                await self.release_listing.wait()
                return {"Roles": [role_item(name) for name in self.roles]}
            if operation == "get_role":
                if params["RoleName"] not in self.roles:
                    raise RoleNotFound(f"iam:get_role: no role {params['RoleName']}")
                return {"Role": role_item(params["RoleName"])}
            if operation in ("list_policies", "list_attached_role_policies"):
                return {"Policies": [], "AttachedPolicies": []}
            if operation == "list_role_policies":
                return {"PolicyNames": []}
            raise AssertionError(f"unexpected {operation}")
        except asyncio.CancelledError:
            self.cancelled.append(operation)
            raise


@pytest.fixture
async def unretrieved() -> list[dict[str, Any]]:
    """What asyncio reports as never retrieved while the test runs: call :func:`collected`."""
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    return reported


async def collected() -> None:
    """Until every finished task nobody holds is gone (asyncio reports on deletion)."""
    for _ in range(3):
        await asyncio.sleep(0)
        gc.collect()


async def settled(transport: ScriptedTransport) -> None:
    """Until the denied request's failure has ended the speculative read (a few steps)."""
    await transport.denied.wait()
    for _ in range(20):
        await asyncio.sleep(0)


async def find(lookup: RoleLookup, name: str, **options: Any) -> str:
    found = await lookup.find(name, policy=SudoPolicy.default(), base_role=BASE, **options)
    return found.role.name


async def test_an_exact_name_found_alone_stops_the_listing_at_once() -> None:
    transport = ScriptedTransport(["TaskRole", "TaskRoleOld"])
    async with IamReader(transport) as reader:
        assert await find(RoleLookup(reader), "TaskRole") == "TaskRole"
        await asyncio.sleep(0)
    assert transport.cancelled == ["list_roles"]


async def test_the_listing_another_lookup_waits_for_is_not_stopped() -> None:
    transport = ScriptedTransport(["TaskRole", "TaskRoleOld"])
    async with IamReader(transport) as reader:
        lookup = RoleLookup(reader)
        partial = asyncio.create_task(find(lookup, "Old"))
        await transport.listing_started.wait()
        assert await find(lookup, "TaskRole") == "TaskRole"
        transport.release_listing.set()
        assert await partial == "TaskRoleOld"
    assert "list_roles" not in transport.cancelled
    assert transport.calls.count("list_roles") == 1, "one listing served both"


async def test_a_whole_listing_is_waited_for_even_when_the_exact_name_is_found() -> None:
    transport = ScriptedTransport(["TaskRole", "TaskRoleOld"])
    async with IamReader(transport) as reader:
        lookup = RoleLookup(reader)
        whole = asyncio.create_task(
            lookup.find("TaskRole", policy=SudoPolicy.default(), base_role=BASE, whole_listing=True)
        )
        await transport.listing_started.wait()
        transport.release_listing.set()
        found = await whole
    assert [role.name for role in found.listing] == ["TaskRole", "TaskRoleOld"]
    assert "list_roles" not in transport.cancelled


async def test_a_lookup_cancelled_while_its_speculative_read_fails_reports_nothing(
    unretrieved: list[dict[str, Any]],
) -> None:
    transport = ScriptedTransport(["TaskRole"], deny=("list_attached_role_policies",))
    async with IamReader(transport) as reader:
        lookup = asyncio.create_task(find(RoleLookup(reader), "Task"))
        await settled(transport)
        lookup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lookup
    await collected()
    assert unretrieved == []


@pytest.mark.parametrize("offset", range(-12, 13))
async def test_a_speculative_read_cancelled_while_it_fails_is_never_reported(
    offset: int, unretrieved: list[dict[str, Any]]
) -> None:
    # The race that printed 'Task exception was never retrieved' in `make test`: the
    # lookup cancels the speculative read in the very steps in which that read fails, so
    # the read ends with its error after cancel() was called. Every interleaving of the
    # two, a few loop steps apart either way, is run.
    transport = ScriptedTransport(
        ["TaskRole"], deny=("list_attached_role_policies",), hold_denial=True
    )
    first, second = (
        (transport.release_denial, transport.release_listing)
        if offset >= 0
        else (transport.release_listing, transport.release_denial)
    )
    async with IamReader(transport) as reader:
        lookup = asyncio.create_task(find(RoleLookup(reader), "Task"))
        await transport.listing_started.wait()
        await transport.denial_waiting.wait()
        first.set()
        for _ in range(abs(offset)):
            await asyncio.sleep(0)
        second.set()
        assert await lookup == "TaskRole"
    await collected()
    assert unretrieved == []


async def test_a_lookup_reports_the_failure_that_decides_it_not_a_speculative_one() -> None:
    transport = ScriptedTransport([], deny=("list_attached_role_policies",))
    transport.release_listing.set()
    async with IamReader(transport) as reader:
        with pytest.raises(RoleNotFound):
            await find(RoleLookup(reader), "Task")

"""task_group: the error that stopped it, or cancelled when it was cancelled from outside.

Deterministic: children are driven by events, not by timing."""

from __future__ import annotations

import asyncio

import pytest

from iam_sudo.aws.tasks import task_group
from iam_sudo.core.exceptions import RoleNotFound


async def raises_when_cancelled(started: asyncio.Event) -> None:
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise RoleNotFound("a lookup that fails as it is cancelled") from None


async def group_of(*children: object) -> str:
    async with task_group() as group:
        for child in children:
            group.create_task(child)  # type: ignore[arg-type]
    return "done"


async def test_a_group_cancelled_from_outside_ends_cancelled_whatever_its_children_raise() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(group_of(raises_when_cancelled(started)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_childs_own_error_stops_the_group_with_that_error() -> None:
    started = asyncio.Event()

    async def fails() -> None:
        await started.wait()
        raise RoleNotFound("the real error")

    task = asyncio.create_task(group_of(fails(), raises_when_cancelled(started)))
    with pytest.raises(RoleNotFound, match="the real error"):
        await task
    assert not task.cancelled()


async def test_a_group_cancelled_while_its_body_waits_ends_cancelled() -> None:
    started = asyncio.Event()

    async def body() -> None:
        async with task_group() as group:
            group.create_task(raises_when_cancelled(started))
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_group_cancelled_in_the_round_a_child_fails_ends_cancelled() -> None:
    # The race behind "unhandled exception during asyncio.run() shutdown": a speculative
    # lookup, cancelled because nobody needs it any more, whose request fails just then.
    go = asyncio.Event()

    async def fails_on_go() -> None:
        await go.wait()
        raise RoleNotFound("found nothing")

    task = asyncio.create_task(group_of(fails_on_go()))
    for _ in range(3):
        await asyncio.sleep(0)  # the group and its child are waiting
    go.set()  # the child's failure and ...
    task.cancel()  # ... the cancellation arrive in the same round
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()

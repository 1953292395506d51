"""asyncio helpers: task groups, shared tasks, unwatched tasks, and daemon worker threads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from ..core.exceptions import IamSudoError
from ..core.refresh import Clock, Instant, system_clock

T = TypeVar("T")


@contextlib.asynccontextmanager
async def task_group() -> AsyncIterator[asyncio.TaskGroup]:
    """A TaskGroup that re-raises the error that stopped it rather than an ExceptionGroup.

    A group whose task is being cancelled from outside ends cancelled, whatever its
    children raised while they were cancelled: Python 3.11's TaskGroup then raises their
    errors instead, and a task ending so at ``asyncio.run``'s shutdown is reported as an
    'unhandled exception' with a traceback.
    """
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as errors:
        if task is not None and _cancelled_from_outside(task, before, group):
            raise asyncio.CancelledError from None
        ours: list[BaseException] = [e for e in errors.exceptions if isinstance(e, IamSudoError)]
        raise (ours or list(errors.exceptions))[0] from None


def _cancelled_from_outside(task: asyncio.Task[Any], before: int, group: asyncio.TaskGroup) -> bool:
    """Whether someone other than ``group`` asked ``task`` to cancel while it ran.

    A TaskGroup cancels its own task when a child fails; Python 3.11 does not undo that
    request if it comes while the group is already exiting (3.12 does), so it is
    discounted here: only what is left is a cancellation from outside.
    """
    requested = task.cancelling() - before
    if requested > 0 and getattr(group, "_parent_cancel_requested", False):
        requested -= 1
    return requested > 0


def consume_failure(future: asyncio.Future[Any]) -> None:
    """A done-callback: a failure nobody waits for is retrieved, so asyncio does not log it.

    Whatever becomes of a speculative task, the call that started it reports the failure
    that decides it, never 'Task exception was never retrieved'.
    """
    if not future.cancelled():
        future.exception()


class SingleFlight:
    """One shared task per key, so that concurrent callers make one request, not many.

    A task is renewed after its ``ttl`` (seconds; None: kept for good), its age counted
    on both clocks (:meth:`Instant.since`: a machine waking from suspend sees a reading
    as old as the wall clock says); a failed or cancelled one is forgotten so that a
    later call retries. ``clock``: default :func:`system_clock`.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or system_clock
        self._tasks: dict[str, tuple[asyncio.Task[Any], Instant]] = {}

    def run(
        self,
        key: str,
        factory: Callable[[], Coroutine[Any, Any, T]],
        ttl: float | None = None,
    ) -> asyncio.Task[T]:
        """The running or finished task for ``key``, started with ``factory()`` if there is none."""
        now = self._clock()
        task, started = self._tasks.get(key, (None, now))
        if (
            task is None
            or (task.done() and (task.cancelled() or task.exception()))
            or (ttl is not None and now.since(started) >= ttl)
        ):
            task = asyncio.create_task(factory())
            self._tasks[key] = (task, now)
        return task

    def running(self, key: str) -> asyncio.Task[Any] | None:
        """The task for ``key`` if it is still running."""
        entry = self._tasks.get(key)
        return entry[0] if entry is not None and not entry[0].done() else None

    def cancel(self, key: str) -> None:
        """Cancel and forget the task for ``key``, if any."""
        entry = self._tasks.pop(key, None)
        if entry is not None:
            entry[0].cancel()

    def cancel_all(self) -> None:
        """Cancel and forget every task (when the reader closes)."""
        for task, _ in self._tasks.values():
            task.cancel()
        self._tasks.clear()


class DaemonThreads(Executor):
    """Runs each call in a daemon thread, at most ``limit`` at a time.

    ThreadPoolExecutor's workers are joined when the interpreter exits: a request still in
    flight that nobody waits for any more (a roles listing stopped because GetRole found
    the role) would hold up the CLI's exit until AWS answered it.
    """

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:
                    future.set_exception(error)

        threading.Thread(target=run, name="iam-sudo", daemon=True).start()
        return future

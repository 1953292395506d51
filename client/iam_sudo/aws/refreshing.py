"""Credentials that renew themselves: one async holder for every refreshing source.

:class:`Refreshing` holds a value with an expiry (credentials, or a reader session built
on them) and renews it with ``fetch`` by the rule of :mod:`iam_sudo.core.refresh`: one
fetch per refresh window, shared by every concurrent asker (single flight); never an
expired value, judged on both clocks when it is served; after a failure, no new fetch
before the back-off delay, and the failure raised to whoever has nothing valid to use.
The ECS endpoint, the spokes' reader sessions and ``iam-sudo serve`` use it; the
credential_process cache follows the same rule across processes (settings/cache).

It runs in whichever event loop asks (a Lambda container runs one per invocation): a
fetch in flight is shared within its loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from ..core.exceptions import CredentialsExpired
from ..core.refresh import Backoff, Clock, Lease, system_clock
from ..settings.credentials import Credentials

__all__ = [
    "Clock",
    "RefreshStatus",
    "Refreshing",
    "RefreshingCredentials",
    "system_clock",
]
log = logging.getLogger("iam_sudo")
T = TypeVar("T")


@dataclass(frozen=True)
class RefreshStatus:
    """What a status view shows of a holder: when it last fetched (None: never, or the
    value was given), when what it holds expires and is due for renewal (None: holds
    nothing), how many fetches succeeded and failed, and the last failure's message."""

    refreshed_at: datetime | None
    expires_at: datetime | None
    refresh_due_at: datetime | None
    fetches: int
    failures: int
    last_error: str | None


class Refreshing(Generic[T]):
    """A value with an expiry, renewed by ``fetch`` (see the module and core.refresh).

    ``expiry(value)`` is its expiration (an aware datetime). ``initial`` is a value just
    fetched, held from now. ``fetch=None`` serves ``initial`` until it expires, then
    raises :class:`CredentialsExpired` (an MFA session cannot be renewed unattended).
    ``serve_while_refreshing``: once renewal is due, an asker gets the held value (still
    valid, outside the SDKs' windows) at once while the fetch runs, rather than waiting
    for it (an SDK gives the ECS endpoint 1-2 s). ``clock`` is injected by tests.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]] | None,
        *,
        expiry: Callable[[T], datetime],
        initial: T | None = None,
        clock: Clock = system_clock,
        serve_while_refreshing: bool = False,
    ) -> None:
        self._fetch = fetch
        self._expiry = expiry
        self._clock = clock
        self._serve_while_refreshing = serve_while_refreshing
        self._held: tuple[T, Lease] | None = None
        self._refreshed_at: datetime | None = None
        self._backoff: Backoff | None = None
        self._last_error: BaseException | None = None
        self._in_flight: dict[asyncio.AbstractEventLoop, asyncio.Task[T]] = {}
        self.fetches = 0
        self.failures = 0
        if initial is not None:
            self._held = (initial, Lease.start(clock(), expiry(initial)))

    def status(self) -> RefreshStatus:
        """The holder's state for a status view (no secret in it)."""
        lease = self._held[1] if self._held is not None else None
        return RefreshStatus(
            refreshed_at=self._refreshed_at,
            expires_at=_when(lease.expires) if lease else None,
            refresh_due_at=_when(lease.refresh_at()) if lease else None,
            fetches=self.fetches,
            failures=self.failures,
            last_error=str(self._last_error) if self._last_error is not None else None,
        )

    @property
    def refreshed_at(self) -> datetime | None:
        """When the last fetch succeeded (UTC), or None."""
        return self._refreshed_at

    @property
    def expires_at(self) -> datetime | None:
        """When the held value expires (UTC), or None if nothing is held."""
        return _when(self._held[1].expires) if self._held is not None else None

    def held(self) -> T | None:
        """The held value if it is still valid now, without fetching."""
        if self._held is None or self._held[1].expired(self._clock()):
            return None
        return self._held[0]

    async def get(self) -> T:
        """A valid value: the held one, or a fresh one when renewal is due.

        Raises the fetch's error (or :class:`CredentialsExpired`) when nothing valid is
        held and none can be fetched now.
        """
        now = self._clock()
        held = self._held
        if held is not None and not held[1].due(now):
            return held[0]
        valid = held is not None and not held[1].expired(now)
        if self._fetch is None or (self._backoff is not None and self._backoff.waiting(now)):
            if held is not None and valid:
                return held[0]
            raise self._unavailable()
        task = self._shared_fetch()
        if valid and self._serve_while_refreshing:
            assert held is not None
            return held[0]
        try:
            return await asyncio.shield(task)
        except Exception:
            held = self._held  # a failed renewal: what is held may still serve
            if held is not None and not held[1].expired(self._clock()):
                return held[0]
            raise

    async def settle(self) -> None:
        """Wait until no renewal is in flight in this loop (whatever its outcome)."""
        task = self._in_flight.get(asyncio.get_running_loop())
        if task is not None:
            await asyncio.wait([task])

    def _unavailable(self) -> BaseException:
        if self._last_error is not None:
            # The same failure for every asker until the back-off ends, without each
            # raise lengthening its traceback.
            return self._last_error.with_traceback(None)
        return CredentialsExpired(
            "the credentials expired and cannot be renewed without you (an MFA session): "
            "run iam-sudo again"
        )

    def _shared_fetch(self) -> asyncio.Task[T]:
        loop = asyncio.get_running_loop()
        task = self._in_flight.get(loop)
        if task is None:
            task = loop.create_task(self._renew())
            self._in_flight[loop] = task
            task.add_done_callback(lambda _: self._in_flight.pop(loop, None))
            task.add_done_callback(_consume)
        return task

    async def _renew(self) -> T:
        assert self._fetch is not None
        try:
            value = await self._fetch()
            lease = Lease.start(self._clock(), self._expiry(value))
        except Exception as error:
            self.failures += 1
            failures = self._backoff.failures + 1 if self._backoff is not None else 1
            self._backoff = Backoff(self._clock(), failures)
            self._last_error = error
            log.warning("renewing the credentials failed: %s", error)
            raise
        self._held = (value, lease)
        self._backoff = None
        self._last_error = None
        self._refreshed_at = _when(lease.received.wall)
        self.fetches += 1
        log.info("credentials renewed, valid until %s", _when(lease.expires).isoformat())
        return value


class RefreshingCredentials(Refreshing[Credentials]):
    """:class:`Refreshing` credentials: ``RefreshingCredentials(fetch).get()``."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Credentials]] | None,
        *,
        initial: Credentials | None = None,
        clock: Clock = system_clock,
        serve_while_refreshing: bool = False,
    ) -> None:
        super().__init__(
            fetch,
            expiry=_expiration,
            initial=initial,
            clock=clock,
            serve_while_refreshing=serve_while_refreshing,
        )


def _expiration(credentials: Credentials) -> datetime:
    return credentials.expiration


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _consume(task: asyncio.Future[Any]) -> None:
    # A renewal nobody awaited (serve_while_refreshing) is reported by the log, not asyncio.
    if not task.cancelled():
        task.exception()

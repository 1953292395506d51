"""A clock tests move by hand: wall and monotonic time, apart (no test sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from iam_sudo.core.refresh import Instant

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class FakeClock:
    """``clock()`` is now on both clocks; :meth:`advance` moves both (the machine is awake),
    :meth:`suspend` the wall clock only (Linux's monotonic clock stops in suspend),
    :meth:`set_wall` the wall clock only (an NTP step, a user setting the time)."""

    def __init__(self, start: datetime = START) -> None:
        self.wall = start.timestamp()
        self.mono = 1000.0

    def __call__(self) -> Instant:
        return Instant(self.wall, self.mono)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall, UTC)

    def in_(self, seconds: float) -> datetime:
        """The wall-clock time ``seconds`` from now (an STS expiration)."""
        return self.now() + timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def suspend(self, seconds: float) -> None:
        self.wall += seconds

    def set_wall(self, seconds: float) -> None:
        self.wall += seconds

"""When held temporary credentials are renewed: the refresh rule, stated once.

Every source of iam-sudo that hands out credentials for longer than one session (the ECS
endpoint, the credential_process cache, a long-lived library client's spoke reader
sessions, ``iam-sudo serve``) follows this rule; nothing else decides when to refresh.

The rule, for credentials received at ``t0`` that expire at ``t0 + L`` (``L``, their
*lifetime*, measured when they arrive):

- **One fetch per window.** They are renewed once their age reaches ``L - margin(L)``,
  where ``margin(L) = min(PREFERRED_MARGIN, L * SHORT_SESSION_SHARE)``: 20 minutes
  before expiry when the session is long enough, otherwise halfway through its life. A
  session born inside the preferred margin (``--duration 900``) is therefore renewed
  every 7.5 minutes, never at every ask: fresh credentials are always *outside* their
  own refresh window, so no asker can trigger a loop.
- **Ahead of the SDKs.** An SDK asks its source again inside its own window: botocore's
  ``RefreshableCredentials`` 15 minutes before expiry (advisory) and 10 minutes
  (mandatory) (botocore/credentials.py, ``_DEFAULT_ADVISORY_REFRESH_TIMEOUT = 15 * 60``,
  ``_DEFAULT_MANDATORY_REFRESH_TIMEOUT = 10 * 60``); the JS SDK v3 5 minutes before
  (@aws-sdk/credential-provider-node, ``credentialsTreatedAsExpired``: expiration minus
  now ``< 300000`` ms). The 20-minute margin renews before botocore's advisory window
  opens; a 15-minute session still renews 7.5 minutes before expiry, ahead of the JS
  SDK's window (botocore's cannot be cleared by a session shorter than it: botocore then
  re-asks at every call, and is answered from what is held, without a fetch).
- **Both clocks.** Age is the larger of the wall-clock and the monotonic-clock time
  since receipt. Linux's monotonic clock stops while the machine is suspended (a laptop
  waking after two hours has aged two hours on the wall clock only); the wall clock may
  be set back (then the monotonic clock still counts). Either way credentials whose age
  reached their lifetime are expired and never served, not for one request: expiry is
  judged at the moment of serving, not from a schedule.
- **Too short to hold.** Credentials that arrive with less than :data:`MIN_LIFETIME`
  to live (STS's shortest session is 900 s, so this means a clock far off STS's, or an
  answer already aged) are *refused*, not served, with :class:`CredentialsExpired`: a
  refresh margin would leave them no time, and serving them would have every asker
  fetch again.
- **Back off.** A failed fetch is retried no sooner than :func:`retry_delay` after it
  (5 s, doubling up to 5 minutes); meanwhile an asker gets the held credentials while
  they are valid, else the failure.

Times are floats: wall-clock seconds since the epoch (``time.time()``) and monotonic
seconds (``time.monotonic()``). The rule reads no clock: callers pass an :class:`Instant`,
from :func:`system_clock` or a test's own :data:`Clock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .exceptions import CredentialsExpired

#: Renew this long before expiry when the session is long enough (ahead of botocore's
#: 15-minute advisory window by 5 minutes).
PREFERRED_MARGIN = 20 * 60.0
#: A session shorter than twice the preferred margin is renewed after this share of it.
SHORT_SESSION_SHARE = 0.5
#: Credentials arriving with less than this to live are refused (see the module).
MIN_LIFETIME = 120.0
#: The first wait after a failed fetch; it doubles with each failure in a row, up to
#: :data:`MAX_RETRY_DELAY`.
FIRST_RETRY_DELAY = 5.0
MAX_RETRY_DELAY = 300.0

#: The SDKs' own windows, in seconds before expiry (see the module for their sources).
BOTOCORE_ADVISORY_WINDOW = 15 * 60.0
BOTOCORE_MANDATORY_WINDOW = 10 * 60.0
JS_SDK_WINDOW = 5 * 60.0


@dataclass(frozen=True)
class Instant:
    """One moment read on both clocks: ``wall`` (epoch seconds) and ``mono`` (seconds)."""

    wall: float
    mono: float

    def since(self, earlier: Instant) -> float:
        """Seconds from ``earlier`` to this moment: the larger of the two clocks' counts
        (never negative), so that neither a suspend nor a wall clock set back hides time."""
        return max(self.wall - earlier.wall, self.mono - earlier.mono, 0.0)


#: Now on both clocks; tests pass their own.
Clock = Callable[[], Instant]


def system_clock() -> Instant:
    """Now, on the wall clock and the monotonic clock (the one place they are read)."""
    return Instant(time.time(), time.monotonic())


def margin(lifetime: float) -> float:
    """How long before expiry credentials of ``lifetime`` seconds are renewed."""
    return min(PREFERRED_MARGIN, lifetime * SHORT_SESSION_SHARE)


def refresh_age(lifetime: float) -> float:
    """The age (seconds) at which credentials of ``lifetime`` seconds are renewed."""
    return lifetime - margin(lifetime)


def retry_delay(failures: int) -> float:
    """Seconds to wait before fetching again after ``failures`` (>= 1) failures in a row."""
    return min(MAX_RETRY_DELAY, FIRST_RETRY_DELAY * 2.0 ** max(failures - 1, 0))


@dataclass(frozen=True)
class Lease:
    """Credentials' life as the holder sees it: received at ``received``, expiring at
    ``expires`` (epoch seconds, on the wall clock, as STS states it)."""

    received: Instant
    expires: float

    @classmethod
    def start(cls, now: Instant, expiration: datetime) -> Lease:
        """The lease of credentials arriving ``now`` that expire at ``expiration`` (aware).

        Raises :class:`CredentialsExpired` if they have less than :data:`MIN_LIFETIME`
        seconds to live.
        """
        lease = cls(now, expiration.timestamp())
        if lease.lifetime < MIN_LIFETIME:
            raise CredentialsExpired(
                f"the credentials received expire at {expiration.isoformat()}, "
                f"{lease.lifetime:.0f} s from now by this machine's clock: too short to "
                f"use (at least {MIN_LIFETIME:.0f} s); check that the clock is right "
                "(timedatectl, ntpdate) and ask for a longer --duration"
            )
        return lease

    @property
    def lifetime(self) -> float:
        """Seconds from receipt to expiry."""
        return self.expires - self.received.wall

    def age(self, now: Instant) -> float:
        """Seconds since receipt, by the clock that counted more (see :meth:`Instant.since`)."""
        return now.since(self.received)

    def left(self, now: Instant) -> float:
        """Seconds until expiry (negative once expired), on the more advanced clock."""
        return self.lifetime - self.age(now)

    def expired(self, now: Instant) -> bool:
        """Whether the credentials must no longer be served."""
        return self.left(now) <= 0

    def due(self, now: Instant) -> bool:
        """Whether the credentials are to be renewed (:func:`refresh_age` reached)."""
        return self.age(now) >= refresh_age(self.lifetime)

    def refresh_at(self) -> float:
        """When renewal is due, in epoch seconds (for a status view)."""
        return self.received.wall + refresh_age(self.lifetime)


@dataclass(frozen=True)
class Backoff:
    """After ``failures`` failed fetches in a row, the last at ``since``: no new fetch
    before :func:`retry_delay` has passed."""

    since: Instant
    failures: int

    def waiting(self, now: Instant) -> bool:
        """Whether a fetch must still wait."""
        return now.since(self.since) < retry_delay(self.failures)

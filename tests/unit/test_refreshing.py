"""The refreshing holder (iam_sudo.aws.refreshing): one fetch per window, shared, backed off,
never an expired answer. A fake clock (tests/fake_clock.py); nothing sleeps."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from iam_sudo.aws.refreshing import RefreshingCredentials
from iam_sudo.core.exceptions import AccessDenied, CredentialsExpired
from iam_sudo.settings.credentials import Credentials
from tests.fake_clock import FakeClock

HOUR = 3600


class Source:
    """A fetch counting its calls; each answer lives ``lifetime`` s from the fake now."""

    def __init__(self, clock: FakeClock, lifetime: float = 900) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self._serial = itertools.count(1)

    async def __call__(self) -> Credentials:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        n = next(self._serial)
        return Credentials(f"ASIA{n:016d}", "secret", "token", self.clock.in_(self.lifetime))


def holder(clock: FakeClock, source: Source, **options: bool) -> RefreshingCredentials:
    return RefreshingCredentials(source, clock=clock, **options)


async def test_a_15_minute_session_asked_every_second_for_an_hour_fetches_once_per_window() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=900)
    held = holder(clock, source)
    for _ in range(HOUR):
        credentials = await held.get()
        assert (credentials.expiration - clock.now()).total_seconds() > 0
        clock.advance(1)
    # Renewed every 450 s (halfway through a 900 s session): 0, 450, ..., 3150.
    assert source.calls == HOUR // 450 == 8


async def test_an_hour_session_is_renewed_twenty_minutes_before_it_expires() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=HOUR)
    held = holder(clock, source)
    first = await held.get()
    clock.advance(HOUR - 20 * 60 - 1)
    assert await held.get() is first
    clock.advance(1)
    assert await held.get() is not first
    assert source.calls == 2


async def test_waking_after_two_hours_serves_no_expired_credentials_not_for_one_request() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=HOUR)
    held = holder(clock, source, serve_while_refreshing=True)
    first = await held.get()
    clock.suspend(2 * HOUR)  # wall clock only: the monotonic clock stops in suspend
    fresh = await held.get()
    assert fresh is not first
    assert fresh.expiration > clock.now()


async def test_a_wall_clock_set_back_still_renews_on_the_monotonic_clock() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=900)
    held = holder(clock, source)
    first = await held.get()
    clock.advance(450)
    clock.set_wall(-HOUR)
    assert await held.get() is not first


async def test_concurrent_askers_share_one_fetch() -> None:
    clock = FakeClock()
    source = Source(clock)
    source.gate = asyncio.Event()
    held = holder(clock, source)
    askers = [asyncio.create_task(held.get()) for _ in range(50)]
    await asyncio.sleep(0)
    source.gate.set()
    answers = await asyncio.gather(*askers)
    assert source.calls == 1
    assert len({a.access_key_id for a in answers}) == 1


async def test_while_renewing_in_the_background_askers_get_the_valid_held_credentials() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=HOUR)
    held = holder(clock, source, serve_while_refreshing=True)
    first = await held.get()
    clock.advance(HOUR - 20 * 60)
    source.gate = asyncio.Event()
    assert await held.get() is first  # due: a renewal starts, the asker does not wait
    assert await held.get() is first  # shared: no second fetch
    source.gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert (await held.get()).access_key_id != first.access_key_id
    assert source.calls == 2


async def test_a_failed_renewal_backs_off_and_the_error_reaches_the_asker() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=900)
    held = holder(clock, source)
    first = await held.get()
    clock.advance(450)
    source.fail = AccessDenied("sts:AssumeRole denied")
    assert await held.get() is first  # still valid: served, and the failure is logged
    for _ in range(100):
        assert await held.get() is first
    assert source.calls == 2  # backing off: no fetch per ask
    clock.advance(450)  # expired, and 450 s of back-off have passed: one more try
    with pytest.raises(AccessDenied, match="denied"):
        await held.get()
    for _ in range(100):
        with pytest.raises(AccessDenied):
            await held.get()
    assert source.calls == 3
    assert held.status().last_error == "sts:AssumeRole denied"
    source.fail = None
    clock.advance(10)  # the second failure's delay
    assert (await held.get()).expiration > clock.now()
    assert source.calls == 4
    assert held.status().failures == 2


async def test_credentials_fetched_nearly_expired_are_refused_not_fetched_again_per_ask() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=30)  # e.g. a clock 14.5 minutes ahead of STS's
    held = holder(clock, source)
    for _ in range(20):
        with pytest.raises(CredentialsExpired, match="clock"):
            await held.get()
    assert source.calls == 1


async def test_without_a_fetch_the_initial_credentials_serve_until_they_expire() -> None:
    clock = FakeClock()
    initial = Credentials("ASIAMFA", "secret", "token", clock.in_(900))
    held = RefreshingCredentials(None, initial=initial, clock=clock)
    clock.advance(899)
    assert await held.get() is initial
    clock.advance(1)
    with pytest.raises(CredentialsExpired, match="MFA"):
        await held.get()


async def test_the_status_says_when_it_refreshed_and_when_the_credentials_expire() -> None:
    clock = FakeClock()
    source = Source(clock, lifetime=HOUR)
    held = holder(clock, source)
    assert held.status().expires_at is None
    await held.get()
    status = held.status()
    assert status.refreshed_at == clock.now()
    assert status.expires_at == clock.in_(HOUR)
    assert status.refresh_due_at == clock.in_(HOUR - 20 * 60)
    assert (status.fetches, status.failures, status.last_error) == (1, 0, None)
    assert "secret" not in repr(status)

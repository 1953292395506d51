"""The refresh rule (iam_sudo.core.refresh): when held credentials are renewed.

The SDK windows it must stay ahead of: botocore/credentials.py
(_DEFAULT_ADVISORY_REFRESH_TIMEOUT = 15 * 60, _DEFAULT_MANDATORY_REFRESH_TIMEOUT = 10 * 60)
and @aws-sdk/credential-provider-node (credentialsTreatedAsExpired: < 300000 ms left).
"""

from __future__ import annotations

import pytest

from iam_sudo.core.exceptions import CredentialsExpired
from iam_sudo.core.refresh import (
    BOTOCORE_ADVISORY_WINDOW,
    JS_SDK_WINDOW,
    MIN_LIFETIME,
    Backoff,
    Lease,
    margin,
    refresh_age,
    retry_delay,
)
from tests.fake_clock import FakeClock

HOUR = 3600.0


def test_an_hour_session_renews_twenty_minutes_before_expiry_ahead_of_botocores_window() -> None:
    assert margin(HOUR) == 20 * 60
    assert margin(HOUR) > BOTOCORE_ADVISORY_WINDOW


def test_a_session_born_inside_the_preferred_margin_renews_halfway_not_at_once() -> None:
    # --duration 900 against a 20-minute margin: renewal at 7.5 minutes of age, still
    # 7.5 minutes before expiry, ahead of the JS SDK's 5-minute window.
    assert refresh_age(900) == 450
    assert margin(900) > JS_SDK_WINDOW


@pytest.mark.parametrize("lifetime", [MIN_LIFETIME, 900, 1800, 2400, HOUR, 12 * HOUR])
def test_fresh_credentials_are_never_due_so_no_asker_can_make_a_loop(lifetime: float) -> None:
    clock = FakeClock()
    lease = Lease.start(clock(), clock.in_(lifetime))
    assert not lease.due(clock())
    assert refresh_age(lifetime) >= lifetime / 2


def test_renewal_comes_due_at_the_refresh_age_and_expiry_at_the_lifetime() -> None:
    clock = FakeClock()
    lease = Lease.start(clock(), clock.in_(900))
    clock.advance(449)
    assert not lease.due(clock())
    clock.advance(1)
    assert lease.due(clock())
    assert not lease.expired(clock())
    clock.advance(450)
    assert lease.expired(clock())


def test_a_suspended_machine_sees_its_credentials_expired_on_waking() -> None:
    clock = FakeClock()
    lease = Lease.start(clock(), clock.in_(HOUR))
    clock.suspend(2 * HOUR)  # the monotonic clock did not move
    assert lease.expired(clock())


def test_a_wall_clock_set_back_does_not_extend_credentials() -> None:
    clock = FakeClock()
    lease = Lease.start(clock(), clock.in_(900))
    clock.advance(901)
    clock.set_wall(-HOUR)
    assert lease.expired(clock())


def test_credentials_arriving_nearly_expired_are_refused_with_a_clock_hint() -> None:
    clock = FakeClock()
    with pytest.raises(CredentialsExpired, match="check that the clock is right"):
        Lease.start(clock(), clock.in_(MIN_LIFETIME - 1))


def test_failures_back_off_doubling_to_five_minutes() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 7, 50)] == [5, 10, 20, 300, 300]
    clock = FakeClock()
    backoff = Backoff(clock(), failures=2)
    clock.advance(9)
    assert backoff.waiting(clock())
    clock.advance(1)
    assert not backoff.waiting(clock())

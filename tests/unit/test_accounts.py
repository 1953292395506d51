"""Reaching other accounts: reader sessions reused until near expiry, one-line refusals."""

import asyncio
from typing import Any

import pytest

from iam_sudo import AccessDenied, AccountUnreachable, ConfigurationError, InvalidRequest
from iam_sudo.core.refresh import refresh_age
from iam_sudo.settings.credentials import Credentials
from iam_sudo.steps.spokes import (
    CHAINED_SESSION_LIMIT,
    AccountReaders,
    check_account,
    check_chained_duration,
    reader_role_name,
    role_in_account,
    spoke_accounts,
)
from tests.fake_clock import FakeClock

HUB = "arn:aws:sts::123456789012:assumed-role/iam-sudo-execution/iam-sudo"


class Hub:
    """Records what is sent to STS; answers AssumeRole like STS (1-hour credentials)."""

    def __init__(self, refuse: bool = False, clock: FakeClock | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse = refuse
        self.clock = clock or FakeClock()

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        self.sent.append({"operation": f"{service}:{operation}", **params})
        await asyncio.sleep(0)
        if self.refuse:
            raise AccessDenied("sts:assume_role denied: not authorized", code="AccessDenied")
        expiration = self.clock.in_(3600)
        number = len(self.sent)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{number}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": expiration,
            }
        }


class Reader:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.closed = False

    async def __aenter__(self) -> "Reader":
        return self

    async def __aexit__(self, *args: Any) -> None:
        self.closed = True


async def test_a_reader_session_is_reused_until_the_refresh_rule_says_renew() -> None:
    clock = FakeClock()
    hub = Hub(clock=clock)
    readers = AccountReaders(hub, Reader, reader_role="iam-sudo-reader", clock=clock)
    first = await readers.transport("111111111111", "aws", HUB)
    clock.advance(refresh_age(3600) - 1)  # 40 minutes: 20 before expiry
    again = await readers.transport("111111111111", "aws", HUB)
    assert again.reader is first.reader
    assert [s["RoleArn"] for s in hub.sent] == ["arn:aws:iam::111111111111:role/iam-sudo-reader"]
    # Chained (the hub is a role session): one hour, asked for explicitly.
    assert hub.sent[0]["DurationSeconds"] == CHAINED_SESSION_LIMIT
    clock.advance(1)
    renewed = await readers.transport("111111111111", "aws", HUB)
    assert renewed.reader is not first.reader
    assert len(hub.sent) == 2
    await readers.aclose()
    assert first.reader.closed
    assert renewed.reader.closed


async def test_a_warm_function_woken_after_hours_never_uses_an_expired_reader_session() -> None:
    clock = FakeClock()
    hub = Hub(clock=clock)
    readers = AccountReaders(hub, Reader, reader_role="r", clock=clock)
    first = await readers.transport("111111111111", "aws", HUB)
    clock.suspend(2 * 3600)  # a frozen Lambda container: its monotonic clock stood still
    later = await readers.transport("111111111111", "aws", HUB)
    assert later.reader is not first.reader
    assert later.reader.credentials.expiration > clock.now()


async def test_concurrent_requests_for_an_account_share_one_assume_role() -> None:
    hub = Hub()
    readers = AccountReaders(hub, Reader, reader_role="r", clock=hub.clock)
    got = await asyncio.gather(*(readers.transport("111111111111", "aws", HUB) for _ in range(5)))
    assert len(hub.sent) == 1
    assert len({id(t.reader) for t in got}) == 1


async def test_a_refusing_reader_is_not_asked_again_at_every_request() -> None:
    clock = FakeClock()
    hub = Hub(refuse=True, clock=clock)
    readers = AccountReaders(hub, Reader, reader_role="r", clock=clock)
    for _ in range(10):
        with pytest.raises(AccountUnreachable):
            await readers.transport("111111111111", "aws", HUB)
    assert len(hub.sent) == 1  # backing off (core.refresh.retry_delay)
    clock.advance(5)
    with pytest.raises(AccountUnreachable):
        await readers.transport("111111111111", "aws", HUB)
    assert len(hub.sent) == 2


async def test_a_reader_that_refuses_is_one_line_naming_the_account_and_what_to_do() -> None:
    readers = AccountReaders(Hub(refuse=True), Reader, reader_role="iam-sudo-reader")
    with pytest.raises(AccountUnreachable) as caught:
        await readers.transport("111111111111", "aws", HUB)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"cannot read account 111111111111: its iam-sudo-reader role does not exist or does "
        f"not trust {HUB}; enrol the account as a spoke"
    )


def test_an_account_outside_the_deployment_is_refused_before_anything_is_sent() -> None:
    hub = Hub()
    readers = AccountReaders(hub, Reader, reader_role="r", spokes=["111111111111"])
    readers.check_reachable("111111111111", "123456789012")
    readers.check_reachable("123456789012", "123456789012")
    with pytest.raises(AccountUnreachable, match="account 222222222222 is not a spoke"):
        readers.check_reachable("222222222222", "123456789012")
    assert hub.sent == []


def test_a_chained_session_longer_than_an_hour_is_refused_up_front() -> None:
    check_chained_duration(HUB, 3600, "111111111111")
    check_chained_duration("arn:aws:iam::123456789012:user/alice", 7200, "111111111111")
    with pytest.raises(InvalidRequest, match="role chaining, which STS caps at 3600 seconds"):
        check_chained_duration(HUB, 3601, "111111111111")


@pytest.mark.parametrize("bad", ["1234", "12345678901x", "", "1234567890123", None])
def test_an_account_is_twelve_digits(bad: Any) -> None:
    with pytest.raises(InvalidRequest, match="12-digit account id"):
        check_account(bad)


def test_configuration_from_the_environment() -> None:
    assert reader_role_name({}) == "iam-sudo-reader"
    assert reader_role_name({"IAM_SUDO_READER_ROLE": "spoke-reader"}) == "spoke-reader"
    with pytest.raises(ConfigurationError, match="IAM_SUDO_READER_ROLE"):
        reader_role_name({"IAM_SUDO_READER_ROLE": "a/b"})
    assert spoke_accounts({}) is None
    assert spoke_accounts({"IAM_SUDO_SPOKE_ACCOUNTS": "111111111111, 222222222222"}) == (
        "111111111111",
        "222222222222",
    )
    with pytest.raises(ConfigurationError, match="IAM_SUDO_SPOKE_ACCOUNTS"):
        spoke_accounts({"IAM_SUDO_SPOKE_ACCOUNTS": "1111"})
    assert role_in_account("arn:aws:iam::123456789012:role/p/IAMSudoUser", "111111111111") == (
        "arn:aws:iam::111111111111:role/p/IAMSudoUser"
    )


def test_the_target_account_comes_from_the_option_or_the_role_arn() -> None:
    from iam_sudo.steps.spokes import target_account

    here = "123456789012"
    assert target_account("TaskRole", None, here) is None
    assert target_account("TaskRole", here, here) is None
    assert target_account("TaskRole", "111111111111", here) == "111111111111"
    arn = "arn:aws:iam::111111111111:role/TaskRole"
    assert target_account(arn, None, here) == "111111111111"
    assert target_account(arn, "111111111111", here) == "111111111111"
    with pytest.raises(InvalidRequest, match="the role ARN is in account 111111111111, not"):
        target_account(arn, "222222222222", here)


def test_requests_for_another_account_are_validated_like_every_field() -> None:
    from iam_sudo.steps.remote import RolesRequest, SimulateRequest

    event = SimulateRequest("TaskRole", account="111111111111").to_event()
    assert event == {"role_name": "TaskRole", "account": "111111111111"}
    assert SimulateRequest.from_event(event).account == "111111111111"
    for bad, message in (
        ("1111", "account must be a 12-digit account id"),
        ("11111111111a", "account must be a 12-digit account id"),
        (111111111111, "account must be a string, got int"),
        ("", "account must not be empty"),
    ):
        with pytest.raises(InvalidRequest, match=message):
            SimulateRequest.from_event({"role_name": "x", "account": bad})
    everywhere = RolesRequest(all_accounts=True).to_event()
    assert RolesRequest.from_event(everywhere).all_accounts is True
    with pytest.raises(InvalidRequest, match="account or all_accounts, not both"):
        RolesRequest.from_event({**everywhere, "account": "111111111111"})
    with pytest.raises(InvalidRequest, match="all_accounts must be true or false"):
        RolesRequest.from_event({"action": "roles", "all_accounts": "yes"})


async def test_a_warm_function_holds_at_most_two_reader_transports_per_account() -> None:
    clock = FakeClock()
    made: list[Reader] = []

    def make(credentials: Credentials) -> Reader:
        made.append(Reader(credentials))
        return made[-1]

    readers = AccountReaders(Hub(clock=clock), make, reader_role="r", clock=clock)
    for _ in range(4):  # hourly invocations
        await readers.transport("111111111111", "aws", HUB)
        clock.advance(3600)
    # Renewed three times: the two oldest are closed, the replaced one is kept for requests
    # still in flight, the current one is open.
    assert [reader.closed for reader in made] == [True, True, False, False]


async def test_a_long_lived_client_always_reads_a_spoke_through_its_current_reader_session() -> (
    None
):
    from iam_sudo.aws.iam_reader import IamReader, Identity
    from iam_sudo.steps.organization import Accounts

    clock = FakeClock()
    made: list[Reader] = []

    def make(credentials: Credentials) -> Reader:
        made.append(Reader(credentials))
        return made[-1]

    readers = AccountReaders(Hub(clock=clock), make, reader_role="r", clock=clock)
    own = IamReader(Hub(clock=clock), identity=Identity("123456789012", HUB))  # type: ignore[arg-type]
    accounts = Accounts(own, readers, max_concurrency=4, roles_ttl=60)
    first = await accounts.steps("111111111111")
    assert await accounts.steps("111111111111") is first  # one reader session: one set of steps
    for _ in range(5):  # renewals; retired transports are closed and may be freed
        clock.advance(refresh_age(3600))
        steps = await accounts.steps("111111111111")
        assert steps.reader.transport.reader is made[-1]  # type: ignore[attr-defined]
        assert not made[-1].closed
    await accounts.aclose()

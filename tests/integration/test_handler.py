"""The handler in-process: configuration caching, unexpected failures, what it logs."""

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import localaws
from iam_sudo import IamSudoError, SudoPolicy
from iam_sudo_deploy import handler as function
from tests.conftest import ALLOW_ALL_POLICY
from tests.integration.test_function import signed_proof


class Context:
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo:live"


@pytest.fixture
def configured(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "iam-sudo")
    monkeypatch.setenv("IAM_SUDO_POLICY", ALLOW_ALL_POLICY)
    monkeypatch.setenv("IAM_SUDO_BASE_ROLE", "arn:aws:iam::123456789012:role/IAMSudoUser")
    function._configuration.cache_clear()
    yield
    function._configuration.cache_clear()


def line_of(record: dict[str, Any]) -> str:
    return json.dumps(record)


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


async def test_the_policy_is_parsed_once_per_container(
    configured: None, iam: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    original = SudoPolicy.from_yaml.__func__  # type: ignore[attr-defined]

    def counting(cls: type[SudoPolicy], text: str) -> SudoPolicy:
        parsed.append(text)
        return original(cls, text)  # type: ignore[no-any-return]

    monkeypatch.setattr(SudoPolicy, "from_yaml", classmethod(counting))
    localaws.create_role(iam, f"{prefix}Twice", inline={"p": localaws.allow("s3:GetObject")})
    proof = await signed_proof()
    for _ in range(3):
        event = {"role_name": f"{prefix}Twice", "proof": proof}
        assert "AccessKeyId" in await asyncio.to_thread(function.handler, event, Context())
    assert parsed == [ALLOW_ALL_POLICY.strip()]


def test_an_unexpected_failure_leaves_as_an_internal_error_and_is_logged(
    configured: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(request: Any, record: dict[str, Any], context: Any) -> dict[str, str]:
        raise KeyError("/var/task/secret/internals")

    monkeypatch.setattr(function, "_simulate", broken)
    with pytest.raises(function.InternalError) as caught:
        function.handler({"role_name": "x"}, Context())
    assert str(caught.value) == (
        "internal error in the iam-sudo function; see its log for request req-1"
    )
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    [record] = logged(capsys)
    assert record["decision"] == "error"
    assert record["error"] == "internal: KeyError: '/var/task/secret/internals'"


async def test_an_allowed_request_logs_one_line_without_credentials(
    configured: None, iam: Any, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    localaws.create_role(iam, f"{prefix}Logged", inline={"p": localaws.allow("s3:GetObject")})
    proof = await signed_proof()
    event = {
        "role_name": f"{prefix}Logged",
        "principal": "Service:ecs-tasks.amazonaws.com",
        "proof": proof,
    }
    reply = await asyncio.to_thread(function.handler, event, Context())
    [record] = logged(capsys)
    assert set(record) == {
        "request_id",
        "requested_role",
        "principal",
        "requested_base_role",
        "caller",
        "resolved_role",
        "base_role",
        "source_identity",
        "decision",
        "duration_ms",
    }
    assert record["caller"] == "arn:aws:sts::123456789012:user/moto"
    assert record["source_identity"] == "moto"
    assert proof["headers"]["Authorization"] not in line_of(record)
    assert record["principal"] == "Service:ecs-tasks.amazonaws.com"
    line = line_of(record)
    assert reply["SecretAccessKey"] not in line
    assert reply["SessionToken"] not in line


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """Something no JSON decoder makes, but an in-process caller can pass."""
    choices: list[Any] = [
        lambda: b"\xff" * rng.randrange(1, 50_000),
        lambda: {rng.random()},
        lambda: 10 ** rng.choice([10, 5000]),
        lambda: float("nan"),
        lambda: "x" * rng.randrange(0, 200_000),
        lambda: "\u2028\x00" * rng.randrange(1, 100),
        lambda: object(),
        lambda: deep_list(rng.choice([10, 5000])),
        lambda: {"role_name": rng.choice(["x", 5, None])},
    ]
    return rng.choice(choices)()


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def hostile_event(rng: random.Random) -> Any:
    kind = rng.randrange(4)
    if kind == 0:
        return hostile_value(rng)
    event: dict[Any, Any] = {}
    for key in rng.sample(["role_name", "principal", "base_role"], rng.randrange(0, 4)):
        event[key] = hostile_value(rng) if rng.random() < 0.7 else "TaskRole"
    for _ in range(rng.choice([0, 1, 3, 2000])):
        key = rng.choice(
            [f"k{rng.random()}" * rng.choice([1, 5000]), rng.random(), (1, 2), 10**5000, b"k"]
        )
        event[key] = hostile_value(rng) if rng.random() < 0.1 else 1
    return event


def test_every_hostile_event_gets_one_bounded_log_line_and_a_clean_refusal(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261126)
    for _ in range(300):
        event = hostile_event(rng)
        with pytest.raises(IamSudoError) as caught:
            function.handler(event, Context())
        assert len(str(caught.value)) <= 600, str(caught.value)[:300]
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1
        assert len(lines[0]) <= function.MAX_LOG_LINE_CHARS
        record = json.loads(lines[0])
        # Refused for what it is (a valid-looking one may find no role), never internally.
        assert record["decision"] in ("invalid", "error", "deny", "unauthenticated"), record
        assert not record["error"].startswith("internal"), record


def test_a_function_that_cannot_name_itself_refuses_to_serve(
    configured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    class Nameless:
        aws_request_id = "req-2"

    with pytest.raises(IamSudoError) as caught:
        function.handler({"role_name": "x", "proof": {}}, Nameless())
    assert type(caught.value).__name__ == "ConfigurationError"
    assert "invoked_function_arn" in str(caught.value)
    [record] = logged(capsys)
    assert record["decision"] == "error"

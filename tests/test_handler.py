"""The handler in-process: configuration caching, unexpected failures, what it logs."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import localaws
from iam_sudo import SudoPolicy
from iam_sudo_deploy import handler as function
from tests.conftest import ALLOW_ALL_POLICY


class Context:
    aws_request_id = "req-1"


@pytest.fixture
def configured(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IAM_SUDO_POLICY", ALLOW_ALL_POLICY)
    monkeypatch.setenv("IAM_SUDO_BASE_ROLE", "arn:aws:iam::123456789012:role/IAMSudoUser")
    function._configuration.cache_clear()
    yield
    function._configuration.cache_clear()


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_policy_is_parsed_once_per_container(
    configured: None, iam: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    original = SudoPolicy.from_yaml.__func__  # type: ignore[attr-defined]

    def counting(cls: type[SudoPolicy], text: str) -> SudoPolicy:
        parsed.append(text)
        return original(cls, text)  # type: ignore[no-any-return]

    monkeypatch.setattr(SudoPolicy, "from_yaml", classmethod(counting))
    localaws.create_role(iam, f"{prefix}Twice", inline={"p": localaws.allow("s3:GetObject")})
    for _ in range(3):
        assert "AccessKeyId" in function.handler({"role_name": f"{prefix}Twice"}, Context())
    assert parsed == [ALLOW_ALL_POLICY.strip()]


def test_an_unexpected_failure_leaves_as_an_internal_error_and_is_logged(
    configured: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(request: Any, record: dict[str, Any]) -> dict[str, str]:
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


def test_an_allowed_request_logs_one_line_without_credentials(
    configured: None, iam: Any, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    localaws.create_role(iam, f"{prefix}Logged", inline={"p": localaws.allow("s3:GetObject")})
    reply = function.handler(
        {"role_name": f"{prefix}Logged", "principal": "Service:ecs-tasks.amazonaws.com"}, Context()
    )
    [record] = logged(capsys)
    assert set(record) == {
        "request_id",
        "requested_role",
        "principal",
        "requested_base_role",
        "resolved_role",
        "base_role",
        "decision",
        "duration_ms",
    }
    assert record["principal"] == "Service:ecs-tasks.amazonaws.com"
    line = json.dumps(record)
    assert reply["SecretAccessKey"] not in line
    assert reply["SessionToken"] not in line

"""The AWS edge: what a broken network or an endpoint that is not AWS does to iam-sudo."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from devtools import localaws
from iam_sudo import IamSudo, RemoteError, ThreadTransport, Timeouts
from iam_sudo.aws.transports import AioTransport
from tests.integration.test_cli import one_line_error


@pytest.mark.parametrize(
    ("action", "fault", "message"),
    [
        ("ListRoles", "html", "iam endpoint http://127.0.0.1:"),
        ("ListRoles", "html", "answered with something that is not an AWS answer"),
        ("ListRoles", "garbage", "answered with something that is not an AWS answer"),
        ("ListRoles", "bare-500", "answered HTTP 500 without an AWS error"),
        ("ListRoles", "reset", "broke before it answered"),
        ("GetRolePolicy", "empty-xml", "iam:get_role_policy: the iam endpoint"),
        ("AssumeRole", "garbage", "sts:assume_role: the sts endpoint"),
        ("AssumeRole", "assume-role-without-credentials", "a field iam-sudo needs is missing"),
    ],
)
def test_a_garbled_answer_is_one_line_naming_the_endpoint_and_what_to_check(
    cli: Any,
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
    credentials_file: Any,
    action: str,
    fault: str,
    message: str,
) -> None:
    env, faults, _ = faulty_aws
    faults[action] = fault
    # A part of the name: the roles listing is needed (an exact name would not wait for it).
    part = task_role["name"][:-3]
    result = cli("simulate", "--local", "--role-name", part, "--profile", "p", env=env)
    one_line_error(result, 1, message)
    assert "AWS_ENDPOINT_URL" in result.stderr
    assert not credentials_file.exists()


def test_a_black_holed_endpoint_fails_after_the_configured_timeouts_and_attempts(
    cli: Any,
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
) -> None:
    env, faults, recorder = faulty_aws
    faults["ListRoles"] = "blackhole"
    env = {**env, "IAM_SUDO_READ_TIMEOUT": "0.3", "AWS_MAX_ATTEMPTS": "2"}
    part = task_role["name"][:-3]
    result = cli("simulate", "--local", "--role-name", part, "--profile", "p", env=env)
    one_line_error(result, 1, "no answer from the iam endpoint")
    assert recorder.actions().count("ListRoles") == 2, "one try per allowed attempt, no more"


@pytest.mark.parametrize("value", ["abc", "0", "-1", "99999"])
def test_a_bad_timeout_setting_is_one_line(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any], value: str
) -> None:
    env = {**aws_env, "IAM_SUDO_CONNECT_TIMEOUT": value}
    result = cli("simulate", "--local", "--role-name", task_role["name"], "--profile", "p", env=env)
    one_line_error(result, 1, "IAM_SUDO_CONNECT_TIMEOUT=")


def test_default_timeouts_bound_a_dead_endpoint_to_about_thirty_seconds() -> None:
    timeouts = Timeouts.from_env({})
    attempts = 3  # botocore's standard retry mode
    assert attempts * (timeouts.connect + timeouts.read) <= 40
    # The function may run up to its 30 s timeout: its invocation waits longer.
    assert timeouts.read_for("lambda") > 30
    slow = Timeouts.from_env({"IAM_SUDO_READ_TIMEOUT": "120"})
    assert slow.read_for("iam") == 120
    assert slow.read_for("lambda") == 120


async def test_the_configured_timeouts_reach_the_sdk_clients(aws_env: dict[str, str]) -> None:
    timeouts = Timeouts(connect=1.5, read=2.5, function_read=45)
    async with AioTransport(timeouts=timeouts) as transport:
        await transport.call("sts", "get_caller_identity")
        client = await transport._clients["sts"]
        assert client.meta.config.connect_timeout == 1.5
        assert client.meta.config.read_timeout == 2.5


async def test_nothing_secret_is_logged_at_debug(
    aws_env: dict[str, str],
    task_role: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The caller's own session token travels in every signed request's headers.
    monkeypatch.setenv("AWS_SESSION_TOKEN", "caller-session-token-must-not-be-logged")
    caplog.set_level(logging.DEBUG)
    secrets = ["caller-session-token-must-not-be-logged", aws_env["AWS_SECRET_ACCESS_KEY"]]
    async with IamSudo() as sudo:
        for credentials in (
            await sudo.simulate(task_role["name"]),
            await sudo.assume("IAMSudoUser"),
        ):
            secrets += [credentials.secret_access_key, credentials.session_token]
    async with IamSudo(transport=ThreadTransport()) as sudo:
        credentials = await sudo.simulate(task_role["name"])
        secrets += [credentials.secret_access_key, credentials.session_token]
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "Response body" in text, "DEBUG logging was on, and the SDK logged bodies"
    leaked = [secret[:8] for secret in secrets if secret in text]
    assert leaked == []


def test_a_base_role_that_refuses_source_identity_says_how_to_enable_it(
    cli: Any,
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
) -> None:
    env, faults, _ = faulty_aws
    faults["AssumeRole"] = "access-denied"
    result = cli("simulate", "--local", "--role-name", task_role["name"], "--", "true", env=env)
    one_line_error(result, 1, "must allow sts:SetSourceIdentity and sts:TagSession for you")
    assert "--no-source-identity" in result.stderr


def test_a_bare_429_is_retried_as_throttling_and_then_said_to_be_throttling(
    cli: Any,
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
    credentials_file: Any,
) -> None:
    env, faults, recorder = faulty_aws
    part = task_role["name"][:-3]
    faults["ListRoles"] = "bare-429*1"
    result = cli("simulate", "--local", "--role-name", part, "--profile", "p", env=env)
    assert result.returncode == 0, result.stderr
    assert recorder.actions().count("ListRoles") == 2, "once refused, once answered"
    recorder.clear()
    faults["ListRoles"] = "bare-429"
    env = {**env, "AWS_MAX_ATTEMPTS": "2"}
    result = cli("simulate", "--local", "--role-name", part, "--profile", "q", env=env)
    one_line_error(
        result,
        1,
        "answered HTTP 429 without an AWS error; AWS is throttling: wait and retry",
    )
    assert recorder.actions().count("ListRoles") == 2, "retried as throttling, no more"


@pytest.mark.parametrize("transport", [AioTransport, ThreadTransport])
async def test_a_bare_429_from_a_json_service_is_retried_too(
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    monkeypatch: pytest.MonkeyPatch,
    transport: Any,
) -> None:
    env, faults, recorder = faulty_aws
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    faults["*"] = "bare-429*1"
    async with transport() as aws:
        with pytest.raises(RemoteError, match="Function not found"):
            await aws.call("lambda", "invoke", FunctionName="no-such-function")
    assert len(recorder.requests) == 2, "the 429, then Lambda's own answer"


@pytest.mark.parametrize("args", [["assume", "--role-name", "IAMSudoUser"], ["roles", "--local"]])
def test_keys_aws_does_not_know_are_iam_sudos_own_failure_not_a_denial(
    cli: Any, faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder], args: list[str]
) -> None:
    env, faults, _ = faulty_aws
    faults["*"] = "invalid-client-token"
    extra = ["--format", "env"] if args[0] == "assume" else []
    result = cli(*args, *extra, env=env)
    one_line_error(
        result, 1, "iam-sudo's own credentials (the AWS_ACCESS_KEY_ID of the environment) failed"
    )
    assert "InvalidClientTokenId" in result.stderr
    assert "set working ones in the environment" in result.stderr
    assert "denied" not in result.stderr


def test_keys_of_a_profile_aws_does_not_know_name_the_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import botocore.exceptions

    from iam_sudo import NoCredentials
    from iam_sudo.aws.errors import map_exceptions

    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "InvalidClientTokenId", "Message": "The token is invalid."}},
        "GetCallerIdentity",
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "dev")

    def call() -> None:
        with map_exceptions("sts", "get_caller_identity"):
            raise error

    with pytest.raises(NoCredentials, match=r"own credentials \(profile dev\) failed") as raised:
        call()
    assert "for profile dev" in str(raised.value)
    assert "denied" not in str(raised.value)

"""A call that creates something is not sent again when its answer is lost.

sts:AssumeRole makes a session (and a CloudTrail event in the caller's SourceIdentity) each
time it reaches STS; lambda:Invoke makes a whole simulation in the function. botocore's
standard retries re-send a request whose answer timed out, whose connection broke after it
was sent, or that got a 5xx (AWS SDKs and Tools Reference Guide, "Retry behavior",
transient errors): 2 or 3 sessions for one request. These two are re-sent only when AWS
surely did nothing (no connection; a throttling refusal). What is *sent* is counted here.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import localaws
from tests.integration.test_cli import one_line_error

LOST = "was lost"


@pytest.mark.parametrize("fault", ["lost*1", "reset*1", "bare-500*1"])
@pytest.mark.parametrize("command", ["simulate", "assume"])
def test_a_lost_assume_role_answer_is_not_sent_again(
    cli: Any,
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
    fault: str,
    command: str,
) -> None:
    # lost: STS made the session, its answer never came back; reset and a bare 500: STS may
    # have made it (the client cannot tell). Before: botocore sent it again (2 sessions).
    env, faults, recorder = faulty_aws
    faults["AssumeRole"] = fault
    local = ["--local"] if command == "simulate" else []
    result = cli(command, *local, "--role-name", task_role["name"], "--", "true", env=env)
    one_line_error(result, 1, LOST)
    assert "AWS may have made a session already, so iam-sudo does not send it again" in (
        result.stderr
    )
    assert recorder.actions().count("AssumeRole") == 1


def test_assume_role_refused_as_throttling_is_sent_again(
    cli: Any,
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
) -> None:
    # A throttling refusal is AWS saying it did nothing: the retry is safe, and made.
    env, faults, recorder = faulty_aws
    faults["AssumeRole"] = "bare-429*1"
    result = cli("simulate", "--local", "--role-name", task_role["name"], "--", "true", env=env)
    assert result.returncode == 0, result.stderr
    assert recorder.actions().count("AssumeRole") == 2


@pytest.fixture
def lossy_lambda(stand_in: Any) -> Iterator[tuple[str, dict[str, str], localaws.Recorder]]:
    """A proxy in front of the Lambda stand-in: (its URL, its faults, its recorder)."""
    recorder = localaws.Recorder()
    faults: dict[str, str] = {}
    proxy = localaws.start_proxy(stand_in.url, recorder, faults=faults)
    yield f"http://127.0.0.1:{proxy.server_address[1]}", faults, recorder
    proxy.shutdown()


def test_a_lost_invoke_answer_is_not_sent_again(
    cli: Any,
    remote_env: dict[str, str],
    function_aws: localaws.LocalAws,
    lossy_lambda: tuple[str, dict[str, str], localaws.Recorder],
    task_role: dict[str, Any],
) -> None:
    # The function ran the whole simulation (its AssumeRole, its log line); the answer was
    # lost on the way back. Sending the event again would run a second one.
    url, faults, recorder = lossy_lambda
    faults["*"] = "lost*1"
    function_aws.recorder.clear()
    env = {**remote_env, "AWS_ENDPOINT_URL_LAMBDA": url}
    result = cli("simulate", "--role-name", task_role["name"], "--", "true", env=env)
    one_line_error(result, 1, LOST)
    assert "lambda:invoke" in result.stderr
    assert len(recorder.requests) == 1
    assert function_aws.recorder.actions().count("AssumeRole") == 1
    # With the answer delivered, the same request succeeds: one Invoke, one session.
    recorder.clear()
    function_aws.recorder.clear()
    result = cli("simulate", "--role-name", task_role["name"], "--", "true", env=env)
    assert result.returncode == 0, result.stderr
    assert len(recorder.requests) == 1
    assert function_aws.recorder.actions().count("AssumeRole") == 1


async def test_prune_s_delete_sent_again_after_a_lost_answer_counts_as_done(
    faulty_aws: tuple[dict[str, str], dict[str, str], localaws.Recorder],
    iam: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DeletePolicy is idempotent and keeps botocore's retries; the retry after a lost answer
    # finds nothing (NoSuchEntity): the policy is gone, as asked, and prune goes on.
    from iam_sudo.aws.iam_reader import IamReader
    from iam_sudo.aws.policy_store import PolicyStore
    from iam_sudo.aws.transports import AioTransport

    env, faults, recorder = faulty_aws
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    arn = iam.create_policy(
        PolicyName=f"iam-sudo-{prefix}gone",
        Path="/iam-sudo/",
        PolicyDocument=json.dumps(localaws.allow("s3:GetObject")),
    )["Policy"]["Arn"]
    faults["DeletePolicy"] = "lost*1"
    async with IamReader(AioTransport()) as reader:
        await PolicyStore(reader).delete([arn])
    assert recorder.actions().count("DeletePolicy") == 2
    assert arn not in {p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}

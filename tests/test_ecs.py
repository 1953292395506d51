"""The ECS credentials endpoint: what a command's SDK sees, and refreshing before expiry."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iam_sudo import Credentials
from iam_sudo.ecs import CredentialsServer


def creds(key: str, minutes: float) -> Credentials:
    return Credentials(
        key, f"secret-{key}", f"token-{key}", datetime.now(UTC) + timedelta(minutes=minutes)
    )


def get(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": token} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback http)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_it_serves_the_container_protocol_only_with_the_token() -> None:
    async def fetch() -> Credentials:
        raise AssertionError("not due")

    with CredentialsServer(creds("A", 60), fetch) as server:
        env = server.env({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_PROFILE": "p", "PATH": "/bin"})
        assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
        assert "AWS_ACCESS_KEY_ID" not in env
        assert "AWS_PROFILE" not in env
        token = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert len(token) >= 32
        status, body = get(server.url, token)
        assert status == 200
        assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
        assert body["AccessKeyId"] == "A"
        assert get(server.url, None)[0] == 401
        assert get(server.url, token + "x")[0] == 401


def test_credentials_are_refreshed_before_they_expire() -> None:
    fetched = threading.Event()

    async def fetch() -> Credentials:
        fetched.set()
        return creds("B", 60)

    # Already within the refresh window: the first refresh is due at once.
    with CredentialsServer(creds("A", 10), fetch, refresh_before=timedelta(minutes=15)) as server:
        assert fetched.wait(30)
        for _ in range(100):
            if server.current().access_key_id == "B":
                break
            threading.Event().wait(0.05)
        assert server.current().access_key_id == "B"
        assert server.refreshes == 1


def test_a_command_gets_the_endpoint_not_static_keys_and_its_sdk_uses_it(
    cli: Any, task_role: dict[str, Any]
) -> None:
    child = (
        "import json, os, boto3\n"
        "arn = boto3.client('sts').get_caller_identity()['Arn']\n"
        "print(json.dumps({'arn': arn, 'static': 'AWS_ACCESS_KEY_ID' in os.environ}))\n"
    )
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        "--ecs-server",
        sys.executable,
        "-c",
        child,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["arn"].endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}")
    assert seen["static"] is False


@pytest.mark.parametrize("extra", [[], ["--format", "env"]])
def test_the_endpoint_needs_a_command_and_no_format(
    cli: Any, task_role: dict[str, Any], extra: list[str]
) -> None:
    result = cli("simulate", "--local", "--role-name", task_role["name"], "--ecs-server", *extra)
    assert result.returncode == 2
    assert "--ecs-server serves a command" in result.stderr


def test_without_a_way_to_renew_it_serves_until_expiry() -> None:
    with CredentialsServer(creds("M", 5), None) as server:
        token = server.env({})["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert get(server.url, token)[1]["AccessKeyId"] == "M"
        assert server.refreshes == 0

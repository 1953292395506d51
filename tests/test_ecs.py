"""The ECS credentials endpoint: what a command's SDK sees, and refreshing before expiry."""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools import localaws
from iam_sudo import Credentials
from iam_sudo.cli.ecs import CredentialsServer
from tests.conftest import node_packages


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


WHOAMI_JS = """\
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
new STSClient({}).send(new GetCallerIdentityCommand({}))
  .then((r) => console.log("js " + r.Arn))
  .catch((e) => { console.log("js failed " + e.name + ": " + e.message); });
"""
WHOAMI_SH = (
    'printf "boto3 "; python -c "import boto3; '
    "print(boto3.client('sts').get_caller_identity()['Arn'])\" 2>&1 | tail -1\n"
    'printf "aws "; aws sts get-caller-identity --query Arn --output text 2>&1 | tail -1\n'
)


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """The AWS SDK for JavaScript v3's STS client, installed once into the test cache."""
    node = node_packages("client-sts")
    (node / "whoami.js").write_text(WHOAMI_JS)
    return node


def hostile_setup(
    kind: str, aws_env: dict[str, str], iam: Any, prefix: str, tmp_path: Path
) -> dict[str, str]:
    """An environment in which an SDK would find credentials before the container endpoint.

    Each kind is a set-up users really have; in each, the one iam-sudo serves must win.
    """
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    credentials = Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])
    other = localaws.create_role(
        iam,
        f"{prefix}Other",
        trust=localaws.trust_policy(("AWS", f"arn:aws:iam::{localaws.ACCOUNT_ID}:root")),
    )
    env = dict(aws_env)
    if kind == "process":
        # Your own keys through a credential_process in [default]; region and endpoint
        # only in the config file: the command needs them still.
        keys = json.dumps(
            {
                "Version": 1,
                "AccessKeyId": aws_env["AWS_ACCESS_KEY_ID"],
                "SecretAccessKey": aws_env["AWS_SECRET_ACCESS_KEY"],
            }
        )
        script = tmp_path / "creds.sh"
        script.write_text(f"#!/bin/sh\necho '{keys}'\n")
        script.chmod(0o755)
        config.write_text(
            f"[default]\ncredential_process = {script}\nregion = {localaws.REGION}\n"
            f"endpoint_url = {aws_env['AWS_ENDPOINT_URL']}\nmax_attempts = 2\n"
        )
        for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
            env.pop(name)
        env.pop("AWS_ACCESS_KEY_ID")
        env.pop("AWS_SECRET_ACCESS_KEY")
    elif kind == "role-and-sso":
        credentials.write_text(
            f"[base]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
            f"[default]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
        )
        config.write_text(
            f"[default]\nrole_arn = {other}\nsource_profile = base\n"
            "sso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\n"
            "sso_account_id = 123456789012\nsso_role_name = Admin\n"
            f"[profile dev]\nrole_arn = {other}\nsource_profile = base\n"
        )
        env["AWS_DEFAULT_PROFILE"] = "default"
    else:  # EKS / CI OIDC, and a container that already has an endpoint
        token = tmp_path / "token"
        token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
        env |= {
            "AWS_ROLE_ARN": other,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
            "AWS_ROLE_SESSION_NAME": "ci",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "not-ours",
        }
    return env | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


SETUPS = ["process", "role-and-sso", "web-identity"]


def served_identities(cli: Any, env: dict[str, str], role: str, script: str) -> dict[str, str]:
    result = cli(
        "simulate", "--local", "--role-name", role, "--ecs-server", "sh", "-c", script, env=env
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())


@pytest.mark.parametrize("setup", SETUPS)
def test_the_endpoint_is_the_only_credentials_boto3_and_the_aws_cli_find(
    cli: Any,
    aws_env: dict[str, str],
    iam: Any,
    prefix: str,
    tmp_path: Path,
    task_role: dict[str, Any],
    setup: str,
) -> None:
    env = hostile_setup(setup, aws_env, iam, prefix, tmp_path)
    seen = served_identities(cli, env, task_role["name"], WHOAMI_SH)
    simulated = f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}"
    assert seen["boto3"].endswith(simulated), seen
    assert seen["aws"].endswith(simulated), seen


@pytest.mark.parametrize("setup", SETUPS)
def test_the_endpoint_is_the_only_credentials_the_javascript_sdk_finds(
    cli: Any,
    aws_env: dict[str, str],
    iam: Any,
    prefix: str,
    tmp_path: Path,
    task_role: dict[str, Any],
    node_sdk: Path,
    setup: str,
) -> None:
    env = hostile_setup(setup, aws_env, iam, prefix, tmp_path)
    seen = served_identities(cli, env, task_role["name"], f"node {node_sdk / 'whoami.js'}")
    assert seen["js"].endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}"), seen

"""The ECS credentials endpoint: what a command's SDK sees, and refreshing before expiry."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools import localaws
from iam_sudo import Credentials
from iam_sudo.cli.ecs import CredentialsServer
from tests.fake_clock import FakeClock


def creds_at(clock: FakeClock, key: str, minutes: float) -> Credentials:
    return Credentials(key, f"secret-{key}", f"token-{key}", clock.in_(minutes * 60))


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


class CountingFetch:
    """A fetch counting its calls; each answer lives ``minutes`` from the fake clock's now."""

    def __init__(self, clock: FakeClock, minutes: float) -> None:
        self.clock = clock
        self.minutes = minutes
        self.calls = 0

    async def __call__(self) -> Credentials:
        self.calls += 1
        return Credentials(f"K{self.calls}", "secret", "token", self.clock.in_(self.minutes * 60))


def test_a_15_minute_session_asked_every_30_s_for_an_hour_renews_once_per_window() -> None:
    clock = FakeClock()
    fetch = CountingFetch(clock, 15)
    first = Credentials("K0", "secret", "token", clock.in_(900))
    with CredentialsServer(first, fetch, clock=clock) as server:
        token = server.env({})["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        for _ in range(119):  # 30 s apart: a simulated hour
            clock.advance(30)
            status, body = get(server.url, token)
            assert status == 200
            assert datetime.fromisoformat(body["Expiration"]) > clock.now()
            server.settle()
    # Renewed every 7.5 minutes (halfway through a 15-minute session), not at every ask.
    assert fetch.calls == 7
    assert server.requests == 119


def test_waking_from_suspend_serves_fresh_credentials_at_the_first_request() -> None:
    clock = FakeClock()
    fetch = CountingFetch(clock, 60)
    with CredentialsServer(creds_at(clock, "A", 60), fetch, clock=clock) as server:
        token = server.env({})["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        clock.suspend(2 * 3600)  # the wall clock moved, the monotonic one did not
        status, body = get(server.url, token)
        assert status == 200
        assert body["AccessKeyId"] == "K1"
        assert datetime.fromisoformat(body["Expiration"]) > clock.now()


def test_concurrent_requests_after_a_suspend_share_one_fetch() -> None:
    from concurrent.futures import ThreadPoolExecutor

    clock = FakeClock()
    counting = CountingFetch(clock, 60)
    server: CredentialsServer

    async def fetch() -> Credentials:
        # The fetch ends only once all 16 requests are waiting: each could have made its own.
        for _ in range(3000):
            if server.requests >= 16:
                break
            await asyncio.sleep(0.01)
        return await counting()

    with CredentialsServer(creds_at(clock, "A", 60), fetch, clock=clock) as server:
        token = server.env({})["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        clock.suspend(2 * 3600)  # everything held expired: every request waits for one fetch
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: get(server.url, token), range(16)))
    assert server.requests == 16
    assert counting.calls == 1
    assert {body["AccessKeyId"] for _, body in answers} == {"K1"}


def test_without_a_way_to_renew_expired_credentials_get_503_not_the_old_keys() -> None:
    clock = FakeClock()
    with CredentialsServer(creds_at(clock, "M", 15), None, clock=clock) as server:
        token = server.env({})["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        assert get(server.url, token)[1]["AccessKeyId"] == "M"
        clock.advance(15 * 60)
        status, body = get(server.url, token)
        assert status == 503
        assert body["code"] == "CredentialsExpired"
        assert "secret" not in json.dumps(body)


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


WHOAMI_SH = (
    'printf "boto3 "; python -c "import boto3; '
    "print(boto3.client('sts').get_caller_identity()['Arn'])\" 2>&1 | tail -1\n"
    'printf "aws "; aws sts get-caller-identity --query Arn --output text 2>&1 | tail -1\n'
)


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


ASK_OFTEN = """\
import json, os, urllib.request
url = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
for _ in range(int(os.environ["ASKS"])):
    request = urllib.request.Request(url, headers={"Authorization": token})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200
print("asked")
"""


@pytest.fixture
def simulated_hour(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeClock, list[tuple[Any, Any]]]:
    """The CLI run in this process on a fake clock that moves 30 s at each request the
    command makes to the endpoint (after any renewal in flight ends: a fetch takes no
    simulated time). moto's clock does not move with it: the expirations it answers are
    moved by the simulated time elapsed. Returns the clock and, per request, (simulated
    now, expiration served)."""
    from iam_sudo.aws.refreshing import Refreshing
    from iam_sudo.cli import ecs

    clock = FakeClock(datetime.now(UTC))
    served: list[tuple[Any, Any]] = []
    real_start = clock.wall
    from_sts = Credentials.from_sts

    def moved(item: Any) -> Credentials:
        found = from_sts(item)
        lag = timedelta(seconds=clock.wall - real_start)
        return Credentials(
            found.access_key_id,
            found.secret_access_key,
            found.session_token,
            found.expiration + lag,
        )

    get = Refreshing.get

    async def ticking_get(self: Any) -> Any:
        await self.settle()
        clock.advance(30)
        credentials = await get(self)
        served.append((clock.now(), credentials.expiration))
        return credentials

    monkeypatch.setattr(ecs, "system_clock", clock)
    monkeypatch.setattr(Credentials, "from_sts", staticmethod(moved))
    monkeypatch.setattr(Refreshing, "get", ticking_get)
    return clock, served


def run_in_process(*args: str) -> int:
    from iam_sudo.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


@pytest.mark.parametrize("how", ["assume", "simulate"])
def test_a_15_minute_session_served_for_a_simulated_hour_makes_one_assume_role_per_window(
    local_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    simulated_hour: tuple[FakeClock, list[tuple[Any, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    monkeypatch.setenv("ASKS", "119")  # 30 s apart: 59.5 simulated minutes
    source = ["assume"] if how == "assume" else ["simulate", "--local"]
    code = run_in_process(
        *source,
        "--role-name",
        task_role["name"],
        "--duration",
        "900",
        "--ecs-server",
        "--",
        sys.executable,
        "-c",
        ASK_OFTEN,
    )
    assert code == 0
    _, served = simulated_hour
    assert len(served) == 119
    assert all(expiration > now for now, expiration in served)
    # The first answer, then one renewal per 7.5 minutes: 8 in the hour (the issue saw
    # about 100 AssumeRole calls in 10 s, 66 for simulate --local).
    assert local_aws.recorder.actions("sts").count("AssumeRole") == 8


def test_a_two_hour_jump_of_the_wall_clock_serves_no_expired_credentials(
    local_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    simulated_hour: tuple[FakeClock, list[tuple[Any, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, served = simulated_hour
    from iam_sudo.aws.refreshing import Refreshing

    get = Refreshing.get
    asked = 0

    async def suspending_get(self: Any) -> Any:
        nonlocal asked
        asked += 1
        if asked == 3:
            clock.suspend(2 * 3600)  # the laptop sleeps between two requests
        return await get(self)

    monkeypatch.setattr(Refreshing, "get", suspending_get)
    monkeypatch.setenv("ASKS", "6")
    code = run_in_process(
        "assume", "--role-name", task_role["name"], "--ecs-server", "--",
        sys.executable, "-c", ASK_OFTEN,
    )  # fmt: skip
    assert code == 0
    assert len(served) == 6
    assert all(expiration > now for now, expiration in served)
    assert local_aws.recorder.actions("sts").count("AssumeRole") == 2


BOTO3_CALLS = """\
import boto3
sts = boto3.client("sts")
for _ in range(20):
    sts.get_caller_identity()
print("called")
"""
JS_CALLS = """\
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
(async () => {
  const sts = new STSClient({});
  for (let i = 0; i < 20; i++) await sts.send(new GetCallerIdentityCommand({}));
  console.log("called");
})().catch((e) => { console.log("failed " + e.name + ": " + e.message); process.exit(1); });
"""


def sdk_calls_through(server: CredentialsServer, argv: list[str], aws_env: dict[str, str]) -> str:
    env = server.env(aws_env, localaws.REGION)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_botocore_asking_inside_its_advisory_window_is_answered_without_a_fetch(
    aws_env: dict[str, str],
) -> None:
    # 14 minutes left: inside botocore's 15-minute advisory window, so botocore asks the
    # endpoint again before every call (botocore/credentials.py, RefreshableCredentials).
    fetch = CountingFetch(FakeClock(datetime.now(UTC)), 60)
    with CredentialsServer(creds("A", 14), fetch) as server:
        assert sdk_calls_through(server, [sys.executable, "-c", BOTO3_CALLS], aws_env) == "called"
        assert server.requests >= 20  # botocore re-asked at each call
        assert fetch.calls == 0  # and not one of them made a fetch


def test_the_js_sdk_asking_inside_its_5_minute_window_is_answered_without_a_fetch(
    aws_env: dict[str, str], node_sdk: Path, tmp_path: Path
) -> None:
    script = node_sdk / "calls.js"
    script.write_text(JS_CALLS)
    # 4 minutes left: the JS SDK treats them as expired and asks before every call
    # (@aws-sdk/credential-provider-node, credentialsTreatedAsExpired: < 300000 ms).
    fetch = CountingFetch(FakeClock(datetime.now(UTC)), 60)
    with CredentialsServer(creds("A", 4), fetch) as server:
        assert sdk_calls_through(server, ["node", str(script)], aws_env) == "called"
        assert server.requests >= 10  # the SDK re-asked (nearly) every call
        assert fetch.calls == 0


def test_assume_for_15_minutes_with_boto3_calling_often_makes_one_assume_role(
    cli: Any, local_aws: localaws.LocalAws, task_role: dict[str, Any]
) -> None:
    # The example: 900 s is inside botocore's advisory window from the start, so
    # boto3 asks the endpoint at every call; the endpoint answers from what it holds.
    result = cli(
        "assume", "--role-name", task_role["name"], "--duration", "900", "--ecs-server",
        "--", sys.executable, "-c", BOTO3_CALLS,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "called"
    assert local_aws.recorder.actions("sts").count("AssumeRole") == 1

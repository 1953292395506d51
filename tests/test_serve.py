"""`iam-sudo serve` end to end: three services as host processes, all day on a fake clock.

A "container" here is a host process started with nothing but its service's env file
(and the local AWS's endpoint): an empty home, no keys, no profile. It sees its own role
through its own SDK: boto3, the AWS CLI, the JS SDK v3.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devtools import localaws
from iam_sudo.core.compose import ServiceSpec, parse_service_option
from iam_sudo.core.refresh import refresh_age
from iam_sudo.settings.credentials import Credentials
from iam_sudo.steps.serve import ServeError, Stack
from tests.conftest import private_cache
from tests.fake_clock import FakeClock

BIN = Path(sys.executable).parent


@pytest.fixture
def stack_roles(iam: Any, prefix: str) -> dict[str, str]:
    """Two task roles to simulate and a real role to assume (trusting the account)."""
    api = localaws.create_role(
        iam, f"{prefix}ApiTaskRole", inline={"s3": localaws.allow("s3:GetObject")}
    )
    worker = localaws.create_role(
        iam, f"{prefix}WorkerTaskRole", inline={"sqs": localaws.allow("sqs:SendMessage")}
    )
    admin = localaws.create_role(
        iam,
        f"{prefix}Admin",
        trust=localaws.trust_policy(("AWS", f"arn:aws:iam::{localaws.ACCOUNT_ID}:root")),
    )
    return {"api": api, "worker": worker, "admin": admin}


def compose_text(prefix: str, admin_arn: str) -> str:
    return (
        "services:\n"
        f"  api:    {{ image: my/api, x-iam-sudo: {{ role: {prefix}ApiTaskRole }} }}\n"
        f"  worker: {{ image: my/worker, x-iam-sudo: {{ role: {prefix}WorkerTaskRole, "
        'principal: "Service:ecs-tasks.amazonaws.com" } }\n'
        f'  admin:  {{ image: my/admin, x-iam-sudo: {{ assume: "{admin_arn}" }} }}\n'
        "  db:     { image: postgres }\n"
    )


def read_env_file(path: Path) -> dict[str, str]:
    """docker's --env-file format: KEY=VALUE lines, # comments."""
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    )


def container_env(env_file: Path, home: Path, aws_url: str) -> dict[str, str]:
    """What a container started with ``--env-file`` has: that, and nothing of ours."""
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "AWS_ENDPOINT_URL": aws_url,  # the local AWS stands in for AWS itself
        **read_env_file(env_file),
    }


class Serving:
    """A real `iam-sudo serve` process and what it wrote."""

    def __init__(self, process: subprocess.Popen[str], project: Path, log: Path) -> None:
        self.process, self.project, self.log = process, project, log

    def env_file(self, service: str) -> Path:
        return self.project / f"iam-sudo.{service}.env"

    def token(self, service: str) -> str:
        return (self.project / ".iam-sudo" / service / "token").read_text()

    def url(self, service: str) -> str:
        return read_env_file(self.env_file(service))["AWS_CONTAINER_CREDENTIALS_FULL_URI"]

    def files(self) -> set[Path]:
        return {p for p in self.project.rglob("*") if p.is_file()}


@pytest.fixture
def serving(
    aws_env: dict[str, str], tmp_path: Path, prefix: str, stack_roles: dict[str, str]
) -> Iterator[Serving]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(compose_text(prefix, stack_roles["admin"]))
    log = tmp_path / "serve.log"
    env = {**aws_env, **private_cache(tmp_path)}
    args = [sys.executable, "-m", "iam_sudo", "serve", "--local", "--bind", "127.0.0.1"]
    with open(log, "w") as output:
        process = subprocess.Popen(
            [*args, "--port", "0", "--compose", str(project / "docker-compose.yml")],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    deadline = time.monotonic() + 120
    while "Ctrl-C stops serving" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not start: {log.read_text()}")
        time.sleep(0.1)
    yield Serving(process, project, log)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


WHOAMI_PY = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"


def run_as(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_three_services_each_see_their_own_role_through_their_own_sdk(
    serving: Serving,
    local_aws: localaws.LocalAws,
    stack_roles: dict[str, str],
    prefix: str,
    tmp_path: Path,
    node_sdk: Path,
) -> None:
    def env(service: str) -> dict[str, str]:
        return container_env(serving.env_file(service), tmp_path / f"home-{service}", local_aws.url)

    boto3_arn = run_as([sys.executable, "-c", WHOAMI_PY], env("api"))
    cli_arn = run_as(
        [str(BIN / "aws"), "sts", "get-caller-identity", "--query", "Arn", "--output", "text"],
        env("worker"),
    )
    js_arn = run_as(["node", str(node_sdk / "whoami.js")], env("admin"))
    assert boto3_arn.endswith(f"assumed-role/IAMSudoUser/iam-sudo-{prefix}ApiTaskRole")
    assert cli_arn.endswith(f"assumed-role/IAMSudoUser/iam-sudo-{prefix}WorkerTaskRole")
    assert js_arn.startswith("js arn:aws:sts::")
    assert f"assumed-role/{prefix}Admin/" in js_arn
    banner = serving.log.read_text()
    assert f"api: simulate {prefix}ApiTaskRole --local at http://127.0.0.1:" in banner
    assert "admin: assume arn:aws:iam::" in banner
    for service in ("api", "worker", "admin"):
        assert serving.token(service) not in banner  # never a secret on the terminal


def get(url: str, token: str | None, host: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": token} if token else {}
    if host:
        headers["Host"] = host
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_a_services_secret_opens_only_its_own_route_and_only_for_its_host(
    serving: Serving,
) -> None:
    api_token = serving.token("api")
    assert get(serving.url("api"), api_token)[0] == 200
    status, body = get(serving.url("worker"), api_token)
    assert status == 401
    assert b"AccessKeyId" not in body
    port = serving.url("api").split(":")[2].split("/")[0]
    status, body = get(serving.url("api"), api_token, host=f"rebound.example:{port}")
    assert status == 403
    assert b"AccessKeyId" not in body


@pytest.mark.slow
def test_ctrl_c_removes_every_file_it_wrote(serving: Serving) -> None:
    compose = serving.project / "docker-compose.yml"
    written = serving.files() - {compose}
    assert {p.name for p in written} >= {
        "docker-compose.iam-sudo.yml",
        "iam-sudo.api.env",
        "iam-sudo.worker.env",
        "iam-sudo.admin.env",
        "token",
    }
    for path in written:
        assert path.stat().st_mode & 0o077 == 0, path  # 0600, never readable by others
    serving.process.send_signal(signal.SIGINT)
    assert serving.process.wait(timeout=30) == 0
    assert serving.files() == {compose}
    # The token directories stay, empty: running containers have them mounted.
    assert all(not any(d.iterdir()) for d in (serving.project / ".iam-sudo").iterdir())
    assert "stopped; its files are removed" in serving.log.read_text()


@pytest.mark.slow
def test_sigterm_removes_the_files_too(serving: Serving) -> None:
    serving.process.send_signal(signal.SIGTERM)
    assert serving.process.wait(timeout=30) == 0
    assert serving.files() == {serving.project / "docker-compose.yml"}


def test_bad_input_is_one_line_and_writes_nothing(cli: Any, tmp_path: Path) -> None:
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  api: { x-iam-sudo: { role: A, principal: nocolon } }\n")
    result = cli("serve", "--local", "--compose", str(compose), "--bind", "127.0.0.1")
    assert result.returncode == 2
    assert "service api" in result.stderr
    assert "expected TYPE:ID" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [compose]
    result = cli("serve", "--local")
    assert result.returncode == 2
    assert "give --compose FILE or --service NAME=ROLE" in result.stderr


@pytest.mark.slow
def test_a_role_that_cannot_be_had_stops_the_start_naming_its_service(
    cli: Any, aws_env: dict[str, str], tmp_path: Path, prefix: str
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    result = cli(
        "serve",
        "--local",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--env-dir",
        str(tmp_path / "env"),
        "--service",
        f"ghost={prefix}NoSuchRole",
        env=env,
    )
    assert result.returncode == 1
    assert "cannot serve ghost:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not [p for p in (tmp_path / "env").rglob("*") if p.is_file()]


# -- all day: the refresh rule per role, on a fake clock ----------------------------------


def on_fake_clock(fetch: Any, clock: FakeClock) -> Any:
    """``fetch``'s credentials with the lifetime STS gave them, measured from the fake clock
    (moto dates them on the real one)."""

    async def shifted() -> Credentials:
        credentials = await fetch()
        left = credentials.expiration - datetime.now(UTC)
        return Credentials(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
            clock.now() + left,
        )

    return shifted


def stack_for(specs: list[ServiceSpec], sudo: Any, clock: FakeClock, env_dir: Path) -> Stack:
    from iam_sudo.cli.serve import _fetcher

    fetch_for = _fetcher(sudo, remote=False, function_name="iam-sudo")
    return Stack(
        specs,
        lambda spec: on_fake_clock(fetch_for(spec), clock),
        setup="host",
        address="127.0.0.1",
        port=0,
        env_dir=env_dir,
        region=localaws.REGION,
        clock=clock,
    )


async def ask(stack: Stack, service: str, clock: FakeClock) -> dict[str, Any]:
    """A service's SDK asking the server, then the renewal it may have started, done."""
    assert stack.server is not None
    url = f"http://127.0.0.1:{stack.server.port}/v2/credentials/{service}"
    token = stack.routes[service].secret
    status, body = await asyncio.to_thread(get, url, token)
    assert status == 200, body
    for _ in range(600):  # a renewal runs in the background (serve_while_refreshing)
        [row] = [row for row in stack.status() if row.service == service]
        due = row.refresh.refresh_due_at
        if due is None or due > clock.now():
            break
        await asyncio.sleep(0.05)
    return dict(json.loads(body))


def sessions_started(recorder: localaws.Recorder, session_name: str) -> int:
    return sum(1 for sent in recorder.sent("AssumeRole") if sent["RoleSessionName"] == session_name)


@pytest.mark.slow
async def test_a_15_minute_session_over_an_hour_costs_one_assume_role_per_window_per_role(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    stack_roles: dict[str, str],
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from iam_sudo.cli.sources import client

    for name, value in private_cache(tmp_path).items():
        monkeypatch.setenv(name, value)
    clock = FakeClock(datetime.now(UTC))
    specs = [
        ServiceSpec("api", "simulate", f"{prefix}ApiTaskRole", (("duration_seconds", 900),)),
        ServiceSpec("twin", "simulate", f"{prefix}ApiTaskRole", (("duration_seconds", 900),)),
        ServiceSpec("admin", "assume", stack_roles["admin"], (("duration_seconds", 900),)),
    ]
    local_aws.recorder.clear()
    async with client() as sudo, stack_for(specs, sudo, clock, tmp_path / "env") as stack:
        served_expired = 0
        for _ in range(3600 // 30):
            clock.advance(30)
            for service in ("api", "twin", "admin"):
                served = await ask(stack, service, clock)
                expiration = datetime.fromisoformat(served["Expiration"].replace("Z", "+00:00"))
                served_expired += expiration <= clock.now()
    # Renewed at half of 900 s (core.refresh), whoever asks, however often: the first
    # fetch and one per 450 s window after it. api and twin share one role's credentials.
    windows = 3600 // int(refresh_age(900))
    assert served_expired == 0
    assert sessions_started(local_aws.recorder, f"iam-sudo-{prefix}ApiTaskRole") == 1 + windows
    assert sessions_started(local_aws.recorder, f"iam-sudo-{prefix}Admin") == 1 + windows


@pytest.mark.slow
async def test_the_wall_clock_jumping_two_hours_serves_no_expired_credentials(
    aws_env: dict[str, str],
    local_aws: localaws.LocalAws,
    stack_roles: dict[str, str],
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from iam_sudo.cli.sources import client

    for name, value in private_cache(tmp_path).items():
        monkeypatch.setenv(name, value)
    clock = FakeClock(datetime.now(UTC))
    specs = [parse_service_option(f"api={prefix}ApiTaskRole")]
    async with client() as sudo, stack_for(specs, sudo, clock, tmp_path / "env") as stack:
        first = await ask(stack, "api", clock)
        clock.suspend(2 * 3600)  # a laptop asleep: the monotonic clock stood still
        after = await ask(stack, "api", clock)
        expiration = datetime.fromisoformat(after["Expiration"].replace("Z", "+00:00"))
        assert expiration > clock.now()
        assert after["AccessKeyId"] != first["AccessKeyId"]
        [row] = stack.status()
        assert row.asks == 2
        assert row.refresh.refreshed_at is not None


class Sts:
    """Fetches on the fake clock: fresh 1-hour credentials, until told to fail."""

    def __init__(self, clock: FakeClock, name: str) -> None:
        self.clock, self.name, self.calls, self.failing = clock, name, 0, False

    async def fetch(self) -> Credentials:
        self.calls += 1
        if self.failing:
            raise RuntimeError(f"ExpiredToken: the source session of {self.name} expired")
        key = f"{self.name.upper()}{self.calls}"
        return Credentials(key, "s", "t", self.clock.in_(3600))


async def test_a_role_that_fails_to_refresh_is_reported_and_only_its_service_gets_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from iam_sudo.cli.serve import StatusView

    for name, value in private_cache(tmp_path).items():
        monkeypatch.setenv(name, value)
    clock = FakeClock()
    sts = {name: Sts(clock, name) for name in ("ok", "flaky")}
    specs = [parse_service_option("ok=OkRole"), parse_service_option("flaky=FlakyRole")]
    stack = Stack(
        specs,
        lambda spec: sts[spec.name].fetch,
        setup="host",
        address="127.0.0.1",
        port=0,
        env_dir=tmp_path / "env",
        region=None,
        clock=clock,
    )
    async with stack:
        view = StatusView(stack, live=False)
        view.tick()
        sts["flaky"].failing = True
        clock.advance(41 * 60)  # past the 20-minute margin of 1-hour credentials
        held = await ask(stack, "flaky", clock)  # still valid: served while renewing
        assert held["AccessKeyId"] == "FLAKY1"
        for _ in range(100):
            if stack.status()[1].refresh.failures:
                break
            await asyncio.sleep(0.01)
        view.tick()
        shown = capsys.readouterr().err
        assert "flaky: refreshing simulate FlakyRole failed: ExpiredToken" in shown
        assert "ok: refreshing" not in shown
        clock.advance(20 * 60)  # what flaky holds has now expired
        assert stack.server is not None
        url = f"http://127.0.0.1:{stack.server.port}/v2/credentials/"
        status, body = await asyncio.to_thread(get, url + "flaky", stack.routes["flaky"].secret)
        assert status == 503
        assert "simulate FlakyRole: ExpiredToken" in json.loads(body)["Message"]
        assert (await ask(stack, "ok", clock))["AccessKeyId"] == "OK2"


def test_without_a_terminal_a_profile_that_asks_for_an_mfa_code_is_refused(
    cli: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/Dev\n"
        "source_profile = dev\nmfa_serial = arn:aws:iam::123456789012:mfa/me\n"
    )
    env = {k: v for k, v in aws_env.items() if not k.startswith("AWS_ACCESS_KEY")}
    env = {k: v for k, v in env.items() if k != "AWS_SECRET_ACCESS_KEY"} | {"AWS_PROFILE": "dev"}
    result = cli(
        "serve", "--local", "--env-dir", str(tmp_path / "env"), "--service", "a=R", env=env
    )
    assert result.returncode == 2
    assert "mfa_serial" in result.stderr
    assert "without a terminal" in result.stderr
    assert not (tmp_path / "env").exists()


@pytest.mark.slow
async def test_remote_serves_the_role_the_function_simulates(
    remote_env: dict[str, str],
    local_aws: localaws.LocalAws,
    task_role: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    from iam_sudo.cli.serve import _fetcher
    from iam_sudo.cli.sources import client

    for name, value in private_cache(tmp_path).items():
        monkeypatch.setenv(name, value)
    clock = FakeClock(datetime.now(UTC))
    spec = ServiceSpec(
        "api", "simulate", task_role["name"], (("principal", "Service:ecs-tasks.amazonaws.com"),)
    )
    async with client() as sudo:
        fetch_for = _fetcher(sudo, remote=True, function_name="iam-sudo")
        stack = Stack(
            [spec],
            fetch_for,
            setup="host",
            address="127.0.0.1",
            port=0,
            env_dir=tmp_path / "env",
            region=localaws.REGION,
            clock=clock,
        )
        async with stack:
            served = await ask(stack, "api", clock)
    sts = boto3.client(
        "sts",
        endpoint_url=local_aws.url,
        region_name=localaws.REGION,
        aws_access_key_id=served["AccessKeyId"],
        aws_secret_access_key=served["SecretAccessKey"],
        aws_session_token=served["Token"],
    )
    arn = sts.get_caller_identity()["Arn"]
    assert arn.endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}")


# -- the files it keeps: where, and what stops it --------------------------------------------


def sts_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *services: str, **kw: Any) -> Stack:
    """A stack of ``NAME=ROLE`` services whose roles come from :class:`Sts` (no AWS), its
    env files in ``tmp_path/env`` (a private home, as the cache's checks require)."""
    for name, value in private_cache(tmp_path).items():
        monkeypatch.setenv(name, value)
    clock = FakeClock()
    specs = [parse_service_option(text) for text in services]
    return Stack(
        specs,
        lambda spec: Sts(clock, spec.name).fetch,
        setup="host",
        address="127.0.0.1",
        port=0,
        env_dir=kw.pop("env_dir", tmp_path / "env"),
        region=None,
        clock=clock,
        **kw,
    )


async def test_a_service_may_be_named_like_the_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compose service name is letters, digits, '.', '_', '-' from a letter or digit:
    "serve.lock" is one, and its token directory must not be the lock file."""
    async with sts_stack(tmp_path, monkeypatch, "serve.lock=R", "serve=S") as stack:
        assert (stack.state_dir / "serve.lock" / "token").read_text() == stack.routes[
            "serve.lock"
        ].secret


async def test_a_lock_that_cannot_be_opened_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only file system or a symlink at the lock (opened O_NOFOLLOW: ELOOP)."""
    stack = sts_stack(tmp_path, monkeypatch, "api=R")
    stack.state_dir.mkdir(mode=0o700, parents=True)
    (stack.state_dir / ".serve.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ServeError, match=r"cannot lock .*\.serve\.lock: .*give another --env-dir"):
        await stack.__aenter__()
    assert not (tmp_path / "elsewhere").exists()
    assert not list(stack.env_dir.glob("iam-sudo.*"))


async def test_an_env_dir_others_may_write_is_refused_with_advice_about_env_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the credential cache's advice (IAM_SUDO_CACHE_DIR, --no-cache), which would not help."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)  # a umask of 002, as Debian and Ubuntu give users
    stack = sts_stack(tmp_path, monkeypatch, "api=R", env_dir=shared)
    with pytest.raises(ServeError) as raised:
        await stack.__aenter__()
    message = str(raised.value)
    assert f"{shared} is writable by group or others (mode 775)" in message
    assert "--env-dir" in message
    assert "IAM_SUDO_CACHE_DIR" not in message
    assert "cache" not in message
    assert list(shared.iterdir()) == []


@pytest.mark.parametrize("linked", [".iam-sudo", ".iam-sudo/api"])
async def test_tokens_are_never_written_through_a_symlinked_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linked: str
) -> None:
    stack = sts_stack(tmp_path, monkeypatch, "api=R")
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = stack.env_dir / linked
    link.parent.mkdir(mode=0o700, parents=True)
    link.symlink_to(target)
    with pytest.raises(ServeError, match=f"{link} is a symlink"):
        await stack.__aenter__()
    assert not [p for p in target.rglob("*") if p.is_file()]


async def test_a_role_that_cannot_be_had_at_start_is_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One line: not also logged as a failed renewal (nothing was renewed)."""
    stack = sts_stack(tmp_path, monkeypatch, "api=R", "twin=R", "ok=S")
    sts: dict[str, Sts] = {}

    def fetch_for(spec: ServiceSpec) -> Any:
        sts.setdefault(spec.role, Sts(FakeClock(), spec.role))
        sts[spec.role].failing = spec.role == "R"
        return sts[spec.role].fetch

    stack._fetch_for = fetch_for
    with pytest.raises(ServeError) as raised:
        await stack.__aenter__()
    assert str(raised.value) == (
        "cannot serve api, twin: ExpiredToken: the source session of R expired"
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert sts["R"].calls == 1  # api and twin share the role: asked once
    assert not list(stack.env_dir.glob("iam-sudo.*"))


async def test_each_role_is_fetched_once_at_start_and_its_status_says_when(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    stack = sts_stack(tmp_path, monkeypatch, "api=R", "twin=R")
    clock = FakeClock()
    inner = Sts(clock, "r")

    async def fetch() -> Credentials:
        calls.append("r")
        return await inner.fetch()

    stack._fetch_for = lambda spec: fetch
    async with stack:
        rows = stack.status()
        assert calls == ["r"]
        assert [row.refresh.fetches for row in rows] == [1, 1]
        assert all(row.refresh.refreshed_at is not None for row in rows)


# -- compose files: what a hostile or mistaken one gets ---------------------------------------

DUPLICATE_SERVICE = (
    "services:\n  api: { x-iam-sudo: ApiTaskRole }\n  api: { x-iam-sudo: { assume: Admin } }\n"
)
DUPLICATE_KEY = "services:\n  api: { x-iam-sudo: { role: ApiTaskRole, role: Admin } }\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # YAML keeps the later key silently; docker compose refuses the file.
        (DUPLICATE_SERVICE, "at line 3: duplicate key 'api'"),
        (DUPLICATE_KEY, "at line 2: duplicate key 'role'"),
        ("services: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        (b"services:\n  api: { x-iam-sudo: \xff }\n", "is not UTF-8 text"),
    ],
)
def test_a_compose_file_it_cannot_take_as_written_is_refused_in_one_line(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    import asyncclick as click

    from iam_sudo.cli.serve import _specs

    compose = tmp_path / "compose.yml"
    if isinstance(content, bytes):
        compose.write_bytes(content)
    else:
        compose.write_text(content)
    with pytest.raises(click.BadParameter, match=message):
        _specs(compose, ())


def test_anchors_and_merge_keys_are_compose_as_usual(tmp_path: Path) -> None:
    from iam_sudo.cli.serve import _specs

    compose = tmp_path / "compose.yml"
    compose.write_text(
        "x-role: &role { role: ApiTaskRole, duration: 3600 }\n"
        "services:\n"
        "  api: { x-iam-sudo: *role }\n"
        "  worker: { x-iam-sudo: { <<: *role, duration: 1800 } }\n"
    )
    specs, _ = _specs(compose, ())
    assert [dict(spec.options)["duration_seconds"] for spec in specs] == [3600, 1800]


def test_a_huge_compose_file_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncclick as click

    from iam_sudo.cli import serve as serve_cli

    monkeypatch.setattr(serve_cli, "MAX_COMPOSE_BYTES", 1024 * 1024)
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  api: { x-iam-sudo: R }\nx-pad: " + "a" * 1024 * 1024 + "\n")
    with pytest.raises(click.BadParameter, match="is larger than 1 MiB"):
        serve_cli._specs(compose, ())


async def test_the_banner_warns_when_it_listens_on_every_interface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sts_stack(tmp_path, monkeypatch, "api=R")
    stack._address = "0.0.0.0"  # noqa: S104 (what --bind 0.0.0.0 gives it)
    async with stack:
        assert any("listening on every interface" in w for w in stack.warnings)


def test_imds_with_bind_on_every_interface_stops_before_anything(cli: Any, tmp_path: Path) -> None:
    result = cli(
        "serve",
        "--local",
        "--bind",
        "0.0.0.0",  # noqa: S104 (what is checked)
        "--imds",
        "--env-dir",
        str(tmp_path / "env"),
        "--service",
        "api=R",
    )
    assert result.returncode == 2
    assert "an IMDS endpoint has no secret" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "env").exists()


async def test_the_override_says_how_to_use_it_without_naming_itself_as_the_compose_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = tmp_path / "env" / "docker-compose.iam-sudo.yml"
    stack = sts_stack(
        tmp_path,
        monkeypatch,
        "api=R",
        compose_services={"api": {"image": "my/api"}},
        override_path=override,
    )
    async with stack:
        header = override.read_text().splitlines()[0]
    assert "override for docker-compose.iam-sudo.yml" not in header
    assert "docker compose -f COMPOSE_FILE -f docker-compose.iam-sudo.yml up" in header


@pytest.mark.slow
def test_the_documented_host_process_command_runs_as_the_service_not_as_you(
    serving: Serving, local_aws: localaws.LocalAws, prefix: str, tmp_path: Path
) -> None:
    """docs/serve.md's command, word for word but for the local AWS's endpoint, in a shell
    where you have keys in the environment and a default profile: the SDKs take both before
    the container endpoint."""
    docs = (Path(__file__).parent.parent / "docs" / "serve.md").read_text()
    [command] = [line for line in docs.splitlines() if "iam-sudo.api.env)" in line]
    command = command.split("  #")[0].replace(
        "env -i ", f"env -i AWS_ENDPOINT_URL={local_aws.url} "
    )
    (serving.project / "app.py").write_text(WHOAMI_PY)
    home = tmp_path / "you"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAYOURSELF00000000\naws_secret_access_key = you\n"
    )
    yours = {
        **local_aws.env(),  # your own keys, in your shell
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
    }
    arn = run_as(["bash", "-c", command], yours, cwd=serving.project)
    assert arn.endswith(f"assumed-role/IAMSudoUser/iam-sudo-{prefix}ApiTaskRole")


@pytest.mark.parametrize("env_dir", ["env", "new/env"])
async def test_a_start_that_fails_leaves_no_directory_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_dir: str
) -> None:
    """Nothing was served, so nothing stays: not .iam-sudo, not the env dir it made."""
    (tmp_path / "env").mkdir(mode=0o700)
    stack = sts_stack(tmp_path, monkeypatch, "api=R", env_dir=tmp_path / env_dir)
    failing = Sts(FakeClock(), "R")
    failing.failing = True
    stack._fetch_for = lambda spec: failing.fetch
    with pytest.raises(ServeError):
        await stack.__aenter__()
    assert list((tmp_path / "env").iterdir()) == []
    assert not (tmp_path / "new").exists()


async def test_a_port_in_use_is_named_whichever_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMDS ports follow --port: when one of them is taken, the error names it."""
    import socket

    while True:  # a taken port whose neighbour below is free (for the credentials)
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port - 1))
                break
            except OSError:
                taken.close()
    try:
        stack = sts_stack(tmp_path, monkeypatch, "api=R")
        stack.specs = [ServiceSpec("api", "simulate", "R", imds=True)]
        stack._port = port - 1
        with pytest.raises(ServeError) as raised:
            await stack.__aenter__()
    finally:
        taken.close()
    assert str(raised.value).startswith(f"cannot listen on 127.0.0.1 port {port} (IMDS of api):")


async def test_the_live_status_line_fits_one_terminal_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redrawn with "\\r" and "erase line": a line that wrapped would leave rows behind."""
    from iam_sudo.cli.serve import StatusView

    services = [f"service-number-{n}=R{n}" for n in range(8)]
    async with sts_stack(tmp_path, monkeypatch, *services) as stack:
        monkeypatch.setenv("COLUMNS", "80")
        capsys.readouterr()
        StatusView(stack, live=True).tick()
        drawn = capsys.readouterr().err
    assert drawn.startswith("\r")
    line = drawn.removeprefix("\r").removeprefix("\033[2K")  # click drops it off a terminal
    assert "\n" not in line
    assert len(line) < 80
    assert line.endswith("...")


@pytest.mark.parametrize(
    "volume",
    [
        ".:/app",  # the usual live-reload mount of the project
        "./:/app:ro",
        {"type": "bind", "source": ".", "target": "/app"},
        "./.iam-sudo/admin:/secrets",
        "~/project:/app",
    ],
)
async def test_a_service_that_mounts_another_services_token_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, volume: Any
) -> None:
    """Its container (as root) would read that token and take that service's role."""
    project = tmp_path / "project"  # the private home is tmp_path: ~/project is the project
    stack = sts_stack(
        tmp_path,
        monkeypatch,
        "api=R",
        "admin=assume:Admin",
        env_dir=project,
        compose_services={"api": {"volumes": [volume]}, "admin": {}},
        override_path=project / "compose.iam-sudo.yml",
    )
    with pytest.raises(ServeError, match=r"service api mounts .* the token of service admin"):
        await stack.__aenter__()
    assert not project.exists()


@pytest.mark.parametrize(
    "volume", ["data:/var/lib/data", "/var/lib/data", "./src:/app/src", "./.iam-sudo/api:/t"]
)
async def test_named_volumes_and_mounts_beside_the_tokens_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, volume: str
) -> None:
    project = tmp_path / "project"
    stack = sts_stack(
        tmp_path,
        monkeypatch,
        "api=R",
        "admin=assume:Admin",
        env_dir=project,
        compose_services={"api": {"volumes": [volume]}, "admin": {}, "db": {"volumes": "x"}},
        override_path=project / "compose.iam-sudo.yml",
    )
    async with stack:
        assert stack.server is not None


async def test_services_that_cannot_start_for_one_reason_are_named_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sts_stack(tmp_path, monkeypatch, "api=A", "worker=W", "admin=assume:Admin")

    async def not_deployed() -> Credentials:
        raise RuntimeError("Function not found: deploy iam-sudo with `pulumi up`")

    stack._fetch_for = lambda spec: not_deployed
    with pytest.raises(ServeError) as raised:
        await stack.__aenter__()
    assert str(raised.value) == (
        "cannot serve api, worker, admin: Function not found: deploy iam-sudo with `pulumi up`"
    )


@pytest.mark.parametrize("kind", ["directory", "not utf-8", "fifo", "someone's file"])
async def test_something_else_where_an_env_file_goes_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Not a traceback (a directory, bytes that are not UTF-8), not a wait for a writer
    that never comes (a FIFO), and not replaced (a file of someone else's)."""
    stack = sts_stack(tmp_path, monkeypatch, "api=R")
    stack.env_dir.mkdir(mode=0o700)
    there = stack.env_dir / "iam-sudo.api.env"
    if kind == "directory":
        there.mkdir()
    elif kind == "fifo":
        os.mkfifo(there)
    else:
        there.write_bytes(b"\xff\xfe" if kind == "not utf-8" else b"API_KEY=mine\n")
    with pytest.raises(ServeError, match="exists and was not written by iam-sudo serve: move it"):
        await asyncio.wait_for(stack.__aenter__(), 60)
    assert there.exists()


def test_no_live_status_line_when_your_credentials_may_ask_for_an_mfa_code() -> None:
    """The live line erases its row every second; botocore's MFA prompt, asked on the same
    terminal when it renews your session, would be erased as it is asked."""
    from iam_sudo.cli.serve import live_status

    assert live_status(True, None)
    assert not live_status(True, "profile dev has mfa_serial: it is asked for here")
    assert not live_status(False, None)


async def test_imds_ports_past_the_last_port_are_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMDS ports follow --port: from 65535 the next is 65536 (OverflowError in bind)."""
    stack = sts_stack(tmp_path, monkeypatch, "api=R")
    stack.specs = [ServiceSpec("api", "simulate", "R", imds=True)]
    stack._port = 65535
    with pytest.raises(ServeError, match="--port 65535 leaves no room for the 1 IMDS ports"):
        await stack.__aenter__()

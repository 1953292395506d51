"""`iam-sudo console` end to end: the federation sign-in against loopback servers, the
enforced local AWS, the function and the federation stand-in (the pure parts:
tests/unit/test_console.py).

AWS facts are from the IAM User Guide, "Enable custom identity broker access to the AWS
console" (getSigninToken, the session JSON, Action=login, SessionDuration 900-43,200 s only
for AssumeRole called by an IAM user with long-term credentials, 15-minute tokens).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools import federation, localaws
from iam_sudo.aws import console
from iam_sudo.core.exceptions import (
    AccessDenied,
    AwsError,
    CommandError,
    EndpointUnreachable,
)
from iam_sudo.settings.credentials import Credentials
from tests.conftest import run_cli
from tests.integration.conftest import EnforcedWorld, enforced_world
from tests.unit.test_console import ACCOUNT, SECRET_CREDENTIALS, query

# An enforced world of its own: moto in this process.
pytestmark = pytest.mark.aws


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback TCP server answering each connection with the bytes set (none: silence)."""
    import socket

    answer: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            if answer:
                connection.sendall(answer[0])
                connection.close()
            else:
                held.append(connection)  # read the request, never answer

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/federation", answer
    listener.close()
    for connection in held:
        connection.close()


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (b"garbage, not HTTP\r\n\r\n", EndpointUnreachable, "something that is not HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", AwsError, ""),
        (None, EndpointUnreachable, "no answer from the federation endpoint"),
    ],
)
async def test_a_broken_or_silent_endpoint_is_one_line_without_the_url(
    raw_server: tuple[str, list[bytes]], answer: bytes | None, error: type[Exception], text: str
) -> None:
    from iam_sudo.aws.errors import Timeouts

    endpoint, answers = raw_server
    if answer is not None:
        answers.append(answer)
    with pytest.raises(error) as raised:
        await console.signin_token(
            endpoint, SECRET_CREDENTIALS, None, Timeouts(connect=0.5, read=0.5)
        )
    message = str(raised.value)
    assert text in message
    assert "\n" not in message
    for secret in ("secret", "token-of-the-session", "Session="):
        assert secret not in message


# --- opening the browser ---


async def test_the_browser_gets_a_private_page_s_path_that_leads_once_to_the_url() -> None:
    seen: dict[str, Any] = {}
    url = "https://signin.aws.amazon.com/federation?Action=login&SigninToken=SECRET"

    def browser(argument: str) -> bool:
        path = Path(urllib.parse.urlsplit(argument).path)
        seen["argument"] = argument
        seen["mode"] = stat.S_IMODE(path.stat().st_mode)
        seen["dir_mode"] = stat.S_IMODE(path.parent.stat().st_mode)
        page = path.read_text()
        seen["page"] = page
        seen["path"] = path
        target = page.split("url=", 1)[1].split('"', 1)[0]
        seen["first"] = _fetch(target)
        try:
            seen["second"] = _fetch(target)
        except Exception:  # refused or reset: iam-sudo already stopped serving it
            seen["second"] = ("closed", None)
        finally:
            finished.set()
        return True

    finished = threading.Event()
    await console.open_in_browser(url, opener=browser)
    assert finished.wait(30)
    assert seen["argument"].startswith("file://")
    assert "SECRET" not in seen["argument"]
    assert (seen["mode"], seen["dir_mode"]) == (0o600, 0o700)
    assert "SECRET" not in seen["page"]
    assert seen["first"] == (303, url)
    assert seen["second"][0] in (404, "closed"), "the loopback address answers once"
    assert not seen["path"].exists()
    assert not seen["path"].parent.exists()


async def test_no_browser_or_one_that_never_loads_the_page_is_one_line_pointing_at_url() -> None:
    with pytest.raises(CommandError, match=r"no web browser could be started.*--url"):
        await console.open_in_browser("https://x", opener=lambda argument: False)
    with pytest.raises(CommandError, match=r"did not load the sign-in page.*--url"):
        await console.open_in_browser("https://x", opener=lambda argument: True, wait=0.2)


def _fetch(url: str) -> tuple[int, str | None]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        with opener.open(url, timeout=10) as reply:
            return reply.status, reply.headers.get("Location")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location")


# --- end to end: enforced local AWS, the function, the federation stand-in ---

RULES = """\
rules:
  - allowed-callers: ["arn:aws:iam::123456789012:user/alice"]
    allowed-role-names: ["*TaskRole*"]
    allowed-principals: [{Service: ecs-tasks.amazonaws.com}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
"""
TASK = "console-TaskRole"
LOCAL_BASE = "ConsoleBase"
REAL_ROLE = "ConsoleReader"


@dataclass
class World(EnforcedWorld):
    federation: federation.Federation

    def env(self, user: str, base: dict[str, str], **extra: str) -> dict[str, str]:
        files = {name: base[name] for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")}
        signin = {console.FEDERATION_ENDPOINT_VARIABLE: self.federation.url}
        return self.client_env(user, base, **{**files, **signin, **extra})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    hub = enforced_world(tmp_path_factory.mktemp("console"), {"policy": RULES}, ("alice", "admin"))
    iam = hub.iam
    iam.attach_user_policy(
        UserName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    admin_trust = localaws.trust_policy(("AWS", f"arn:aws:iam::{ACCOUNT}:user/admin"))
    localaws.create_role(  # a base role carries the packed-policy Deny (core/duties.py)
        iam,
        LOCAL_BASE,
        trust=admin_trust,
        inline=localaws.guard(),
        managed=["arn:aws:iam::aws:policy/PowerUserAccess"],
    )
    localaws.create_role(
        iam, REAL_ROLE, trust=admin_trust, inline={"read": localaws.allow("s3:Get*")}
    )
    localaws.create_role(iam, TASK, inline={"p": localaws.allow("s3:GetObject")})
    world = World(**vars(hub), federation=federation.start(hub.aws.url))
    world.enforce()
    yield world
    world.federation.stop()
    world.stop()


def iam_sudo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=env)


def sign_in(world: World, url: str) -> federation.SignIn:
    """Follow the login URL as a browser would; the sign-in the stand-in recorded."""
    before = len(world.federation.sign_ins)
    status, location = _fetch(url)
    assert status == 302, status
    [signed_in] = world.federation.sign_ins[before:]
    assert location == signed_in.destination
    return signed_in


def secrets_of(world: World, user: str) -> list[str]:
    """Every secret the run could leak: the user's key, and every sign-in token issued."""
    return [world.users[user]["AWS_SECRET_ACCESS_KEY"], *world.federation.tokens]


def test_remote_console_url_signs_in_as_the_simulated_session_without_session_duration(
    world: World, aws_env: dict[str, str]
) -> None:
    before = len(world.federation.token_requests)
    result = iam_sudo(world.env("alice", aws_env), "console", "--role-name", TASK, "--url")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith(world.federation.url + "?")
    assert "\n" not in url
    params = query(url)
    assert params["Action"] == "login"
    assert params["Issuer"] == "iam-sudo"
    assert params["Destination"] == "https://console.aws.amazon.com/console/home?region=us-east-1"
    [request] = world.federation.token_requests[before:]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/IAMSudoUser/iam-sudo-{TASK}"
    assert request.arn == session
    # The function's session is a role chain: AWS refuses SessionDuration for it.
    assert request.session_duration is None
    assert "SessionDuration" not in request.params
    signed_in = sign_in(world, url)
    assert signed_in.arn == session
    assert signed_in.issuer == "iam-sudo"
    assert result.stderr == ""


def test_a_direct_local_simulation_sends_duration_as_session_duration(
    world: World, aws_env: dict[str, str]
) -> None:
    before = len(world.federation.token_requests)
    args = ["console", "--local", "--role-name", TASK, "--base-role", LOCAL_BASE]
    result = iam_sudo(
        world.env("admin", aws_env),
        *args,
        "--duration",
        "7200",
        "--url",
        "--destination",
        "ecs/v2/clusters",
        "--region",
        "eu-west-1",
    )
    assert result.returncode == 0, result.stderr
    [request] = world.federation.token_requests[before:]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{LOCAL_BASE}/iam-sudo-{TASK}"
    assert request.arn == session
    assert request.session_duration == "7200"
    signed_in = sign_in(world, result.stdout.strip())
    assert signed_in.arn == session
    assert signed_in.destination == (
        "https://console.aws.amazon.com/ecs/v2/clusters?region=eu-west-1"
    )


def test_a_refused_session_duration_is_asked_again_without_it(
    world: World, aws_env: dict[str, str]
) -> None:
    before = len(world.federation.token_requests)
    world.federation.refuse_session_duration = True
    try:
        result = iam_sudo(
            world.env("admin", aws_env),
            *("console", "--assume", "--role-name", REAL_ROLE, "--duration", "1800", "--url"),
        )
    finally:
        world.federation.refuse_session_duration = False
    assert result.returncode == 0, result.stderr
    durations = [r.session_duration for r in world.federation.token_requests[before:]]
    assert durations == ["1800", None]
    assert sign_in(world, result.stdout.strip()).arn.endswith(
        f"assumed-role/{REAL_ROLE}/iam-sudo-{REAL_ROLE}"
    )


def test_console_assume_opens_the_real_role_with_its_duration(
    world: World, aws_env: dict[str, str]
) -> None:
    before = len(world.federation.token_requests)
    result = iam_sudo(
        world.env("admin", aws_env),
        *("console", "--assume", "--role-name", REAL_ROLE, "--duration", "1800", "--url"),
        *("--destination", "s3"),
    )
    assert result.returncode == 0, result.stderr
    [request] = world.federation.token_requests[before:]
    assert request.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{REAL_ROLE}/iam-sudo-{REAL_ROLE}"
    assert request.session_duration == "1800"
    assert sign_in(world, result.stdout.strip()).destination == (
        "https://console.aws.amazon.com/s3/home?region=us-east-1"
    )


FAKE_BROWSER = """\
#!{python}
# Records its argv, reads the page it is given, and follows it as a browser would.
import json, os, sys, urllib.error, urllib.parse, urllib.request

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None

def get(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}), NoRedirect())
    try:
        with opener.open(url, timeout=10) as reply:
            return reply.status, reply.headers.get("Location")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location")

path = urllib.parse.urlsplit(sys.argv[1]).path
page = open(path).read()
redirect = page.split('url=', 1)[1].split('"', 1)[0]
first = get(redirect)
login = get(first[1])
with open({record!r}, "w") as out:
    json.dump(
        {{"argv": sys.argv, "env": dict(os.environ), "page": page, "first": first, "login": login}},
        out,
    )
"""


def test_the_browser_is_opened_with_no_secret_in_its_argv_or_in_the_logs(
    world: World, aws_env: dict[str, str], tmp_path: Path
) -> None:
    record = tmp_path / "browser.json"
    browser = tmp_path / "fake-browser"
    browser.write_text(FAKE_BROWSER.format(python=sys.executable, record=str(record)))
    browser.chmod(0o700)
    before = len(world.federation.sign_ins)
    result = iam_sudo(
        world.env("alice", aws_env, BROWSER=str(browser)),
        *("-v", "console", "--role-name", TASK, "--destination", "cloudwatch/home#logsV2:"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    seen = json.loads(record.read_text())
    [argument] = seen["argv"][1:]
    assert argument.startswith("file://")
    assert argument.endswith("/signin.html")
    assert seen["first"][0] == 303
    assert seen["login"][0] == 302
    [signed_in] = world.federation.sign_ins[before:]
    assert signed_in.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/IAMSudoUser/iam-sudo-{TASK}"
    assert signed_in.destination == (
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:"
    )
    login_url = seen["first"][1]
    token = query(login_url)["SigninToken"]
    assert token in world.federation.tokens
    for secret in [token, login_url, *secrets_of(world, "alice")]:
        assert secret not in " ".join(seen["argv"])
        assert secret not in seen["page"]
        assert secret not in result.stderr
        assert secret not in json.dumps(seen["env"])
    # Issue 22, 7: the browser inherited iam-sudo's own AWS_* credentials. It needs none.
    assert [name for name in seen["env"] if name.startswith(("AWS_", "IAM_SUDO_"))] == []
    assert seen["env"]["PATH"] == world.env("alice", aws_env)["PATH"]
    assert "opened the AWS console" in result.stderr
    assert not Path(urllib.parse.urlsplit(argument).path).exists(), "the page is removed"


def reader_credentials(world: World) -> Credentials:
    """Credentials of the real role, assumed by the admin user."""
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=world.aws.url,
        region_name=localaws.REGION,
        aws_access_key_id=world.users["admin"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=world.users["admin"]["AWS_SECRET_ACCESS_KEY"],
    )
    answer = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{REAL_ROLE}", RoleSessionName="console-test"
    )
    return Credentials.from_sts(answer["Credentials"])


async def test_nothing_secret_is_logged_at_debug(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = reader_credentials(world)
    environ = {console.FEDERATION_ENDPOINT_VARIABLE: world.federation.url}
    with caplog.at_level(logging.DEBUG):
        url = await console.console_login_url(credentials, region="us-east-1", environ=environ)
    token = query(url)["SigninToken"]
    # The stand-in and moto serve in this process, each request in a server thread: their
    # lines (the stand-in's boto3 call, moto's request dumps) are the harness's.
    ours = "\n".join(
        record.getMessage()
        for record in caplog.records
        if "process_request_thread" not in record.threadName
    )
    assert caplog.records, "DEBUG logging was on"
    for secret in (token, url, credentials.secret_access_key, credentials.session_token):
        assert secret not in ours


async def test_a_wrong_secret_is_refused_by_sts_and_reported_in_one_line(world: World) -> None:
    good = reader_credentials(world)
    wrong = Credentials(good.access_key_id, "not-the-secret", good.session_token, good.expiration)
    before = len(world.federation.token_requests)
    with pytest.raises(AccessDenied) as raised:
        await console.signin_token(world.federation.url, wrong, None)
    [request] = world.federation.token_requests[before:]
    assert request.arn is None, "STS refused the wrong secret"
    message = str(raised.value)
    assert "refused the session's credentials" in message
    assert "\n" not in message
    assert "not-the-secret" not in message
    assert good.session_token not in message


@pytest.mark.parametrize(
    ("setup", "text"),
    [
        ("unreachable", "cannot reach the federation endpoint"),
        ("garbage", "not a sign-in token"),
        ("500", "answered HTTP 500"),
    ],
)
def test_a_federation_endpoint_failure_is_one_line_exit_1_without_a_secret(
    world: World, aws_env: dict[str, str], setup: str, text: str
) -> None:
    extra = {}
    if setup == "unreachable":
        extra[console.FEDERATION_ENDPOINT_VARIABLE] = (
            f"http://127.0.0.1:{localaws.free_port()}/federation"
        )
    else:
        world.federation.fault = setup
    try:
        result = iam_sudo(
            world.env("alice", aws_env, **extra), "-v", "console", "--role-name", TASK, "--url"
        )
    finally:
        world.federation.fault = None
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert text in errors[0]
    assert "Traceback" not in result.stderr
    for secret in secrets_of(world, "alice"):
        assert secret not in result.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--mfa-serial", f"arn:aws:iam::{ACCOUNT}:mfa/me"], "--mfa-serial goes with --assume"),
        (["--assume", "--principal", "Service:ecs-tasks.amazonaws.com"], "drop --principal"),
        (["--assume", "--local"], "drop --remote/--local"),
        (["--assume", "--no-session-tags"], "drop --session-tags/--no-session-tags"),
        (["--duration", "7200"], "--duration goes with --local"),
        (["--assume", "--external-id", "x"], "invalid --external-id"),
        (["--assume", "--mfa-serial", "not-an-arn"], "--mfa-serial"),
        (["--destination", "https://example.com/"], "is not an https URL of the aws console"),
        (["--region", "us-iso-east-1"], "isolated AWS partition"),
        (["--region", "Mars"], "is not an AWS region name"),
    ],
)
def test_bad_console_options_are_usage_errors_before_any_request(
    world: World, aws_env: dict[str, str], args: list[str], text: str
) -> None:
    world.aws.recorder.clear()
    before = len(world.federation.token_requests)
    result = iam_sudo(world.env("alice", aws_env), "console", "--role-name", TASK, *args)
    assert result.returncode == 2, result.stderr
    assert text in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert world.aws.recorder.requests == []
    assert len(world.federation.token_requests) == before


def test_console_help_lists_the_role_options_of_simulate_and_assume_without_the_sdk() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "iam_sudo", "console", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0
    for option in (
        "--role-name",
        "--principal",
        "--base-role",
        "--remote / --local",
        "--function-name",
        "--duration",
        "--mfa-serial",
        "--external-id",
        "--assume",
        "--url",
        "--destination",
        "--region",
    ):
        assert option in result.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()}
    assert not {"botocore", "boto3", "aioboto3", "aiobotocore", "aiohttp"} & imported


def test_the_region_comes_from_the_profile_and_a_missing_profile_is_one_line(
    world: World, aws_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile gov]\nregion = us-gov-west-1\n")
    env = world.env("alice", aws_env, AWS_CONFIG_FILE=str(config))
    del env["AWS_REGION"], env["AWS_DEFAULT_REGION"]
    missing = iam_sudo({**env, "AWS_PROFILE": "nope"}, "console", "--role-name", TASK, "--url")
    assert missing.returncode == 1, missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "iam-sudo: error: the AWS profile 'nope' is not in your AWS config files; check AWS_PROFILE"
    ]
    # The profile's region picks the partition, checked before any request.
    gov = iam_sudo(
        {**env, "AWS_PROFILE": "gov"},
        *("console", "--role-name", TASK, "--destination", "https://console.aws.amazon.com/"),
    )
    assert gov.returncode == 2, gov.stderr
    assert "not an https URL of the aws-us-gov console" in gov.stderr


@pytest.mark.parametrize(
    ("signum", "code", "text"),
    [
        (signal.SIGINT, 130, "iam-sudo: aborted"),
        (signal.SIGTERM, 128 + signal.SIGTERM, "stopped by SIGTERM"),
        (signal.SIGHUP, 128 + signal.SIGHUP, "stopped by SIGHUP"),
    ],
)
def test_a_signal_while_waiting_for_the_browser_ends_it_at_once_and_removes_the_page(
    world: World, aws_env: dict[str, str], tmp_path: Path, signum: int, code: int, text: str
) -> None:
    # A browser that starts (exit 0) but never loads the page: iam-sudo waits for it.
    record = tmp_path / "argument"
    browser = tmp_path / "lazy-browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {record}.tmp && mv {record}.tmp {record}\n')
    browser.chmod(0o700)
    process = subprocess.Popen(
        [sys.executable, "-m", "iam_sudo", "console", "--role-name", TASK],
        env=world.env("alice", aws_env, BROWSER=str(browser)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):
            if record.exists() or process.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert record.exists(), process.communicate(timeout=5)
        page = Path(urllib.parse.urlsplit(record.read_text()).path)
        assert page.exists()
        process.send_signal(signum)
        # The first signal ends it: far sooner than the 120 s it would wait for the browser.
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert stderr.strip().splitlines() == [stderr.strip()], stderr
    assert text in stderr
    assert "Traceback" not in stderr
    assert not page.exists()
    assert not page.parent.exists()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--region", "us-gov-west-1"], "credentials are of partition aws (issued in your region"),
        (["--local", "--region", "cn-north-1"], "console region cn-north-1 is in partition aws-cn"),
        (
            [
                *("--local", "--base-role", f"arn:aws:iam::{ACCOUNT}:role/IAMSudoUser"),
                *("--region", "us-gov-east-1"),
            ],
            "partition aws (from iam ARN",
        ),
    ],
)
def test_a_console_of_another_partition_than_the_sessions_is_refused_before_any_request(
    world: World, aws_env: dict[str, str], args: list[str], text: str
) -> None:
    before = len(world.federation.token_requests)
    world.aws.recorder.clear()
    result = iam_sudo(world.env("alice", aws_env), "console", "--role-name", TASK, *args, "--url")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert text in lines[0]
    assert "give --region a region of aws" in lines[0]
    assert result.stdout == ""
    assert world.aws.recorder.requests == []
    assert len(world.federation.token_requests) == before


def test_on_a_terminal_it_says_it_waits_for_the_browser_and_ctrl_c_ends_it(
    world: World, aws_env: dict[str, str], tmp_path: Path
) -> None:
    import fcntl
    import pty
    import select
    import termios

    record = tmp_path / "argument"
    browser = tmp_path / "lazy-browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {record}.tmp && mv {record}.tmp {record}\n')
    browser.chmod(0o700)
    controller, terminal = pty.openpty()

    def own_terminal() -> None:  # a session of its own, with the pty as its terminal
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "iam_sudo", "console", "--role-name", TASK],
        env=world.env("alice", aws_env, BROWSER=str(browser)),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        preexec_fn=own_terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        for _ in range(600):
            if select.select([controller], [], [], 0.1)[0]:
                seen += os.read(controller, 4096)
            if b"waiting for your browser" in seen and record.exists():
                break
            assert process.poll() is None, seen
        assert b"waiting for your browser" in seen, seen
        os.write(controller, b"\x03")  # Ctrl-C, as the terminal sends it
        process.wait(timeout=20)
        while select.select([controller], [], [], 0.2)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    assert process.returncode == 130, seen
    text = seen.decode(errors="replace")
    assert "iam-sudo: aborted" in text
    assert "Traceback" not in text
    page = Path(urllib.parse.urlsplit(record.read_text()).path)
    assert not page.parent.exists()


def test_the_browser_gets_nothing_of_aws_or_iam_sudo_and_everything_else() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIA",
        "aws_secret_access_key": "lower case, as Windows matches it",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t",
        "IAM_SUDO_POLICY": "p",
        "BOTO_CONFIG": "/x",
        "DISPLAY": ":0",
        "BROWSER": "firefox",
        "HTTPS_PROXY": "http://proxy:3128",
        "AWSOME": "kept: not an AWS_ variable",
    }
    assert console.browser_environment(environ) == {
        "DISPLAY": ":0",
        "BROWSER": "firefox",
        "HTTPS_PROXY": "http://proxy:3128",
        "AWSOME": "kept: not an AWS_ variable",
    }


def test_console_help_says_how_assume_reads_the_role_name_and_simulate_keeps_its_own() -> None:
    def help_of(command: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "iam_sudo", command, "--help"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip

    assert "--assume: a name or an ARN" in " ".join(help_of("console").split())
    assert "--assume" not in help_of("simulate")

"""The command's world: its environment, its signals, and iam-sudo as a credential_process."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from iam_sudo import Credentials
from iam_sudo.cli.command import environment
from tests.conftest import AwsHome, private_cache

VENV_BIN = str(Path(sys.executable).parent)
CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def keys_in_credentials_file(aws_env: dict[str, str]) -> dict[str, str]:
    """The environment with the user's keys moved to [default] of the credentials file."""
    path = Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"[default]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {k: v for k, v in aws_env.items() if k not in CREDENTIAL_KEYS}
    return env | {"PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


def counting_iam_sudo(tmp_path: Path) -> tuple[Path, Path]:
    """An `iam-sudo` that logs each start to a file: (the script, the log)."""
    log = tmp_path / "starts.log"
    script = tmp_path / "bin" / "iam-sudo"
    script.parent.mkdir()
    script.write_text(
        f"#!/bin/sh\necho $$ >> {shlex.quote(str(log))}\n"
        f'exec {shlex.quote(sys.executable)} -m iam_sudo "$@"\n'
    )
    script.chmod(0o755)
    return script, log


def caller_arn_with(tool: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if tool == "aws":
        argv = ["aws", "sts", "get-caller-identity", "--query", "Arn", "--output", "text"]
    else:
        argv = [
            sys.executable,
            "-c",
            "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])",
        ]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90, check=False)


@pytest.mark.parametrize("tool", ["aws", "boto3"])
@pytest.mark.parametrize("no_cache", [False, True])
def test_a_profile_whose_iam_sudo_gets_credentials_from_itself_fails_fast_in_one_line(
    aws_env: dict[str, str], task_role: dict[str, Any], tmp_path: Path, tool: str, no_cache: bool
) -> None:
    # A line as `configure` wrote it before --source-profile: iam-sudo inherits
    # AWS_PROFILE=task from the SDK and would ask profile task for its own credentials.
    env = keys_in_credentials_file(aws_env) | private_cache(tmp_path)
    script, log = counting_iam_sudo(tmp_path)
    line = shlex.join(
        [
            str(script),
            "simulate",
            "--local",
            "--role-name",
            task_role["name"],
            "--format",
            "process",
        ]
        + (["--no-cache"] if no_cache else [])
    )
    Path(env["AWS_CONFIG_FILE"]).write_text(f"[profile task]\ncredential_process = {line}\n")
    result = caller_arn_with(tool, env | {"AWS_PROFILE": "task"})
    assert result.returncode != 0
    assert "iam-sudo is its own credential source" in result.stderr
    assert "iam-sudo configure task --source-profile PROFILE" in result.stderr
    assert "iam_sudo/" not in result.stderr, "a traceback through iam-sudo"
    # The SDK's iam-sudo, and one for each AWS service its own SDK built a client for.
    assert len(log.read_text().split()) <= 3


@pytest.mark.parametrize("tool", ["aws", "boto3"])
def test_a_configured_profile_exported_as_aws_profile_gets_the_simulated_role(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any], tmp_path: Path, tool: str
) -> None:
    env = keys_in_credentials_file(aws_env) | private_cache(tmp_path)
    configured = cli(
        "configure", "task", "simulate", "--local", "--role-name", task_role["name"], env=env
    )
    assert configured.returncode == 0, configured.stderr
    assert "--source-profile default" in Path(env["AWS_CONFIG_FILE"]).read_text()
    result = caller_arn_with(tool, env | {"AWS_PROFILE": "task"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}")


def test_configure_refuses_a_profile_as_its_own_source(
    cli: Any, aws_env: dict[str, str], local_aws: Any
) -> None:
    env = keys_in_credentials_file(aws_env)
    for args, extra in (
        (["default", "simulate", "--role-name", "X"], {}),
        (["task", "simulate", "--role-name", "X"], {"AWS_PROFILE": "task"}),
        (["task", "--source-profile", "task", "simulate", "--role-name", "X"], {}),
    ):
        result = cli("configure", *args, env=env | extra)
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1
        assert "give --source-profile PROFILE" in result.stderr
    assert not Path(env["AWS_CONFIG_FILE"]).exists()
    assert local_aws.recorder.requests == []


def test_configure_records_the_source_profile_given_after_the_profile(
    cli: Any, aws_env: dict[str, str]
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[profile dev]\nregion = us-east-1\n")
    result = cli("configure", "task", "--source-profile", "dev", "assume", "--role-name", "R")
    assert result.returncode == 0, result.stderr
    text = Path(aws_env["AWS_CONFIG_FILE"]).read_text()
    line = text.split("credential_process = ", 1)[1].splitlines()[0]  # a region may follow
    argv = shlex.split(line)
    assert argv[argv.index("--source-profile") + 1] == "dev"
    assert argv[-4:] == ["--role-name", "R", "--format", "process"]


def creds(minutes: float = 60) -> Credentials:
    return Credentials(
        "ASIANEW", "new-secret", "new-token", datetime.now(UTC) + timedelta(minutes=minutes)
    )


def test_nothing_from_an_earlier_session_reaches_the_command_beside_the_new_keys() -> None:
    stale = {
        "AWS_ACCESS_KEY_ID": "ASIAOLD",
        "AWS_SECRET_ACCESS_KEY": "old",
        "AWS_SESSION_TOKEN": "old-token",
        "AWS_SECURITY_TOKEN": "old-token",
        "AWS_CREDENTIAL_EXPIRATION": "2001-01-01T00:00:00Z",
        "AWS_ACCOUNT_ID": "999999999999",
        "AWS_CREDENTIAL_SCOPE": "us-west-2",
        "AWS_PROFILE": "dev",
        "AWS_DEFAULT_PROFILE": "dev",
        "IAM_SUDO_RESOLVING_PROFILES": "dev",
        "PATH": "/bin",
    }
    new = creds()
    env = environment(stale, new, "eu-west-1")
    assert env == {
        "AWS_ACCESS_KEY_ID": "ASIANEW",
        "AWS_SECRET_ACCESS_KEY": "new-secret",
        "AWS_SESSION_TOKEN": "new-token",
        "AWS_CREDENTIAL_EXPIRATION": new.expiration.isoformat(),
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PATH": "/bin",
    }


def test_a_command_run_under_a_stale_expiration_uses_its_new_credentials(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any]
) -> None:
    # iam-sudo's own keys are the shell's; an expiration left from an earlier session
    # would make the command's SDK refuse the new keys as "still expired".
    env = aws_env | {"AWS_SECURITY_TOKEN": "old", "AWS_ACCOUNT_ID": "999999999999"}
    child = (
        "import boto3, json, os\n"
        "arn = boto3.client('sts').get_caller_identity()['Arn']\n"
        "print(json.dumps([arn, os.environ.get('AWS_SECURITY_TOKEN'),"
        " os.environ['AWS_CREDENTIAL_EXPIRATION']]))\n"
    )
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        sys.executable,
        "-c",
        child,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    arn, legacy, expiration = json.loads(result.stdout.strip().splitlines()[-1])
    assert arn.endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}")
    assert legacy is None
    assert datetime.fromisoformat(expiration) > datetime.now(UTC)


def test_a_stale_expiration_beside_iam_sudos_own_keys_is_one_line(
    cli: Any, aws_env: dict[str, str]
) -> None:
    env = aws_env | {"AWS_CREDENTIAL_EXPIRATION": "2001-01-01T00:00:00Z"}
    result = cli("assume", "--role-name", "IAMSudoUser", "--format", "env", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "AWS_CREDENTIAL_EXPIRATION" in result.stderr
    assert "expired" in result.stderr


def test_the_region_of_the_removed_profile_stays_with_the_command(
    cli: Any, aws_env: dict[str, str], aws_home: AwsHome, task_role: dict[str, Any]
) -> None:
    aws_home.write_config("[profile dev]\nregion = eu-north-1\n")
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    child = (
        "import boto3, json, os\n"
        "print(json.dumps([boto3.session.Session().region_name, os.environ.get('AWS_REGION'),"
        " 'AWS_PROFILE' in os.environ]))\n"
    )
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        sys.executable,
        "-c",
        child,
        env=env | {"AWS_PROFILE": "dev"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["eu-north-1", "eu-north-1", False]


def ignored_signals(status: str) -> int:
    line = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return int(line.split()[1], 16)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_the_command_starts_with_the_signal_dispositions_a_shell_would_give_it(
    cli: Any, task_role: dict[str, Any]
) -> None:
    direct = subprocess.run(
        ["cat", "/proc/self/status"], capture_output=True, text=True, check=True
    ).stdout
    result = cli(
        "simulate", "--local", "--role-name", task_role["name"], "cat", "/proc/self/status"
    )
    assert result.returncode == 0, result.stderr
    seen = ignored_signals(result.stdout)
    assert not seen & (1 << (signal.SIGINT - 1)), "SIGINT ignored in the command"
    assert not seen & (1 << (signal.SIGQUIT - 1)), "SIGQUIT ignored in the command"
    assert seen == ignored_signals(direct)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_signals_ignored_for_iam_sudo_stay_ignored_for_the_command(
    aws_env: dict[str, str], task_role: dict[str, Any]
) -> None:
    # As under nohup or `cmd &` in a script: what the shell would have given it.
    argv = [sys.executable, "-m", "iam_sudo", "simulate", "--local", "--role-name"]
    result = subprocess.run(
        [*argv, task_role["name"], "cat", "/proc/self/status"],
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert result.returncode == 0, result.stderr
    assert ignored_signals(result.stdout) & (1 << (signal.SIGINT - 1))


def test_the_endpoint_settings_file_is_private(tmp_path: Path) -> None:
    from iam_sudo.cli.ecs import CredentialsServer

    with CredentialsServer(creds(), None) as server:
        env = server.env({"AWS_CONFIG_FILE": str(tmp_path / "none")}, "eu-west-1")
        path = Path(env["AWS_CONFIG_FILE"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.read_text() == "[default]\nregion = eu-west-1\n"
    assert not path.parent.exists()


@pytest.fixture
def black_hole() -> Any:
    """An endpoint that accepts connections and never answers."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def slow_assume(aws_env: dict[str, str], black_hole: str) -> tuple[list[str], dict[str, str]]:
    argv = [sys.executable, "-m", "iam_sudo", "assume", "--role-name"]
    argv += ["arn:aws:iam::123456789012:role/IAMSudoUser", "--format", "env"]
    env = aws_env | {
        "AWS_ENDPOINT_URL_STS": black_hole,
        "IAM_SUDO_READ_TIMEOUT": "4",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return argv, env


def test_a_slow_wait_is_said_on_a_terminal(aws_env: dict[str, str], black_hole: str) -> None:
    import pty

    argv, env = slow_assume(aws_env, black_hole)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(controller)
    seen = b"".join(chunks).decode()
    assert "iam-sudo: still waiting for AWS" in seen
    assert seen.count("still waiting") == 1
    assert process.returncode == 1
    assert process.stdout is not None
    assert process.stdout.read() == b""


def test_nothing_is_said_of_a_slow_wait_when_stderr_is_not_a_terminal(
    aws_env: dict[str, str], black_hole: str
) -> None:
    argv, env = slow_assume(aws_env, black_hole)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "still waiting" not in result.stderr
    assert result.stderr.count("\n") == 1


def own_source_env(aws_env: dict[str, str], tmp_path: Path, config: str) -> dict[str, str]:
    """iam-sudo's own credentials from profile dev of ``config``, nothing in the environment."""
    Path(aws_env["AWS_CONFIG_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(config)
    env = {k: v for k, v in aws_env.items() if k not in CREDENTIAL_KEYS}
    return env | {"AWS_PROFILE": "dev", "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n"
            "sso_role_name = Admin\n[sso-session corp]\nsso_region = us-east-1\n"
            "sso_start_url = https://corp.awsapps.com/start\n",
            "run `aws sso login --profile dev`",
        ),
        (
            "[profile dev]\ncredential_process = sh -c 'echo Welcome to corp; echo {}'\n",
            "must print only its JSON credentials",
        ),
        (
            "[profile dev]\ncredential_process = sh -c 'echo token expired >&2; exit 3'\n",
            "token expired; run the profile's credential_process by hand",
        ),
    ],
)
def test_a_failure_of_iam_sudos_own_credential_source_is_named_as_such(
    cli: Any, aws_env: dict[str, str], tmp_path: Path, local_aws: Any, config: str, message: str
) -> None:
    env = own_source_env(aws_env, tmp_path, config)
    result = cli(
        "assume", "--role-name", "arn:aws:iam::123456789012:role/R", "--format", "env", env=env
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "iam-sudo's own credentials (profile dev) failed" in lines[0]
    assert message in lines[0]
    assert "AWS_ENDPOINT_URL" not in lines[0]
    assert "denied" not in lines[0]
    assert local_aws.recorder.requests == []


def test_expired_own_credentials_are_not_called_denied(
    aws_env: dict[str, str], cli: Any, loopback: Any
) -> None:
    import http.server

    body = (
        b"<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
        b"<Message>The security token included in the request is expired</Message></Error>"
        b"</ErrorResponse>"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(400)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    result = cli(
        "assume",
        "--role-name",
        "arn:aws:iam::123456789012:role/R",
        "--format",
        "env",
        env=aws_env | {"AWS_ENDPOINT_URL_STS": loopback(Handler)},
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "iam-sudo's own credentials" in result.stderr
    assert "ExpiredToken" in result.stderr
    assert "security token included in the request is expired" in result.stderr
    assert "denied" not in result.stderr


def test_a_garbled_expiration_beside_iam_sudos_own_keys_is_one_line_naming_it(
    cli: Any, aws_env: dict[str, str]
) -> None:
    env = aws_env | {"AWS_CREDENTIAL_EXPIRATION": "garbage"}
    result = cli("assume", "--role-name", "IAMSudoUser", "--format", "env", env=env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "AWS_CREDENTIAL_EXPIRATION is 'garbage', not a time" in result.stderr
    # That variable alone: not a list of every setting that might be wrong.
    for other in ("AWS_ENDPOINT_URL", "AWS_MAX_ATTEMPTS", "config file"):
        assert other not in result.stderr


def test_a_cycle_through_a_role_arn_profile_is_one_line_naming_the_profile_to_reconfigure(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any], tmp_path: Path
) -> None:
    # task runs iam-sudo from dev; dev assumes a role from task's credentials: a cycle
    # `configure` now refuses, written here by hand as an older iam-sudo or a user could.
    env = keys_in_credentials_file(aws_env) | private_cache(tmp_path)
    line = shlex.join(
        [
            *(sys.executable, "-m", "iam_sudo", "--source-profile", "dev", "simulate"),
            *("--local", "--role-name", task_role["name"], "--format", "process"),
        ]
    )
    Path(env["AWS_CONFIG_FILE"]).write_text(
        f"[profile task]\ncredential_process = {line}\n"
        "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = task\n"
    )
    result = cli(
        "--source-profile", "task", "assume", "--role-name", "R", "--format", "env", env=env
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].count("error:") == 1, "not nested"
    assert "iam-sudo is its own credential source: profile task's credential_process" in lines[0]
    assert lines[0].endswith("naming a profile with your own credentials"), "not cut short"
    assert "iam-sudo configure task --source-profile PROFILE" in lines[0]

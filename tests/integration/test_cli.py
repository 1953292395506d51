"""The `iam-sudo` command as a user runs it, against a local AWS."""

import asyncio
import configparser
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from devtools import localaws
from iam_sudo import IamSudo
from tests.conftest import PRINT_IDENTITY, AwsHome, private_cache

ECS = "Service:ecs-tasks.amazonaws.com"


def one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert text in lines[0]


def test_help_lists_both_commands_and_their_options(cli: Any) -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert "assume" in result.stdout
    assert "simulate" in result.stdout
    result = cli("simulate", "--help")
    for option in ("--role-name", "--principal", "--base-role", "--remote / --local", "--profile"):
        assert option in result.stdout


def test_help_names_every_destination_and_summarises_every_command_without_cutting_it(
    cli: Any,
) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for destination in ("CMD...", "--profile", "--format", "--ecs-server"):
        assert destination in result.stdout
    listed = result.stdout.partition("Commands:")[2].strip().splitlines()
    names = {line.split()[0] for line in listed}
    assert names >= {"assume", "configure", "console", "prune", "report", "roles", "serve"}
    assert [line for line in listed if line.endswith("...")] == []


def test_help_and_usage_errors_do_not_load_the_aws_sdk() -> None:
    for args in (["--help"], ["simulate"], ["simulate", "--help"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "iam_sudo", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode in (0, 2)
        imported = {
            line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()
        }
        assert not {"botocore", "aioboto3", "aiobotocore", "aiohttp", "yaml"} & imported


def test_simulate_local_saves_a_profile_that_boto3_and_the_aws_cli_use(
    cli: Any,
    task_role: dict[str, Any],
    prefix: str,
    credentials_file: Path,
    aws_env: dict[str, str],
) -> None:
    credentials_file.parent.mkdir(parents=True)
    credentials_file.write_text("[keep]\naws_access_key_id = AKIAKEEP\n")
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        f"{prefix}stack-",
        "--principal",
        ECS,
        "--profile",
        "sim",
    )
    assert result.returncode == 0, result.stderr
    assert "saved as profile sim" in result.stderr
    assert oct(credentials_file.stat().st_mode & 0o777) == "0o600"

    parser = configparser.ConfigParser()
    parser.read(credentials_file)
    assert parser["keep"]["aws_access_key_id"] == "AKIAKEEP"
    assert set(parser["sim"]) == {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "expiration",
    }
    secret = parser["sim"]["aws_secret_access_key"]
    assert secret not in result.stdout + result.stderr, "secrets are never printed"

    expected = f"arn:aws:sts::123456789012:assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}"
    session = boto3.Session(profile_name="sim")
    assert session.client("sts").get_caller_identity()["Arn"] == expected

    aws = shutil.which("aws", path=os.path.dirname(sys.executable))
    assert aws, "the AWS CLI is a test dependency"
    env = {
        k: v
        for k, v in aws_env.items()
        if not k.startswith("AWS_ACCESS_KEY_ID") and "SECRET" not in k
    }
    output = subprocess.run(
        [aws, "sts", "get-caller-identity", "--profile", "sim"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(output.stdout)["Arn"] == expected


def test_simulate_runs_the_command_with_the_credentials_and_without_aws_profile(
    cli: Any, task_role: dict[str, Any], aws_env: dict[str, str], credentials_file: Path
) -> None:
    credentials_file.parent.mkdir(parents=True)
    credentials_file.write_text(
        f"[source]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {
        k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env["AWS_PROFILE"] = "source"
    # The command's own options need no `--`.
    script = f"import os; assert 'AWS_PROFILE' not in os.environ; {PRINT_IDENTITY}"
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        sys.executable,
        "-c",
        script,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}")


@pytest.mark.parametrize("code", [0, 3, 42])
def test_the_exit_code_is_the_commands(cli: Any, task_role: dict[str, Any], code: int) -> None:
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        "--",
        sys.executable,
        "-c",
        f"exit({code})",
    )
    assert result.returncode == code


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(
    cli: Any, task_role: dict[str, Any]
) -> None:
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = cli(
        "simulate", "--local", "--role-name", task_role["name"], sys.executable, "-c", suicide
    )
    assert result.returncode == 128 + 15


def run_until_ready(
    task_role: dict[str, Any], aws_env: dict[str, str], child: str
) -> subprocess.Popen[str]:
    """Run ``child`` as the simulated role in its own session; return once it says ready."""
    command = ["simulate", "--local", "--role-name", task_role["name"], sys.executable, "-c"]
    process = subprocess.Popen(
        [sys.executable, "-m", "iam_sudo", *command, child],
        env=aws_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_ctrl_c_goes_to_the_command_which_decides_the_exit_code(
    task_role: dict[str, Any], aws_env: dict[str, str]
) -> None:
    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(5))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    process = run_until_ready(task_role, aws_env, child)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole foreground group
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 5
    assert "Traceback" not in stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_iam_sudo_alone_is_forwarded_to_the_command(
    task_role: dict[str, Any], aws_env: dict[str, str], sig: signal.Signals
) -> None:
    child = (
        "import signal, sys, time\n"
        f"signal.signal({int(sig)}, lambda *_: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
        "sys.exit(3)\n"
    )
    process = run_until_ready(task_role, aws_env, child)
    process.send_signal(sig)  # to iam-sudo only, as kill or a supervisor does
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 7, stderr
    assert "Traceback" not in stderr


def test_a_script_without_a_shebang_is_126_in_one_line(
    cli: Any, task_role: dict[str, Any], tmp_path: Path
) -> None:
    script = tmp_path / "script"
    script.write_text("echo hello\n")
    script.chmod(0o755)
    result = cli("simulate", "--local", "--role-name", task_role["name"], str(script))
    one_line_error(result, 126, "Exec format error; a script needs a #! line")


def test_a_credentials_file_symlink_loop_is_one_line(
    cli: Any, task_role: dict[str, Any], aws_env: dict[str, str], tmp_path: Path
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    env = {**aws_env, "AWS_SHARED_CREDENTIALS_FILE": str(loop)}
    result = cli("simulate", "--local", "--role-name", task_role["name"], "--profile", "p", env=env)
    one_line_error(result, 1, "cannot write credentials file")
    assert loop.is_symlink()


def test_assume_runs_the_command_as_the_real_role(cli: Any, credentials_file: Path) -> None:
    result = cli(
        "assume",
        "--role-name",
        "IAMSudoUser",
        "--profile",
        "real",
        sys.executable,
        "-c",
        PRINT_IDENTITY,
    )
    assert result.returncode == 0, result.stderr
    assert "assumed-role/IAMSudoUser/iam-sudo-IAMSudoUser" in result.stdout
    assert "aws_session_token" in credentials_file.read_text()


def test_dry_run_prints_the_request_and_assumes_nothing(
    cli: Any, task_role: dict[str, Any], local_aws: Any
) -> None:
    result = cli("simulate", "--local", "--dry-run", "--role-name", task_role["name"])
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["Role"] == task_role["arn"]
    assert shown["RoleArn"] == "arn:aws:iam::123456789012:role/IAMSudoUser"
    assert shown["RoleSessionName"] == f"iam-sudo-{task_role['name']}"
    assert set(shown["PolicyArns"]) == set(task_role["managed"])
    assert len(shown["Policy"]["Statement"]) == 2, "three statements, two merged by action"
    assert "AssumeRole" not in local_aws.recorder.actions()


@pytest.mark.parametrize("extra", [["--remote"], ["--profile", "p"], ["true"]])
def test_dry_run_is_local_and_writes_or_runs_nothing(
    cli: Any, task_role: dict[str, Any], extra: list[str]
) -> None:
    local = [] if extra == ["--remote"] else ["--local"]
    result = cli("simulate", *local, "--dry-run", "--role-name", task_role["name"], *extra)
    one_line_error(result, 2, "--dry-run goes with --local")


def test_duration_is_sent_to_sts_within_its_limits(
    cli: Any, task_role: dict[str, Any], local_aws: Any
) -> None:
    result = cli(
        "simulate", "--local", "--duration", "7200", "--role-name", task_role["name"], "true"
    )
    assert result.returncode == 0, result.stderr
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["DurationSeconds"] == "7200"
    for bad in ("60", "50000", "soon"):
        result = cli("assume", "--duration", bad, "--role-name", "IAMSudoUser", "true")
        one_line_error(result, 2, "--duration")
    result = cli("simulate", "--duration", "7200", "--role-name", task_role["name"], "true")
    one_line_error(result, 2, "--duration goes with --local")


def test_without_profile_or_command_it_is_a_usage_error(cli: Any) -> None:
    for command in ("assume", "simulate"):
        result = cli(command, "--role-name", "x")
        assert result.returncode == 2
        assert "specify --profile, a command to run, --format, or some of them" in result.stderr


def test_remote_is_the_default_and_needs_the_function(
    cli: Any, task_role: dict[str, Any], local_aws: Any, credentials_file: Path
) -> None:
    result = cli("simulate", "--role-name", task_role["name"], "--profile", "p")
    one_line_error(result, 1, "iam-sudo")
    assert "pulumi up" in result.stderr
    # A bare function name is invoked in the caller's own account: one GetCallerIdentity
    # names it, for the proof's audience (the function's ARN). No IAM, nothing else.
    assert [r.action for r in local_aws.recorder.requests if r.service != "lambda"] == [
        "GetCallerIdentity"
    ]
    assert [r.service for r in local_aws.recorder.requests][-1] == "lambda"
    assert not credentials_file.exists()


def test_command_not_found_exits_127(cli: Any, task_role: dict[str, Any]) -> None:
    result = cli("simulate", "--local", "--role-name", task_role["name"], "no-such-command-xyz")
    one_line_error(result, 127, "command not found: no-such-command-xyz")


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--role-name", "NoSuchRoleAnywhere"], {}, 1, "no role matches name 'NoSuchRoleAnywhere'"),
        (["--role-name", "{prefix}stack-"], {}, 1, "2 roles match name"),
        (["--role-name", "{prefix}stack-", "--principal", "ecs"], {}, 2, "expected TYPE:ID"),
        (
            ["--role-name", "{prefix}stack-", "--base-role", "bad name"],
            {},
            1,
            "not a valid IAM role name",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {"IAM_SUDO_POLICY": "allowed-role-names: [\n"},
            1,
            "invalid sudo policy",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {
                "IAM_SUDO_POLICY": "allowed-role-names: ['x*']\n"
                "allowed-principals: [{'*': '*'}]\nallowed-base-roles: ['*']"
            },
            1,
            "sudo policy allows no role matching name",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {
                "IAM_SUDO_POLICY": "allowed-role-names: ['*']\n"
                "allowed-principals: {}\nallowed-base-roles: ['*']"
            },
            1,
            "allowed-principals must be a list",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {"AWS_ACCESS_KEY_ID": None},
            1,
            "no AWS credentials found",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {"AWS_PROFILE": "missing"},
            1,
            "profile 'missing' is not",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"},
            1,
            "cannot reach the",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {"AWS_ENDPOINT_URL": "not-a-url"},
            1,
            "invalid AWS setting: Invalid endpoint: not-a-url",
        ),
        (
            ["--role-name", "{prefix}stack-TaskRole"],
            {"AWS_MAX_ATTEMPTS": "many"},
            1,
            "invalid AWS setting",
        ),
    ],
)
def test_bad_input_is_one_line_the_right_exit_code_and_nothing_written(
    cli: Any,
    task_role: dict[str, Any],
    prefix: str,
    aws_env: dict[str, str],
    credentials_file: Path,
    args: list[str],
    env: dict[str, str | None],
    code: int,
    message: str,
) -> None:
    run_env = {**aws_env, **{k: v for k, v in env.items() if v is not None}}
    for name in (k for k, v in env.items() if v is None):
        run_env.pop(name)
        run_env.pop("AWS_SECRET_ACCESS_KEY")
    argv = [a.format(prefix=prefix) for a in args]
    result = cli(
        "simulate",
        "--local",
        *argv,
        "--profile",
        "p",
        sys.executable,
        "-c",
        "print('ran')",
        env=run_env,
    )
    one_line_error(result, code, message)
    assert "ran" not in result.stdout
    assert not credentials_file.exists()


def test_dry_run_shows_the_policies_a_large_role_needs_and_creates_none(
    cli: Any, iam: Any, prefix: str, local_aws: Any
) -> None:
    name = f"{prefix}Large"
    localaws.create_role(
        iam, name, inline=localaws.too_large_inline("L"), Tags=[{"Key": "team", "Value": "a"}]
    )
    result = cli("simulate", "--local", "--dry-run", "--role-name", name)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    needed = shown["PoliciesNeeded"]
    assert needed
    assert {p["Arn"] for p in needed} <= set(shown["PolicyArns"])
    assert all(p["Path"] == "/iam-sudo/" for p in needed)
    assert shown["PlaintextCharacters"] <= 2048
    assert shown["Tags"] == [{"Key": "team", "Value": "a"}]
    assert any("resource-based policies" in line for line in shown["Fidelity"])
    assert "CreatePolicy" not in local_aws.recorder.actions()
    assert "AssumeRole" not in local_aws.recorder.actions()


def test_verbose_says_what_the_session_cannot_reproduce_and_how_sts_packed_it(
    cli: Any, iam: Any, prefix: str
) -> None:
    name = f"{prefix}Explained"
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "s3:DeleteObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "a"}},
            }
        ],
    }
    localaws.create_role(
        iam,
        name,
        inline={"p": localaws.allow("s3:*"), "d": deny},
        Tags=[{"Key": "team", "Value": "a"}],
    )
    result = cli("-v", "simulate", "--local", "--role-name", name, "--", "true")
    assert result.returncode == 0, result.stderr
    assert "aws:PrincipalTag/team (for the role: 'a'): holds for the role: condition dropped" in (
        result.stderr
    )
    assert "STS packed the session policies and tags to" in result.stderr
    assert "not reproduced: resource-based policies" in result.stderr


def test_prune_deletes_only_the_iam_sudo_policies_no_role_needs(
    cli: Any, iam: Any, prefix: str, local_aws: Any, aws_env: dict[str, str]
) -> None:
    keep, drop = f"{prefix}KeepMe", f"{prefix}DropMe"
    localaws.create_role(iam, keep, inline=localaws.too_large_inline("K"))
    localaws.create_role(iam, drop, inline=localaws.too_large_inline("D"))
    for name in (keep, drop):
        assert cli("simulate", "--local", "--role-name", name, "--", "true").returncode == 0
    dropped = json.loads(cli("simulate", "--local", "--dry-run", "--role-name", drop).stdout)
    kept = json.loads(cli("simulate", "--local", "--dry-run", "--role-name", keep).stdout)
    for policy in iam.list_role_policies(RoleName=drop)["PolicyNames"]:
        iam.delete_role_policy(RoleName=drop, PolicyName=policy)
    outside = iam.create_policy(
        PolicyName="iam-sudo-0000",
        Path="/other/",
        PolicyDocument=json.dumps(localaws.allow("s3:*")),
    )["Policy"]["Arn"]
    unneeded = {p["Arn"] for p in dropped["PoliciesNeeded"]}
    # Created a moment ago: a concurrent simulation may be about to pass them by ARN.
    preview = cli("prune", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.split() == []
    # Older ones (here: of any age) go, unless someone attached one to something.
    attached = iam.create_policy(
        PolicyName=f"iam-sudo-{prefix}attached",
        Path="/iam-sudo/",
        PolicyDocument=json.dumps(localaws.allow("s3:GetObject")),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=keep, PolicyArn=attached)
    rest = unneeded

    async def prune(dry_run: bool) -> list[str]:
        async with IamSudo() as sudo:
            return await sudo.prune_policies(dry_run=dry_run, min_age=timedelta(0))

    assert set(asyncio.run(prune(dry_run=True))) == set(rest)
    assert "DeletePolicy" not in local_aws.recorder.actions()
    assert set(asyncio.run(prune(dry_run=False))) == set(rest)
    remaining = {p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}
    assert not set(rest) & remaining
    assert attached in remaining
    assert {p["Arn"] for p in kept["PoliciesNeeded"]} <= remaining
    assert outside in remaining


@pytest.mark.parametrize("name", ["env", "process", "powershell"])
def test_format_prints_only_the_credentials_to_stdout(
    cli: Any, task_role: dict[str, Any], name: str
) -> None:
    result = cli(
        "simulate", "--local", "--role-name", task_role["name"], "--format", name, "--no-cache"
    )
    assert result.returncode == 0, result.stderr
    assert "ASIA" in result.stdout
    if name == "process":
        assert json.loads(result.stdout)["Version"] == 1
    assert "iam-sudo" not in result.stdout


def test_an_unknown_format_is_a_usage_error(cli: Any, task_role: dict[str, Any]) -> None:
    result = cli("simulate", "--local", "--role-name", task_role["name"], "--format", "yaml")
    assert result.returncode == 2
    assert "Invalid value for '--format'" in result.stderr


def test_credential_process_answers_from_the_cache_without_aws(
    cli: Any, task_role: dict[str, Any], local_aws: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    args = ("simulate", "--local", "--role-name", task_role["name"], "--format", "process")
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    local_aws.recorder.clear()
    second = cli(*args, env=env)
    assert second.stdout == first.stdout
    assert local_aws.recorder.requests == [], "a hit makes no request"
    fresh = cli(*args, "--no-cache", env=env)
    assert json.loads(fresh.stdout)["AccessKeyId"] != json.loads(first.stdout)["AccessKeyId"]
    [cached] = (tmp_path / "cache").glob("*.json")
    cached.write_text("{not json")
    replaced = cli(*args, env=env)
    assert replaced.returncode == 0
    assert json.loads(cached.read_text())["Version"] == 1


def test_a_cache_hit_imports_no_aws_sdk(
    task_role: dict[str, Any], aws_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    args = ["simulate", "--local", "--role-name", task_role["name"], "--format", "process"]
    warm = subprocess.run(
        [sys.executable, "-m", "iam_sudo", *args], env=env, capture_output=True, check=True
    )
    probe = (
        "import sys, runpy; sys.argv = ['iam-sudo', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('iam_sudo', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('botocore', 'boto3', 'aiobotocore', 'aioboto3', 'aiohttp', 'yaml'))\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.encode() == warm.stdout
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_many_processes_asking_at_once_refresh_once(
    task_role: dict[str, Any], aws_env: dict[str, str], local_aws: Any, tmp_path: Path
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    args = ["simulate", "--local", "--role-name", task_role["name"], "--format", "process"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "iam_sudo", *args], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outputs = {p.communicate(timeout=120)[0] for p in processes}
    assert len(outputs) == 1, "all got the same credentials"
    assert local_aws.recorder.actions().count("AssumeRole") == 1


def test_configure_writes_a_credential_process_profile_every_aws_tool_uses(
    cli: Any, task_role: dict[str, Any], aws_env: dict[str, str], tmp_path: Path
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("# mine\n[profile other]\nregion = eu-west-1\n")
    env = {**aws_env, **private_cache(tmp_path)}
    # Your own credentials, as a user keeps them: in the default profile.
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[default]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    result = cli(
        "configure", "task", "simulate", "--local", "--role-name", task_role["name"], env=env
    )
    assert result.returncode == 0, result.stderr
    text = config.read_text()
    assert text.startswith("# mine\n[profile other]\nregion = eu-west-1\n")
    assert "[profile task]\ncredential_process = " in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    identity = subprocess.run(
        [
            "aws",
            "sts",
            "get-caller-identity",
            "--profile",
            "task",
            "--query",
            "Arn",
            "--output",
            "text",
        ],
        env={
            k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert identity.returncode == 0, identity.stderr + config.read_text()
    assert identity.stdout.strip().endswith(
        f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}"
    )


def test_configure_refuses_a_profile_that_gets_credentials_otherwise(
    cli: Any, aws_env: dict[str, str]
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    text = "[profile sso]\nsso_session = corp\n"
    config.write_text(text)
    result = cli("configure", "sso", "simulate", "--role-name", "X")
    one_line_error(result, 1, "profile sso already gets credentials another way (sso_session in")
    assert config.read_text() == text
    bad = cli("configure", "x", "simulate", "--role-name", "X", "--", "true")
    assert bad.returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--session-name", "a b"], "invalid --session-name"),
        (["--external-id", "x"], "invalid --external-id"),
        (["--mfa-serial", "nope"], "invalid --mfa-serial"),
        (["--mfa-serial", "arn:aws:iam::123456789012:mfa/me", "--token-code", "12345"], "6 digits"),
    ],
)
def test_bad_assume_options_fail_before_any_request(
    cli: Any, local_aws: Any, args: list[str], message: str
) -> None:
    result = cli("assume", "--role-name", "IAMSudoUser", *args, "--format", "env")
    one_line_error(result, 2, message)
    assert local_aws.recorder.requests == []


def test_assume_passes_mfa_external_id_and_session_name_to_sts(cli: Any, local_aws: Any) -> None:
    result = cli(
        "assume",
        "--role-name",
        "IAMSudoUser",
        "--mfa-serial",
        "arn:aws:iam::123456789012:mfa/me",
        "--token-code",
        "123456",
        "--external-id",
        "ext-42",
        "--session-name",
        "alice-debug",
        "--format",
        "env",
    )
    assert result.returncode == 0, result.stderr
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["SerialNumber"] == "arn:aws:iam::123456789012:mfa/me"
    assert sent["TokenCode"] == "123456"
    assert sent["ExternalId"] == "ext-42"
    assert sent["RoleSessionName"] == "alice-debug"
    assert "123456" not in result.stdout + result.stderr


def test_mfa_serial_comes_from_the_calling_profile(
    cli: Any, local_aws: Any, aws_env: dict[str, str]
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[default]\nmfa_serial = arn:aws:iam::123456789012:mfa/from-profile\n")
    no_code = cli("assume", "--role-name", "IAMSudoUser", "--format", "env")
    one_line_error(no_code, 2, "needs --token-code when not run on a terminal")
    result = cli(
        "assume", "--role-name", "IAMSudoUser", "--token-code", "654321", "--format", "env"
    )
    assert result.returncode == 0, result.stderr
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["SerialNumber"] == "arn:aws:iam::123456789012:mfa/from-profile"


def test_roles_locally_lists_the_roles_your_policy_allows(
    cli: Any, task_role: dict[str, Any], aws_env: dict[str, str], prefix: str
) -> None:
    env = {
        **aws_env,
        "IAM_SUDO_POLICY": "allowed-role-names: ['*TaskRole*']\nallowed-principals: [{'*': '*'}]\n"
        "allowed-base-roles: ['*']\n",
    }
    result = cli("roles", "--local", "--principal", "Service:ecs-tasks.amazonaws.com", env=env)
    assert result.returncode == 0, result.stderr
    mine = [line for line in result.stdout.splitlines() if line.startswith(prefix)]
    assert mine == [f"{task_role['name']}\tService:ecs-tasks.amazonaws.com"]


def test_a_bare_role_name_becomes_the_arn_iam_gives_with_its_path(
    cli: Any, iam: Any, prefix: str, local_aws: Any
) -> None:
    name = f"{prefix}deployer"
    arn = localaws.create_role(
        iam,
        name,
        trust=localaws.trust_policy(("AWS", f"arn:aws:iam::{localaws.ACCOUNT_ID}:root")),
        Path="/ci/",
    )
    assert ":role/ci/" in arn
    result = cli("assume", "--role-name", name, "--format", "env")
    assert result.returncode == 0, result.stderr
    [sent] = local_aws.recorder.sent("AssumeRole")
    assert sent["RoleArn"] == arn


def test_a_bare_role_name_that_does_not_exist_is_one_line(cli: Any, local_aws: Any) -> None:
    result = cli("assume", "--role-name", "NoSuchRoleAnywhere", "--format", "env")
    one_line_error(result, 1, "NoSuchRoleAnywhere")
    assert "AssumeRole" not in local_aws.recorder.actions()


def test_bare_iam_sudo_prints_its_usage_without_an_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "iam_sudo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Usage: iam-sudo" in result.stderr + result.stdout
    assert "error" not in (result.stderr + result.stdout).split("Commands:")[0].lower()
    assert "Traceback" not in result.stderr


def test_verbose_works_after_the_subcommand_too(cli: Any, task_role: dict[str, Any]) -> None:
    for args in (["-v", "simulate"], ["simulate", "-v"]):
        result = cli(*args, "--local", "--role-name", task_role["name"], "--format", "env")
        assert result.returncode == 0, result.stderr
        assert "iam-sudo: simulating" in result.stderr


@pytest.mark.parametrize("name", ["a]b", "", " padded", "DEFAULT", "x\ny"])
def test_an_invalid_profile_is_refused_before_any_request(
    cli: Any, local_aws: Any, name: str
) -> None:
    result = cli("assume", "--role-name", "IAMSudoUser", "--profile", name)
    one_line_error(result, 2, "--profile")
    assert local_aws.recorder.requests == []


def test_configure_refuses_a_profile_the_credentials_file_would_shadow(
    cli: Any, aws_env: dict[str, str]
) -> None:
    credentials = Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])
    credentials.parent.mkdir(parents=True, exist_ok=True)
    # Left by an earlier `--profile task`: botocore reads these before credential_process.
    text = "[task]\naws_access_key_id = ASIAOLD\naws_secret_access_key = s\naws_session_token = t\n"
    credentials.write_text(text)
    result = cli("configure", "task", "simulate", "--role-name", "X")
    one_line_error(
        result, 1, "remove aws_access_key_id, aws_secret_access_key, aws_session_token from its"
    )
    assert str(credentials) in result.stderr
    assert credentials.read_text() == text
    assert not Path(aws_env["AWS_CONFIG_FILE"]).exists()


@pytest.mark.parametrize(
    "header", ["profile task", "profile   task", 'profile "task"', "profile 'task'"]
)
def test_configure_updates_the_section_botocore_reads_however_its_header_is_spelt(
    cli: Any, aws_env: dict[str, str], header: str
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[{header}]\nregion = eu-west-1\n")
    result = cli("configure", "task", "simulate", "--role-name", "X")
    assert result.returncode == 0, result.stderr
    session = boto3.session.Session(profile_name="task")
    scoped = session._session.get_scoped_config()
    assert scoped["region"] == "eu-west-1"
    assert "--role-name X --format process" in scoped["credential_process"]
    assert config.read_text().count("[") == 1


def test_configure_refuses_a_profile_name_sdks_would_read_differently(
    cli: Any, aws_env: dict[str, str]
) -> None:
    result = cli("configure", "my task", "simulate", "--role-name", "X")
    one_line_error(result, 1, "invalid profile name 'my task'")
    assert not Path(aws_env["AWS_CONFIG_FILE"]).exists()


def test_a_credential_process_merely_mentioning_iam_sudo_is_not_ours(
    cli: Any, aws_env: dict[str, str]
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    text = "[profile task]\ncredential_process = /opt/vault-creds --name iam-sudo\n"
    config.write_text(text)
    result = cli("configure", "task", "simulate", "--role-name", "X")
    one_line_error(result, 1, "already gets credentials another way (credential_process")
    assert config.read_text() == text


@pytest.fixture
def lambda_scopes(loopback: Any) -> Any:
    """A Lambda endpoint that records the region each request was signed for, and 404s."""
    import http.server

    scopes: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            scope = self.headers.get("Authorization", "").split("Credential=")[1].split(",")[0]
            scopes.append(scope.split("/")[2])
            body = b'{"Type":"User","Message":"Function not found"}'
            self.send_response(404)
            self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return loopback(Handler), scopes


@pytest.mark.parametrize(
    ("variables", "config", "region"),
    [
        ({"AWS_REGION": "eu-west-1"}, "", "eu-west-1"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, "", "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-west-2"}, "[default]\nregion = ap-south-1\n", "us-west-2"),
        ({"AWS_PROFILE": "dev"}, "[profile dev]\nregion = ap-south-1\n", "ap-south-1"),
    ],
)
def test_remote_invokes_the_function_in_the_region_the_aws_cli_would_use(
    cli: Any,
    aws_env: dict[str, str],
    lambda_scopes: Any,
    variables: dict[str, str],
    config: str,
    region: str,
) -> None:
    url, scopes = lambda_scopes
    Path(aws_env["AWS_CONFIG_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(config)
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    env |= variables | {"AWS_ENDPOINT_URL_LAMBDA": url}
    result = cli("simulate", "--role-name", "X", "--format", "env", env=env)
    assert result.returncode == 1
    assert scopes
    assert set(scopes) == {region}


def test_remote_without_any_region_stops_in_one_line_before_any_request(
    cli: Any, aws_env: dict[str, str], lambda_scopes: Any, local_aws: Any
) -> None:
    url, scopes = lambda_scopes
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    result = cli(
        "simulate",
        "--role-name",
        "X",
        "--format",
        "env",
        env=env | {"AWS_ENDPOINT_URL_LAMBDA": url},
    )
    one_line_error(result, 1, "no AWS region for lambda: set AWS_REGION")
    assert scopes == []
    assert local_aws.recorder.requests == []


def test_role_not_found_on_remote_points_at_iam_sudo_roles(
    cli: Any, remote_env: dict[str, str], prefix: str
) -> None:
    result = cli("simulate", "--role-name", f"{prefix}Nothing", "--format", "env", env=remote_env)
    one_line_error(result, 1, "no role matches")
    assert "`iam-sudo roles`" in result.stderr
    assert "aws iam" not in result.stderr


@pytest.mark.parametrize(
    ("config", "credentials", "extra", "profile", "text"),
    [
        # iam-sudo's own source (here also a credential_process): the next run would be the role.
        ("[default]\ncredential_process = /bin/false\n", "", [], "default", "own credentials"),
        ("[profile src]\n", "", ["--source-profile", "src"], "src", "own credentials"),
        # botocore's AssumeRoleProvider, web identity and SSO come before the file's keys.
        (
            "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = base\n",
            "",
            [],
            "dev",
            "through role_arn in the AWS config file: AWS tools would keep using it",
        ),
        ("[profile sso]\nsso_session = corp\nsso_account_id = 1\n", "", [], "sso", "sso_session"),
        ("[profile w]\nweb_identity_token_file = /t\n", "", [], "w", "web_identity_token_file"),
        ("", "[dev]\nrole_arn = arn:aws:iam::1:role/R\n", [], "dev", "in the credentials file"),
        # ... and the file's keys before credential_process: `configure task` would be undone.
        (
            "[profile task]\ncredential_process = iam-sudo simulate --role-name X\n",
            "",
            [],
            "task",
            "through credential_process in the AWS config file: the saved keys would silently",
        ),
        ("[profile k]\naws_access_key_id = AKIAX\n", "", [], "k", "access keys in the AWS config"),
    ],
)
def test_profile_refuses_a_profile_that_gets_credentials_another_way(
    cli: Any,
    aws_env: dict[str, str],
    local_aws: Any,
    task_role: dict[str, Any],
    config: str,
    credentials: str,
    extra: list[str],
    profile: str,
    text: str,
) -> None:
    config_file = Path(aws_env["AWS_CONFIG_FILE"])
    credentials_file = Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(config)
    credentials_file.write_text(credentials)
    local_aws.recorder.clear()
    args = ["simulate", "--local", "--role-name", task_role["name"], "--profile", profile]
    result = cli(*extra, *args)
    one_line_error(result, 1, text)
    assert f"profile {profile} " in result.stderr
    assert "--profile" in result.stderr
    assert local_aws.recorder.requests == []
    assert config_file.read_text() == config
    assert credentials_file.read_text() == credentials


def test_botocore_uses_role_arn_before_the_credentials_files_keys(tmp_path: Path) -> None:
    # The premise of the refusal above, from botocore itself: AssumeRoleProvider precedes
    # SharedCredentialProvider in create_credential_resolver.
    import botocore.session

    (tmp_path / "config").write_text(
        "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = base\n"
    )
    (tmp_path / "credentials").write_text(
        "[base]\naws_access_key_id = AKIAB\naws_secret_access_key = b\n"
        "[dev]\naws_access_key_id = ASIAD\naws_secret_access_key = d\naws_session_token = t\n"
    )
    session = botocore.session.Session(profile="dev")
    session.set_config_variable("config_file", str(tmp_path / "config"))
    session.set_config_variable("credentials_file", str(tmp_path / "credentials"))
    assert session.get_credentials().method == "assume-role"


def test_profile_may_replace_keys_iam_sudo_saved_there_before(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any]
) -> None:
    args = ["simulate", "--local", "--role-name", task_role["name"], "--profile", "sim"]
    assert cli(*args).returncode == 0
    result = cli(*args)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("config", "args", "text"),
    [
        ("", ["simulate", "--role-name", "X", "--ecs-server"], "drop --ecs-server"),
        (
            "",
            ["assume", "--role-name", "R", "--mfa-serial", "arn:aws:iam::123456789012:mfa/me"],
            "--mfa-serial needs a fresh MFA code at every refresh",
        ),
        (
            "",
            [
                "assume",
                "--role-name",
                "R",
                "--mfa-serial",
                "arn:aws:iam::123456789012:mfa/me",
                "--token-code",
                "123456",
            ],
            "--token-code is good once",
        ),
        (
            "[default]\nmfa_serial = arn:aws:iam::123456789012:mfa/me\n",
            ["assume", "--role-name", "R"],
            "profile default has mfa_serial, which asks for an MFA code, and no one can type it",
        ),
        ("", ["simulate", "--role-name", "X", "--duration", "7200"], "--duration goes with"),
        ("", ["assume", "--role-name", "R", "--session-name", "a b"], "invalid --session-name"),
        (
            "",
            ["simulate", "--role-name", "X", "--bogus"],
            "to configure, `simulate`: No such option '--bogus'",
        ),
    ],
)
def test_configure_refuses_options_that_would_fail_at_every_use_and_writes_nothing(
    cli: Any, aws_env: dict[str, str], local_aws: Any, config: str, args: list[str], text: str
) -> None:
    config_file = Path(aws_env["AWS_CONFIG_FILE"])
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(config)
    local_aws.recorder.clear()
    result = cli("configure", "task", *args)
    one_line_error(result, 2, text)
    assert config_file.read_text() == config
    assert local_aws.recorder.requests == []


@pytest.mark.parametrize(
    ("environ", "source_region", "expected"),
    [
        ({}, "eu-west-1", "eu-west-1"),  # the source profile's
        ({"AWS_REGION": "ap-south-1"}, "eu-west-1", "ap-south-1"),  # as the AWS CLI: env first
    ],
)
def test_configure_gives_the_new_profile_the_region_it_resolves(
    cli: Any,
    aws_env: dict[str, str],
    environ: dict[str, str],
    source_region: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[profile dev]\nregion = {source_region}\n")
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    result = cli(
        "configure",
        "task",
        "--source-profile",
        "dev",
        "simulate",
        "--role-name",
        "X",
        env={**env, **environ},
    )
    assert result.returncode == 0, result.stderr
    assert f"profile task gets region {expected} (it had none)" in result.stderr
    # What an SDK run with the profile (and no region in its environment) finds.
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    session = boto3.session.Session(profile_name="task")
    assert session.region_name == expected


def test_configure_keeps_the_profile_s_own_region(cli: Any, aws_env: dict[str, str]) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[profile task]\nregion = eu-north-1\n")
    result = cli("configure", "task", "simulate", "--role-name", "X")
    assert result.returncode == 0, result.stderr
    assert "gets region" not in result.stderr
    assert config.read_text().count("region") == 1
    assert "region = eu-north-1" in config.read_text()


@pytest.mark.parametrize(
    ("environ", "config", "text"),
    [
        ({"AWS_REGION": "us_east_1"}, "", "AWS_REGION is 'us_east_1', not an AWS region name"),
        (
            {"AWS_REGION": "", "AWS_DEFAULT_REGION": "eu west 1"},
            "",
            "AWS_DEFAULT_REGION is 'eu west 1', not an AWS region name",
        ),
        ({}, "[default]\nregion = -eu-\n", "region of profile default in"),
    ],
)
def test_a_malformed_region_is_one_line_naming_where_it_was_set(
    cli: Any,
    aws_env: dict[str, str],
    local_aws: Any,
    environ: dict[str, str],
    config: str,
    text: str,
) -> None:
    config_file = Path(aws_env["AWS_CONFIG_FILE"])
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(config)
    env = {k: v for k, v in aws_env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    local_aws.recorder.clear()
    result = cli("assume", "--role-name", "IAMSudoUser", "--format", "env", env=env | environ)
    one_line_error(result, 1, text)
    assert "use one such as us-east-1" in result.stderr
    assert "AWS_ENDPOINT_URL" not in result.stderr
    assert local_aws.recorder.requests == []


@pytest.mark.parametrize(
    ("args", "environ", "text"),
    [
        (["--base-role", "Nope"], {}, "the base role Nope (given with --base-role) does not"),
        ([], {"IAM_SUDO_BASE_ROLE": "Nope"}, "the base role Nope (set by IAM_SUDO_BASE_ROLE)"),
    ],
)
def test_a_missing_base_role_is_named_as_the_base_role_and_where_it_was_chosen(
    cli: Any,
    aws_env: dict[str, str],
    task_role: dict[str, Any],
    args: list[str],
    environ: dict[str, str],
    text: str,
) -> None:
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        *args,
        "--format",
        "env",
        env=aws_env | environ,
    )
    one_line_error(result, 1, text)
    assert "--base-role or IAM_SUDO_BASE_ROLE" in result.stderr


def test_assume_with_a_part_of_a_name_says_it_takes_the_exact_name_or_an_arn(
    cli: Any, task_role: dict[str, Any]
) -> None:
    part = task_role["name"][-6:]
    result = cli("assume", "--role-name", part, "--format", "env")
    one_line_error(result, 1, f"there is no role named exactly {part}")
    assert "exact name or its ARN" in result.stderr
    assert "iam-sudo roles" in result.stderr
    result = cli("console", "--assume", "--role-name", part, "--url")
    one_line_error(result, 1, f"there is no role named exactly {part}")


@pytest.mark.parametrize(
    ("config", "chain"),
    [
        (
            "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = task\n",
            "task -> dev -> task",
        ),
        (
            "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = b\n"
            "[profile b]\ncredential_process = iam-sudo --source-profile task assume "
            "--role-name R --format process\n",
            "task -> a -> b -> task",
        ),
    ],
)
def test_configure_refuses_a_source_profile_that_leads_back_to_the_profile(
    cli: Any, aws_env: dict[str, str], config: str, chain: str
) -> None:
    config_file = Path(aws_env["AWS_CONFIG_FILE"])
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(config)
    source = chain.split(" -> ")[1]
    result = cli("configure", "task", "--source-profile", source, "simulate", "--role-name", "X")
    one_line_error(result, 1, f"through {chain}: a cycle")
    assert config_file.read_text() == config


@pytest.mark.parametrize("before", [True, False])
def test_source_profile_works_before_and_after_the_subcommand(
    cli: Any, aws_env: dict[str, str], before: bool
) -> None:
    path = Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"[dev]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {
        k: v
        for k, v in aws_env.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    assume = ["assume", "--role-name", "IAMSudoUser", "--format", "env"]
    option = ["--source-profile", "dev"]
    args = [*option, *assume] if before else [*assume[:1], *option, *assume[1:]]
    result = cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "AWS_SESSION_TOKEN" in result.stdout
    without = cli(*assume, env=env)
    one_line_error(without, 1, "no AWS credentials found")


@pytest.mark.parametrize("before", [True, False])
def test_a_source_profile_that_does_not_exist_is_named_as_such(
    cli: Any, local_aws: Any, before: bool
) -> None:
    option = ["--source-profile", "nosuch"]
    assume = ["assume", "--role-name", "IAMSudoUser", "--format", "env"]
    args = [*option, *assume] if before else [*assume[:1], *option, *assume[1:]]
    local_aws.recorder.clear()
    result = cli(*args)
    one_line_error(result, 1, "--source-profile nosuch: there is no such profile in")
    assert "AWS_PROFILE" not in result.stderr
    assert local_aws.recorder.requests == []


def test_source_profile_is_given_once(cli: Any, aws_env: dict[str, str]) -> None:
    result = cli(
        "--source-profile", "default", "assume", "--source-profile", "b", "--role-name", "R"
    )
    one_line_error(result, 2, "give --source-profile once")
    result = cli("configure", "task", "--source-profile", "a", "simulate", "--source-profile", "b")
    one_line_error(result, 2, "give --source-profile once")
    assert not Path(aws_env["AWS_CONFIG_FILE"]).exists()


def test_configure_records_a_source_profile_given_among_the_command_s_options(
    cli: Any, aws_env: dict[str, str]
) -> None:
    result = cli("configure", "task", "simulate", "--source-profile", "default", "--role-name", "X")
    assert result.returncode == 0, result.stderr
    line = configparser.ConfigParser()
    line.read(aws_env["AWS_CONFIG_FILE"])
    process = line["profile task"]["credential_process"]
    assert process.count("--source-profile") == 1
    assert "--source-profile default simulate --role-name X --format process" in process


@pytest.mark.parametrize("how", ["module", "console-script"])
def test_ctrl_c_while_importing_is_one_line_and_130(
    aws_env: dict[str, str], tmp_path: Path, how: str
) -> None:
    # Deterministic stand-in for a Ctrl-C in the first tenth of a second: one of the
    # CLI's imports is interrupted.
    stub = tmp_path / "stub" / "asyncclick"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = aws_env | {"PYTHONPATH": f"{stub.parent}:{aws_env.get('PYTHONPATH', '')}"}
    start = (
        [sys.executable, "-m", "iam_sudo", "--help"]
        if how == "module"
        else [sys.executable, "-c", "from iam_sudo.__main__ import main; main()"]
    )
    result = subprocess.run(start, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 130, result.stderr
    assert result.stderr == "iam-sudo: aborted\n"


def test_configure_refuses_a_source_profile_that_does_not_exist(
    cli: Any, aws_env: dict[str, str]
) -> None:
    result = cli("configure", "task", "--source-profile", "nosuch", "simulate", "--role-name", "X")
    one_line_error(result, 1, "--source-profile nosuch: there is no such profile in")
    assert not Path(aws_env["AWS_CONFIG_FILE"]).exists()


@pytest.mark.parametrize(
    ("config", "credentials", "text"),
    [
        (
            "[profile dev]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = nosuch\n",
            "",
            'The source_profile "nosuch" referenced in the profile "dev" does not exist',
        ),
        ("", "[dev]\naws_access_key_id = AKIAEXAMPLE\n", "missing: aws_secret_access_key"),
    ],
)
def test_a_broken_source_profile_is_iam_sudos_own_failure_not_the_endpoint_s(
    cli: Any,
    aws_env: dict[str, str],
    aws_home: AwsHome,
    local_aws: Any,
    config: str,
    credentials: str,
    text: str,
) -> None:
    aws_home.write_config(config)
    aws_home.write_credentials(credentials)
    env = {
        k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    local_aws.recorder.clear()
    result = cli(
        "--source-profile", "dev", "assume", "--role-name", "R", "--format", "env", env=env
    )
    one_line_error(result, 1, "iam-sudo's own credentials (profile dev) failed")
    assert text in result.stderr
    assert "fix profile dev" in result.stderr
    assert "AWS_ENDPOINT_URL" not in result.stderr
    assert local_aws.recorder.requests == []

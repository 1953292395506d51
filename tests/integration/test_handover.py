"""What iam-sudo hands over works in the tools people run next: boto3, the AWS CLI, the JS SDK.

A saved profile, a printed environment (every shell format), a command's environment and a
container's env file give the same identity *and* region to all three real clients,
whatever the shell and the AWS files held before: a profile exported (AWS_PROFILE, which
makes the JS SDK v3 skip the environment's keys; AWS_DEFAULT_PROFILE, which botocore reads),
a [default] that gets credentials through SSO or a credential_process, a region only in
[default], only in AWS_REGION (botocore ignores it), only in AWS_DEFAULT_REGION (the JS SDK
ignores it).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools import localaws
from iam_sudo import Credentials
from iam_sudo.cli.delivery import deliver

CREDS = Credentials("ASIAX", "sec/ret+", "to=ken", datetime(2026, 11, 26, 13, 0, tzinfo=UTC))

# "boto3 REGION ARN" as boto3 resolves them, with `python who.py [PROFILE]`.
WHO_PY = """\
import sys
import boto3
session = boto3.Session(profile_name=sys.argv[1]) if len(sys.argv) > 1 else boto3.Session()
try:
    arn = session.client("sts").get_caller_identity()["Arn"]
except Exception as error:
    arn = "failed:" + type(error).__name__
print("boto3", session.region_name or "none", arn)
"""
# The AWS CLI's: its `configure list` shows the region it resolved, from wherever.
WHO_SH = """\
python "$(dirname "$0")/who.py" $1
region=$(aws configure list ${1:+--profile $1} 2>&1 | awk '$1 == "region" {print $2}')
arn=$(aws sts get-caller-identity ${1:+--profile $1} --query Arn --output text 2>&1 | tail -1)
[ "$region" = "<not" ] && region=none
echo "aws ${region:-none} $arn"
node "$NODE_SDK/who.js" $1 2>/dev/null
"""
OWN_KEYS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
ROLE = "IAMSudoUser"  # trusts the account: `assume` needs nothing else
SIMULATED = f"assumed-role/{ROLE}/"


def _section(header: str, options: dict[str, str]) -> str:
    return f"[{header}]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())


def hostile(setup: str, aws_env: dict[str, str], tmp_path: Path, node_sdk: Path) -> dict[str, str]:
    """The shell and AWS files of a user, set up as ``setup``, in a home of its own.

    Returns the shell's environment; the region iam-sudo should resolve is the setup's
    last word after "=" (see SETUPS).
    """
    home = tmp_path / "home"
    home.mkdir()
    config = Path(aws_env["AWS_CONFIG_FILE"])
    credentials = Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in aws_env.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
        and k != "AWS_DEFAULT_REGION"
    }
    env |= {
        "HOME": str(home),
        "NODE_SDK": str(node_sdk),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AWS_NODEJS_CONNECTION_REUSE_ENABLED": "1",
    }
    # Others' keys, which the handed-over credentials must win over wherever they are.
    dev = {"aws_access_key_id": "AKIADEVDEVDEVDEV0001", "aws_secret_access_key": "dev"}
    files = {
        "region-in-default": (
            _section("default", {"region": "us-west-2"}),
            _section("default", OWN_KEYS),
        ),
        "default-process": (
            _section(
                "default",
                {"credential_process": f"{tmp_path / 'own.sh'}", "region": "us-west-2"},
            ),
            "",
        ),
        "default-sso": (
            _section(
                "default",
                {
                    "sso_start_url": "https://corp.awsapps.com/start",
                    "sso_region": "us-east-1",
                    "sso_account_id": localaws.ACCOUNT_ID,
                    "sso_role_name": "Admin",
                    "region": "us-west-2",
                },
            )
            + _section("profile base", {"region": "eu-central-1"}),
            _section("base", OWN_KEYS),
        ),
        "profile-exported": (
            _section("default", {"region": "us-west-2"})
            + _section("profile dev", {"region": "eu-west-1"}),
            _section("default", dev) + _section("dev", OWN_KEYS),
        ),
        "region-in-credentials-file": (
            _section("default", {"region": "us-west-2"}),
            _section("dev", OWN_KEYS | {"region": "sa-east-1"}),
        ),
        "region-env-only": ("", _section("default", OWN_KEYS)),
        "default-region-env-only": ("", _section("default", OWN_KEYS)),
    }[setup]
    config.write_text(files[0])
    credentials.write_text(files[1])
    if setup == "default-process":
        keys = json.dumps(
            {"Version": 1, "AccessKeyId": OWN_KEYS["aws_access_key_id"]}
            | {"SecretAccessKey": OWN_KEYS["aws_secret_access_key"]}
        )
        script = tmp_path / "own.sh"
        script.write_text(f"#!/bin/sh\necho '{keys}'\n")
        script.chmod(0o755)
    if setup == "profile-exported":
        env |= {"AWS_PROFILE": "dev", "AWS_DEFAULT_PROFILE": "dev"}
    if setup == "region-in-credentials-file":
        env["AWS_PROFILE"] = "dev"
    if setup == "region-env-only":
        env["AWS_REGION"] = "ap-south-1"
    if setup == "default-region-env-only":
        env["AWS_DEFAULT_REGION"] = "ca-central-1"
    script = tmp_path / "who.sh"
    script.write_text(WHO_SH)
    (tmp_path / "who.py").write_text(WHO_PY)
    return env


# Setup -> the region the handed-over credentials must be used in (the one iam-sudo
# resolved for its own source) and the arguments that pick that source.
SETUPS: dict[str, tuple[str, list[str]]] = {
    "region-in-default": ("us-west-2", []),
    "default-process": ("us-west-2", []),
    "default-sso": ("eu-central-1", ["--source-profile", "base"]),
    "profile-exported": ("eu-west-1", []),
    # botocore reads a profile's region from the credentials file too, over the config's.
    "region-in-credentials-file": ("sa-east-1", []),
    "region-env-only": ("ap-south-1", []),
    "default-region-env-only": ("ca-central-1", []),
}


def seen(output: str) -> dict[str, tuple[str, str]]:
    """client -> (region, ARN) from the lines of who.sh."""
    found = {}
    for line in output.strip().splitlines():
        client, region, arn = line.split(" ", 2)
        found[client] = (region, arn)
    return found


def assert_all_use(found: dict[str, tuple[str, str]], region: str) -> None:
    assert set(found) == {"boto3", "aws", "js"}, found
    for client, (got_region, arn) in found.items():
        assert got_region == region, (client, found)
        assert SIMULATED in arn, (client, found)


def iam_sudo(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "iam_sudo", *args])


def run_sh(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


pytestmark = pytest.mark.usefixtures("base_role")


@pytest.mark.slow
@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_printed_environment_is_what_boto3_the_aws_cli_and_the_js_sdk_use(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path, setup: str
) -> None:
    region, source = SETUPS[setup]
    env = hostile(setup, aws_env, tmp_path, node_sdk)
    assume = iam_sudo(*source, "assume", "--role-name", ROLE, "--format", "env")
    result = run_sh(f'eval "$({assume})" && sh who.sh', env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_all_use(seen(result.stdout), region)


@pytest.mark.slow
@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("save", ["--profile", "configure"])
def test_a_saved_profile_is_what_boto3_the_aws_cli_and_the_js_sdk_use(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path, setup: str, save: str
) -> None:
    # --profile: keys in the credentials file; configure: a credential_process line, run
    # by each SDK (the JS SDK through a shell).
    region, source = SETUPS[setup]
    env = hostile(setup, aws_env, tmp_path, node_sdk)
    assume = ["assume", "--role-name", ROLE]
    if save == "--profile":
        command = iam_sudo(*source, *assume, "--profile", "task")
    else:
        command = iam_sudo(*source, "configure", "task", *assume)
    saved = run_sh(command, env, tmp_path)
    assert saved.returncode == 0, saved.stderr
    result = run_sh("sh who.sh task", env, tmp_path)
    assert_all_use(seen(result.stdout), region)


@pytest.mark.slow
@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_commands_environment_is_what_boto3_the_aws_cli_and_the_js_sdk_use(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path, setup: str
) -> None:
    region, source = SETUPS[setup]
    env = hostile(setup, aws_env, tmp_path, node_sdk)
    result = run_sh(
        iam_sudo(*source, "assume", "--role-name", ROLE, "--", "sh", "who.sh"), env, tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert_all_use(seen(result.stdout), region)


def test_the_saved_profile_of_the_issue_lists_queues_with_the_aws_cli(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path
) -> None:
    # Issue 22, 3: region only in [default]; `aws sqs list-queues --profile task` said
    # "You must specify a region".
    env = hostile("region-in-default", aws_env, tmp_path, node_sdk)
    saved = run_sh(iam_sudo("assume", "--role-name", ROLE, "--profile", "task"), env, tmp_path)
    assert "profile task gets region us-west-2 (it had none)" in saved.stderr
    # (This AWS CLI's sqs does not read AWS_ENDPOINT_URL: given as an option instead.)
    listed = run_sh(
        'aws sqs list-queues --profile task --endpoint-url "$AWS_ENDPOINT_URL"', env, tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    assert "[profile task]\nregion = us-west-2\n" in Path(env["AWS_CONFIG_FILE"]).read_text()


def test_a_saved_profile_keeps_the_region_it_has(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path
) -> None:
    env = hostile("region-in-default", aws_env, tmp_path, node_sdk)
    config = Path(env["AWS_CONFIG_FILE"])
    config.write_text(config.read_text() + "[profile task]\nregion = sa-east-1\n")
    saved = run_sh(iam_sudo("assume", "--role-name", ROLE, "--profile", "task"), env, tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert "gets region" not in saved.stderr
    assert config.read_text().count("region = sa-east-1") == 1
    assert "region" not in Path(env["AWS_SHARED_CREDENTIALS_FILE"]).read_text()


def docker_env_file(text: str) -> dict[str, str]:
    """What `docker run --env-file` sets: NAME=VALUE lines, taken literally."""
    pairs = [line.split("=", 1) for line in text.splitlines() if line and line[0] != "#"]
    return dict(pairs)


@pytest.mark.slow
def test_an_env_file_is_what_every_sdk_in_a_container_uses(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path
) -> None:
    env = hostile("profile-exported", aws_env, tmp_path, node_sdk)
    printed = run_sh(
        iam_sudo("assume", "--role-name", ROLE, "--format", "env-no-export"), env, tmp_path
    )
    assert printed.returncode == 0, printed.stderr
    # The file cannot unset the shell's AWS_PROFILE: said, for where it would matter.
    assert "env-no-export cannot unset AWS_PROFILE and AWS_DEFAULT_PROFILE" in printed.stderr
    # A container: an empty home, only what the file sets (and, for the test, the way to
    # the local AWS).
    container = {
        "PATH": env["PATH"],
        "HOME": str(tmp_path / "container"),
        "NODE_SDK": str(node_sdk),
        "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
        "AWS_EC2_METADATA_DISABLED": "true",
    } | docker_env_file(printed.stdout)
    result = run_sh("sh who.sh", container, tmp_path)
    assert_all_use(seen(result.stdout), "eu-west-1")


@pytest.mark.slow
def test_the_readmes_container_recipe_gets_the_region_too(
    aws_env: dict[str, str], tmp_path: Path, node_sdk: Path
) -> None:
    # `docker run --network host -e AWS_CONTAINER_CREDENTIALS_FULL_URI
    # -e AWS_CONTAINER_AUTHORIZATION_TOKEN -e AWS_REGION -e AWS_DEFAULT_REGION my-image`,
    # as a process given only those variables (and the way to the local AWS).
    env = hostile("region-in-default", aws_env, tmp_path, node_sdk)
    passed = [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "PATH",
        "NODE_SDK",
    ]
    docker = "env -i HOME=/nonexistent " + " ".join(f'{name}="${name}"' for name in passed)
    command = iam_sudo("assume", "--role-name", ROLE, "--ecs-server", "--", "sh", "-c")
    result = run_sh(f"{command} {shlex.quote(docker + ' sh who.sh')}", env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert_all_use(seen(result.stdout), "us-west-2")


@pytest.mark.parametrize(
    ("name", "end"),
    [
        ("env", b"\n"),
        ("env-no-export", b"\n"),
        ("fish", b"\n"),
        ("powershell", b"\r\n"),
        ("windows-cmd", b"\r\n"),
    ],
)
def test_each_shell_format_has_its_own_line_ends_even_on_a_windows_stdout(
    monkeypatch: pytest.MonkeyPatch, name: str, end: bytes
) -> None:
    # Windows' text-mode stdout turns every \n into \r\n: Git Bash's `eval "$(...)"` would
    # keep the \r in every value (a token ending in \r is refused by AWS).
    windows_stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="\r\n")
    monkeypatch.setattr(sys, "stdout", windows_stdout)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert deliver(CREDS, None, (), name) == 0
    printed = windows_stdout.buffer.getvalue()  # type: ignore[attr-defined]
    lines = printed.split(end)
    assert lines[-1] == b""
    assert len(lines) > 5
    assert not any(b"\r" in line or b"\n" in line for line in lines)

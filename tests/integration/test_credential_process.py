"""credential_process through the cache, as the SDKs run it: one AssumeRole per refresh
window, and a cache that cannot be used is a warning, never a failure (issue 22, items 1
and 5)."""

from __future__ import annotations

import configparser
import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import private_cache


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` on a read-only bind mount, as a read-only home is (root ignores modes)."""
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(path), str(path)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {done.stderr.decode()[-200:]}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def configured(
    cli: Any, aws_env: dict[str, str], env: dict[str, str], role: str, *options: str
) -> list[str]:
    """`configure task simulate --local --role-name ROLE OPTIONS`; the profile's
    credential_process."""
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[default]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    result = cli("configure", "task", "simulate", "--local", "--role-name", role, *options, env=env)
    assert result.returncode == 0, result.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(aws_env["AWS_CONFIG_FILE"])
    return shlex.split(parser["profile task"]["credential_process"])


def test_a_configured_profile_works_with_a_read_only_home_with_one_warning(
    cli: Any,
    aws_env: dict[str, str],
    task_role: dict[str, Any],
    tmp_path: Path,
    node_sdk: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    env = {k: v for k, v in aws_env.items() if k not in keys} | {"HOME": str(home)}
    process = configured(cli, aws_env, {**aws_env, "HOME": str(home)}, task_role["name"])
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    boto3_whoami = (
        "import boto3; s = boto3.Session(profile_name='task'); "
        "print(s.client('sts').get_caller_identity()['Arn'])"
    )
    with read_only(home):
        direct = run(*process)
        seen = {
            "boto3": run(sys.executable, "-c", boto3_whoami),
            "aws": run("aws", "sts", "get-caller-identity", "--profile", "task",
                       "--query", "Arn", "--output", "text"),
            "js": run("node", str(node_sdk / "who.js"), "task"),
        }  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    [warning] = direct.stderr.splitlines()
    assert warning.startswith(f"iam-sudo: not using the credential cache: {home}/.aws ")
    assert "cannot be created (Read-only file system)" in warning
    assert warning.endswith("getting the credentials without it")
    assert '"AccessKeyId"' in direct.stdout
    simulated = f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}"
    for tool, done in seen.items():
        assert done.returncode == 0, (tool, done.stderr)
        assert done.stdout.strip().endswith(simulated), (tool, done.stdout, done.stderr)


def test_an_unsafe_cache_is_never_read_the_credentials_come_from_aws(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any], tmp_path: Path, local_aws: Any
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    args = ("simulate", "--local", "--role-name", task_role["name"], "--format", "process")
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    os.chmod(tmp_path / "cache", 0o777)  # noqa: S103 (others could now plant entries)
    local_aws.recorder.clear()
    second = cli(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout != first.stdout, "the entry in the unsafe directory is not used"
    assert local_aws.recorder.actions("sts").count("AssumeRole") == 1
    [warning] = second.stderr.splitlines()
    assert "is writable by group or others (mode 777)" in warning


def test_boto3_running_credential_process_at_every_call_makes_one_assume_role(
    cli: Any,
    aws_env: dict[str, str],
    task_role: dict[str, Any],
    tmp_path: Path,
    local_aws: Any,
) -> None:
    # 900 s is inside botocore's 15-minute advisory window from the start, so botocore runs
    # the credential_process again before every call (botocore/credentials.py,
    # RefreshableCredentials); each run is answered from the cache.
    env = {**aws_env, **private_cache(tmp_path)}
    configured(cli, aws_env, env, task_role["name"], "--duration", "900")
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    env = {k: v for k, v in env.items() if k not in keys}
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    calls = (
        "import boto3, botocore.credentials as c\n"
        "runs = []\n"
        "real = c.ProcessProvider._retrieve_credentials_using\n"
        "def counted(self, *args):\n"
        "    runs.append(1)\n"
        "    return real(self, *args)\n"
        "c.ProcessProvider._retrieve_credentials_using = counted\n"
        "sts = boto3.Session(profile_name='task').client('sts')\n"
        "for _ in range(5): sts.get_caller_identity()\n"
        "print(len(runs))\n"
    )
    local_aws.recorder.clear()
    done = subprocess.run(
        [sys.executable, "-c", calls], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 5, "botocore ran the credential_process before every call"
    assert local_aws.recorder.actions().count("AssumeRole") == 1

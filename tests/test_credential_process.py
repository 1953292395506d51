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


def configured(cli: Any, aws_env: dict[str, str], env: dict[str, str], role: str) -> list[str]:
    """`configure task simulate --local --role-name ROLE`; the profile's credential_process."""
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[default]\naws_access_key_id = {aws_env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws_env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    result = cli("configure", "task", "simulate", "--local", "--role-name", role, env=env)
    assert result.returncode == 0, result.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(aws_env["AWS_CONFIG_FILE"])
    return shlex.split(parser["profile task"]["credential_process"])


def test_a_configured_profile_works_with_a_read_only_home_with_one_warning(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    env = {k: v for k, v in aws_env.items() if k not in keys} | {"HOME": str(home)}
    process = configured(cli, aws_env, {**aws_env, "HOME": str(home)}, task_role["name"])
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    with read_only(home):
        direct = subprocess.run(
            process, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        boto3 = subprocess.run(
            [
                sys.executable,
                "-c",
                "import boto3; s = boto3.Session(profile_name='task'); "
                "print(s.client('sts').get_caller_identity()['Arn'])",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert direct.returncode == 0, direct.stderr
    [warning] = direct.stderr.splitlines()
    assert warning.startswith("iam-sudo: not using the credential cache: refusing the credential")
    assert "cannot be created (Read-only file system)" in warning
    assert warning.endswith("getting the credentials without it")
    assert '"AccessKeyId"' in direct.stdout
    assert boto3.returncode == 0, boto3.stderr
    assert boto3.stdout.strip().endswith(f"assumed-role/IAMSudoUser/iam-sudo-{task_role['name']}")


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

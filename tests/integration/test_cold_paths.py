"""The CLI's cold paths import only what they use: `--help` and a credential_process cache hit.

Counted in modules, not in time: each runs in a process of its own, as an SDK runs
credential_process, and reports what it imported. Neither may import an AWS SDK, an HTTP
client or YAML, nor a module of iam-sudo outside the few that path needs; a module added
to a cold path is a decision, made here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import private_cache, run_cli

# What every run of the CLI imports: the entry point, the command line and its options,
# and the two leaf modules of facts they show (the exceptions and the --help defaults).
CLI = {
    "iam_sudo",
    "iam_sudo.core",
    "iam_sudo.core.defaults",
    "iam_sudo.core.exceptions",
    "iam_sudo.cli",
    "iam_sudo.cli.configure",
    "iam_sudo.cli.console",
    "iam_sudo.cli.credential_process",
    "iam_sudo.cli.delivery",
    "iam_sudo.cli.formats",
    "iam_sudo.cli.main",
    "iam_sudo.cli.options",
    "iam_sudo.cli.recording",
    "iam_sudo.cli.serve",
    "iam_sudo.cli.sources",
}
# A subcommand reads the user's settings first, to know which profile is its own source.
SETTINGS = {
    "iam_sudo.core.text",
    "iam_sudo.settings",
    "iam_sudo.settings.config",
    "iam_sudo.settings.inifile",
}
# A cache hit is answered before the CLI starts (iam_sudo.cli.credential_process's
# answer_from_cache): the entry, under the rules of the cache and of refresh, and the
# printed format; no command line parser, no event loop.
CACHE_HIT = {
    "iam_sudo",
    "iam_sudo.cli",
    "iam_sudo.cli.credential_process",
    "iam_sudo.cli.formats",
    "iam_sudo.core",
    "iam_sudo.core.exceptions",
    "iam_sudo.core.refresh",
    "iam_sudo.core.text",
    "iam_sudo.settings",
    "iam_sudo.settings.cache",
    "iam_sudo.settings.config",
    "iam_sudo.settings.credentials",
    "iam_sudo.settings.files",
    "iam_sudo.settings.inifile",
}
# Third-party packages no cold path needs: the AWS SDKs, their HTTP stack, YAML.
HEAVY = ("botocore", "boto3", "aiobotocore", "aioboto3", "aiohttp", "urllib3", "yaml")

PROBE = """\
import json, runpy, sys
sys.argv = ["iam-sudo", *sys.argv[1:]]
try:
    runpy.run_module("iam_sudo", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported(args: list[str], env: dict[str, str]) -> tuple[str, set[str]]:
    """(stdout, the modules imported) of `iam-sudo ARGS` in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    modules = set(json.loads(result.stderr.strip().splitlines()[-1]))
    return result.stdout, modules


def ours(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] == "iam_sudo"}


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


def test_help_imports_the_command_line_alone(aws_env: dict[str, str]) -> None:
    stdout, modules = imported(["--help"], aws_env)
    assert "Usage: iam-sudo" in stdout
    assert heavy(modules) == set()
    assert ours(modules) == CLI
    for args in (["simulate", "--help"], ["console", "--help"]):
        stdout, modules = imported(args, aws_env)
        assert "Usage: iam-sudo" in stdout
        assert heavy(modules) == set(), args
        assert ours(modules) == CLI | SETTINGS, args


def test_a_cache_hit_imports_the_cache_and_settings_alone(
    task_role: dict[str, Any], aws_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    args = ["simulate", "--local", "--role-name", task_role["name"], "--format", "process"]
    warm = run_cli(*args, env=env)
    assert warm.returncode == 0, warm.stderr
    stdout, modules = imported(args, env)
    assert stdout == warm.stdout
    assert heavy(modules) == set()
    assert ours(modules) == CACHE_HIT
    assert not {"asyncclick", "asyncio"} & modules


def test_a_cache_hit_is_answered_early_only_for_the_same_command_line_and_settings(
    task_role: dict[str, Any], aws_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**aws_env, **private_cache(tmp_path)}
    args = ["simulate", "--local", "--role-name", task_role["name"], "--format", "process"]
    warm = run_cli(*args, env=env)
    assert warm.returncode == 0, warm.stderr
    # The same request, by another command line or with another setting: the CLI answers
    # (from the same entry: the request is the same), and only it knows that.
    for other_args, other_env in (
        ([*args[:2], "--role-name=" + task_role["name"], *args[4:]], env),
        (args, {**env, "AWS_PAGER": ""}),
        (args, {**env, "IAM_SUDO_UNRELATED": "1"}),
    ):
        stdout, modules = imported(other_args, other_env)
        assert "iam_sudo.cli.main" in modules, (other_args, other_env)
        assert stdout == warm.stdout

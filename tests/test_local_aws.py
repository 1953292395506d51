"""The first ten minutes (issue 22, 8): the README's first examples, by hand, on a local AWS.

`make local-aws` (``python -m devtools.localaws --demo``) starts the demo's local AWS and
its function, prints the lines to export, and runs until Ctrl-C. Every example of the
README's Usage block then works as written, each from a fresh set of AWS files.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NAMED_POLICY, ROOT

BIN = Path(sys.executable).parent
# Stand-ins for the user's programs the examples run: each says who it runs as.
PROGRAM = "import boto3, sys; print(boto3.client('sts').get_caller_identity()['Arn'])\n"
# A stand-in for `docker run [--network host] [-e NAME]... IMAGE`: the "image" is PROGRAM,
# run as a process with only the variables named (a container gets nothing else of the
# host's; plus, for the test, the way to the local AWS and to Python).
DOCKER = """\
#!/bin/sh
[ "$1" = run ] || exit 2
shift
passed="PATH=$PATH PYTHONPATH=$PYTHONPATH AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
while [ $# -gt 1 ]; do
    case "$1" in
        --network) shift ;;
        -e) shift; passed="$passed $1=$(printenv "$1")" ;;
        *) echo "docker stand-in: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
exec env -i HOME=/nonexistent $passed python "$(dirname "$0")/app.py"
"""


def readme_examples() -> list[tuple[str, list[str]]]:
    """The README's quick start (its first sh block): (comment, its commands) per example."""
    text = (ROOT / "README.md").read_text()
    usage = text[text.index("## Quick start") :]
    block = usage[usage.index("```sh\n") + 6 :]
    block = block[: block.index("```")]
    examples: list[tuple[str, list[str]]] = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        line = line.strip()
        if line.startswith("#"):
            examples.append((line, []))
        elif line:
            examples[-1][1].append(line)
    return examples


@pytest.fixture(scope="module")
def local_aws_shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`python -m devtools.localaws --demo` running; the environment its lines export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IAM_SUDO_"))}
    # `make local-aws` runs it from the checkout, whose devtools/ is no installed package;
    # here the working directory is a scratch one, so the checkout goes on the path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    server = subprocess.Popen(
        [sys.executable, "-m", "devtools.localaws", "--demo"],
        env=env,
        cwd=tmp_path_factory.mktemp("cwd"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        said = []
        for line in server.stderr:  # "ready" once the lines are printed
            said.append(line)
            if line.strip() == "ready":
                break
        assert "ready\n" in said, "".join(said)
        assert server.stdout is not None
        # Printed and flushed before "ready", in one write: all in the pipe by now.
        lines = os.read(server.stdout.fileno(), 1 << 16).decode()
        shell = subprocess.run(
            ["sh", "-c", lines + "env"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        exported = dict(line.split("=", 1) for line in shell.stdout.splitlines() if "=" in line)
        exported["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
        yield exported
        files = Path(exported["AWS_CONFIG_FILE"]).parent.parent
        server.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.wait(timeout=60) == 0
        assert not files.exists(), "its AWS files go with it"
        assert "local AWS stopped" in server.stderr.read()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_lines_point_at_the_local_aws_and_at_nothing_of_the_users(
    local_aws_shell: dict[str, str],
) -> None:
    assert local_aws_shell["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert local_aws_shell["AWS_ENDPOINT_URL_LAMBDA"].startswith("http://127.0.0.1:")
    assert "AWS_PROFILE" not in local_aws_shell
    home = Path.home()
    assert not Path(local_aws_shell["AWS_CONFIG_FILE"]).is_relative_to(home / ".aws")


@pytest.mark.slow
@pytest.mark.parametrize(("comment", "commands"), readme_examples())
def test_each_readme_example_works_as_written_against_it(
    local_aws_shell: dict[str, str], tmp_path: Path, comment: str, commands: list[str]
) -> None:
    for name in ("app.py", "worker.py"):
        (tmp_path / name).write_text(PROGRAM)
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text(DOCKER.replace('$(dirname "$0")', str(tmp_path)))
    docker.chmod(0o755)
    aws = tmp_path / "aws"  # a fresh set of AWS files per example
    aws.mkdir(mode=0o700)
    env = local_aws_shell | {
        "AWS_CONFIG_FILE": str(aws / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
        "HOME": str(tmp_path),
        "PATH": f"{docker.parent}{os.pathsep}{local_aws_shell['PATH']}",
    }
    for command in commands:
        result = subprocess.run(
            ["sh", "-c", command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, (comment, command, result.stderr)
        assert "Traceback" not in result.stderr
        if any(program in command for program in ("app.py", "worker.py", "docker run")):
            assert "assumed-role/IAMSudoUser/iam-sudo-my-stack-TaskRole" in result.stdout


def test_without_a_deployed_function_the_first_example_says_local_works_without_one(
    cli: Any, task_role: dict[str, Any]
) -> None:
    # Issue 22, 8: "Function not found ... deploy with `pulumi up`" never mentioned --local.
    result = cli("simulate", "--role-name", task_role["name"], "--format", "env")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "Function not found" in line
    assert "`pulumi up`" in line
    assert "or use --local to simulate with your own credentials (no function needed)" in line


def test_a_role_the_sudo_policy_refuses_says_where_the_allowed_ones_are_listed(
    cli: Any, aws_env: dict[str, str], task_role: dict[str, Any]
) -> None:
    env = aws_env | {"IAM_SUDO_POLICY": NAMED_POLICY}  # roles named *-Allowed-* only
    result = cli(
        "simulate", "--local", "--role-name", task_role["name"], "--format", "env", env=env
    )
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("iam-sudo: error: sudo policy ")
    assert line.endswith("; `iam-sudo roles` lists the roles the sudo policy lets you simulate")


def test_pip_install_ships_every_layer_folder() -> None:
    # After the move into layer folders, `pip install .` (and so `make bench`'s copy of
    # this iam-sudo) installed iam_sudo/ without core/, settings/, ...: No module named
    # 'iam_sudo.core'.
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    folders = {
        "iam_sudo." + init.parent.name
        for init in (ROOT / "client" / "iam_sudo").glob("*/__init__.py")
    }
    assert folders
    assert folders <= set(packages)


def test_a_missing_base_role_says_how_to_deploy_one(
    cli: Any, task_role: dict[str, Any], prefix: str
) -> None:
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        task_role["name"],
        "--base-role",
        f"{prefix}None",
        "--format",
        "env",
    )
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.endswith("or deploy iam-sudo's (IAMSudoUser) with `pulumi up`")

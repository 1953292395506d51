"""Nothing waits on a prompt that nobody can answer (issue 22, 4).

Where iam-sudo runs without anyone to type (a credential_process, an ECS endpoint renewing
credentials), a source whose chain asks for an MFA code is refused before anything starts.
botocore's AssumeRoleProvider asks for a code (getpass) for a role_arn profile with
mfa_serial, at every new session, and for every profile whose source_profile reaches one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iam_sudo.core.exceptions import ConfigurationError
from iam_sudo.settings.unattended import check_unattended, prompt_problem

IAM_SUDO = [sys.executable, "-m", "iam_sudo"]
MFA = "arn:aws:iam::123456789012:mfa/me"
ROLE = "arn:aws:iam::123456789012:role/Admin"
CONFIG = f"""\
[profile mfa]
role_arn = {ROLE}
source_profile = base
mfa_serial = {MFA}

[profile chain]
role_arn = {ROLE}
source_profile = mfa

[profile keys-with-serial]
mfa_serial = {MFA}

[profile plain-role]
role_arn = {ROLE}
source_profile = base

[profile self]
role_arn = {ROLE}
source_profile = self

[profile loop-a]
role_arn = {ROLE}
source_profile = loop-b

[profile loop-b]
role_arn = {ROLE}
source_profile = loop-a

[profile via-iam-sudo]
credential_process = iam-sudo --source-profile chain simulate --role-name R --format process
"""
CREDENTIALS = """\
[base]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = x
[keys-with-serial]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = x
[from-credentials-file]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = x
mfa_serial = arn:aws:iam::123456789012:mfa/other
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config"
    credentials = tmp_path / "credentials"
    config.write_text(CONFIG)
    credentials.write_text(CREDENTIALS)
    return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}


@pytest.mark.parametrize(
    ("profile", "problem"),
    [
        ("mfa", "profile mfa has mfa_serial"),
        ("chain", "profile mfa (reached through chain -> mfa) has mfa_serial"),
        ("keys-with-serial", "profile keys-with-serial has mfa_serial"),
        ("from-credentials-file", "profile from-credentials-file has mfa_serial"),
        ("via-iam-sudo", "profile mfa (reached through via-iam-sudo -> chain -> mfa)"),
        ("plain-role", None),
        ("base", None),
        ("self", None),
        ("loop-a", None),
        ("missing", None),
    ],
)
def test_a_chain_that_asks_for_an_mfa_code_is_named(
    files: dict[str, str], profile: str, problem: str | None
) -> None:
    found = prompt_problem(files, profile)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


def test_keys_in_the_environment_come_first_so_nothing_asks(files: dict[str, str]) -> None:
    # botocore's EnvProvider is first in its chain, before the profile's AssumeRoleProvider.
    env = files | {"AWS_PROFILE": "mfa"}
    assert prompt_problem(env) is not None
    keys = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"}
    assert prompt_problem(env | keys) is None


def test_the_refusal_is_one_line_naming_what_to_do(files: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_unattended("as a credential_process", files, "chain")
    message = str(raised.value)
    assert "\n" not in message
    assert "no one can type it as a credential_process" in message
    assert "--source-profile a profile without MFA" in message


@pytest.mark.parametrize("source", ["mfa", "chain"])
@pytest.mark.parametrize("command", ["simulate", "assume"])
def test_configure_refuses_a_source_whose_chain_asks_for_mfa(
    cli: Any, aws_env: dict[str, str], source: str, command: str
) -> None:
    # Issue 22, 4: accepted (exit 0) before, and every use by an SDK waited on stdin.
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(CREDENTIALS)
    result = cli("configure", "task", "--source-profile", source, command, "--role-name", "R")
    assert result.returncode == 2, result.stderr
    assert "has mfa_serial, which asks for an MFA code" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "task" not in config.read_text().replace("[profile chain]", "")


@pytest.mark.parametrize(
    "extra",
    [
        ["--format", "process"],
        ["--ecs-server", "--", sys.executable, "-c", "pass"],
    ],
)
@pytest.mark.parametrize("command", ["simulate", "assume"])
def test_an_unattended_run_from_a_source_that_asks_is_refused_before_it_starts(
    aws_env: dict[str, str], command: str, extra: list[str]
) -> None:
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(CREDENTIALS)
    env = {
        k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    result = subprocess.run(
        [*IAM_SUDO, "--source-profile", "chain", command, "--role-name", "R", *extra],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "profile mfa (reached through chain -> mfa) has mfa_serial" in result.stderr
    assert "aborted" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "--role-name", "R", "--", "true"],
        ["assume", "--role-name", "R", "--", "true"],
        ["roles"],
        ["roles", "--local"],
        ["prune", "--dry-run"],
    ],
)
def test_a_run_without_a_terminal_from_a_source_that_asks_is_refused_in_one_line(
    aws_env: dict[str, str], command: list[str]
) -> None:
    # CI or cron: no controlling terminal, stdin empty. botocore's getpass would fall back
    # to stdin: a GetPassWarning, a prompt, then "aborted" (exit 130) or, on a stdin that
    # stays open, a wait without end.
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG)
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(CREDENTIALS)
    env = {
        k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    result = subprocess.run(
        [*IAM_SUDO, "--source-profile", "chain", *command],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal, as under CI
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "profile mfa (reached through chain -> mfa) has mfa_serial" in result.stderr
    assert "without a terminal" in result.stderr
    assert "MFA code for" not in result.stderr


def test_an_mfa_code_is_not_asked_for_a_credential_process_even_on_a_terminal(
    aws_env: dict[str, str],
) -> None:
    # The SDK captures stderr: a prompt there is one nobody sees.
    import os
    import pty

    env = dict(aws_env)
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [*IAM_SUDO, "assume", "--role-name", "R", "--mfa-serial", MFA, "--format", "process"],
            env=env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 2, result.stderr
    assert "--mfa-serial needs --token-code with --format process" in result.stderr


def test_a_source_credential_process_that_reads_stdin_ends_instead_of_waiting(
    aws_env: dict[str, str], tmp_path: Path
) -> None:
    # botocore runs the source profile's credential_process with iam-sudo's stdin; an SDK
    # running iam-sudo may leave a terminal (here: a pipe nobody writes) there.
    script = tmp_path / "asks.sh"
    script.write_text(
        '#!/bin/sh\nprintf "code: " >&2\nread code || exit 1\n'
        'echo \'{"Version": 1, "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "x"}\'\n'
    )
    script.chmod(0o755)
    config = Path(aws_env["AWS_CONFIG_FILE"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[default]\ncredential_process = {script}\n")
    env = {
        k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    process = subprocess.Popen(
        [*IAM_SUDO, "assume", "--role-name", "IAMSudoUser", "--format", "process"],
        env=env,
        stdin=subprocess.PIPE,  # open, and never written to
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        returncode = process.wait(timeout=60)  # not communicate(): it would close stdin
    finally:
        if process.poll() is None:
            process.kill()
        assert process.stdin is not None
        process.stdin.close()
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = process.stdout.read(), process.stderr.read()
    assert returncode == 1, err
    assert out == ""
    assert "iam-sudo's own credentials (profile default) failed" in err

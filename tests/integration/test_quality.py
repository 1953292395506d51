"""Lint, format and strict typing are part of the test pass."""

import os
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_the_code_passes(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_commands_are_what_make_and_ci_run() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "make demo" in readme
    assert "make test" in readme
    assert "\ndemo: " in makefile
    assert "\ntest: " in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "mkdocs build --strict" in test_recipe, "CI (make test) builds the manual"


def test_the_demo_installs_only_what_it_needs_and_ci_runs_the_slow_tests() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "'.[demo]'" in line or "pip" in line]
    assert any("'.[demo]'" in line for line in installs)
    for line in installs:  # pip's progress shows: a first install is long
        assert "--quiet" not in line, line
        assert "-q" not in line.split(), line
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    demo = " ".join(extras["optional-dependencies"]["demo"])
    for tool in ("mypy", "ruff", "hypothesis", "awscli", "pytest"):
        assert tool not in demo, f"the demo does not need {tool}"
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "not slow" not in test_recipe, "CI (make test) runs the slow tests too"
    assert isinstance(extras["license"], str), "an SPDX expression, not the deprecated table"


@pytest.mark.slow
def test_the_demo_runs_both_paths_on_the_embedded_local_aws() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IAM_SUDO_"))},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    arn = "assumed-role/IAMSudoUser/iam-sudo-demo-stack-TaskRole-9AO01PCC7I0T"
    assert result.stdout.count(arn) == 7, (
        "local, profile, credential_process twice, serve's api service, remote, console"
    )
    build = "assumed-role/IAMSudoUser/iam-sudo-demo-stack-BuildRole-1QW2E3R4"
    assert result.stdout.count(build) == 1, "serve's build service"
    assert "api's secret on build's route: HTTP 401" in result.stdout
    assert "files left in" in result.stdout
    assert result.stdout.split("files left in", 1)[1].split("\n", 1)[0].endswith(": none")
    assert f"the federation endpoint signed in arn:aws:sts::123456789012:{arn}" in result.stdout
    assert "the second time, iam-sudo answered from its cache: 0 requests to AWS" in result.stdout
    assert "demo-stack-TaskRole-9AO01PCC7I0T\tService:ecs-tasks.amazonaws.com" in result.stdout
    assert "sudo policy allows no role matching name 'BuildRole'" in result.stderr
    # The fix loop (devtools/demo_fix.py): denied in AWS's words, reported, fixed, passing.
    denied = "s3:PutObject" + ' on resource: "arn:aws:s3:::demo-orders/orders/2.json" because'
    assert f"{denied} no session policy allows the s3:PutObject action" in result.stderr
    assert "cause: role lacks it" in result.stdout
    assert result.stdout.index("--add-policy") < result.stdout.index("wrote orders/2.json")

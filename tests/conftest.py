"""Fixtures: one local AWS (moto's server behind a recording proxy) for the whole run."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import localaws

ROOT = Path(__file__).resolve().parent.parent
PRINT_IDENTITY = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"
_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Every test ends with the process environment it started with.

    The CLI run in-process sets ``os.environ`` on purpose (it marks the profiles it is
    resolving, ``IAM_SUDO_RESOLVING_PROFILES``, for the children it starts); without this,
    a later test's subprocess would inherit the mark and refuse to run.
    """
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[localaws.LocalAws]:
    aws = localaws.start()
    yield aws
    aws.stop()


@pytest.fixture(scope="session")
def iam(local_aws: localaws.LocalAws) -> Any:
    """An IAM client that seeds moto directly, so that seeding is not recorded."""
    return localaws.client("iam", local_aws.moto_url)


@pytest.fixture(scope="session")
def base_role(iam: Any) -> str:
    return localaws.create_base_role(iam)


@pytest.fixture
def aws_env(
    local_aws: localaws.LocalAws, base_role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """This process and its children talk to the local AWS; nothing of the user's leaks in,
    and nothing of the tests' leaks out into the user's home."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "IAM_SUDO_")):
            monkeypatch.delenv(name)
    # A home of the test's own: a profile that runs iam-sudo keeps its credential cache
    # there, never in the developer's ~/.aws (private, as the cache demands of a home).
    home = tmp_path / "aws-env-home"
    home.mkdir(mode=0o700, exist_ok=True)
    env = {
        **local_aws.env(),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws" / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "aws" / "config"),
        "HOME": str(home),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    local_aws.recorder.clear()
    return dict(os.environ)


def private_cache(home: Path) -> dict[str, str]:
    """A credential cache in ``home``, made the user's home: the cache refuses a directory
    any of whose parents others may write (as /tmp, where pytest's directories live), up to
    the home directory."""
    return {"HOME": str(home), "IAM_SUDO_CACHE_DIR": str(home / "cache")}


@pytest.fixture
def prefix() -> str:
    """A name prefix unique to the test, so that role name substrings match only its roles."""
    return f"t{next(_counter):03d}x{os.getpid()}-"


@pytest.fixture
def credentials_file(aws_env: dict[str, str]) -> Path:
    return Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"])


@pytest.fixture
def cli(aws_env: dict[str, str]) -> Any:
    """Run `python -m iam_sudo ARGS` as a user would, in the test's environment."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "iam_sudo", *args],
            env=aws_env if env is None else env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def slow_aws(local_aws: localaws.LocalAws) -> Iterator[localaws.LocalAws]:
    """The same moto behind a second proxy that adds 50 ms to every request, like real AWS."""
    recorder = localaws.Recorder()
    proxy = localaws.start_proxy(local_aws.moto_url, recorder, delay=0.05)
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    yield localaws.LocalAws(local_aws.moto_url, url, recorder, local_aws.process, proxy)
    proxy.shutdown()


@pytest.fixture(scope="session")
def faulty_proxy(local_aws: localaws.LocalAws) -> Iterator[tuple[str, dict[str, str], Any]]:
    """The same moto behind a proxy that misbehaves for the actions named in its faults."""
    recorder = localaws.Recorder()
    faults: dict[str, str] = {}
    proxy = localaws.start_proxy(local_aws.moto_url, recorder, faults=faults)
    yield f"http://127.0.0.1:{proxy.server_address[1]}", faults, recorder
    proxy.shutdown()


@pytest.fixture
def faulty_aws(
    faulty_proxy: tuple[str, dict[str, str], Any], aws_env: dict[str, str]
) -> Iterator[tuple[dict[str, str], dict[str, str], localaws.Recorder]]:
    """(env pointing at the faulty proxy, its faults to set, its recorder), reset per test."""
    url, faults, recorder = faulty_proxy
    faults.clear()
    recorder.clear()
    yield {**aws_env, "AWS_ENDPOINT_URL": url}, faults, recorder
    faults.clear()


@pytest.fixture
def task_role(iam: Any, prefix: str) -> dict[str, Any]:
    """An ECS task role with three inline and two managed policies, plus a decoy role."""
    inline = {
        "s3": localaws.allow("s3:GetObject", "arn:aws:s3:::bucket/*"),
        "sqs": {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"},
        },
        "ddb": localaws.allow("dynamodb:Query"),
    }
    managed = [
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::aws:policy/CloudWatchLogsReadOnlyAccess",
    ]
    name = f"{prefix}stack-TaskRole-9AO01PCC7I0T"
    arn = localaws.create_role(iam, name, inline=inline, managed=managed)
    localaws.create_role(
        iam,
        f"{prefix}stack-FnTaskRole-X",
        trust=localaws.trust_policy(("Service", "lambda.amazonaws.com")),
        inline={"any": localaws.allow("ec2:*")},
    )
    return {"name": name, "arn": arn, "inline": inline, "managed": managed}


ALLOW_ALL_POLICY = """\
allowed-role-names: ["*"]
allowed-principals:
  - "*": "*"
allowed-base-roles:
  - "arn:aws:iam::*:role/IAMSudoUser"
"""
ECS_ONLY_POLICY = ALLOW_ALL_POLICY.replace('"*": "*"', "Service: ecs-tasks.amazonaws.com")
NAMED_POLICY = ALLOW_ALL_POLICY.replace('["*"]', '["*-Allowed-*"]')
DRAFTS_POLICY = ALLOW_ALL_POLICY + "allowed-added-policies: true\n"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pulumi")


@pytest.fixture(scope="session")
def program(build_dir: Path) -> Any:
    """The Pulumi program run under mocks with a valid policy."""
    from devtools import pulumi_program

    return pulumi_program.run({"policy": ALLOW_ALL_POLICY}, build_dir)


@pytest.fixture(scope="session")
def function_aws(local_aws: localaws.LocalAws) -> Iterator[localaws.LocalAws]:
    """moto as the function sees it: behind its own recorder, apart from the client's."""
    recorder = localaws.Recorder()
    proxy = localaws.start_proxy(local_aws.moto_url, recorder)
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    yield localaws.LocalAws(local_aws.moto_url, url, recorder, local_aws.process, proxy)
    proxy.shutdown()


@pytest.fixture(scope="session")
def stand_in(
    program: Any, build_dir: Path, function_aws: localaws.LocalAws, base_role: str
) -> Iterator[Any]:
    """Lambda's Invoke API on loopback, serving the program's archive with the program's env.

    Functions: `iam-sudo` (allow all), `iam-sudo-ecs-only`, `iam-sudo-named`,
    `iam-sudo-drafts` (allow all, with --add-policy; policies applied through the program,
    which validates them), and two with an env var missing.
    """
    from devtools import pulumi_program
    from devtools.lambda_stand_in import LambdaStandIn

    lambda_env = {
        **function_aws.env(),
        "AWS_ENDPOINT_URL": function_aws.url,
        "AWS_SESSION_TOKEN": "function-execution-role-token",
    }
    stand_in = LambdaStandIn()
    stand_in.add_function("iam-sudo", program.archive, {**lambda_env, **program.function_env})
    for name, policy in (
        ("iam-sudo-ecs-only", ECS_ONLY_POLICY),
        ("iam-sudo-named", NAMED_POLICY),
        ("iam-sudo-drafts", DRAFTS_POLICY),
    ):
        variant = pulumi_program.run({"policy": policy, "functionName": name}, build_dir)
        stand_in.add_function(name, variant.archive, {**lambda_env, **variant.function_env})
    for missing in ("IAM_SUDO_POLICY", "IAM_SUDO_BASE_ROLE"):
        env = {k: v for k, v in program.function_env.items() if k != missing}
        stand_in.add_function(f"iam-sudo-without-{missing}", program.archive, {**lambda_env, **env})
    yield stand_in
    stand_in.stop()


@pytest.fixture
def remote_env(
    aws_env: dict[str, str],
    stand_in: Any,
    function_aws: localaws.LocalAws,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The client's environment with Lambda served by the stand-in.

    The client signs its caller proof for the STS endpoint the function uses, as in AWS,
    where both resolve the same regional endpoint.
    """
    env = {"AWS_ENDPOINT_URL_LAMBDA": stand_in.url, "AWS_ENDPOINT_URL_STS": function_aws.url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**aws_env, **env}


NODE_SDK = ROOT / ".pytest_cache" / "node-aws-sdk"
NODE_PACKAGES = ("client-sts", "credential-providers")
WHOAMI_JS = """\
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
new STSClient({}).send(new GetCallerIdentityCommand({}))
  .then((r) => console.log("js " + r.Arn))
  .catch((e) => { console.log("js failed " + e.name + ": " + e.message); });
"""
# `node who.js [PROFILE]`: "js REGION ARN" as the SDK resolves them (a profile as the
# client's `profile` option, as `--profile` is to the AWS CLI); "none" for no region.
WHO_JS = """\
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
(async () => {
  const profile = process.argv[2];
  const client = new STSClient(profile ? { profile } : {});
  let region = "none";
  try { region = await client.config.region(); } catch (e) { region = "none"; }
  try {
    const r = await client.send(new GetCallerIdentityCommand({}));
    console.log("js " + region + " " + r.Arn);
  } catch (e) { console.log("js " + region + " failed:" + e.name); }
})();
"""


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """The AWS SDK for JavaScript v3 (its STS client and credential providers), installed
    once into the test cache, with whoami.js (prints "js ARN") and who.js (see WHO_JS)."""
    node_packages(*NODE_PACKAGES)
    (NODE_SDK / "whoami.js").write_text(WHOAMI_JS)
    (NODE_SDK / "who.js").write_text(WHO_JS)
    return NODE_SDK


def node_packages(*clients: str) -> Path:
    """The AWS SDK for JavaScript v3 packages ``@aws-sdk/<client>``, installed once into the
    test cache (what is there already is not installed again); skips without node and npm."""

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    missing = [c for c in clients if not (NODE_SDK / "node_modules" / "@aws-sdk" / c).is_dir()]
    if missing:
        NODE_SDK.mkdir(parents=True, exist_ok=True)
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_SDK),
             *(f"@aws-sdk/{c}@3" for c in missing)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if installed.returncode != 0:
            pytest.skip(f"npm could not install the JS SDK: {installed.stderr[-300:]}")
    return NODE_SDK

"""The README's demo: iam-sudo on an embedded local AWS, from an empty machine.

Starts moto's server, seeds a small account (an ECS task role with inline and managed
policies, a CodeBuild role, and the IAMSudoUser base role), then runs the real `iam-sudo`
command: `simulate --local`, and `simulate --remote` through the function the Pulumi
program deploys (run under Pulumi's mocks), served by a loopback Lambda Invoke API.
Last, the fix loop (devtools/demo_fix.py): on a local AWS that denies as AWS does, a script
run as a role that lacks one permission, the report naming it, the fix tried with
`--add-policy`, the script passing.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devtools import demo_fix, federation, localaws, pulumi_program
from devtools.lambda_stand_in import LambdaStandIn

BIN = Path(sys.executable).parent
# What `aws sts get-caller-identity --query Arn` prints, through boto3: the demo needs no
# AWS CLI, and boto3 reads profiles and credential_process as every AWS SDK does.
WHOAMI = [sys.executable, "-m", "devtools.whoami"]


def show(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def run(args: list[str], env: dict[str, str], check: bool = True) -> None:
    print(f"$ {shlex.join(args)}", flush=True)
    code = subprocess.run(args, env=env, check=check).returncode
    if code:
        print(f"(exit code {code})", flush=True)


TASK = "demo-stack-TaskRole-9AO01PCC7I0T"
ECS_ONLY_POLICY = """\
allowed-role-names: ["*"]
allowed-principals:
  - Service: ecs-tasks.amazonaws.com
allowed-base-roles:
  - arn:aws:iam::123456789012:role/IAMSudoUser
"""


def seed(aws: localaws.LocalAws, stack: str = "demo-stack") -> None:
    """The demo account: the base role, an ECS task role and a CodeBuild role of ``stack``."""
    iam = localaws.client("iam", aws.moto_url)
    localaws.create_base_role(iam)
    localaws.create_role(
        iam,
        f"{stack}-TaskRole-9AO01PCC7I0T",
        inline={
            "read-orders": localaws.allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/orders"),
            "send-events": localaws.allow("sqs:SendMessage", "arn:aws:sqs:*:*:events"),
        },
        managed=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
    )
    localaws.create_role(
        iam,
        f"{stack}-BuildRole-1QW2E3R4",
        trust=localaws.trust_policy(("Service", "codebuild.amazonaws.com")),
        inline={"all": localaws.allow("*")},
    )


def main() -> None:
    show("starting a local AWS (moto's server) with AWS managed policies")
    with localaws.running() as aws, tempfile.TemporaryDirectory() as home:
        seed(aws)
        env = {
            **os.environ,
            **aws.env(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AWS_SHARED_CREDENTIALS_FILE": str(Path(home) / "credentials"),
            "AWS_CONFIG_FILE": str(Path(home) / "config"),
        }
        print(
            f"endpoint {aws.url}; roles demo-stack-TaskRole-9AO01PCC7I0T, "
            "demo-stack-BuildRole-1QW2E3R4 and IAMSudoUser"
        )

        show("simulate the ECS task role locally and run a command as it")
        aws.recorder.clear()
        run(
            [
                "iam-sudo",
                "--verbose",
                "simulate",
                "--local",
                "--role-name",
                "TaskRole",
                "--principal",
                "Service:ecs-tasks.amazonaws.com",
                *WHOAMI,
            ],
            env,
        )
        mine = [r for r in aws.recorder.requests if r.access_key == env["AWS_ACCESS_KEY_ID"]]
        [sent] = aws.recorder.sent("AssumeRole")
        print("the session policies sent to sts:AssumeRole:")
        print(f"  PolicyArns: {[v for k, v in sent.items() if k.startswith('PolicyArns')]}")
        print(f"  Policy:     {json.dumps(json.loads(sent['Policy']))}")
        print(f"iam-sudo made {len(mine)} requests to AWS, none of them twice")

        show("a role without iam-sudo's Deny on packed policies is never a base role")
        build = "demo-stack-BuildRole-1QW2E3R4"
        run(["iam-sudo", "simulate", "--local", "--role-name", "TaskRole", "--base-role", build,
             "--", "true"], env, check=False)  # fmt: skip

        show("save the simulated credentials as a profile")
        run(
            ["iam-sudo", "simulate", "--local", "--role-name", "TaskRole", "--profile", "task"], env
        )
        run([*WHOAMI, "--profile", "task"], env)

        show("configure a profile that gets simulated credentials by itself (credential_process)")
        run(
            ["iam-sudo", "configure", "task-process", "simulate", "--local", "--role-name", TASK],
            env,
        )
        print(Path(env["AWS_CONFIG_FILE"]).read_text().strip())
        own_keys = (
            f"[default]\naws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
            f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
        )
        Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
            Path(env["AWS_SHARED_CREDENTIALS_FILE"]).read_text() + "\n" + own_keys
        )
        profile_env = {
            k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        }
        run([*WHOAMI, "--profile", "task-process"], profile_env)
        aws.recorder.clear()
        run([*WHOAMI, "--profile", "task-process"], profile_env)
        simulated = [r for r in aws.recorder.requests if r.action != "GetCallerIdentity"]
        print(
            f"the second time, iam-sudo answered from its cache: {len(simulated)} requests to AWS"
        )

        show("a 15-minute session served to a long-running command (--ecs-server)")
        aws.recorder.clear()
        calls = (
            "import boto3; sts = boto3.client('sts'); "
            "[sts.get_caller_identity() for _ in range(20)]; print('boto3: 20 calls')"
        )
        run(
            [
                "iam-sudo", "simulate", "--local", "--role-name", TASK, "--duration", "900",
                "--ecs-server", "--", sys.executable, "-c", calls,
            ],
            env,
        )  # fmt: skip
        assumed = aws.recorder.actions("sts").count("AssumeRole")
        print(
            f"boto3 asked the endpoint before each call (15 minutes left is inside its refresh "
            f"window); iam-sudo made {assumed} AssumeRole: it renews once per window (every 7.5 "
            "minutes for 15-minute credentials), however often the SDKs ask"
        )

        serve(aws, env, Path(home))
        remote(aws, env, Path(home))
    demo_fix.loop(show, run)
    show("done")


def serve(aws: localaws.LocalAws, env: dict[str, str], home: Path) -> None:
    """`iam-sudo serve` with two services, each a host process started with its env file."""
    show("serve a local stack: each service its own simulated role, from one server")
    stack = home / "stack"
    stack.mkdir()
    args = [
        "iam-sudo",
        "serve",
        "--local",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--env-dir",
        str(stack),
        "--service",
        "api=TaskRole",
        "--service",
        "build=BuildRole",
    ]
    print(f"$ {shlex.join(args)} &", flush=True)
    log = home / "serve.log"
    serve_env = {**env, "HOME": str(home)}  # its token directory lives under a private home
    with open(log, "w") as output:
        process = subprocess.Popen(args, env=serve_env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops serving" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        print(_indent(log.read_text()))
        print(f"$ cat {stack / 'iam-sudo.api.env'}")
        print(_indent((stack / "iam-sudo.api.env").read_text()))
        for service in ("api", "build"):
            container = _container_env(stack / f"iam-sudo.{service}.env", home, aws.url)
            print(f"as service {service} (a host process with only its env file):", flush=True)
            run(WHOAMI, container)
        api_token = (stack / ".iam-sudo" / "api" / "token").read_text()
        build_url = _env_file(stack / "iam-sudo.build.env")["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        request = urllib.request.Request(build_url, headers={"Authorization": api_token})
        try:
            urllib.request.urlopen(request, timeout=10).close()
            print("api's secret opened build's route: this must not happen")
        except urllib.error.HTTPError as error:
            print(f"api's secret on build's route: HTTP {error.code} (each secret opens one route)")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    left = sorted(p.name for p in stack.rglob("*") if p.is_file())
    print(f"Ctrl-C: serve stopped; files left in {stack}: {left or 'none'}")


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.strip().splitlines())


def _env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _container_env(env_file: Path, home: Path, aws_url: str) -> dict[str, str]:
    """What a container started with `--env-file` has: that and the (local) AWS endpoint."""
    empty = home / "container-home"
    empty.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(empty),
        "AWS_ENDPOINT_URL": aws_url,
        **_env_file(env_file),
    }


def remote(aws: localaws.LocalAws, env: dict[str, str], home: Path) -> None:
    show("deploy: the Pulumi program (under Pulumi's mocks) with a sudo policy for ECS tasks")
    print(ECS_ONLY_POLICY, end="")
    program = pulumi_program.run({"policy": ECS_ONLY_POLICY}, home / "pulumi")
    for resource in program.resources[1:]:
        print(f"  + {resource.type:<52} {resource.inputs.get('name', resource.name)}")
    stand_in, endpoints = serve_function(aws, program)
    try:
        remote_env = {**env, **endpoints}
        print(f"its archive is served by a loopback Lambda Invoke API at {stand_in.url}")

        show("simulate --remote (the default): the function simulates with its own permissions")
        run(["iam-sudo", "simulate", "--role-name", "TaskRole", *WHOAMI], remote_env)
        show("which roles may I simulate? the function answers for its verified caller")
        run(["iam-sudo", "roles"], remote_env)
        console(aws, remote_env)
        show("the function's sudo policy refuses a role that is no ECS task role")
        build = ["iam-sudo", "simulate", "--role-name", "BuildRole", "--profile", "build"]
        run(build, remote_env, check=False)
        print("the function logged:")
        for line in stand_in.functions["iam-sudo"].logs:
            print(f"  {line}")
    finally:
        stand_in.stop()


def serve_function(
    aws: localaws.LocalAws, program: pulumi_program.ProgramRun
) -> tuple[LambdaStandIn, dict[str, str]]:
    """The program's function served on loopback as `iam-sudo`; the endpoints a client needs.

    The client signs its caller proof for the STS endpoint the function uses (moto's own,
    as in AWS, where both resolve the same regional endpoint). Stop the stand-in when done.
    """
    stand_in = LambdaStandIn()
    function_env = {**aws.env(), "AWS_ENDPOINT_URL": aws.moto_url, **program.function_env}
    stand_in.add_function("iam-sudo", program.archive, function_env)
    return stand_in, {"AWS_ENDPOINT_URL_LAMBDA": stand_in.url, "AWS_ENDPOINT_URL_STS": aws.moto_url}


def console(aws: localaws.LocalAws, env: dict[str, str]) -> None:
    show("open the AWS console as the simulated role (--url prints the sign-in URL)")
    signin = federation.start(aws.url)  # a loopback stand-in for AWS's /federation
    try:
        args = [
            "iam-sudo",
            "console",
            "--role-name",
            "TaskRole",
            "--destination",
            "ecs/v2/clusters",
        ]
        print(f"$ {shlex.join([*args, '--url'])}", flush=True)
        result = subprocess.run(
            [*args, "--url"],
            env={**env, "IAM_SUDO_FEDERATION_ENDPOINT": signin.url},
            capture_output=True,
            text=True,
            check=True,
        )
        url = result.stdout.strip()
        # The sign-in token is a bearer secret for 15 minutes: not even a demo prints it.
        print(url.split("SigninToken=", 1)[0] + "SigninToken=<secret>")
        urllib.request.build_opener(_NoRedirect).open(url, timeout=10).close()
        [request] = signin.token_requests
        [sign_in] = signin.sign_ins
        print(f"the federation endpoint signed in {sign_in.arn}")
        sent = request.session_duration or "none (the function's session is a role chain)"
        print(f"  to {sign_in.destination}; SessionDuration sent: {sent}")
    finally:
        signin.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        return fp  # the console itself is not here to follow to


if __name__ == "__main__":
    main()

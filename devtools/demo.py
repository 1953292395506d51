"""The README's demo: iam-sudo on an embedded local AWS, from an empty machine.

Starts moto's server, seeds a small account (an ECS task role with inline and managed
policies, and the IAMSudoUser base role), then runs the real `iam-sudo` command.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3

from devtools import localaws

BIN = Path(sys.executable).parent


def show(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def run(args: list[str], env: dict[str, str]) -> None:
    print(f"$ {shlex.join(args)}", flush=True)
    subprocess.run(args, env=env, check=True)


def seed(aws: localaws.LocalAws) -> None:
    iam = boto3.client("iam", endpoint_url=aws.moto_url, **_seed_credentials())
    localaws.create_base_role(iam)
    localaws.create_role(
        iam,
        "demo-stack-TaskRole-9AO01PCC7I0T",
        inline={
            "read-orders": localaws.allow("dynamodb:Query", "arn:aws:dynamodb:*:*:table/orders"),
            "send-events": localaws.allow("sqs:SendMessage", "arn:aws:sqs:*:*:events"),
        },
        managed=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
    )
    localaws.create_role(
        iam,
        "demo-stack-BuildRole-1QW2E3R4",
        trust=localaws.trust_policy(("Service", "codebuild.amazonaws.com")),
        inline={"all": localaws.allow("*")},
    )


def _seed_credentials() -> dict[str, str]:
    return {
        "region_name": localaws.REGION,
        "aws_access_key_id": "AKIADEMO",
        "aws_secret_access_key": "demo",
    }


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
                "aws",
                "sts",
                "get-caller-identity",
            ],
            env,
        )
        [sent] = aws.recorder.sent("AssumeRole")
        print("the session policies sent to sts:AssumeRole:")
        print(f"  PolicyArns: {[v for k, v in sent.items() if k.startswith('PolicyArns')]}")
        print(f"  Policy:     {json.dumps(json.loads(sent['Policy']))}")
        requests, repeated = len(aws.recorder.requests), aws.recorder.duplicates()
        print(f"{requests} requests to AWS, {repeated} of them repeated")

        show("save the simulated credentials as a profile")
        run(
            ["iam-sudo", "simulate", "--local", "--role-name", "TaskRole", "--profile", "task"], env
        )
        run(["aws", "sts", "get-caller-identity", "--profile", "task", "--query", "Arn"], env)
    show("done")


if __name__ == "__main__":
    main()

"""The demo's last act: run as a role, see what is denied and why, try the fix, run again.

On a local AWS that denies as AWS does (devtools/enforced.py: session policies enforced,
AWS's access-denied messages), a script that reads and writes an S3 object runs as a task
role that may only read it; `iam-sudo report` names the missing permission and its cause,
`--policy` writes the fix, and `--add-policy` tries it before anything is deployed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools import enforced, localaws

ROLE = "demo-app-TaskRole"
BUCKET = "demo-orders"
SCRIPT = f"""\
import sys
import boto3, botocore.exceptions
s3 = boto3.client("s3")
print("read:", s3.get_object(Bucket="{BUCKET}", Key="orders/1.json")["Body"].read().decode())
try:
    s3.put_object(Bucket="{BUCKET}", Key="orders/2.json", Body=b'{{"id": 2}}')
except botocore.exceptions.ClientError as error:
    sys.exit(f"app.py: {{error}}")
print("wrote orders/2.json")
"""


def _seed(aws: enforced.EnforcedAws) -> dict[str, str]:
    """The account: the base role, the task role (reads the bucket, lacks s3:PutObject),
    a developer with keys; returns the developer's keys."""
    iam = enforced.admin(aws, "iam", localaws.ACCOUNT_ID)
    localaws.create_base_role(iam)
    localaws.create_role(
        iam,
        ROLE,
        inline={
            "read-orders": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{BUCKET}/orders/*",
                    }
                ],
            }
        },
    )
    developer = enforced.user_with_keys(iam, "developer")
    iam.put_user_policy(
        UserName="developer", PolicyName="admin", PolicyDocument=json.dumps(localaws.allow("*"))
    )
    s3 = enforced.admin(aws, "s3", localaws.ACCOUNT_ID)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="orders/1.json", Body=b'{"id": 1}')
    return developer


def loop(show: Any, run: Any) -> None:
    """Show the loop; ``show(title)`` and ``run(args, env, check)`` are the demo's own."""
    show("a local AWS that denies as AWS does: session policies enforced, AWS's messages")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: no access log
    aws = enforced.start()
    try:
        developer = _seed(aws)
        aws.enforce()
        with tempfile.TemporaryDirectory() as home:
            work = Path(home)
            script = work / "app.py"
            script.write_text(SCRIPT)
            env = {
                **os.environ,
                **developer,
                "AWS_ENDPOINT_URL": aws.url,
                "AWS_DEFAULT_REGION": localaws.REGION,
                "AWS_REGION": localaws.REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_SHARED_CREDENTIALS_FILE": str(work / "credentials"),
                "AWS_CONFIG_FILE": str(work / "config"),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
            print(f"role {ROLE} may read s3://{BUCKET}/orders/*; the script also writes there")
            app = [sys.executable, str(script)]
            simulate = ["iam-sudo", "simulate", "--local", "--role-name", ROLE]
            run_json, fix = str(work / "run.json"), str(work / "fix.json")

            show("run the script as the role, recording every AWS call it makes")
            run([*simulate, "--record", run_json, "--", *app], env, check=False)

            show("what was denied, and why")
            run(["iam-sudo", "report", run_json], env)

            show("the statements the role lacks, as a policy document")
            print(f"$ iam-sudo report {run_json} --policy > {fix}", flush=True)
            written = subprocess.run(
                ["iam-sudo", "report", run_json, "--policy"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            Path(fix).write_text(written.stdout)
            print(written.stdout.strip())

            show("try the fix before deploying it: the role with fix.json added")
            run([*simulate, "--add-policy", fix, "--", *app], env)
    finally:
        aws.stop()

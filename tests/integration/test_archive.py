"""The function's archive holds all it imports beyond the stdlib and the runtime's boto3."""

import asyncio
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from devtools import localaws
from devtools.lambda_stand_in import extract, runtime_boto_dir
from iam_sudo_deploy.archive import build_archive
from tests.integration.test_function import signed_proof

SERVE_ONE_REQUEST = """
import json, sys
code, boto, role, proof = sys.argv[1:5]
sys.path[:] = [code, boto, *[p for p in sys.path[1:] if "site-packages" not in p]]
import handler
class Context:
    aws_request_id = "archive"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo"
reply = handler.handler({"role_name": role, "proof": json.loads(proof)}, Context())
import yaml, iam_sudo
print(json.dumps({
    "reply_keys": sorted(reply),
    "yaml": yaml.__file__, "iam_sudo": iam_sudo.__file__, "libyaml": yaml.__with_libyaml__,
    "modules": sorted(m.split(".")[0] for m in sys.modules),
}))
"""


def test_the_archive_is_the_handler_iam_sudo_and_pure_python_yaml(program: Any) -> None:
    names = zipfile.ZipFile(program.archive).namelist()
    assert "handler.py" in names
    assert {
        "iam_sudo/__init__.py",
        "iam_sudo/client.py",
        "yaml/__init__.py",
        "yaml/LICENSE",
    } <= set(names)
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))], "no compiled code"
    assert not [n for n in names if n.startswith(("iam_sudo/cli/", "iam_sudo/__main__"))], (
        "the CLI and its asyncclick stay out"
    )
    assert {"iam_sudo/core/roles.py", "iam_sudo/steps/remote.py", "iam_sudo/aws/sts.py"} <= set(
        names
    )
    assert not [n for n in names if n.split("/")[0] not in ("handler.py", "iam_sudo", "yaml")]


def test_the_archive_is_reproducible(program: Any, tmp_path: Path) -> None:
    again = build_archive(tmp_path / "again.zip")
    assert again.read_bytes() == program.archive.read_bytes()


def test_a_fresh_interpreter_with_only_the_archive_and_boto3_serves_a_request(
    remote_env: dict[str, str],
    program: Any,
    function_aws: localaws.LocalAws,
    iam: Any,
    base_role: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    code = extract(program.archive, tmp_path / "code")
    boto = runtime_boto_dir(tmp_path / "boto")
    role = f"{prefix}Packaged"
    localaws.create_role(iam, role, inline={"p": localaws.allow("s3:GetObject")})
    env = {
        **function_aws.env(),
        **program.function_env,
        "AWS_ENDPOINT_URL": function_aws.url,
        "AWS_LAMBDA_FUNCTION_NAME": "iam-sudo",
    }
    proof = json.dumps(asyncio.run(signed_proof()))
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SERVE_ONE_REQUEST, str(code), str(boto), role, proof],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["reply_keys"] == ["AccessKeyId", "Expiration", "SecretAccessKey", "SessionToken"]
    assert report["yaml"].startswith(str(code))
    assert report["iam_sudo"].startswith(str(code))
    assert report["libyaml"] is False
    assert not {"aioboto3", "aiobotocore", "aiohttp", "asyncclick", "pulumi"} & set(
        report["modules"]
    )

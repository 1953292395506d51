"""``--record`` and ``iam-sudo report`` end to end, through the CLI, with real SDKs.

The command under record is boto3, the AWS CLI or the AWS SDK for JavaScript v3, talking to
the local AWS (moto behind the tests' proxy) through the recording endpoint; denials come
from a stand-in upstream that answers in AWS's exact wording (IAM User Guide, "Troubleshoot
access denied error messages"), reached as the user's own ``AWS_ENDPOINT_URL_<SERVICE>``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from devtools import localaws
from tests.conftest import node_packages

JS_CLIENTS = ("client-sts", "client-s3", "client-sqs", "client-dynamodb", "client-iam",
              "lib-storage")  # fmt: skip


def recorded_role(iam: Any, prefix: str) -> dict[str, Any]:
    inline = {
        "data": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*", "sqs:*", "sns:*", "dynamodb:*"],
                    "Resource": "*",
                },
                {"Effect": "Allow", "Action": ["iam:GetRole", "iam:ListRoles"], "Resource": "*"},
                {"Effect": "Allow", "Action": "kinesis:PutRecord", "Resource": "*"},
            ],
        }
    }
    name = f"{prefix}Recorded-TaskRole"
    return {"name": name, "arn": localaws.create_role(iam, name, inline=inline)}


@pytest.fixture
def role(iam: Any, prefix: str) -> dict[str, Any]:
    return recorded_role(iam, prefix)


def run_recorded(
    cli: Any, env: dict[str, str], role: str, record: Path, *cmd: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    result = cli(
        "simulate",
        "--local",
        "--role-name",
        role,
        *extra,
        "--record",
        str(record),
        "--",
        *cmd,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def calls(record: Path) -> list[dict[str, Any]]:
    document = json.loads(record.read_text())
    assert document["Run"]["Complete"] is True
    return list(document["Calls"])


def by_operation(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for call in found:
        grouped.setdefault(f"{call['Service']}:{call['Operation']}", []).append(call)
    return grouped


def assert_nothing_secret(record: Path, secrets_file: Path) -> None:
    """The session's secret key and token, and every signature sent, appear nowhere."""
    text = record.read_text()
    secrets = [line.strip() for line in secrets_file.read_text().splitlines() if line.strip()]
    assert len(secrets) >= 3
    for secret in secrets:
        assert secret not in text
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


BOTO3_SCRIPT = """\
import io, os, sys, boto3
from boto3.s3.transfer import TransferConfig
secrets = open(sys.argv[1], "a")
secrets.write(os.environ["AWS_SECRET_ACCESS_KEY"] + "\\n" + os.environ["AWS_SESSION_TOKEN"] + "\\n")
def keep_signature(request, **kwargs):
    secrets.write(request.headers["Authorization"].decode().rpartition("Signature=")[2] + "\\n")
session = boto3.Session()
session.events.register("before-send", keep_signature)
s3 = session.client("s3")
bucket = sys.argv[2]
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"hello")
assert s3.get_object(Bucket=bucket, Key="dir/a b.txt")["Body"].read() == b"hello"
assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/a b.txt"]
big = b"x" * (6 * 1024 * 1024)
config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(big), bucket, "big", Config=config)
assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == big
sqs = session.client("sqs")
url = sqs.create_queue(QueueName=bucket)["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="secret message body")
ddb = session.client("dynamodb")
ddb.create_table(TableName=bucket, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST")
ddb.put_item(TableName=bucket, Item={"k": {"S": "1"}})
print(session.client("sts").get_caller_identity()["Arn"])
session.client("iam").get_role(RoleName=sys.argv[3])
"""


def test_boto3_calls_are_recorded_with_actions_resources_and_outcomes(
    cli: Any, aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path, prefix: str
) -> None:
    script = tmp_path / "app.py"
    script.write_text(BOTO3_SCRIPT)
    secrets, record = tmp_path / "secrets", tmp_path / "run.json"
    bucket = prefix.rstrip("-").lower()
    result = run_recorded(
        cli,
        aws_env,
        role["name"],
        record,
        sys.executable,
        str(script),
        str(secrets),
        bucket,
        role["name"],
    )
    assert result.stdout.strip().endswith(f"assumed-role/IAMSudoUser/iam-sudo-{role['name']}")
    found = by_operation(calls(record))
    account = localaws.ACCOUNT_ID
    assert found["s3:PutObject"][0]["Actions"] == ["s3:PutObject"]
    assert found["s3:PutObject"][0]["Resources"] == [f"arn:aws:s3:::{bucket}/dir/a b.txt"]
    assert found["s3:CreateBucket"][0]["Resources"] == [f"arn:aws:s3:::{bucket}"]
    # the multipart upload, each part recorded; the catalogue has no action named so
    assert len(found["s3:UploadPart"]) == 2
    assert {c["ActionSource"] for c in found["s3:UploadPart"]} == {"none"}
    assert "s3:CreateMultipartUpload" in found
    assert "s3:CompleteMultipartUpload" in found
    assert found["sqs:SendMessage"][0]["Resources"] == [
        f"arn:aws:sqs:{localaws.REGION}:{account}:{bucket}"
    ]
    assert found["dynamodb:PutItem"][0]["Resources"] == [
        f"arn:aws:dynamodb:{localaws.REGION}:{account}:table/{bucket}"
    ]
    assert found["sts:GetCallerIdentity"][0]["Actions"] == ["sts:GetCallerIdentity"]
    assert found["iam:GetRole"][0]["Resources"] == [f"arn:aws:iam::{account}:role/{role['name']}"]
    assert all(c["Outcome"] == "allowed" for group in found.values() for c in group)
    document = json.loads(record.read_text())
    assert document["Run"]["TargetRole"] == role["arn"]
    assert document["Run"]["Mode"] == "local"
    assert document["Run"]["SessionArn"] == (
        f"arn:aws:sts::{account}:assumed-role/IAMSudoUser/iam-sudo-{role['name']}"
    )
    assert document["Run"]["SessionPolicies"][0]["Policy"] == "data"
    assert "secret message body" not in record.read_text()
    assert_nothing_secret(record, secrets)

    report = cli("report", str(record), "--json", env=aws_env)
    assert report.returncode == 0, report.stderr
    summary = json.loads(report.stdout)
    used = {u["Action"] for u in summary["Used"]}
    assert {"s3:PutObject", "sqs:SendMessage", "dynamodb:PutItem", "iam:GetRole"} <= used
    assert summary["Denied"] == []
    never = {a for u in summary["GrantedNeverUsed"] for a in u["Actions"]}
    assert never == {"sns:*", "iam:ListRoles", "kinesis:PutRecord"}
    assert {"Service": "s3", "Operation": "UploadPart", "Calls": 2} in summary["NoCatalogueAction"]
    table = cli("report", str(record), env=aws_env)
    assert "GRANTED BUT NEVER USED (3 statements)" in table.stdout


AWS_CLI_SCRIPT = """\
set -e
head -c 9437184 /dev/zero > "$1/big"
aws s3 mb "s3://$2" >/dev/null
aws s3 cp "$1/big" "s3://$2/big file" >/dev/null
aws s3api get-object --bucket "$2" --key "big file" "$1/back" >/dev/null
cmp "$1/big" "$1/back"
topic=$(aws sns create-topic --name "$2" --query TopicArn --output text)
aws sns publish --topic-arn "$topic" --message hi >/dev/null
aws dynamodb list-tables >/dev/null
aws sts get-caller-identity --query Arn --output text
aws iam get-role --role-name "$3" >/dev/null
"""


def test_aws_cli_calls_are_recorded_multipart_included(
    cli: Any, aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path, prefix: str
) -> None:
    if shutil.which("aws", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the AWS CLI (test extra) is not installed")
    script = tmp_path / "cli.sh"
    script.write_text(AWS_CLI_SCRIPT)
    env = {**aws_env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    bucket = prefix.rstrip("-").lower() + "-cli"
    record = tmp_path / "run.json"
    result = run_recorded(
        cli, env, role["name"], record, "sh", str(script), str(tmp_path), bucket, role["name"]
    )
    assert "assumed-role/IAMSudoUser" in result.stdout
    found = by_operation(calls(record))
    assert len(found["s3:UploadPart"]) == 2  # 9 MiB in the CLI's 8 MiB parts
    assert found["s3:GetObject"][0]["Resources"] == [f"arn:aws:s3:::{bucket}/big file"]
    # SNS, the query protocol (the AWS CLI v1 sends SQS to its own endpoint, see docs/record.md)
    topic = f"arn:aws:sns:{localaws.REGION}:{localaws.ACCOUNT_ID}:{bucket}"
    assert found["sns:Publish"][0]["Resources"] == [topic]
    assert found["dynamodb:ListTables"][0]["Outcome"] == "allowed"
    assert "sts:GetCallerIdentity" in found
    assert "iam:GetRole" in found


JS_SCRIPT = """\
const s3sdk = require("@aws-sdk/client-s3");
const { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } = s3sdk;
const { Upload } = require("@aws-sdk/lib-storage");
const { SQSClient, CreateQueueCommand, SendMessageCommand } = require("@aws-sdk/client-sqs");
const { DynamoDBClient, ListTablesCommand } = require("@aws-sdk/client-dynamodb");
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const { IAMClient, GetRoleCommand } = require("@aws-sdk/client-iam");
const [bucket, role] = process.argv.slice(2);
(async () => {
  const s3 = new S3Client({});
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "js.txt", Body: "hello" }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js.txt" }));
  if ((await got.Body.transformToString()) !== "hello") throw new Error("bad body");
  const big = Buffer.alloc(6 * 1024 * 1024, 120);
  await new Upload({ client: s3, params: { Bucket: bucket, Key: "big", Body: big },
                     partSize: 5 * 1024 * 1024 }).done();
  const sqs = new SQSClient({});
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: bucket }));
  await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: "hi" }));
  await new DynamoDBClient({}).send(new ListTablesCommand({}));
  console.log((await new STSClient({}).send(new GetCallerIdentityCommand({}))).Arn);
  await new IAMClient({}).send(new GetRoleCommand({ RoleName: role }));
})().catch((e) => { console.error("js failed " + e.name + ": " + e.message); process.exit(1); });
"""


@pytest.fixture(scope="session")
def js_clients() -> Path:
    """The JS SDK v3 clients these tests use, installed once into the test cache."""
    return node_packages(*JS_CLIENTS)


def test_javascript_sdk_calls_are_recorded_multipart_included(
    cli: Any,
    aws_env: dict[str, str],
    role: dict[str, Any],
    tmp_path: Path,
    prefix: str,
    js_clients: Path,
) -> None:
    script = js_clients / "record_test.js"
    script.write_text(JS_SCRIPT)
    bucket = prefix.rstrip("-").lower() + "-js"
    record = tmp_path / "run.json"
    result = run_recorded(
        cli, aws_env, role["name"], record, "node", str(script), bucket, role["name"]
    )
    assert "assumed-role/IAMSudoUser" in result.stdout
    found = by_operation(calls(record))
    assert found["s3:PutObject"][0]["Resources"] == [f"arn:aws:s3:::{bucket}/js.txt"]
    assert len(found["s3:UploadPart"]) == 2
    assert "s3:CompleteMultipartUpload" in found
    assert found["sqs:SendMessage"][0]["Outcome"] == "allowed"
    assert "dynamodb:ListTables" in found
    assert "sts:GetCallerIdentity" in found
    assert found["iam:GetRole"][0]["Actions"] == ["iam:GetRole"]


class DenyingAws(BaseHTTPRequestHandler):
    """A stand-in upstream that denies every request in AWS's words (see the module)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        session = "arn:aws:sts::123456789012:assumed-role/IAMSudoUser/iam-sudo-TaskRole"
        target = self.headers.get("X-Amz-Target", "")
        if target:  # DynamoDB: the role lacks it
            operation = target.rpartition(".")[2]
            table = json.loads(body)["TableName"]
            resource = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
            message = (
                f"User: {session} is not authorized to perform: dynamodb:{operation} on "
                f"resource: {resource} because no session policy allows the "
                f"dynamodb:{operation} action"
            )
            data = json.dumps(
                {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": message}
            ).encode()
            self._answer(400, data, "application/x-amz-json-1.0")
            return
        params = dict(urllib.parse.parse_qsl(body.decode()))  # SNS: the base role's ceiling
        message = (
            f"User: {session} is not authorized to perform: sns:{params['Action']} on "
            f"resource: {params['TopicArn']} because no identity-based policy allows the "
            f"sns:{params['Action']} action"
        )
        data = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        ).encode()
        self._answer(403, data, "text/xml")

    def _answer(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def denying_aws() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DenyingAws)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


DENIED_SCRIPT = """\
import sys, boto3, botocore.exceptions as e
for call in (lambda: boto3.client("dynamodb").get_item(TableName="orders", Key={"k": {"S": "1"}}),
             lambda: boto3.client("sns").publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t",
                                                 Message="m"),
             lambda: boto3.client("s3").list_buckets()):
    try:
        call()
    except e.ClientError as error:
        print(error.response["Error"]["Code"])
"""


def test_denials_are_recorded_with_their_causes_and_the_fix(
    cli: Any, aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path, denying_aws: str
) -> None:
    env = {**aws_env, "AWS_ENDPOINT_URL_DYNAMODB": denying_aws, "AWS_ENDPOINT_URL_SNS": denying_aws}
    script = tmp_path / "denied.py"
    script.write_text(DENIED_SCRIPT)
    record = tmp_path / "run.json"
    result = run_recorded(cli, env, role["name"], record, sys.executable, str(script))
    assert result.stdout.split() == ["AccessDeniedException", "AuthorizationError"]
    assert "recorded 3 AWS calls (2 denied)" in result.stderr
    summary = json.loads(cli("report", str(record), "--json", env=aws_env).stdout)
    causes = {d["Actions"][0]: (d["Cause"], d["Where"]) for d in summary["Denied"]}
    assert causes == {
        "dynamodb:GetItem": ("role-lacks-it", "a session policy"),
        "sns:Publish": ("base-role-cannot-grant", "an identity-based policy"),
    }
    fix = cli("report", str(record), "--policy", env=aws_env)
    assert fix.returncode == 0, fix.stderr
    assert json.loads(fix.stdout) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
            }
        ],
    }
    assert "sns Publish: not covered: base-role-cannot-grant" in fix.stderr


REFUSED_SCRIPT = """\
import os, sys, urllib.request, urllib.error, boto3
from botocore.config import Config
url = os.environ["AWS_ENDPOINT_URL"]
answers = []
def status(request):
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
others = [
    dict(aws_access_key_id="AKIAOTHERPROCESSKEY1", aws_secret_access_key="x"),
    dict(aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong",
         aws_session_token=os.environ["AWS_SESSION_TOKEN"]),
    dict(aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
         aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"], aws_session_token="other"),
]
for keys in others:
    client = boto3.client("sts", config=Config(retries={"max_attempts": 1}), **keys)
    try:
        client.get_caller_identity()
        answers.append("allowed")
    except Exception as error:
        answers.append(error.response["Error"]["Code"])
answers.append(str(status(urllib.request.Request(url + "/", data=b"Action=GetCallerIdentity"))))
forged = urllib.request.Request(url + "/", headers={"Host": "attacker.example:80"})
answers.append(str(status(forged)))
print(" ".join(answers))
"""


def test_requests_not_signed_by_the_session_are_refused(
    cli: Any,
    aws_env: dict[str, str],
    role: dict[str, Any],
    tmp_path: Path,
    local_aws: localaws.LocalAws,
) -> None:
    script = tmp_path / "other.py"
    script.write_text(REFUSED_SCRIPT)
    record = tmp_path / "run.json"
    result = run_recorded(cli, aws_env, role["name"], record, sys.executable, str(script))
    assert result.stdout.split() == ["IamSudoRecorderRefused"] * 3 + ["403", "403"]
    document = json.loads(record.read_text())
    assert document["Calls"] == []
    reasons = [r["Reason"] for r in document["Refused"]]
    assert reasons == [
        "the request is signed with a key that is not this session's",
        "the signature does not match the request and the session's key",
        "the request does not carry this session's token",
        "the request is not signed with AWS SigV4 (AWS4-HMAC-SHA256)",
        "the Host header does not name this endpoint",
    ]
    # none of them reached AWS: every GetCallerIdentity it saw is iam-sudo's own
    seen = [r.access_key for r in local_aws.recorder.requests if r.action == "GetCallerIdentity"]
    assert set(seen) == {aws_env["AWS_ACCESS_KEY_ID"]}


def test_the_ecs_endpoint_and_the_recorder_serve_a_command_together(
    cli: Any, aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path
) -> None:
    record = tmp_path / "run.json"
    result = run_recorded(
        cli,
        aws_env,
        role["name"],
        record,
        sys.executable,
        "-c",
        "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])",
        extra=("--ecs-server",),
    )
    assert "assumed-role/IAMSudoUser" in result.stdout
    assert [c["Operation"] for c in calls(record)] == ["GetCallerIdentity"]


def test_assume_records_a_real_role(
    cli: Any, aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path
) -> None:
    record = tmp_path / "run.json"
    result = cli("assume", "--role-name", role["arn"], "--record", str(record), "--",
                 sys.executable, "-c", "import boto3; boto3.client('sqs').list_queues()",
                 env=aws_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(record.read_text())
    assert document["Run"]["Mode"] == "assume"
    assert document["Run"]["SessionArn"].startswith(f"arn:aws:sts::{localaws.ACCOUNT_ID}:")
    assert document["Run"]["SessionPolicies"] is None
    assert [c["Operation"] for c in document["Calls"]] == ["ListQueues"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("simulate", "--local", "--role-name", "x", "--record", "r.json", "--profile", "p"),
            "--record records a command's AWS calls",
        ),
        (
            ("assume", "--role-name", "x", "--record", "r.json", "--format", "env"),
            "--record records a command's AWS calls",
        ),
        (  # nothing but --record: its own message, not the generic "specify --profile..."
            ("simulate", "--local", "--role-name", "x", "--record", "r.json"),
            "--record records a command's AWS calls: give a command to run",
        ),
        (
            ("assume", "--role-name", "x", "--record", "r.json"),
            "--record records a command's AWS calls: give a command to run",
        ),
    ],
)
def test_record_without_a_command_is_a_usage_error(
    cli: Any, args: tuple[str, ...], message: str
) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_damaged_record_is_one_line_and_exit_1(cli: Any, tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    record.write_text('{"RecordVersion": 1, "Run": {"Command": "simul')
    result = cli("report", str(record))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "damaged or truncated" in result.stderr
    missing = cli("report", str(tmp_path / "none.json"))
    assert missing.returncode == 1
    assert "there is no record" in missing.stderr


def test_a_record_that_is_not_text_or_nested_too_deep_is_one_line_and_exit_1(
    cli: Any, tmp_path: Path
) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{not utf-8")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)
    for path in (binary, deep):
        result = cli("report", str(path))
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert str(path) in result.stderr


def test_a_record_larger_than_any_run_writes_is_refused_before_it_is_read(
    cli: Any, tmp_path: Path
) -> None:
    from iam_sudo.core.record import MAX_RECORD_BYTES

    huge = tmp_path / "huge.json"
    with open(huge, "wb") as file:
        file.truncate(MAX_RECORD_BYTES + 1)  # sparse: no disk used
    result = cli("report", str(huge))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "larger than" in result.stderr


# -- the whole loop against a local AWS that denies as AWS does (devtools.enforced) --------

LOOP_ACCOUNT = localaws.ACCOUNT_ID
LOOP_BUCKET = "loop-orders"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def enforcing() -> Iterator[tuple[Any, dict[str, str]]]:
    """moto enforcing IAM with session policies (see devtools/enforced.py): a developer who
    may run iam-sudo, the base role IAMSudoUser (no SNS), and TaskRole, which reads orders,
    may not delete the table, and lacks s3:PutObject and sqs:SendMessage."""
    from devtools import enforced

    aws = enforced.start()
    iam = enforced.admin(aws, "iam", LOOP_ACCOUNT)
    user = enforced.user_with_keys(iam, "developer")
    iam.put_user_policy(
        UserName="developer",
        PolicyName="all",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "*", "Resource": "*"}),
    )
    trust = json.dumps(
        localaws.trust_policy(("AWS", f"arn:aws:iam::{LOOP_ACCOUNT}:user/developer"))
    )
    iam.create_role(RoleName="IAMSudoUser", AssumeRolePolicyDocument=trust)
    for name, document in localaws.guard(account=LOOP_ACCOUNT).items():
        iam.put_role_policy(
            RoleName="IAMSudoUser", PolicyName=name, PolicyDocument=json.dumps(document)
        )
    iam.put_role_policy(
        RoleName="IAMSudoUser",
        PolicyName="ceiling",
        PolicyDocument=_policy(
            {"Effect": "Allow", "Action": ["s3:*", "sqs:*", "dynamodb:*", "sts:*"], "Resource": "*"}
        ),
    )
    task_trust = json.dumps(localaws.trust_policy(("Service", "ecs-tasks.amazonaws.com")))
    iam.create_role(RoleName="TaskRole", AssumeRolePolicyDocument=task_trust)
    iam.put_role_policy(
        RoleName="TaskRole",
        PolicyName="work",
        PolicyDocument=_policy(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{LOOP_BUCKET}/*",
            },
            {"Effect": "Allow", "Action": ["dynamodb:*", "sns:Publish"], "Resource": "*"},
            {"Effect": "Deny", "Action": "dynamodb:DeleteTable", "Resource": "*"},
        ),
    )
    s3 = enforced.admin(aws, "s3", LOOP_ACCOUNT)
    s3.create_bucket(Bucket=LOOP_BUCKET)
    s3.put_object(Bucket=LOOP_BUCKET, Key="in/1", Body=b"one")
    enforced.admin(aws, "sqs", LOOP_ACCOUNT).create_queue(QueueName="events")
    enforced.admin(aws, "dynamodb", LOOP_ACCOUNT).create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    enforced.admin(aws, "sns", LOOP_ACCOUNT).create_topic(Name="alerts")
    aws.enforce()
    yield aws, user
    aws.stop()


LOOP_SCRIPT = f"""\
import boto3, botocore.exceptions as e
s3, sqs, sns, ddb = (boto3.client(s) for s in ("s3", "sqs", "sns", "dynamodb"))
queue = f"{{sqs.meta.endpoint_url}}/{LOOP_ACCOUNT}/events"
calls = [
    lambda: s3.get_object(Bucket="{LOOP_BUCKET}", Key="in/1")["Body"].read(),
    lambda: s3.put_object(Bucket="{LOOP_BUCKET}", Key="out/1", Body=b"x"),
    lambda: sqs.send_message(QueueUrl=queue, MessageBody="m"),
    lambda: sns.publish(TopicArn="arn:aws:sns:us-east-1:{LOOP_ACCOUNT}:alerts", Message="m"),
    lambda: ddb.delete_table(TableName="orders"),
]
for call in calls:
    try:
        call()
        print("ok")
    except e.ClientError as error:
        print(error.response["Error"]["Code"])
"""


def test_the_loop_record_report_fix_against_a_local_aws_that_denies_as_aws(
    cli: Any, aws_env: dict[str, str], enforcing: tuple[Any, dict[str, str]], tmp_path: Path
) -> None:
    aws, user = enforcing
    env = {**aws_env, **user, "AWS_ENDPOINT_URL": aws.url}
    script = tmp_path / "app.py"
    script.write_text(LOOP_SCRIPT)
    first = tmp_path / "run.json"
    result = run_recorded(cli, env, "TaskRole", first, sys.executable, str(script))
    assert result.stdout.split() == [
        "ok",
        "AccessDenied",
        "AccessDenied",
        "AuthorizationError",
        "AccessDeniedException",
    ]
    summary = json.loads(cli("report", str(first), "--json", env=env).stdout)
    causes = {d["Actions"][0]: d["Cause"] for d in summary["Denied"]}
    assert causes == {
        "s3:PutObject": "role-lacks-it",  # because no session policy allows
        "sqs:SendMessage": "role-lacks-it",
        "sns:Publish": "base-role-cannot-grant",  # because no identity-based policy allows
        "dynamodb:DeleteTable": "explicit-deny",  # the role's own Deny, in a session policy
    }
    fix = cli("report", str(first), "--policy", env=env)
    document = json.loads(fix.stdout)
    assert document["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{LOOP_BUCKET}/out/1",
        },
        {
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": f"arn:aws:sqs:us-east-1:{LOOP_ACCOUNT}:events",
        },
    ]
    assert "sns Publish: not covered: base-role-cannot-grant" in fix.stderr
    assert "dynamodb DeleteTable: not covered: explicit-deny" in fix.stderr
    # try the fix: the role plus the draft passes what it lacked, and nothing else changes
    draft = tmp_path / "fix.json"
    draft.write_text(fix.stdout)
    second = tmp_path / "run2.json"
    result = run_recorded(
        cli,
        env,
        "TaskRole",
        second,
        sys.executable,
        str(script),
        extra=("--add-policy", str(draft)),
    )
    assert result.stdout.split() == [
        "ok",
        "ok",
        "ok",
        "AuthorizationError",
        "AccessDeniedException",
    ]


async def test_the_library_records_a_child_process_with_the_session_declared(
    aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path
) -> None:
    import asyncio

    from iam_sudo import IamSudo, load_record

    record = tmp_path / "lib.json"
    async with IamSudo() as sudo:
        session = await sudo.plan(role["name"])
        credentials = await sudo.assume_session(session)
        async with sudo.recording(credentials, record, session=session) as recorder:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import boto3; boto3.client('sqs').list_queues()",
                env=recorder.env(credentials.env(os.environ)),
            )  # fmt: skip
            assert await child.wait() == 0
    written = load_record(record.read_text())
    assert written == recorder.record
    assert written.run.mode == "library"
    assert written.run.target_role == role["arn"]
    assert written.run.session_policies
    assert [c.operation for c in written.calls] == ["ListQueues"]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


class CheckingS3(BaseHTTPRequestHandler):
    """A stand-in S3 that checks what it receives as S3 does, then keeps the decoded body.

    The seed signature is checked against the session's secret (read from the file the
    command writes it to), and every chunk's signature is chained from it, as the S3 API
    Reference's "Transferring Payload in Multiple Chunks" says (moto stores such bodies as
    zeros, so it cannot tell)."""

    protocol_version = "HTTP/1.1"
    objects: ClassVar[dict[str, bytes]] = {}
    secret_file: ClassVar[Path]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, data: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(200, self.objects.get(self.path, b""))

    def do_PUT(self) -> None:
        import hashlib
        import hmac

        from iam_sudo.core import sigv4

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("x-amz-content-sha256") != sigv4.STREAMING_SIGNED:
            self.objects[self.path] = body
            self._answer(200)
            return
        secret = self.secret_file.read_text().strip()
        headers = [(k, v) for k, v in self.headers.items()]
        signed = sigv4.parse_signed({k.lower(): v for k, v in headers}, "")
        try:
            sigv4.verify(method="PUT", raw_path=self.path, raw_query="", headers=headers,
                         payload_hash=sigv4.STREAMING_SIGNED, signed=signed, secret=secret,
                         now=sigv4.request_time(signed.amz_date))  # fmt: skip
        except sigv4.SignatureError:
            self._answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
            return
        scope = signed.scope
        key = sigv4.signing_key(secret, scope.date, scope.region, scope.service)
        previous, decoded, rest = signed.signature, b"", body
        while True:
            line, _, rest = rest.partition(b"\r\n")
            size_text, _, signature = line.decode().partition(";chunk-signature=")
            size = int(size_text, 16)
            chunk, rest = rest[:size], rest[size + 2 :]
            text = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    signed.amz_date,
                    scope.text,
                    previous,
                    hashlib.sha256(b"").hexdigest(),
                    hashlib.sha256(chunk).hexdigest(),
                ]
            )
            expected = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
            if expected != signature:
                self._answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
                return
            previous, decoded = signature, decoded + chunk
            if size == 0:
                break
        if len(decoded) != int(self.headers["x-amz-decoded-content-length"]):
            self._answer(400, b"<Error><Code>IncompleteBody</Code></Error>")
            return
        self.objects[self.path] = decoded
        self._answer(200)


@pytest.fixture
def checking_s3(tmp_path: Path) -> Iterator[str]:
    CheckingS3.secret_file = tmp_path / "secret"
    server = ThreadingHTTPServer(("127.0.0.1", 0), CheckingS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


STREAMING_SCRIPT = """\
import datetime, hashlib, hmac, os, sys, urllib.request, boto3
from botocore.config import Config
bucket, secret_file = sys.argv[1], sys.argv[2]
key_id, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
open(secret_file, "w").write(secret)
s3 = boto3.client("s3")
# UNSIGNED-PAYLOAD: botocore sends it when payload signing is off
unsigned = boto3.client("s3", config=Config(s3={"payload_signing_enabled": False}))
unsigned.put_object(Bucket=bucket, Key="unsigned", Body=b"u" * 1000)
# STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signed here by hand as the S3 API Reference's
# "Transferring Payload in Multiple Chunks" says (what the Java SDK sends over HTTP)
token, region = os.environ["AWS_SESSION_TOKEN"], os.environ["AWS_REGION"]
endpoint = os.environ["AWS_ENDPOINT_URL"]
now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
scope = f"{now[:8]}/{region}/s3/aws4_request"
def mac(key, text): return hmac.new(key, text.encode(), hashlib.sha256)
key = mac(("AWS4" + secret).encode(), now[:8]).digest()
for part in (region, "s3", "aws4_request"):
    key = mac(key, part).digest()
chunks = [b"a" * 65536, b"b" * 1000, b""]
decoded = sum(len(c) for c in chunks)
length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 2 + len(c) + 2 for c in chunks)
headers = {"content-encoding": "aws-chunked", "content-length": str(length),
           "host": endpoint.split("://")[1],
           "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-date": now,
           "x-amz-decoded-content-length": str(decoded), "x-amz-security-token": token}
names = sorted(headers)
canonical = "\\n".join(["PUT", f"/{bucket}/streamed", "",
    "".join(f"{n}:{headers[n]}\\n" for n in names), ";".join(names),
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
to_sign = "\\n".join(["AWS4-HMAC-SHA256", now, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
previous = mac(key, to_sign).hexdigest()
headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={previous}")
body = b""
empty = hashlib.sha256(b"").hexdigest()
for chunk in chunks:
    text = "\\n".join(["AWS4-HMAC-SHA256-PAYLOAD", now, scope, previous, empty,
                      hashlib.sha256(chunk).hexdigest()])
    previous = mac(key, text).hexdigest()
    body += f"{len(chunk):x};chunk-signature={previous}\\r\\n".encode() + chunk + b"\\r\\n"
request = urllib.request.Request(f"{endpoint}/{bucket}/streamed", data=body, method="PUT",
                                 headers={k: v for k, v in headers.items() if k != "host"})
with urllib.request.urlopen(request, timeout=30) as answer:
    assert answer.status == 200
got = s3.get_object(Bucket=bucket, Key="streamed")["Body"].read()
assert got == b"a" * 65536 + b"b" * 1000, got[:100]
assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"u" * 1000
print("ok")
"""


def test_s3_chunk_signed_and_unsigned_payloads_pass_the_recorder(
    cli: Any, aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path, checking_s3: str
) -> None:
    script = tmp_path / "streaming.py"
    script.write_text(STREAMING_SCRIPT)
    record = tmp_path / "run.json"
    env = {**aws_env, "AWS_ENDPOINT_URL_S3": checking_s3}
    result = run_recorded(cli, env, role["name"], record, sys.executable, str(script),
                          "streamed-bucket", str(CheckingS3.secret_file))  # fmt: skip
    assert result.stdout.strip() == "ok"
    found = by_operation(calls(record))
    assert [c["Outcome"] for c in found["s3:PutObject"]] == ["allowed", "allowed"]
    assert found["s3:PutObject"][1]["Resources"] == ["arn:aws:s3:::streamed-bucket/streamed"]


def test_a_run_killed_midway_leaves_a_readable_incomplete_record(
    aws_env: dict[str, str], role: dict[str, Any], tmp_path: Path, cli: Any
) -> None:
    import signal
    import time

    record = tmp_path / "run.json"
    code = "import time, boto3; boto3.client('sqs').list_queues(); time.sleep(120)"
    process = subprocess.Popen(
        [sys.executable, "-m", "iam_sudo", "simulate", "--local", "--role-name", role["name"],
         "--record", str(record), "--", sys.executable, "-c", code],
        env=aws_env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if record.exists() and '"ListQueues"' in record.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the record never showed the call")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # iam-sudo and its command: nothing ends well
        process.wait(timeout=30)
    document = json.loads(record.read_text())
    assert document["Run"]["Complete"] is False
    assert [c["Operation"] for c in document["Calls"]] == ["ListQueues"]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    report = cli("report", str(record))
    assert report.returncode == 0
    assert "is incomplete" in report.stderr


def test_remote_records_what_the_client_knows(
    cli: Any, remote_env: dict[str, str], role: dict[str, Any], tmp_path: Path
) -> None:
    record = tmp_path / "run.json"
    result = cli("simulate", "--role-name", role["name"], "--record", str(record), "--",
                 sys.executable, "-c", "import boto3; boto3.client('sqs').list_queues()",
                 env=remote_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(record.read_text())
    run = document["Run"]
    assert (run["Mode"], run["TargetRole"], run["SessionPolicies"]) == (
        "remote",
        role["name"],
        None,
    )
    assert run["SessionArn"].endswith(f"assumed-role/IAMSudoUser/iam-sudo-{role['name']}")
    assert [c["Operation"] for c in document["Calls"]] == ["ListQueues"]
    report = cli("report", str(record), env=remote_env)
    assert "GRANTED BUT NEVER USED: not known" in report.stdout


def test_a_policy_with_nothing_to_add_says_so_on_stderr(cli: Any, tmp_path: Path) -> None:
    # `report --policy > fix.json` then `--add-policy fix.json`: an empty Statement is
    # refused there, so the report says at once that there is nothing to add.
    from tests.unit.test_report import LOCAL

    record = tmp_path / "run.json"
    record.write_text(json.dumps({"RecordVersion": 1, "Run": LOCAL.to_json(), "Calls": []}))
    result = cli("report", str(record), "--policy")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Statement"] == []
    assert result.stderr.count("\n") == 1, result.stderr
    assert "nothing to add" in result.stderr

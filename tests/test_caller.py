"""Caller proofs: checked locally, then by STS itself, on a local AWS that enforces IAM."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from devtools import enforced, localaws, pulumi_program
from devtools.lambda_stand_in import LambdaStandIn
from iam_sudo import IamSudo, Unauthenticated
from iam_sudo.caller import CallerProof, caller_from_answer, check_proof, source_identity

STS = "https://sts.us-east-1.amazonaws.com"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SIGNED = "AWS4-HMAC-SHA256 Credential=AKIA/20261126/us-east-1/sts/aws4_request, "
PROOF = CallerProof(
    "POST",
    STS + "/",
    {
        "Authorization": SIGNED + "SignedHeaders=content-type;host;x-amz-date;x-iam-sudo-audience, "
        "Signature=abc",
        "X-Amz-Date": "20261126T115500Z",
        "X-IAM-Sudo-Audience": "iam-sudo",
    },
    "Action=GetCallerIdentity&Version=2011-06-15",
)


def check(proof: CallerProof, now: datetime = NOW) -> None:
    check_proof(proof, sts_endpoint=STS, audience="iam-sudo", now=now)


def test_a_well_formed_proof_passes_the_local_checks() -> None:
    check(PROOF)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "GET"},
        {"url": "https://sts.amazonaws.com.evil.example/"},
        {"url": "https://evil.example/?https://sts.us-east-1.amazonaws.com"},
        {"url": STS + "/?Action=AssumeRole"},
        {"url": "https://user@sts.us-east-1.amazonaws.com/"},
        {"body": "Action=AssumeRole&Version=2011-06-15"},
        {"headers": {**PROOF.headers, "X-IAM-Sudo-Audience": "other-function"}},
        {"headers": {**PROOF.headers, "x-iam-sudo-audience": "iam-sudo"}},
        {"headers": {**PROOF.headers, "X-Amz-Date": "20261126T112000Z"}},
        {"headers": {**PROOF.headers, "X-Amz-Date": "yesterday"}},
        {
            "headers": {
                **PROOF.headers,
                "Authorization": SIGNED + "SignedHeaders=host;x-amz-date, Signature=abc",
            }
        },
    ],
    ids=[
        "method",
        "other-host",
        "host-in-query",
        "other-action-in-query",
        "userinfo",
        "other-body",
        "other-audience",
        "ambiguous-audience",
        "expired",
        "bad-date",
        "audience-unsigned",
    ],
)
def test_anything_but_our_own_recent_get_caller_identity_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated, match=r"^the caller's identity proof was refused$"):
        check(replace(PROOF, **change))


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        {"method": "POST"},
        {**PROOF.to_event(), "extra": 1},
        {**PROOF.to_event(), "headers": []},
    ],
)
def test_a_malformed_proof_is_refused_without_detail(value: object) -> None:
    with pytest.raises(Unauthenticated, match=r"^the caller's identity proof was refused$"):
        CallerProof.from_event(value)


def test_only_stss_answer_names_the_caller() -> None:
    body = b"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/a</Arn>"
    assert caller_from_answer(200, body) == "arn:aws:iam::1:user/a"
    for status, answer in ((403, body), (200, b"<Error/>"), (500, b"")):
        with pytest.raises(Unauthenticated):
            caller_from_answer(status, answer)


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:iam::123456789012:user/alice", "alice"),
        ("arn:aws:iam::123456789012:user/team/bob", "bob"),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/carol@example.com",
            "carol@example.com",
        ),
        ("arn:aws:sts::123456789012:federated-user/dave", "dave"),
        ("arn:aws:iam::123456789012:root", "root"),
        ("arn:aws:sts::123456789012:assumed-role/R/x", "x-"),
        ("arn:aws:sts::123456789012:assumed-role/R/" + "e" * 70, "e" * 64),
        ("arn:aws:sts::123456789012:assumed-role/R/a b:c", "a-b-c"),
    ],
)
def test_the_source_identity_names_the_person_within_stss_rules(arn: str, expected: str) -> None:
    assert source_identity(arn) == expected


# --- on a local AWS that checks signatures and IAM policies -----------------------------

RULES = """\
rules:
  - allowed-callers: ["arn:aws:iam::123456789012:user/alice"]
    allowed-role-names: ["*TaskRole*"]
    allowed-principals: [{Service: ecs-tasks.amazonaws.com}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
  - allowed-callers: ["arn:aws:iam::123456789012:user/bob"]
    allowed-role-names: ["*BuildRole*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
"""


@dataclass
class World:
    aws: enforced.EnforcedAws
    stand_in: LambdaStandIn
    users: dict[str, dict[str, str]]
    execution: dict[str, str]
    function_log: list[str]

    def client_env(self, user: str, base: dict[str, str]) -> dict[str, str]:
        return {
            **{k: v for k, v in base.items() if not k.startswith("AWS_")},
            **localaws.LocalAws("", self.aws.url, self.aws.recorder, None, None).env(),  # type: ignore[arg-type]
            **self.users[user],
            "AWS_ENDPOINT_URL_LAMBDA": self.stand_in.url,
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    aws = enforced.start()
    iam = localaws.client("iam", aws.url)
    program = pulumi_program.run({"policy": RULES}, tmp_path_factory.mktemp("enforced"))
    enforced.create_program_resources(iam, program)
    users = {name: enforced.user_with_keys(iam, name) for name in ("alice", "bob")}
    for name, trust in (("app-TaskRole", "ecs-tasks"), ("app-BuildRole", "codebuild")):
        verbose = {
            f"p{i}": localaws.allow(f"s3:Get{i}", f"arn:aws:s3:::{name.lower() * 20}{i}")
            for i in range(20)
        }
        localaws.create_role(
            iam,
            name,
            trust=localaws.trust_policy(("Service", f"{trust}.amazonaws.com")),
            inline=verbose,
            managed=["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"],
        )
    sts = localaws.client("sts", aws.url)
    execution = enforced.session_env(
        sts.assume_role(
            RoleArn="arn:aws:iam::123456789012:role/iam-sudo-execution", RoleSessionName="lambda"
        )["Credentials"]
    )
    stand_in = LambdaStandIn()
    env = {
        **localaws.LocalAws("", aws.url, aws.recorder, None, None).env(),  # type: ignore[arg-type]
        **execution,
        **program.function_env,
    }
    function = stand_in.add_function("iam-sudo", program.archive, env)
    aws.enforce()
    yield World(aws, stand_in, users, execution, function.logs)
    stand_in.stop()
    aws.stop()


def simulate(world: World, user: str, role: str, base: dict[str, str]) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "iam_sudo", "simulate", "--role-name", role, "--", "true"],
        env=world.client_env(user, base),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_call_the_function_makes_is_allowed_by_the_program_s_policy(
    world: World, aws_env: dict[str, str]
) -> None:
    world.aws.recorder.clear()
    result = simulate(world, "alice", "app-TaskRole", aws_env)
    assert result.returncode == 0, result.stderr
    actions = set(world.aws.recorder.actions())
    # Signed with the function's execution role, each authorized by moto under enforcement.
    assert {
        "GetCallerIdentity",
        "ListRoles",
        "ListPolicies",
        "GetRole",
        "GetPolicyVersion",
    } <= actions
    assert {"CreatePolicy", "AssumeRole"} <= actions
    [sent] = world.aws.recorder.sent("AssumeRole")
    assert sent["SourceIdentity"] == "alice"
    log = json.loads(world.function_log[-1])
    assert log["caller"] == "arn:aws:iam::123456789012:user/alice"
    assert log["source_identity"] == "alice"
    assert "proof" not in world.function_log[-1]
    assert world.users["alice"]["AWS_SECRET_ACCESS_KEY"] not in "\n".join(world.function_log)


def test_per_caller_rules_decide_and_a_denial_names_only_what_was_asked(
    world: World, aws_env: dict[str, str]
) -> None:
    denied = simulate(world, "alice", "app-BuildRole", aws_env)
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        "iam-sudo: error: sudo policy allows no role matching name 'app-BuildRole'"
    )
    assert simulate(world, "bob", "app-BuildRole", aws_env).returncode == 0


@pytest.mark.parametrize(
    "call",
    [
        ("iam", "create_role", {"RoleName": "x", "AssumeRolePolicyDocument": "{}"}),
        (
            "iam",
            "create_policy",
            {"PolicyName": "x", "PolicyDocument": json.dumps(localaws.allow("*"))},
        ),
        ("iam", "delete_policy", {"PolicyArn": "arn:aws:iam::123456789012:policy/iam-sudo/x"}),
        (
            "iam",
            "put_role_policy",
            {"RoleName": "app-TaskRole", "PolicyName": "x", "PolicyDocument": "{}"},
        ),
        (
            "sts",
            "assume_role",
            {"RoleArn": "arn:aws:iam::123456789012:role/app-TaskRole", "RoleSessionName": "xx"},
        ),
    ],
    ids=[
        "create-role",
        "create-policy-elsewhere",
        "delete-policy",
        "put-role-policy",
        "assume-other-role",
    ],
)
def test_a_call_the_function_should_not_make_is_refused(
    world: World, call: tuple[str, str, dict[str, Any]]
) -> None:
    import botocore.exceptions

    service, operation, params = call
    client = as_function(world, service)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        getattr(client, operation)(**params)
    assert caught.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")


def as_function(world: World, service: str, **credentials: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=world.aws.url,
        region_name="us-east-1",
        aws_access_key_id=credentials.get("key", world.execution["AWS_ACCESS_KEY_ID"]),
        aws_secret_access_key=world.execution["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=world.execution["AWS_SESSION_TOKEN"],
    )


def test_the_local_aws_really_checks_signatures_and_policies(world: World) -> None:
    import botocore.exceptions

    assert as_function(world, "iam").list_roles(MaxItems=1)["Roles"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        as_function(world, "iam", key="ASIAFORGEDKEY0000000").list_roles(MaxItems=1)
    assert caught.value.response["Error"]["Code"] == "InvalidClientTokenId"


async def proof_of(world: World, user: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in world.client_env(user, {}).items():
        monkeypatch.setenv(name, value)
    async with IamSudo() as sudo:
        proof = await sudo.transport.identity_proof("iam-sudo")
    return proof.to_event()


def invoke(world: World, event: dict[str, Any]) -> dict[str, Any]:
    reply = localaws.client("lambda", world.stand_in.url).invoke(
        FunctionName="iam-sudo", Payload=json.dumps(event).encode()
    )
    return dict(json.loads(reply["Payload"].read()))


def tamper(proof: dict[str, Any], header: str, edit: Any) -> dict[str, Any]:
    headers = dict(proof["headers"])
    headers[header] = edit(headers[header])
    return {**proof, "headers": headers}


async def test_a_tampered_proof_is_refused_because_sts_rejects_it(
    world: World, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await proof_of(world, "alice", monkeypatch)
    bob_key = world.users["bob"]["AWS_ACCESS_KEY_ID"]
    alice_key = world.users["alice"]["AWS_ACCESS_KEY_ID"]
    forged = {
        "key id swapped": tamper(alice, "Authorization", lambda v: v.replace(alice_key, bob_key)),
        "signature changed": tamper(
            alice, "Authorization", lambda v: v[:-1] + ("0" if v[-1] != "0" else "1")
        ),
        "signed header changed": tamper(
            alice, "Content-Type", lambda v: v.replace("charset=utf-8", "charset=latin-1")
        ),
    }
    for what, proof in forged.items():
        world.aws.recorder.clear()
        reply = invoke(world, {"role_name": "app-TaskRole", "proof": proof})
        assert reply.get("errorType") == "Unauthenticated", what
        # It reached STS, which said no: the refusal is STS's, not a guess of ours.
        assert world.aws.recorder.actions() == ["GetCallerIdentity"], what
        assert json.loads(world.function_log[-1])["decision"] == "unauthenticated"
    assert "AccessKeyId" in invoke(world, {"role_name": "app-TaskRole", "proof": alice})


async def test_the_function_contacts_no_host_but_its_sts_endpoint(
    world: World, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hits: list[str] = []

    class Attacker(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<Arn>arn:aws:iam::123456789012:user/admin</Arn>")

        def log_message(self, *args: Any) -> None:
            pass

    import threading

    attacker = localaws.LoopbackServer(("127.0.0.1", localaws.free_port()), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        alice = await proof_of(world, "alice", monkeypatch)
        elsewhere = {**alice, "url": f"http://127.0.0.1:{attacker.server_address[1]}/"}
        other = await proof_of(world, "alice", monkeypatch)
        world.aws.recorder.clear()
        for proof in (elsewhere, tamper(other, "X-IAM-Sudo-Audience", lambda v: "other")):
            reply = invoke(world, {"role_name": "app-TaskRole", "proof": proof})
            assert reply.get("errorType") == "Unauthenticated"
        assert hits == []
        assert world.aws.recorder.requests == [], "refused before anything reached AWS"
    finally:
        attacker.shutdown()


def test_the_program_leaves_room_for_the_policy_in_lambdas_environment(tmp_path: Path) -> None:
    program = pulumi_program.run({"policy": RULES}, tmp_path)
    total = sum(len(k) + len(v) for k, v in program.function_env.items())
    assert total <= 4096

"""Caller proofs end to end: checked by STS itself, on a local AWS that enforces IAM."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from devtools import enforced, localaws, pulumi_program
from devtools.lambda_stand_in import LambdaStandIn
from iam_sudo import IamSudo, Unauthenticated
from iam_sudo.aws.caller import CallerProof
from tests.conftest import run_cli
from tests.integration.conftest import EnforcedWorld, enforced_world
from tests.unit.test_caller import RULES, signed

# An enforced world of its own: moto in this process.
pytestmark = pytest.mark.aws


@pytest.mark.parametrize("threads", [False, True])
async def test_the_function_sends_a_proof_to_the_sts_endpoint_it_was_signed_for(
    threads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No endpoint override: the function's STS is its regional endpoint, and a legacy
    # client's proof goes to the global endpoint it was signed for (STS checks it there).
    from iam_sudo.aws import transports as _transports
    from iam_sudo.aws.transports import ThreadTransport

    for name in list(os.environ):
        if name.startswith(("AWS_", "IAM_SUDO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    posted: list[str] = []

    def post(endpoint: str, proof: CallerProof, timeout: float) -> tuple[int, bytes]:
        posted.append(endpoint)
        return 200, b"<Arn>arn:aws:iam::111111111111:user/alice</Arn>"

    monkeypatch.setattr(_transports, "_post", post)
    audience = "arn:aws:lambda:us-east-1:111111111111:function:iam-sudo"
    proofs = [signed("us-east-1", "legacy", audience), signed("eu-west-1", "regional", audience)]
    async with IamSudo(transport=ThreadTransport() if threads else None) as sudo:
        for proof in proofs:
            caller = await sudo.verify_caller(proof.to_event(), audience=audience)
            assert caller == "arn:aws:iam::111111111111:user/alice"
        elsewhere = {**proofs[0].to_event(), "url": "https://sts.amazonaws.com.evil.example/"}
        with pytest.raises(Unauthenticated):
            await sudo.verify_caller(elsewhere, audience=audience)
    assert posted == ["https://sts.amazonaws.com/", "https://sts.eu-west-1.amazonaws.com/"]


OTHER_ACCOUNT = "111111111111"


OTHER_RULES = """\
rules:
  - allowed-callers: ["arn:aws:iam::111111111111:user/carol"]
    allowed-role-names: ["*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
"""


@dataclass
class World(EnforcedWorld):
    # Deployments of a function of the same name: (Lambda endpoint, function ARN).
    deployments: dict[str, tuple[LambdaStandIn, str]]

    @property
    def function_log(self) -> list[str]:
        return self.function.logs

    @property
    def function_arn(self) -> str:
        return self.function.arn


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    hub = enforced_world(tmp_path_factory.mktemp("enforced"), {"policy": RULES}, ("alice", "bob"))
    iam = hub.iam
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
    env = hub.function_environment()
    # The same name in another region of the account, and in another account.
    in_region = LambdaStandIn()
    regional = in_region.add_function("iam-sudo", hub.program.archive, env, region="eu-west-1")
    admin = enforced.session_env(
        hub.sts.assume_role(
            RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/Admin", RoleSessionName="setup"
        )["Credentials"]
    )
    other_iam = as_session(hub.aws.url, "iam", admin)
    other_program = pulumi_program.run(
        {"policy": OTHER_RULES}, tmp_path_factory.mktemp("other-account")
    )
    enforced.create_program_resources(other_iam, other_program)
    hub.users["carol"] = enforced.user_with_keys(other_iam, "carol")
    other_execution = enforced.session_env(
        as_session(hub.aws.url, "sts", admin).assume_role(
            RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/iam-sudo-execution",
            RoleSessionName="lambda",
        )["Credentials"]
    )
    in_account = LambdaStandIn()
    other = in_account.add_function(
        "iam-sudo",
        other_program.archive,
        {
            **env,
            **other_execution,
            **other_program.function_env,
            "IAM_SUDO_BASE_ROLE": f"arn:aws:iam::{OTHER_ACCOUNT}:role/IAMSudoUser",
            "IAM_SUDO_BASE_ROLE_ACCOUNTS": OTHER_ACCOUNT,
        },
        account=OTHER_ACCOUNT,
    )
    deployments = {
        "home": (hub.stand_in, hub.function.arn),
        "other-region": (in_region, regional.arn),
        "other-account": (in_account, other.arn),
    }
    world = World(**vars(hub), deployments=deployments)
    world.enforce()
    yield world
    for each in (in_region, in_account):
        each.stop()
    world.stop()


def as_session(url: str, service: str, env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )


def simulate(world: World, user: str, role: str, base: dict[str, str]) -> Any:
    return run_cli("simulate", "--role-name", role, "--", "true", env=world.client_env(user, base))


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
        "iam-sudo: error: sudo policy allows no role matching name 'app-BuildRole'; "
        "`iam-sudo roles` lists the roles the sudo policy lets you simulate"
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


async def proof_of(
    world: World, user: str, monkeypatch: pytest.MonkeyPatch, audience: str | None = None
) -> dict[str, Any]:
    for name, value in world.client_env(user, {}).items():
        monkeypatch.setenv(name, value)
    async with IamSudo() as sudo:
        proof = await sudo.transport.identity_proof(audience or world.function_arn)
    return proof.to_event()


def invoke(
    world: World, event: dict[str, Any], stand_in: LambdaStandIn | None = None
) -> dict[str, Any]:
    reply = localaws.client("lambda", (stand_in or world.stand_in).url).invoke(
        FunctionName="iam-sudo", Payload=json.dumps(event).encode()
    )
    return dict(json.loads(reply["Payload"].read()))


SIGNERS = {"home": "alice", "other-region": "alice", "other-account": "carol"}


async def test_a_proof_for_one_deployment_is_refused_by_every_other(
    world: World, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three functions named iam-sudo: here, in another region, in another account. Each
    # serves a proof signed for it, and refuses one signed for either of the others,
    # before anything reaches AWS.
    for source, (_, audience) in world.deployments.items():
        proof = await proof_of(world, SIGNERS[source], monkeypatch, audience)
        for target, (stand_in, _) in world.deployments.items():
            world.aws.recorder.clear()
            reply = invoke(world, {"action": "roles", "proof": proof}, stand_in)
            if source == target:
                assert "roles" in reply, (source, reply)
                assert world.aws.recorder.actions("sts") == ["GetCallerIdentity"]
            else:
                assert reply.get("errorType") == "Unauthenticated", (source, target)
                assert world.aws.recorder.requests == [], (source, target)


async def test_the_client_names_the_deployment_it_invokes(
    world: World, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bare name is in the client's region and the caller's account (one GetCallerIdentity);
    # an ARN names its own deployment (no request).
    regional, _ = world.deployments["other-region"]
    for name, value in world.client_env("alice", {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", regional.url)
    async with IamSudo() as sudo:
        assert [r["name"] for r in await sudo.roles_remote()] == ["app-TaskRole"]
    for name, value in world.client_env("carol", {}).items():
        monkeypatch.setenv(name, value)
    other, arn = world.deployments["other-account"]
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", other.url)
    world.aws.recorder.clear()
    async with IamSudo() as sudo:
        assert await sudo.roles_remote(function_name=arn + ":live") is not None
        assert (
            await sudo.roles_remote(function_name=f"{OTHER_ACCOUNT}:function:iam-sudo") is not None
        )
    # Only the function's own verification of each proof went to STS.
    assert world.aws.recorder.actions("sts") == ["GetCallerIdentity"] * 2


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
        unsendable = [
            {**other, "headers": {**other["headers"], "Transfer-Encoding": "chunked"}},
            tamper(other, "Content-Type", lambda v: v + "\r\nX-Injected: 1"),
            tamper(other, "Content-Type", lambda v: v + "\u00e9"),
            tamper(
                other,
                "Authorization",
                lambda v: v.replace(", Signature=", ", SignedHeaders=host, Signature="),
            ),
        ]
        for proof in (
            elsewhere,
            tamper(other, "X-IAM-Sudo-Audience", lambda v: "other"),
            tamper(other, "X-IAM-Sudo-Audience", lambda v: "iam-sudo"),
            *unsendable,
        ):
            reply = invoke(world, {"role_name": "app-TaskRole", "proof": proof})
            assert reply.get("errorType") == "Unauthenticated"
        assert hits == []
        assert world.aws.recorder.requests == [], "refused before anything reached AWS"
    finally:
        attacker.shutdown()

"""Caller proofs: the local checks, the STS endpoints a proof may name, source identities.

What STS itself says of a proof, under enforcement: tests/integration/test_caller.py.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools import pulumi_program
from iam_sudo import ConfigurationError, Unauthenticated
from iam_sudo.aws.caller import (
    CallerProof,
    caller_from_answer,
    check_proof,
    deployment_audience,
    own_audience,
    source_identity,
)

STS = "https://sts.us-east-1.amazonaws.com"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
AUDIENCE = "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo"
SIGNED = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/sts/aws4_request, "
SIGNATURE = "Signature=" + "ab" * 32
PROOF = CallerProof(
    "POST",
    STS + "/",
    {
        "Authorization": SIGNED
        + "SignedHeaders=content-type;host;x-amz-date;x-iam-sudo-audience, "
        + SIGNATURE,
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Amz-Date": "20261126T115500Z",
        "X-IAM-Sudo-Audience": AUDIENCE,
    },
    "Action=GetCallerIdentity&Version=2011-06-15",
)


def check(proof: CallerProof, now: datetime = NOW) -> CallerProof:
    return check_proof(proof, sts_endpoint=STS, audience=AUDIENCE, now=now)


def test_a_well_formed_proof_passes_the_local_checks_and_is_sent_as_it_is() -> None:
    assert check(PROOF) == PROOF


def with_header(name: str, value: str) -> dict[str, Any]:
    return {"headers": {**PROOF.headers, name: value}}


def authorization(middle: str) -> dict[str, Any]:
    return with_header("Authorization", SIGNED + middle)


SIGNED_NAMES = "SignedHeaders=content-type;host;x-amz-date;x-iam-sudo-audience"


@pytest.mark.parametrize(
    "change",
    [
        {"method": "GET"},
        {"url": "https://sts.amazonaws.com.evil.example/"},
        {"url": "https://evil.example/?https://sts.us-east-1.amazonaws.com"},
        {"url": STS + "/?Action=AssumeRole"},
        {"url": "https://user@sts.us-east-1.amazonaws.com/"},
        {"body": "Action=AssumeRole&Version=2011-06-15"},
        with_header("X-IAM-Sudo-Audience", "other-function"),
        # The same name in another account, region or partition, or qualified: not us.
        with_header("X-IAM-Sudo-Audience", AUDIENCE.replace("123456789012", "111111111111")),
        with_header("X-IAM-Sudo-Audience", AUDIENCE.replace("us-east-1", "eu-west-1")),
        with_header("X-IAM-Sudo-Audience", AUDIENCE.replace("arn:aws:", "arn:aws-cn:")),
        with_header("X-IAM-Sudo-Audience", "iam-sudo"),
        with_header("x-iam-sudo-audience", AUDIENCE),
        with_header("X-Amz-Date", "20261126T112000Z"),
        with_header("X-Amz-Date", "yesterday"),
        authorization("SignedHeaders=host;x-amz-date, " + SIGNATURE),
        # Strict SigV4 grammar: each component once, in order, nothing else.
        authorization("SignedHeaders=host;x-amz-date, " + SIGNED_NAMES + ", " + SIGNATURE),
        authorization(SIGNED_NAMES + ", " + SIGNATURE + ", " + SIGNATURE),
        authorization(SIGNED_NAMES + ", " + SIGNATURE + ", Credential=AKIAIOSFODNN7EXAMPLE"),
        authorization(SIGNED_NAMES + "," + SIGNATURE),
        authorization(SIGNED_NAMES + ", Signature=abc"),
        with_header(
            "Authorization",
            SIGNED.replace("/sts/", "/iam/") + SIGNED_NAMES + ", " + SIGNATURE,
        ),
        with_header(
            "Authorization",
            SIGNED.replace("20261126", "20261125") + SIGNED_NAMES + ", " + SIGNATURE,
        ),
        authorization(
            "SignedHeaders=host;content-type;x-amz-date;x-iam-sudo-audience, " + SIGNATURE
        ),
        # Only the signed headers and Authorization are sent, each exactly as given.
        with_header("Transfer-Encoding", "chunked"),
        with_header("User-Agent", "unsigned"),
        with_header("Host", "sts.us-east-1.amazonaws.com"),
        authorization(
            "SignedHeaders=content-type;host;transfer-encoding;x-amz-date;x-iam-sudo-audience, "
            + SIGNATURE
        ),
        with_header("Content-Type", "text/plain\r\nX-Injected: 1"),
        with_header("Content-Type", "text/plain\n"),
        with_header("Content-Type", "caf\u00e9"),
        with_header("Content-Type", "\u2603"),
        with_header("Content-Type", " padded"),
        with_header("Bad Name", "x"),
    ],
    ids=[
        "method",
        "other-host",
        "host-in-query",
        "other-action-in-query",
        "userinfo",
        "other-body",
        "other-audience",
        "same-name-other-account",
        "same-name-other-region",
        "same-name-other-partition",
        "bare-name-audience",
        "ambiguous-audience",
        "expired",
        "bad-date",
        "audience-unsigned",
        "two-signed-headers",
        "two-signatures",
        "trailing-credential",
        "no-space-after-comma",
        "short-signature",
        "other-service-scope",
        "scope-date-not-the-request-date",
        "signed-headers-unsorted",
        "transfer-encoding",
        "unsigned-header",
        "host-header",
        "signed-transfer-encoding",
        "crlf",
        "lf",
        "latin-1",
        "non-latin-1",
        "leading-blank",
        "bad-header-name",
    ],
)
def test_anything_but_our_own_recent_get_caller_identity_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated, match=r"^the caller's identity proof was refused$"):
        check(replace(PROOF, **change))


def test_the_proof_of_a_session_carries_its_signed_token() -> None:
    signed = SIGNED_NAMES.replace("x-amz-date;", "x-amz-date;x-amz-security-token;")
    headers = {
        **PROOF.headers,
        "Authorization": SIGNED + signed + ", " + SIGNATURE,
        "X-Amz-Security-Token": "FwoGZXIvYXdzEXAMPLE+/=",
    }
    proof = replace(PROOF, headers=headers)
    assert check(proof) == proof
    del headers["X-Amz-Security-Token"]
    with pytest.raises(Unauthenticated):
        check(replace(PROOF, headers=headers))


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("iam-sudo", "arn:aws:lambda:eu-west-1:222222222222:function:iam-sudo"),
        ("iam-sudo:live", "arn:aws:lambda:eu-west-1:222222222222:function:iam-sudo"),
        ("iam-sudo:$LATEST", "arn:aws:lambda:eu-west-1:222222222222:function:iam-sudo"),
        (
            "111111111111:function:iam-sudo",
            "arn:aws:lambda:eu-west-1:111111111111:function:iam-sudo",
        ),
        (
            "111111111111:function:iam-sudo:3",
            "arn:aws:lambda:eu-west-1:111111111111:function:iam-sudo",
        ),
        (
            "arn:aws-cn:lambda:cn-north-1:333333333333:function:f:live",
            "arn:aws-cn:lambda:cn-north-1:333333333333:function:f",
        ),
    ],
)
def test_the_audience_is_the_unqualified_arn_of_what_is_invoked(
    function: str, expected: str
) -> None:
    # Lambda API reference, Invoke: FunctionName is a name, an ARN or a partial ARN, with an
    # optional version or alias; names and partial ARNs are in the client's region.
    assert (
        deployment_audience(function, partition="aws", region="eu-west-1", account="222222222222")
        == expected
    )
    assert own_audience(expected + ":alias") == own_audience(expected) == expected


@pytest.mark.parametrize(
    "function", ["", "a b", "arn:aws:lambda:us-east-1:1:function:x", "12:function:x", "x:y:z"]
)
def test_a_function_lambda_would_not_take_is_refused_with_one_line(function: str) -> None:
    with pytest.raises(ConfigurationError, match=r"check --function-name or IAM_SUDO_FUNCTION$"):
        deployment_audience(function, partition="aws", region="us-east-1", account="1" * 12)


@pytest.mark.parametrize("arn", [None, "", "iam-sudo", "arn:aws:iam::123456789012:role/x"])
def test_a_function_that_cannot_name_itself_refuses_every_proof(arn: object) -> None:
    with pytest.raises(ConfigurationError, match="invoked_function_arn"):
        own_audience(arn)


DEPLOYMENTS = [
    "arn:aws:lambda:us-east-1:123456789012:function:iam-sudo",
    "arn:aws:lambda:eu-west-1:123456789012:function:iam-sudo",
    "arn:aws:lambda:us-east-1:111111111111:function:iam-sudo",
    "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:iam-sudo",
]


@functools.cache
def botocore_sts(region: str, style: str = "regional") -> Any:
    """An STS client as boto3 makes one: region, sts_regional_endpoints; nothing is sent."""
    import botocore.session

    session = botocore.session.get_session()
    session.set_config_variable("sts_regional_endpoints", style)
    return session.create_client(
        "sts",
        region_name=region,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="secret",
    )


def signed(region: str, style: str, audience: str) -> CallerProof:
    """A proof signed as the client signs it (botocore's SigV4, its endpoint), unsent."""
    from botocore.credentials import Credentials

    from iam_sudo.aws.transports import _sign

    client = botocore_sts(region, style)
    return _sign(client, Credentials("AKIAIOSFODNN7EXAMPLE", "secret"), audience)


def own_endpoint(deployment: str, style: str) -> str:
    """The deployment's STS endpoint, as boto3 in its Lambda function resolves it."""
    region = deployment.split(":")[3]
    return str(botocore_sts(region, style).meta.endpoint_url)


@pytest.mark.parametrize("style", ["legacy", "regional"])
@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-west-1", "ca-west-1", "aws-global", "us-gov-west-1"]
)
def test_whatever_the_sts_endpoint_a_proof_names_one_deployment(style: str, region: str) -> None:
    # Signed as the client signs (botocore, no request) for STS's global endpoint
    # (sts_regional_endpoints = legacy, region aws-global) or a regional one; checked by
    # each deployment with its own endpoint, global or regional: its own deployment
    # accepts it (if in the signer's partition), every other refuses it.
    partition = botocore_sts(region).meta.partition
    for audience in DEPLOYMENTS:
        proof = signed(region, style, audience)
        now = datetime.now(UTC)
        for own in DEPLOYMENTS:
            for own_style in ("legacy", "regional"):
                endpoint = own_endpoint(own, own_style)
                if own == audience and own.split(":")[1] == partition:
                    sent = check_proof(proof, sts_endpoint=endpoint, audience=own, now=now)
                    assert sent.url == proof.url  # sent where it was signed for
                    continue
                with pytest.raises(Unauthenticated):
                    check_proof(proof, sts_endpoint=endpoint, audience=own, now=now)


def test_a_legacy_sts_endpoint_client_is_accepted_by_its_own_regional_deployment() -> None:
    # Review r1: a client in region aws-global (or us-east-1 with sts_regional_endpoints =
    # legacy) signs for https://sts.amazonaws.com/ with a us-east-1 scope (botocore
    # resolves it so); the function in us-east-1 (regional, botocore's default) refused it.
    audience = "arn:aws:lambda:us-east-1:111111111111:function:iam-sudo"
    for region, style in (("aws-global", "regional"), ("us-east-1", "legacy")):
        proof = signed(region, style, audience)
        assert proof.url == "https://sts.amazonaws.com/"
        assert "/us-east-1/sts/aws4_request" in proof.headers["Authorization"]
        sent = check_proof(
            proof,
            sts_endpoint="https://sts.us-east-1.amazonaws.com",
            audience=audience,
            now=datetime.now(UTC),
        )
        assert sent.url == "https://sts.amazonaws.com/"


def test_genuine_sts_endpoints_are_those_aws_lists_for_the_partition() -> None:
    # IAM User Guide, "AWS STS Regions and endpoints": sts.<region>.amazonaws.com, the
    # global sts.amazonaws.com (aws only), China's sts.<region>.amazonaws.com.cn.
    from iam_sudo.aws.caller import genuine_sts_endpoints

    aws = genuine_sts_endpoints("aws")
    assert aws["https://sts.amazonaws.com/"] == "us-east-1"
    assert aws["https://sts.eu-west-1.amazonaws.com/"] == "eu-west-1"
    assert aws["https://sts.af-south-1.amazonaws.com/"] == "af-south-1"
    assert "https://sts.us-gov-west-1.amazonaws.com/" not in aws
    cn = genuine_sts_endpoints("aws-cn")
    assert cn == {
        "https://sts.cn-north-1.amazonaws.com.cn/": "cn-north-1",
        "https://sts.cn-northwest-1.amazonaws.com.cn/": "cn-northwest-1",
    }
    assert "https://sts.amazonaws.com/" not in genuine_sts_endpoints("aws-us-gov")
    assert genuine_sts_endpoints("aws-nowhere") == {}


def at(url: str, region: str = "us-east-1") -> CallerProof:
    authorization = PROOF.headers["Authorization"].replace("/us-east-1/", f"/{region}/")
    return replace(PROOF, url=url, headers={**PROOF.headers, "Authorization": authorization})


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sts.amazonaws.com.evil.example/", "us-east-1"),
        ("https://evil.example/", "us-east-1"),
        ("https://sts.us-gov-west-1.amazonaws.com/", "us-gov-west-1"),  # another partition
        ("https://sts.cn-north-1.amazonaws.com.cn/", "cn-north-1"),
        ("https://sts.us-nowhere-1.amazonaws.com/", "us-nowhere-1"),  # no such region
        ("https://sts-fips.us-east-1.amazonaws.com/", "us-east-1"),
        ("https://s3.amazonaws.com/", "us-east-1"),
        ("http://sts.amazonaws.com/", "us-east-1"),
        ("https://sts.amazonaws.com:8443/", "us-east-1"),
        ("https://a@sts.amazonaws.com/", "us-east-1"),
        ("https://sts.amazonaws.com/x", "us-east-1"),
        # genuine endpoints, signed for another region than theirs: STS would refuse
        ("https://sts.amazonaws.com/", "eu-west-1"),
        ("https://sts.eu-west-1.amazonaws.com/", "us-east-1"),
    ],
)
def test_a_proof_for_no_genuine_sts_endpoint_of_the_partition_is_refused(
    url: str, region: str
) -> None:
    with pytest.raises(Unauthenticated, match=r"^the caller's identity proof was refused$"):
        check(at(url, region))


def test_a_genuine_sts_endpoint_of_the_partition_is_accepted_and_sent_to() -> None:
    for url, region in (
        ("https://sts.amazonaws.com/", "us-east-1"),
        ("https://STS.eu-west-1.amazonaws.com", "eu-west-1"),
        ("https://sts.ap-southeast-2.amazonaws.com/", "ap-southeast-2"),
    ):
        assert check(at(url, region)).url == url.lower().rstrip("/") + "/"


def test_under_an_endpoint_override_only_that_endpoint_is_accepted() -> None:
    # AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL) in force: the function's STS is that URL,
    # and no genuine endpoint is accepted instead, nor is the scope's region compared.
    override = "http://127.0.0.1:5000"
    now = NOW
    for url, region in (("http://127.0.0.1:5000/", "eu-west-1"), ("http://127.0.0.1:5000", "x")):
        sent = check_proof(at(url, region), sts_endpoint=override, audience=AUDIENCE, now=now)
        assert sent.url == "http://127.0.0.1:5000/"
    for url in ("https://sts.amazonaws.com/", "https://sts.us-east-1.amazonaws.com/"):
        with pytest.raises(Unauthenticated):
            check_proof(at(url), sts_endpoint=override, audience=AUDIENCE, now=now)


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


def hashed(readable: str, arn: str) -> str:
    return f"{readable},{hashlib.sha256(arn.encode()).hexdigest()[:20]}"


ALICE_ROLE = "arn:aws:sts::123456789012:assumed-role/Ops/alice"


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:iam::123456789012:user/alice", "alice"),
        ("arn:aws:iam::123456789012:user/team/bob", "bob"),
        # An Identity Center session is a role session like any other: a customer may name
        # a role AWSReservedSSO_... (nothing in IAM's CreateRole says otherwise) and its
        # path, which would tell, is not in the session ARN.
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/carol@example.com",
            hashed(
                "AWSReservedSSO_Dev_1.carol@example.com",
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/carol@example.com",
            ),
        ),
        # Whoever may assume Ops chooses the session name: the role is in the identity.
        (ALICE_ROLE, hashed("Ops.alice", ALICE_ROLE)),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/carol",
            hashed(
                "AWSReservedSSO_Dev_1.carol",
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_1/carol",
            ),
        ),
        # The same names elsewhere are other people.
        (
            "arn:aws:iam::111111111111:user/alice",
            hashed("alice", "arn:aws:iam::111111111111:user/alice"),
        ),
        (
            "arn:aws:iam::123456789012:user/a",
            hashed("a", "arn:aws:iam::123456789012:user/a"),
        ),
        (
            "arn:aws:iam::123456789012:user/a@b",
            hashed("a@b", "arn:aws:iam::123456789012:user/a@b"),
        ),
        (
            "arn:aws:sts::123456789012:federated-user/dave",
            hashed("dave", "arn:aws:sts::123456789012:federated-user/dave"),
        ),
        ("arn:aws:iam::123456789012:root", hashed("root", "arn:aws:iam::123456789012:root")),
        (
            "arn:aws:sts::123456789012:assumed-role/R/" + "e" * 64,
            hashed("R." + "e" * 41, "arn:aws:sts::123456789012:assumed-role/R/" + "e" * 64),
        ),
    ],
)
def test_the_source_identity_names_one_principal_within_stss_rules(arn: str, expected: str) -> None:
    assert source_identity(arn, home_account="123456789012") == expected


def test_a_role_named_like_identity_centers_does_not_borrow_an_sso_users_identity() -> None:
    # The review's case: whoever may create roles creates AWSReservedSSO_Fake (at any path)
    # and names its session carol@example.com; the real Identity Center session differs.
    real = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b2c/carol@example.com"
    fake = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Fake/carol@example.com"
    assert source_identity(real) != source_identity(fake)
    assert "carol@example.com" not in (source_identity(real), source_identity(fake))
    assert source_identity(real).startswith("AWSReservedSSO_Dev_0a1b2c.carol@example.com,")


def test_a_session_named_like_a_user_does_not_borrow_the_users_identity() -> None:
    user = source_identity("arn:aws:iam::123456789012:user/alice")
    assert source_identity(ALICE_ROLE) != user
    assert source_identity("arn:aws:sts::123456789012:assumed-role/Other/alice") not in (
        user,
        source_identity(ALICE_ROLE),
    )


# What STS accepts as a SourceIdentity (STS API reference, AssumeRole: SourceIdentity,
# "Length Constraints: Minimum length of 2. Maximum length of 64. Pattern: [\w+=,.@-]*"),
# and what IAM accepts as user, role and session names (IAM API reference, CreateUser
# UserName and CreateRole RoleName: 1-64 of [\w+=,.@-]; AssumeRole RoleSessionName: 2-64).
STS_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
NAME_CHARS = string.ascii_letters + string.digits + "_+=,.@-"
names = st.text(NAME_CHARS, min_size=1, max_size=64)
sessions = st.text(NAME_CHARS, min_size=2, max_size=64)
accounts = st.sampled_from(["123456789012", "111111111111"])
principals = st.one_of(
    st.builds(lambda a, n: f"arn:aws:iam::{a}:user/{n}", accounts, names),
    st.builds(lambda a, n: f"arn:aws:iam::{a}:user/path/{n}", accounts, names),
    st.builds(
        lambda a, r, s: f"arn:aws:sts::{a}:assumed-role/{r}/{s}",
        accounts,
        st.one_of(names, st.builds(lambda n: "AWSReservedSSO_" + n[:49], names)),
        sessions,
    ),
    st.builds(lambda a, n: f"arn:aws:sts::{a}:federated-user/{n}", accounts, sessions),
    st.builds(lambda a: f"arn:aws:iam::{a}:root", accounts),
)


def principal_of(arn: str) -> str:
    # An IAM user's path is not part of who they are: a name is unique in its account
    # (IAM User Guide, IAM identifiers: "names must be unique within the account").
    return re.sub(r":user/(?:.*/)?", ":user/", arn)


@settings(max_examples=2000, deadline=None)
@given(st.lists(principals, min_size=2, max_size=2, unique_by=principal_of))
def test_different_principals_never_share_a_source_identity(pair: list[str]) -> None:
    first, second = (source_identity(arn, home_account="123456789012") for arn in pair)
    assert STS_SOURCE_IDENTITY.fullmatch(first)
    assert STS_SOURCE_IDENTITY.fullmatch(second)
    assert not first.lower().startswith("aws:")
    assert first != second, pair


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


def test_the_program_leaves_room_for_the_policy_in_lambdas_environment(tmp_path: Path) -> None:
    program = pulumi_program.run({"policy": RULES}, tmp_path)
    from iam_sudo_deploy.component import MAX_ENVIRONMENT_BYTES, environment_bytes

    assert environment_bytes(program.function_env) <= MAX_ENVIRONMENT_BYTES

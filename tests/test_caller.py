"""Caller proofs: checked locally, then by STS itself, on a local AWS that enforces IAM."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import string
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools import enforced, localaws, pulumi_program
from devtools.lambda_stand_in import LambdaStandIn
from iam_sudo import ConfigurationError, IamSudo, Unauthenticated
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


OTHER_ACCOUNT = "111111111111"
OTHER_RULES = """\
rules:
  - allowed-callers: ["arn:aws:iam::111111111111:user/carol"]
    allowed-role-names: ["*"]
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
    function_arn: str
    # Deployments of a function of the same name: (Lambda endpoint, function ARN).
    deployments: dict[str, tuple[LambdaStandIn, str]]

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
    # The same name in another region of the account, and in another account.
    in_region = LambdaStandIn()
    regional = in_region.add_function("iam-sudo", program.archive, env, region="eu-west-1")
    admin = enforced.session_env(
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/Admin", RoleSessionName="setup"
        )["Credentials"]
    )
    other_iam = as_session(aws.url, "iam", admin)
    other_program = pulumi_program.run(
        {"policy": OTHER_RULES}, tmp_path_factory.mktemp("other-account")
    )
    enforced.create_program_resources(other_iam, other_program)
    users["carol"] = enforced.user_with_keys(other_iam, "carol")
    other_execution = enforced.session_env(
        as_session(aws.url, "sts", admin).assume_role(
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
        "home": (stand_in, function.arn),
        "other-region": (in_region, regional.arn),
        "other-account": (in_account, other.arn),
    }
    aws.enforce()
    yield World(aws, stand_in, users, execution, function.logs, function.arn, deployments)
    for each in (stand_in, in_region, in_account):
        each.stop()
    aws.stop()


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


def test_the_program_leaves_room_for_the_policy_in_lambdas_environment(tmp_path: Path) -> None:
    program = pulumi_program.run({"policy": RULES}, tmp_path)
    from iam_sudo_deploy.component import MAX_ENVIRONMENT_BYTES, environment_bytes

    assert environment_bytes(program.function_env) <= MAX_ENVIRONMENT_BYTES

"""`iam-sudo console`: the federation sign-in's pure parts (partitions and hosts,
destinations, the requests); end to end: tests/integration/test_console.py.

AWS facts are from the IAM User Guide, "Enable custom identity broker access to the AWS
console" (getSigninToken, the session JSON, Action=login, SessionDuration 900-43,200 s only
for AssumeRole called by an IAM user with long-term credentials, 15-minute tokens).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import pytest

from devtools import localaws
from iam_sudo.aws import console
from iam_sudo.core.exceptions import (
    AccessDenied,
    AwsError,
    ConfigurationError,
    InvalidRequest,
)
from iam_sudo.core.partitions import PARTITIONS
from iam_sudo.settings.credentials import Credentials

AWS = PARTITIONS["aws"]
GOV = PARTITIONS["aws-us-gov"]
CN = PARTITIONS["aws-cn"]
ACCOUNT = localaws.ACCOUNT_ID
SECRET_CREDENTIALS = Credentials(
    "ASIAEXAMPLEKEY", "secret/key+value", "token-of-the-session", datetime(2030, 1, 1, tzinfo=UTC)
)


@pytest.mark.parametrize(
    ("region", "signin", "console_host"),
    [
        ("us-east-1", "signin.aws.amazon.com", "console.aws.amazon.com"),
        ("eu-west-1", "signin.aws.amazon.com", "console.aws.amazon.com"),
        ("ap-southeast-5", "signin.aws.amazon.com", "console.aws.amazon.com"),
        ("us-gov-west-1", "signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com"),
        ("us-gov-east-1", "signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com"),
        ("cn-north-1", "signin.amazonaws.cn", "console.amazonaws.cn"),
        ("cn-northwest-1", "signin.amazonaws.cn", "console.amazonaws.cn"),
    ],
)
def test_the_sign_in_and_console_hosts_follow_the_region_s_partition(
    region: str, signin: str, console_host: str
) -> None:
    partition = console.partition_of(region)
    assert console.federation_endpoint(partition, {}) == f"https://{signin}/federation"
    assert console.destination_url(None, region, partition) == (
        f"https://{console_host}/console/home?region={region}"
    )


@pytest.mark.parametrize("region", ["us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1"])
def test_an_isolated_partition_s_region_is_refused_not_guessed(region: str) -> None:
    with pytest.raises(ConfigurationError, match="isolated AWS partition"):
        console.partition_of(region)


@pytest.mark.parametrize("region", ["", "EU-WEST-1", "eu-west", "eu west 1", "x" * 100])
def test_a_malformed_region_is_refused(region: str) -> None:
    with pytest.raises(ConfigurationError, match="is not an AWS region name"):
        console.partition_of(region)


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("http://127.0.0.1:8080/federation", True),
        ("http://localhost:8080/federation", True),
        ("http://[::1]:8080/federation", True),
        ("https://eu-west-1.signin.aws.amazon.com/federation", True),
        ("http://signin.example.com/federation", False),
        ("ftp://127.0.0.1/federation", False),
        ("https://signin.aws.amazon.com/federation?Action=login", False),
        ("https://user:pw@signin.aws.amazon.com/federation", False),
        ("not a url", False),
    ],
)
def test_the_federation_endpoint_override_is_used_only_when_safe(value: str, allowed: bool) -> None:
    environ = {console.FEDERATION_ENDPOINT_VARIABLE: value}
    if allowed:
        assert console.federation_endpoint(AWS, environ) == value
    else:
        with pytest.raises(ConfigurationError, match=console.FEDERATION_ENDPOINT_VARIABLE):
            console.federation_endpoint(AWS, environ)


@pytest.mark.parametrize(
    ("destination", "partition", "expected"),
    [
        ("s3", AWS, "https://console.aws.amazon.com/s3/home?region=eu-west-1"),
        ("s3/", AWS, "https://console.aws.amazon.com/s3/home?region=eu-west-1"),
        (
            "ecs/v2/clusters",
            AWS,
            "https://console.aws.amazon.com/ecs/v2/clusters?region=eu-west-1",
        ),
        (
            "/ecs/v2/clusters",
            AWS,
            "https://console.aws.amazon.com/ecs/v2/clusters?region=eu-west-1",
        ),
        (
            "cloudwatch/home#logsV2:log-groups",
            AWS,
            "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups",
        ),
        (
            "ec2/home?region=us-west-2#Instances:",
            AWS,
            "https://console.aws.amazon.com/ec2/home?region=us-west-2#Instances:",
        ),
        (
            "iam/home?x=1",
            AWS,
            "https://console.aws.amazon.com/iam/home?x=1&region=eu-west-1",
        ),
        ("s3", GOV, "https://console.amazonaws-us-gov.com/s3/home?region=eu-west-1"),
        ("lambda", CN, "https://console.amazonaws.cn/lambda/home?region=eu-west-1"),
        (
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters?region=eu-west-1",
            AWS,
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters?region=eu-west-1",
        ),
        (
            "https://console.amazonaws.cn/s3/home",
            CN,
            "https://console.amazonaws.cn/s3/home",
        ),
    ],
)
def test_a_destination_is_a_service_a_console_path_or_a_console_url(
    destination: str, partition: console.Partition, expected: str
) -> None:
    assert console.destination_url(destination, "eu-west-1", partition) == expected


@pytest.mark.parametrize(
    ("destination", "partition"),
    [
        ("https://console.aws.amazon.com/s3/home", GOV),  # another partition's console
        ("https://evil.example.com/console.aws.amazon.com", AWS),
        ("https://console.aws.amazon.com.evil.example.com/", AWS),
        ("http://console.aws.amazon.com/s3/home", AWS),
        ("https://me@console.aws.amazon.com/s3/home", AWS),
        ("s3 home", AWS),
        ("S3", AWS),
        ("-s3", AWS),
        ("s3/h\u00f6me", AWS),
        ("javascript:alert(1)", AWS),
    ],
)
def test_a_destination_elsewhere_than_the_partition_s_console_is_refused(
    destination: str, partition: console.Partition
) -> None:
    with pytest.raises(InvalidRequest, match="--destination"):
        console.destination_url(destination, "eu-west-1", partition)


def test_the_session_json_names_the_credentials_as_the_federation_endpoint_does() -> None:
    assert json.loads(console.session_json(SECRET_CREDENTIALS)) == {
        "sessionId": "ASIAEXAMPLEKEY",
        "sessionKey": "secret/key+value",
        "sessionToken": "token-of-the-session",
    }


@pytest.mark.parametrize(
    ("caller", "direct"),
    [
        (f"arn:aws:iam::{ACCOUNT}:user/alice", True),
        (f"arn:aws-us-gov:iam::{ACCOUNT}:user/path/alice", True),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/me", False),  # role chaining
        (f"arn:aws:sts::{ACCOUNT}:federated-user/bob", False),
        (f"arn:aws:iam::{ACCOUNT}:root", False),
        ("garbage", False),
        (None, False),  # --remote: the function's role chain
    ],
)
def test_only_a_session_an_iam_user_assumed_is_direct(caller: str | None, direct: bool) -> None:
    assert console.is_direct_session(caller) is direct


def test_session_duration_is_sent_only_for_a_direct_session_within_range() -> None:
    assert console.session_duration(False, 7200) is None
    assert console.session_duration(True, 7200) == 7200
    assert console.session_duration(True, 900) == 900
    assert console.session_duration(True, 43200) == 43200
    for wrong in (899, 43201):
        with pytest.raises(InvalidRequest, match="900 to 43200"):
            console.session_duration(True, wrong)


def test_the_token_request_carries_session_duration_only_when_given() -> None:
    endpoint = "https://signin.aws.amazon.com/federation"
    chained = urllib.parse.urlsplit(console.signin_token_url(endpoint, SECRET_CREDENTIALS, None))
    params = dict(urllib.parse.parse_qsl(chained.query))
    assert set(params) == {"Action", "Session"}
    assert params["Action"] == "getSigninToken"
    assert json.loads(params["Session"])["sessionKey"] == "secret/key+value"
    direct = console.signin_token_url(endpoint, SECRET_CREDENTIALS, 3600)
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(direct).query))["SessionDuration"] == (
        "3600"
    )


def test_the_login_url_has_action_issuer_destination_and_token() -> None:
    url = console.login_url(
        "https://signin.amazonaws.cn/federation", "TOK/EN+=", "https://console.amazonaws.cn/s3/home"
    )
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "signin.amazonaws.cn",
        "/federation",
    )
    assert dict(urllib.parse.parse_qsl(parts.query)) == {
        "Action": "login",
        "Issuer": "iam-sudo",
        "Destination": "https://console.amazonaws.cn/s3/home",
        "SigninToken": "TOK/EN+=",
    }


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (400, b"Invalid credentials parameter", AccessDenied, "refused the session's credentials"),
        (403, b"", AccessDenied, "refused the session's credentials"),
        (500, b"", AwsError, "answered HTTP 500"),
        (200, b"<html>nginx</html>", AwsError, "not a sign-in token"),
        (200, b'{"SigninToken": ""}', AwsError, "not a sign-in token"),
        (200, b'{"SigninToken": 5}', AwsError, "not a sign-in token"),
        (200, b"[]", AwsError, "not a sign-in token"),
        (200, b"\xff\xfe", AwsError, "not a sign-in token"),
    ],
)
def test_a_refusal_or_a_garbled_answer_is_one_line_without_the_body(
    status: int, body: bytes, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as raised:
        console.read_signin_token(status, body, "https://signin.aws.amazon.com/federation")
    message = str(raised.value)
    assert text in message
    assert "\n" not in message
    assert not body or body.decode(errors="replace") not in message


def test_the_session_s_partition_is_that_of_an_arn_given_for_it() -> None:
    from iam_sudo.cli import console as cli_console

    gov_role = f"arn:aws-us-gov:iam::{ACCOUNT}:role/Deployer"
    assert cli_console._session_partition(None, gov_role, None) == (
        "aws-us-gov",
        f"from iam ARN {gov_role}",
    )
    console.check_session_partition("us-gov-west-1", "aws-us-gov", "given")
    with pytest.raises(ConfigurationError, match="partition aws-us-gov, but"):
        console.check_session_partition("us-gov-west-1", "aws", "given")


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))

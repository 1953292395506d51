"""Where the recording endpoint forwards a call: where the command's SDK would have sent it.

botocore's order (AWS SDKs and Tools Reference Guide, "Service-specific endpoints"):
``AWS_ENDPOINT_URL_<SERVICE>``, the profile's ``services`` section, ``AWS_ENDPOINT_URL``,
the profile's ``endpoint_url``, none of them under ``ignore_configured_endpoint_urls``; else
the service's endpoint in the region's partition. No request is made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iam_sudo.aws.recorder import RecordingEndpoint, Upstreams, partition_of_region
from iam_sudo.core.record import Run


def environ(tmp_path: Path, config: str = "", **variables: str) -> dict[str, str]:
    path = tmp_path / "config"
    path.write_text(config)
    return {"AWS_CONFIG_FILE": str(path), **variables}


@pytest.mark.parametrize(
    ("service_id", "prefix", "region", "url"),
    [
        ("S3", "s3", "us-east-1", "https://s3.us-east-1.amazonaws.com"),
        ("SQS", "sqs", "eu-west-3", "https://sqs.eu-west-3.amazonaws.com"),
        ("IAM", "iam", "us-east-1", "https://iam.amazonaws.com"),
        ("SQS", "sqs", "cn-north-1", "https://sqs.cn-north-1.amazonaws.com.cn"),
        ("DynamoDB", "dynamodb", "us-gov-west-1", "https://dynamodb.us-gov-west-1.amazonaws.com"),
    ],
)
def test_without_settings_the_regional_endpoint_of_the_partition(
    tmp_path: Path, service_id: str, prefix: str, region: str, url: str
) -> None:
    assert Upstreams.from_environment(environ(tmp_path)).url(service_id, prefix, region) == url


def test_fips_when_the_command_asked_for_it(tmp_path: Path) -> None:
    upstreams = Upstreams.from_environment(environ(tmp_path, AWS_USE_FIPS_ENDPOINT="true"))
    assert upstreams.url("SQS", "sqs", "us-east-1") == "https://sqs-fips.us-east-1.amazonaws.com"


def test_the_users_own_endpoints_in_botocores_order(tmp_path: Path) -> None:
    config = (
        "[default]\nendpoint_url = http://config-global\nservices = local\n"
        "[services local]\ndynamodb =\n  endpoint_url = http://config-dynamodb\n"
    )
    env = environ(tmp_path, config, AWS_ENDPOINT_URL_S3="http://env-s3")
    upstreams = Upstreams.from_environment(env)
    assert upstreams.url("S3", "s3", "us-east-1") == "http://env-s3"
    assert upstreams.url("DynamoDB", "dynamodb", "us-east-1") == "http://config-dynamodb"
    assert upstreams.url("SQS", "sqs", "us-east-1") == "http://config-global"
    env["AWS_ENDPOINT_URL"] = "http://env-global/"
    assert Upstreams.from_environment(env).url("SQS", "sqs", "us-east-1") == "http://env-global"


def test_ignore_configured_endpoint_urls_means_aws_itself(tmp_path: Path) -> None:
    env = environ(
        tmp_path,
        "[default]\nignore_configured_endpoint_urls = true\n",
        AWS_ENDPOINT_URL="http://local",
    )
    assert Upstreams.from_environment(env).url("SQS", "sqs", "us-east-1") == (
        "https://sqs.us-east-1.amazonaws.com"
    )


def test_the_command_reaches_the_recorder_whatever_it_had_configured(tmp_path: Path) -> None:
    config = (
        "[default]\nservices = local\nignore_configured_endpoint_urls = true\n"
        "[services local]\ndynamodb =\n  endpoint_url = http://config-dynamodb\n"
    )
    env = environ(tmp_path, config, AWS_ENDPOINT_URL_SQS="http://env-sqs")
    endpoint = RecordingEndpoint(lambda: None, Run("t", "library", None), None, environ=env)  # type: ignore[arg-type, return-value]
    given = endpoint.env(env)
    here = endpoint.url
    assert given["AWS_ENDPOINT_URL"] == here
    assert given["AWS_ENDPOINT_URL_SQS"] == here
    assert given["AWS_ENDPOINT_URL_DYNAMODB"] == here  # the services section would win
    assert given["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] == "false"


def test_partitions() -> None:
    assert [partition_of_region(r) for r in ("eu-west-1", "cn-northwest-1", "us-gov-east-1")] == [
        "aws",
        "aws-cn",
        "aws-us-gov",
    ]

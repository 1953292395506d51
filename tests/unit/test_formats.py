import json
from datetime import UTC, datetime

import pytest

from iam_sudo import Credentials
from iam_sudo.cli.formats import FORMATS, render, unsets
from iam_sudo.settings.credentials import environment, handover

CREDS = Credentials("ASIAX", "sec/ret+", "to=ken", datetime(2026, 11, 26, 13, 0, tzinfo=UTC))


def test_process_is_credential_process_json_version_1() -> None:
    text = render(CREDS, "process")
    assert json.loads(text) == {
        "Version": 1,
        "AccessKeyId": "ASIAX",
        "SecretAccessKey": "sec/ret+",
        "SessionToken": "to=ken",
        "Expiration": "2026-11-26T13:00:00+00:00",
    }
    assert text.startswith('{\n  "Version": 1,')


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("env", "export AWS_ACCESS_KEY_ID=ASIAX"),
        ("env-no-export", "AWS_ACCESS_KEY_ID=ASIAX"),
        ("powershell", '$Env:AWS_ACCESS_KEY_ID="ASIAX"'),
        ("windows-cmd", "set AWS_ACCESS_KEY_ID=ASIAX"),
        ("fish", 'set -gx AWS_ACCESS_KEY_ID "ASIAX"'),
    ],
)
def test_shell_formats_are_the_aws_clis(name: str, first: str) -> None:
    lines = render(CREDS, name).splitlines()
    assert lines[0] == first
    assert [line.split("AWS_")[1].split("=")[0].split(" ")[0].rstrip('"') for line in lines] == [
        "ACCESS_KEY_ID",
        "SECRET_ACCESS_KEY",
        "SESSION_TOKEN",
        "CREDENTIAL_EXPIRATION",
    ]


def test_every_format_has_a_name_the_aws_cli_uses() -> None:
    assert set(FORMATS) == {"process", "env", "env-no-export", "powershell", "windows-cmd", "fish"}


HANDOVER = handover(CREDS, "eu-west-1")


@pytest.mark.parametrize(
    ("name", "unset", "region"),
    [
        ("env", "unset AWS_PROFILE\n", "export AWS_REGION=eu-west-1\n"),
        ("fish", "set -e AWS_PROFILE\n", 'set -gx AWS_REGION "eu-west-1"\n'),
        (
            "powershell",
            "Remove-Item Env:AWS_PROFILE -ErrorAction SilentlyContinue\r\n",
            '$Env:AWS_REGION="eu-west-1"\r\n',
        ),
        ("windows-cmd", "set AWS_PROFILE=\r\n", "set AWS_REGION=eu-west-1\r\n"),
    ],
)
def test_a_shell_format_unsets_every_profile_variable_and_sets_the_region(
    name: str, unset: str, region: str
) -> None:
    # The JS SDK v3 skips the environment's keys while AWS_PROFILE is set
    # (@aws-sdk/credential-provider-node, defaultProvider); botocore reads
    # AWS_DEFAULT_PROFILE; the region must outlive the profile it came from.
    text = render(CREDS, name, HANDOVER)
    assert unset in text
    assert unset.replace("AWS_PROFILE", "AWS_DEFAULT_PROFILE") in text
    assert region in text
    assert region.replace("AWS_REGION", "AWS_DEFAULT_REGION") in text
    assert text.index(unset) < text.index(region), "unset first"


def test_a_dotenv_file_cannot_unset_and_says_nothing_it_cannot_mean() -> None:
    # `AWS_PROFILE=` is no unset: botocore reads it as profile "" and fails.
    text = render(CREDS, "env-no-export", HANDOVER)
    assert "AWS_PROFILE" not in text
    assert "AWS_REGION=eu-west-1\n" in text
    assert not unsets("env-no-export")
    assert unsets("env")


def test_what_the_shell_would_read_otherwise_is_refused_not_printed() -> None:
    for value in ("a b", "$(id)", "x`y`", 'q"', "l\nf", "100%"):
        with pytest.raises(ValueError, match="cannot be printed"):
            render(CREDS, "env", {"AWS_REGION": value})
    with pytest.raises(ValueError, match="cannot be printed"):
        render(CREDS, "env", {"A=B": "x"})


def test_the_command_environment_and_the_printed_lines_say_the_same() -> None:
    base = {"AWS_PROFILE": "dev", "AWS_ACCOUNT_ID": "999999999999", "HOME": "/h"}
    env = environment(base, CREDS, "eu-west-1")
    assert {k: v for k, v in env.items() if k != "HOME"} == {
        k: v for k, v in HANDOVER.items() if v is not None
    }

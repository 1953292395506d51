import json
from datetime import UTC, datetime

import pytest

from iam_sudo import Credentials
from iam_sudo.cli.formats import FORMATS, render

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

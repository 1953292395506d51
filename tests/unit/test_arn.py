"""core/arn.py: one copy of the ARN, account-id, IAM-name and STS-charset rules."""

from __future__ import annotations

import pytest

from iam_sudo.core import arn


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        # General Reference, "Amazon Resource Names (ARNs)": arn:partition:service:region:
        # account-id:resource, the resource part keeping its own colons.
        ("arn:aws:iam::123456789012:role/app/Task", ("aws", "iam", "", "123456789012", "role/app/Task")),  # noqa: E501
        ("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q", ("aws-us-gov", "sqs", "us-gov-west-1", "123456789012", "q")),  # noqa: E501
        ("arn:aws-cn:logs:cn-north-1:123456789012:log-group:g:*", ("aws-cn", "logs", "cn-north-1", "123456789012", "log-group:g:*")),  # noqa: E501
        ("arn:aws:s3:::bucket/key", ("aws", "s3", "", "", "bucket/key")),
    ],
)  # fmt: skip
def test_an_arn_has_six_fields_and_the_resource_keeps_its_colons(
    text: str, fields: tuple[str, ...]
) -> None:
    parsed = arn.parse(text)
    assert parsed is not None
    assert (
        parsed.partition,
        parsed.service,
        parsed.region,
        parsed.account,
        parsed.resource,
    ) == fields
    assert arn.account_of(text) == fields[3]
    assert arn.partition_of(text) == fields[0]


@pytest.mark.parametrize(
    "text",
    ["", "arn:aws:iam", "role/x", "nra:aws:iam::1:role/x", "arn:gcp:iam::123456789012:role/x"],
)
def test_a_malformed_arn_has_no_account_and_no_partition(text: str) -> None:
    assert arn.parse(text) is None
    assert arn.account_of(text) == ""
    assert arn.partition_of(text) == ""


def test_an_aws_managed_policy_has_aws_in_the_account_field_which_is_no_account_id() -> None:
    managed = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert arn.account_of(managed) == "aws"
    assert not arn.is_account_id(arn.account_of(managed))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("123456789012", True), ("12345678901", False), ("1234567890123", False),
     ("12345678901a", False), ("١٢٣٤٥٦٧٨٩٠١٢", False), (123456789012, False)],
)  # fmt: skip
def test_an_account_id_is_exactly_twelve_ascii_digits(value: object, expected: bool) -> None:
    # IAM User Guide, "AWS account identifiers": a 12-digit number. Arabic-Indic digits
    # are \d to Python without re.ASCII.
    assert arn.is_account_id(value) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("TaskRole", True), ("a+=,.@-_9", True), ("x" * 64, True), ("x" * 65, False), ("", False),
     ("Tâche", False), ("with space", False), ("path/Role", False)],
)  # fmt: skip
def test_a_role_name_is_one_to_64_of_iams_ascii_characters(name: str, expected: bool) -> None:
    # IAM API Reference, CreateRole: RoleName, pattern [\w+=,.@-]+, 1-64 characters; IAM's
    # \w is ASCII (a Unicode letter is refused by IAM).
    assert arn.is_role_name(name) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ab", True), ("a", False), ("x" * 64, True), ("x" * 65, False), ("dev@example.com", True),
     ("naïve", False), ("a/b", False)],
)  # fmt: skip
def test_a_session_name_or_source_identity_is_two_to_64_characters(
    name: str, expected: bool
) -> None:
    # AWS STS API Reference, AssumeRole: RoleSessionName and SourceIdentity, [\w+=,.@-]*,
    # 2-64 characters.
    assert arn.is_session_name(name) is expected
    assert (arn.NOT_SESSION_NAME_CHARACTER.search(name) is None) is (name not in ("naïve", "a/b"))


def test_an_external_id_also_takes_colons_and_slashes() -> None:
    # AssumeRole: ExternalId, [\w+=,.@:/-]*, 2-1224 characters.
    assert arn.EXTERNAL_ID.fullmatch("urn:tenant/42")
    assert not arn.EXTERNAL_ID.fullmatch("x")
    assert not arn.EXTERNAL_ID.fullmatch("x" * 1225)

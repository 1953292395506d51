"""The scrubber removes secrets, not the words that name them."""

from __future__ import annotations

import pytest

from iam_sudo.core.redact import REDACTED, scrub

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"


@pytest.mark.parametrize(
    "text",
    [
        "Error loading SSO Token: Token for corp does not exist",
        "The SSO session associated with this profile has expired or is otherwise invalid",
        "Session token: expired",
        "the security token included in the request is invalid",
        "Authorization: required",
    ],
)
def test_prose_about_tokens_is_kept_word_for_word(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    "text",
    [
        f'{{"SecretAccessKey": "{SECRET}", "SessionToken": "{TOKEN}"}}',
        f"<SecretAccessKey>{SECRET}</SecretAccessKey><SessionToken>{TOKEN}</SessionToken>",
        f"x-amz-security-token: {TOKEN}",
        f"aws_secret_access_key = {SECRET}",
        f"Token={TOKEN}&Version=1",
        f"Token: {TOKEN}",
    ],
)
def test_secrets_are_removed(text: str) -> None:
    scrubbed = scrub(text)
    assert SECRET not in scrubbed
    assert TOKEN not in scrubbed
    assert REDACTED in scrubbed

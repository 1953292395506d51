"""Credentials printed as the AWS CLI's ``aws configure export-credentials`` prints them.

The same format names and the same output, so that whatever reads one reads the other:
``process`` is the JSON a ``credential_process`` must print; the others are lines for a
shell to evaluate.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..settings.credentials import Credentials

_LINES: dict[str, str] = {
    "env": "export {name}={value}",
    "env-no-export": "{name}={value}",
    "powershell": '$Env:{name}="{value}"',
    "windows-cmd": "set {name}={value}",
    "fish": 'set -gx {name} "{value}"',
}


def process(credentials: Credentials) -> str:
    """credential_process JSON (Version 1), indented as the AWS CLI prints it."""
    document = {
        "Version": 1,
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key,
        "SessionToken": credentials.session_token,
        "Expiration": credentials.expiration.isoformat(),
    }
    return json.dumps(document, indent=2, separators=(",", ": ")) + "\n"


def _lines(template: str) -> Callable[[Credentials], str]:
    def render(credentials: Credentials) -> str:
        values = (
            ("AWS_ACCESS_KEY_ID", credentials.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key),
            ("AWS_SESSION_TOKEN", credentials.session_token),
            ("AWS_CREDENTIAL_EXPIRATION", credentials.expiration.isoformat()),
        )
        return "".join(template.format(name=name, value=value) + "\n" for name, value in values)

    return render


FORMATS: dict[str, Callable[[Credentials], str]] = {
    "process": process,
    **{name: _lines(template) for name, template in _LINES.items()},
}


def render(credentials: Credentials, format_name: str) -> str:
    """``credentials`` in the named format; KeyError for an unknown name."""
    return FORMATS[format_name](credentials)

"""Credentials printed for a ``credential_process`` or a shell to read.

The format names are the AWS CLI's ``aws configure export-credentials --format``, and so is
``process`` (the JSON a ``credential_process`` must print). The shell formats print more
than the AWS CLI's four lines when they are given more: the variables to *unset* too, so
that every SDK, not only botocore, takes the printed keys (the AWS SDK for JavaScript v3
skips the environment's keys while ``AWS_PROFILE`` is set), and the region. A dotenv file
(``env-no-export``) cannot unset anything: it is for where no profile variable is set.

Each format has its own line end, whatever the platform: ``\\n`` for the POSIX shells and
dotenv (a ``\\r`` would end up in every value read by ``eval "$(...)"``), ``\\r\\n`` for
PowerShell and cmd. Values are printed as the AWS CLI prints them, unquoted; a value a
shell would read otherwise is refused (``ValueError``), never printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings.credentials import Credentials


@dataclass(frozen=True)
class _Shell:
    set: str
    unset: str | None  # None: the format has no way to unset a variable
    newline: str = "\n"


_SHELLS: dict[str, _Shell] = {
    "env": _Shell("export {name}={value}", "unset {name}"),
    # dotenv, `docker run --env-file`: nothing unsets there, and an empty value is no
    # way out (botocore: "The config profile () could not be found"). For where no
    # profile variable is set, as in a container.
    "env-no-export": _Shell("{name}={value}", None),
    "powershell": _Shell(
        '$Env:{name}="{value}"', "Remove-Item Env:{name} -ErrorAction SilentlyContinue", "\r\n"
    ),
    "windows-cmd": _Shell("set {name}={value}", "set {name}=", "\r\n"),
    "fish": _Shell('set -gx {name} "{value}"', "set -e {name}"),
}

# What every one of those shells reads back unchanged, unquoted or in double quotes (no
# `$`, backquote, quote, backslash, space, `%`, `&`, ...): access keys, tokens (base64),
# ISO 8601 times and region names are made of these.
_PLAIN = re.compile(r"[A-Za-z0-9_+=:,./@-]*")
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


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


def exported(credentials: Credentials) -> dict[str, str | None]:
    """The four variables the AWS CLI's ``export-credentials`` prints, with their values."""
    return {
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        "AWS_SESSION_TOKEN": credentials.session_token,
        "AWS_CREDENTIAL_EXPIRATION": credentials.expiration.isoformat(),
    }


def shell_lines(format_name: str, changes: Mapping[str, str | None]) -> str:
    """``changes`` (a value: set it; None: unset it) as lines of the shell ``format_name``.

    The unsets come first. Raises KeyError for an unknown format and ValueError for a
    name or value the shell would read differently.
    """
    shell = _SHELLS[format_name]
    unset, assigned = [], []
    for name, value in changes.items():
        if not _NAME.fullmatch(name) or (value is not None and not _PLAIN.fullmatch(value)):
            raise ValueError(f"{name[:40]!r} cannot be printed for {format_name} as it is")
        if value is None:
            if shell.unset is not None:
                unset.append(shell.unset.format(name=name))
        else:
            assigned.append(shell.set.format(name=name, value=value))
    return "".join(line + shell.newline for line in [*unset, *assigned])


# The format names: ``process`` and the shells.
FORMATS = ("process", *_SHELLS)


def unsets(format_name: str) -> bool:
    """Whether the format can unset a variable (``process`` and ``env-no-export`` cannot)."""
    shell = _SHELLS.get(format_name)
    return shell is not None and shell.unset is not None


def render(
    credentials: Credentials,
    format_name: str,
    changes: Mapping[str, str | None] | None = None,
) -> str:
    """``credentials`` in the named format, with its own line ends.

    ``changes`` (shell formats only) are the environment variables to set or unset
    (None) instead of the AWS CLI's four: see :func:`iam_sudo.settings.credentials.handover`,
    which makes the credentials the only ones every SDK finds. KeyError for an unknown
    format name, ValueError for a value a shell would misread.
    """
    if format_name == "process":
        return process(credentials)
    return shell_lines(format_name, exported(credentials) if changes is None else changes)

"""What would make getting credentials wait on a person: refused where no one can answer.

iam-sudo runs without anyone to type at it as a credential_process (the SDK captures its
stderr, and runs it again at every refresh), behind ``--ecs-server`` (refreshing while the
command holds the terminal), in ``serve`` and in the function. There, anything that would
ask for input must be refused before it starts, in one line naming what to do, never met
half-way as a prompt that waits until the SDK gives up.

What asks, following a profile's chain as botocore does (``credentials.py``:
``AssumeRoleProvider``): a profile with ``role_arn`` and ``mfa_serial`` asks for an MFA
code (``getpass``) whenever its session is made or renewed, and so does every profile
whose ``source_profile`` chain reaches one; iam-sudo's own ``assume`` takes the calling
profile's ``mfa_serial`` as the AWS CLI does and asks for a code too. ``mfa_serial`` on any
profile of the chain is therefore refused (tools such as aws-vault also read it on a
profile of keys as "ask for a code"). Keys in the environment come first in every
SDK's chain (botocore's EnvProvider), so with them nothing asks. SSO asks nothing (an
expired token fails, naming ``aws sso login``); a credential_process that is not iam-sudo
is opaque and is given no terminal input where iam-sudo can prevent it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..core.exceptions import ConfigurationError
from . import files as _files
from . import inifile
from .config import credentials_file as credentials_path
from .config import profile_in_effect, read_config, source_of_process

# No chain is legitimately longer; botocore itself gives up on cycles.
_MAX_CHAIN = 16


def _credentials_sections(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    try:
        return inifile.read(_files.read_text(credentials_path(environ)))
    except (OSError, UnicodeDecodeError, inifile.IniError):
        return {}  # unreadable: botocore would find no profile there either


def prompt_problem(
    environ: Mapping[str, str] | None = None, profile: str | None = None
) -> str | None:
    """Why getting ``profile``'s credentials (default: the profile in effect) could ask a
    person for input, or None. Reads the AWS config and credentials files.

    The answer names the profile that asks and the way it was reached, e.g. ``profile mfa
    (task's source_profile) has mfa_serial``.
    """
    environ = os.environ if environ is None else environ
    if profile is None:
        if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
            return None
        profile = profile_in_effect(environ)
    aws_config = read_config(environ)
    credentials = _credentials_sections(environ)
    chain = [profile]
    while len(chain) <= _MAX_CHAIN:
        current = chain[-1]
        # botocore merges the credentials file's section over the config file's.
        options = {**aws_config.profile(current), **credentials.get(current, {})}
        if options.get("mfa_serial", "").strip():
            via = f" (reached through {' -> '.join(chain)})" if len(chain) > 1 else ""
            return f"profile {current}{via} has mfa_serial, which asks for an MFA code"
        following = options.get("source_profile") or source_of_process(
            options.get("credential_process", "")
        )
        if not following or following in chain:
            return None  # a profile naming itself uses its own keys, as in botocore
        chain.append(following)
    return None


def check_unattended(
    where: str, environ: Mapping[str, str] | None = None, profile: str | None = None
) -> None:
    """Raise :class:`ConfigurationError` if credentials for ``profile`` could ask for input.

    ``where`` says how iam-sudo runs, e.g. "as a credential_process" (the sentence reads
    "no one can type it {where}"). See :func:`prompt_problem`. The one reusable check for
    every unattended way iam-sudo runs (credential_process, --ecs-server, serve).
    """
    problem = prompt_problem(environ, profile)
    if problem:
        raise ConfigurationError(
            f"{problem}, and no one can type it {where}: give --source-profile a profile "
            "without MFA (or get the credentials on a terminal with `iam-sudo assume "
            "--mfa-serial ARN --token-code CODE`)"
        )

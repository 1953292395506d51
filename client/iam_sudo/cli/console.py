"""``iam-sudo console``: the command that opens the AWS console as a role.

Its role options are ``simulate``'s and ``assume``'s Option objects themselves, not copies,
so that their names, checks and help stay one copy each: :func:`command` builds it from
those two commands. The sign-in itself is :mod:`iam_sudo.aws.console`'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncclick as click

from ..core.defaults import DEFAULT_DURATION_SECONDS
from ..core.exceptions import IamSudoError
from . import credential_process, sources
from . import options as options

if TYPE_CHECKING:
    from ..core.drafts import Draft
    from ..core.principal import Principal

_CONSOLE_SIMULATE_OPTIONS = (
    "role_name",
    "principal",
    "add_policy",
    "base_role",
    "remote",
    "function_name",
    "duration",
    "source_identity",
    "session_tags",
)
_CONSOLE_ASSUME_OPTIONS = ("mfa_serial", "token_code", "external_id", "session_name")
_CONSOLE_SIMULATE_ONLY = (
    "principal",
    "add_policy",
    "base_role",
    "remote",
    "function_name",
    "source_identity",
    "session_tags",
)


def _reused_options(command: click.Command, names: Sequence[str]) -> list[click.Parameter]:
    return [param for param in command.params if param.name in names]


@click.option(
    "--assume",
    "assume_role",
    is_flag=True,
    help="Assume the real role NAME|ARN (as `assume` does) instead of simulating it.",
)
@click.option(
    "--url",
    "print_url",
    is_flag=True,
    help="Print the sign-in URL instead of opening a browser (a secret for 15 minutes).",
)
@click.option(
    "--destination",
    metavar="SERVICE|PATH|URL",
    help="Console page to open: a service (s3), a path (ecs/v2/clusters) or a console URL.",
)
@click.option(
    "--region",
    metavar="REGION",
    help="Console region, and so its partition [default: AWS_REGION, your profile's region].",
)
@click.pass_context
async def _console(
    ctx: click.Context,
    role_name: str,
    principal: Principal | None,
    add_policy: tuple[Draft, ...],
    base_role: str | None,
    remote: bool,
    function_name: str,
    duration: int,
    source_identity: bool,
    session_tags: bool,
    mfa_serial: str | None,
    token_code: str | None,
    external_id: str | None,
    session_name: str | None,
    assume_role: bool,
    print_url: bool,
    destination: str | None,
    region: str | None,
) -> None:
    """Open the AWS console as the simulated role NAME (or, with --assume, the real role).

    Gets the session's credentials as `simulate` (or `assume`) does, exchanges them for a
    sign-in token at AWS's federation endpoint, and opens the console in your browser
    without putting the sign-in URL on any command line. The console session ends with
    the credentials (1 hour with --remote).

    \b
    Examples:
      iam-sudo console --role-name TaskRole --destination ecs/v2/clusters
      iam-sudo console --local --role-name TaskRole --duration 7200 --url
      iam-sudo console --assume --role-name Deployer --destination s3
    """
    from ..aws import console as signin

    def given(names: Sequence[str]) -> list[str]:
        """The options of ``names`` given on the command line, as the user spells them."""
        return [
            "/".join([*param.opts, *param.secondary_opts])
            for param in ctx.command.params
            if param.name in names
            and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT
        ]

    if assume_role:
        simulate_only = given(_CONSOLE_SIMULATE_ONLY)
        if simulate_only:
            raise click.UsageError(f"--assume assumes the role itself: drop {simulate_only[0]}")
    else:
        assume_only = given(_CONSOLE_ASSUME_OPTIONS)
        if assume_only:
            raise click.UsageError(f"{assume_only[0]} goes with --assume")
        if remote and duration != DEFAULT_DURATION_SECONDS:
            raise click.UsageError("--duration goes with --local; --remote credentials last 1 hour")
    console_region = region or _console_region()
    try:
        signin.check_request(console_region, destination, os.environ)  # before any request
        known = _session_partition(
            role_name if assume_role else None,
            None if assume_role else base_role,
            function_name if remote and not assume_role else None,
        )
        if known is not None:
            signin.check_session_partition(console_region, *known)
    except IamSudoError as error:
        raise click.UsageError(str(error)) from None

    if assume_role:
        mfa_serial, token_code = await options.assume_mfa(
            mfa_serial, token_code, external_id, session_name
        )
    caller: list[str] = []
    if assume_role:
        fetch = sources.assumed(
            role_name,
            callers=caller,
            duration_seconds=duration,
            session_name=session_name,
            external_id=external_id,
            mfa_serial=mfa_serial,
            token_code=token_code,
        )
    elif remote:
        fetch = sources.remote(
            role_name,
            principal=principal,
            base_role=base_role,
            function_name=function_name,
            drafts=add_policy,
        )
    else:
        fetch = sources.local(
            role_name,
            callers=caller,
            principal=principal,
            base_role=base_role,
            duration_seconds=duration,
            session_tags=session_tags,
            source_identity=source_identity,
            drafts=add_policy,
        )
    credentials = await credential_process.obtain(ctx.command_path, ctx.params, None, True, fetch)
    # A --remote session is the function's role chain: never a SessionDuration for it.
    direct = bool(caller) and signin.is_direct_session(caller[0])
    await signin.sign_in(
        credentials,
        region=console_region,
        destination=destination,
        duration=signin.session_duration(direct, duration),
        print_url=print_url,
    )


def _session_partition(*arns: str | None) -> tuple[str, str] | None:
    """(partition, how it is known) of the session's credentials, before any request.

    An ARN given for the role assumed (the role, the base role, the function that assumes
    it) is of that partition; else STS is called in iam-sudo's own region, of whose
    partition its credentials are. None if that is not known.
    """
    from ..aws.console import partition_of
    from ..core.arn import parse as parse_arn
    from ..settings.config import region

    for value in arns:
        fields = parse_arn(value) if value else None
        if fields:
            return fields.partition, f"from {fields.service} ARN {value}"
    own = region() or "us-east-1"
    try:
        return partition_of(own).name, f"issued in your region {own}"
    except IamSudoError:
        return None


def _console_region() -> str:
    """The region as the AWS CLI finds it (see config.region), else us-east-1's partition."""
    from ..settings.config import region

    found = region()
    if found:
        return found
    import boto3

    from ..aws.errors import map_exceptions

    with map_exceptions("aws", "session"):  # a missing AWS_PROFILE: one line
        return boto3.session.Session().region_name or "us-east-1"


def command(simulate: click.Command, assume: click.Command) -> click.Command:
    """The ``console`` command, with ``simulate``'s and ``assume``'s role options."""
    import copy

    params = [
        *_reused_options(simulate, _CONSOLE_SIMULATE_OPTIONS),
        *_reused_options(assume, _CONSOLE_ASSUME_OPTIONS),
    ]
    for index, param in enumerate(params):
        if param.name == "role_name" and isinstance(param, click.Option):
            # simulate's own option (a part of a name), which --assume reads as assume does.
            params[index] = param = copy.copy(param)
            param.help = "Role to simulate: a part of its name (--assume: a name or an ARN)."
    return click.command("console", params=params, short_help="Open the AWS console as the role.")(
        _console
    )

"""``iam-sudo configure``: a profile whose credential_process is iam-sudo.

The command to configure is ``assume``'s or ``simulate``'s own: :func:`command` builds
``configure`` from those two commands, so that their options are parsed and checked by
the commands themselves, once.
"""

from __future__ import annotations

from typing import Any

import asyncclick as click

from ..core.defaults import DEFAULT_DURATION_SECONDS
from ..core.exceptions import IamSudoError
from . import options as options


def command(assume: click.Command, simulate: click.Command) -> click.Command:
    """The ``configure`` command, for these ``assume`` and ``simulate`` commands."""
    commands = {"assume": assume, "simulate": simulate}

    @click.command(
        context_settings=options.COMMAND_SETTINGS,
        short_help="Make an AWS profile get its credentials from iam-sudo.",
    )
    @click.option(
        "--source-profile",
        metavar="PROFILE",
        help="Where iam-sudo gets its own credentials [default: the profile in effect now].",
    )
    @click.argument("profile")
    @click.argument(
        "arguments",
        nargs=-1,
        type=click.UNPROCESSED,
        metavar="[--source-profile PROFILE] assume|simulate OPTIONS...",
    )
    async def configure(
        source_profile: str | None, profile: str, arguments: tuple[str, ...]
    ) -> None:
        """Make AWS profile PROFILE get its credentials from iam-sudo, refreshed by itself.

        Writes `credential_process = iam-sudo ... --format process` to the profile in the AWS
        config file, keeping the rest of the file. Every AWS SDK and tool then uses the role
        with `--profile PROFILE` (or AWS_PROFILE), and asks iam-sudo again when the cached
        credentials near their expiry.

        iam-sudo itself gets its credentials from --source-profile, recorded in the line
        (default: the profile in effect when configure runs), never from PROFILE.

        \b
        Example:
          iam-sudo configure task --source-profile dev simulate --role-name TaskRole
          aws s3 ls --profile task
        """
        from ..settings.credentials import process_line
        from .credential_process import self_command

        source_profile, arguments = _split_source_profile(source_profile, arguments)
        if arguments:
            source_profile, rest = _split_source_profile(
                source_profile, arguments[1:], anywhere=True
            )
            arguments = (arguments[0], *rest)
        if not arguments or arguments[0] not in ("assume", "simulate"):
            raise click.UsageError(
                "give the iam-sudo command to run: assume or simulate, with its options"
            )
        command = commands[arguments[0]]
        try:
            ctx = await command.make_context(f"iam-sudo {arguments[0]}", list(arguments[1:]))
        except click.UsageError as error:
            raise click.UsageError(
                f"in the command to configure, `{arguments[0]}`: {error.format_message()}"
            ) from None
        params = ctx.params
        if (
            params.get("cmd")
            or params.get("profile")
            or params.get("format_name")
            or params.get("dry_run")
            or params.get("record_file")
        ):
            raise click.UsageError(
                "the command may not name a command to run, --profile, --format, --dry-run or "
                "--record: "
                "iam-sudo adds --format process itself"
            )
        _check_configurable(arguments[0], params, source_profile)
        line = process_line(self_command(), profile, source_profile, arguments)
        from ..settings.config import DEFAULT_PROFILE, check_profile_exists

        if source_profile is not None and source_profile != DEFAULT_PROFILE:
            check_profile_exists(source_profile)  # else every use of the profile fails
        from ..settings.config import profile_in_effect, read_config, region

        # The region iam-sudo resolves now, as the AWS CLI would for the source profile.
        source = source_profile or profile_in_effect()
        found = region(profile=source)
        added = found if found and not read_config().profile(profile).get("region") else None
        from ..settings.credentials import write_process_profile

        path = write_process_profile(profile, line, region=found)
        click.echo(f"iam-sudo: profile {profile} in {path} now runs: {line}", err=True)
        if added:
            click.echo(f"iam-sudo: profile {profile} gets region {added} (it had none)", err=True)

    return configure


def _check_configurable(name: str, params: dict[str, Any], source_profile: str | None) -> None:
    """Raise :class:`click.UsageError` for options that would make the profile fail at use.

    The line runs unattended, again at every refresh, with nothing to serve and no one to
    type a code: what ``assume``/``simulate`` would refuse when run is refused now, and so
    are options that only work once or on a terminal.
    """
    if params.get("ecs_server"):
        raise click.UsageError(
            "--ecs-server serves a command; a profile's credential_process prints its "
            "credentials: drop --ecs-server"
        )
    from ..settings.config import DEFAULT_PROFILE, profile_in_effect
    from ..settings.unattended import check_unattended

    source = source_profile or profile_in_effect() or DEFAULT_PROFILE
    try:
        # For assume and simulate alike: the source's own chain may ask for an MFA code.
        check_unattended("at each refresh of a credential_process", profile=source)
    except IamSudoError as error:
        raise click.UsageError(str(error)) from None
    if name == "simulate":
        if params.get("remote") and params.get("duration") != DEFAULT_DURATION_SECONDS:
            raise click.UsageError("--duration goes with --local; --remote credentials last 1 hour")
        return
    if params.get("token_code"):
        raise click.UsageError(
            "--token-code is good once, and the profile would keep it for every refresh: "
            "drop it (for MFA, assume the role with `iam-sudo assume` when you need it)"
        )
    from ..core.session import check_assume_options

    try:
        check_assume_options(
            mfa_serial=params.get("mfa_serial"),
            external_id=params.get("external_id"),
            session_name=params.get("session_name"),
        )
    except IamSudoError as error:
        raise click.UsageError(str(error)) from None
    if params.get("mfa_serial"):
        raise click.UsageError(
            "--mfa-serial needs a fresh MFA code at every refresh, which a credential_process "
            "cannot ask for off a terminal: use `iam-sudo assume` when you need it, or give "
            "--source-profile a profile without mfa_serial"
        )


def _split_source_profile(
    given: str | None, arguments: tuple[str, ...], anywhere: bool = False
) -> tuple[str | None, tuple[str, ...]]:
    """--source-profile given after PROFILE, as the usage line shows it, taken out.

    With ``anywhere``, among the command's options too (where it would be recorded twice
    in the line); given twice, it is a :class:`click.UsageError`.
    """
    for index in range(len(arguments) if anywhere else min(len(arguments), 1)):
        argument = arguments[index]
        if argument == "--":
            break
        if argument.startswith("--source-profile="):
            value, end = argument.split("=", 1)[1], index + 1
        elif argument == "--source-profile" and index + 1 < len(arguments):
            value, end = arguments[index + 1], index + 2
        else:
            continue
        if given is not None:
            raise click.UsageError("give --source-profile once")
        return value, arguments[:index] + arguments[end:]
    return given, arguments

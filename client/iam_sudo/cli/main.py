"""The ``iam-sudo`` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import asyncclick as click

from ..core.defaults import DEFAULT_DURATION_SECONDS
from ..core.exceptions import IamSudoError
from . import configure as cli_configure
from . import console as cli_console
from . import credential_process, options, sources
from . import recording as cli_recording
from . import serve as cli_serve
from .delivery import deliver

if TYPE_CHECKING:
    from ..core.drafts import Draft
    from ..core.principal import Principal

log = logging.getLogger("iam_sudo")
F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """An error the user can act on; shown as one line on stderr, exit code 1 by default."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.status = exit_code


class _Cli(click.Group):
    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.append(options.VERBOSE)
        if not any(param.name == "source_profile" for param in cmd.params):
            cmd.params.append(options.SOURCE_PROFILE)  # configure has one of its own
        super().add_command(cmd, name)

    async def invoke(self, ctx: click.Context) -> Any:
        try:
            return await super().invoke(ctx)
        except IamSudoError as error:
            raise UserError(_with_next_step(error), getattr(error, "exit_code", 1)) from None


def _with_next_step(error: IamSudoError) -> str:
    """The error's line, with where to go next when the error itself cannot say it."""
    from ..core.exceptions import RemoteError, SudoPolicyDenied, UnsafeBaseRole

    message = str(error)
    # An unsafe base role's refusal names its own fix (another base role): `roles` would
    # not help. Every other denial names only what was asked, never the policy's rules.
    denied = (isinstance(error, SudoPolicyDenied) and not isinstance(error, UnsafeBaseRole)) or (
        isinstance(error, RemoteError) and error.error_type == "SudoPolicyDenied"
    )  # the function's own, as its reply names it
    if denied and "iam-sudo roles" not in message:
        # The denial names only what was asked (never the policy's rules): say where the
        # allowed roles are listed.
        message += "; `iam-sudo roles` lists the roles the sudo policy lets you simulate"
    return message


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Log what iam-sudo does (never secrets).")
@click.option(
    "--source-profile",
    metavar="PROFILE",
    help="The AWS profile iam-sudo gets its own credentials from [default: AWS_PROFILE].",
)
@click.version_option(package_name="iam-sudo")
def cli(verbose: bool, source_profile: str | None) -> None:
    """Get credentials of a real or a simulated IAM role.

    `assume` and `simulate` give the credentials to a command run with them (CMD...), a
    profile in the shared credentials file (--profile), stdout (--format) or a command
    through an ECS credentials endpoint (--ecs-server). AWS settings come from the usual
    places: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL and friends.
    """
    # Only our own logger: botocore's INFO lines are noise to a user.
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("iam-sudo: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    from ..settings.config import RESOLVING_VARIABLE, use_source_profile

    meta = click.get_current_context().meta
    meta[options.SOURCE_PROFILE_GIVEN] = source_profile
    meta[options.RESOLVING_BEFORE] = os.environ.get(RESOLVING_VARIABLE)
    meta[options.USER_PROFILE_VARIABLES] = [
        name for name in options.PROFILE_VARIABLES if name in os.environ
    ]
    try:
        use_source_profile(os.environ, source_profile)
    except IamSudoError as error:
        raise UserError(str(error)) from None


@cli.command(context_settings=options.COMMAND_SETTINGS)
@click.option(
    "--role-name",
    required=True,
    metavar="NAME",
    help="Role to assume: a name in your account, or an ARN.",
)
@options.duration
@options.profile
@options.output
@click.option(
    "--mfa-serial",
    metavar="ARN",
    help="MFA device to authenticate with [default: mfa_serial of your AWS profile].",
)
@click.option("--token-code", metavar="CODE", help="The MFA device's current 6-digit code.")
@click.option("--external-id", metavar="ID", help="The external id the role's trust requires.")
@click.option(
    "--session-name", metavar="NAME", help="The role session's name [default: iam-sudo-<role>]."
)
@cli_recording.record_option
@options.command
@click.pass_context
async def assume(
    ctx: click.Context,
    role_name: str,
    duration: int,
    profile: str | None,
    format_name: str | None,
    no_cache: bool,
    ecs_server: bool,
    mfa_serial: str | None,
    token_code: str | None,
    external_id: str | None,
    session_name: str | None,
    record_file: str | None,
    cmd: tuple[str, ...],
) -> None:
    """Assume the IAM role NAME.

    \b
    Examples:
      iam-sudo assume --role-name Deployer aws sts get-caller-identity
      iam-sudo assume --role-name Admin --mfa-serial arn:aws:iam::123456789012:mfa/me \\
        --format env
    """
    # --record first: without a command, its own message says what is missing.
    record_path = cli_recording.check_record(record_file, cmd)
    options.require_destination(profile, cmd, format_name, ecs_server)
    mfa_serial, token_code = await options.assume_mfa(
        mfa_serial, token_code, external_id, session_name, unattended=format_name == "process"
    )
    # With a code typed now, the endpoint does not renew (below): nothing asks again.
    options.check_unattended(format_name, ecs_server, not token_code, bool(cmd))

    fetch = sources.assumed(
        role_name,
        duration_seconds=duration,
        session_name=session_name,
        external_id=external_id,
        mfa_serial=mfa_serial,
        token_code=token_code,
    )
    credentials = await credential_process.obtain(
        ctx.command_path, ctx.params, format_name, no_cache or bool(token_code), fetch
    )
    if ecs_server and token_code:
        # An MFA code is good once: such a session cannot be renewed without you.
        log.warning("with MFA the endpoint cannot renew the credentials: they end at expiry")
    recording = None
    if record_path is not None:
        recording = cli_recording.Recording(
            record_path,
            cli_recording.run_info("assume", "assume", role_name),
            cli_recording.with_identity,
        )
    await ctx.aexit(
        deliver(
            credentials,
            profile,
            cmd,
            format_name,
            ecs_server,
            None if token_code else fetch,
            recording,
        )
    )


@cli.command(context_settings=options.COMMAND_SETTINGS)
@click.option(
    "--role-name", required=True, metavar="NAME", help="Role to simulate: a part of its name."
)
@options.principal
@options.add_policy
@options.role_template
@click.option(
    "--base-role",
    metavar="NAME|ARN",
    help=(
        "Role to assume with the session policies [--remote: the function's; "
        "--local: env IAM_SUDO_BASE_ROLE, else IAMSudoUser]."
    ),
)
@click.option(
    "--remote/--local",
    default=True,
    show_default=True,
    help="Simulate in the iam-sudo Lambda function, or with your own credentials.",
)
@options.account
@options.function_name
@options.duration
@options.profile
@options.output
@click.option(
    "--source-identity/--no-source-identity",
    default=True,
    show_default=True,
    help=(
        "With --local: name you (your user or session name) as the session's STS "
        "SourceIdentity, shown in CloudTrail (needs sts:SetSourceIdentity)."
    ),
)
@click.option(
    "--session-tags/--no-session-tags",
    default=True,
    show_default=True,
    help="With --local: pass the role's tags as STS session tags (needs sts:TagSession).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help=(
        "With --local: print the resolved role, the AssumeRole request, the policies it "
        "needs and the fidelity report; create and assume nothing."
    ),
)
@click.option(
    "--exact",
    is_flag=True,
    help=(
        "Refuse (exit 1, one line per narrowing) if the session would grant less than the "
        "role: what the base role cannot grant, Allows left out for unknown values."
    ),
)
@cli_recording.record_option
@options.command
@click.pass_context
async def simulate(
    ctx: click.Context,
    role_name: str,
    principal: Principal | None,
    add_policy: tuple[Draft, ...],
    role_template: tuple[str, Mapping[str, Any]] | None,
    template_parameter: dict[str, str],
    base_role: str | None,
    remote: bool,
    account: str | None,
    function_name: str,
    duration: int,
    profile: str | None,
    format_name: str | None,
    no_cache: bool,
    ecs_server: bool,
    source_identity: bool,
    session_tags: bool,
    dry_run: bool,
    exact: bool,
    record_file: str | None,
    cmd: tuple[str, ...],
) -> None:
    """Simulate the IAM role whose name contains NAME.

    Assumes the base role with the role's managed and inline policies as session
    policies: the credentials can do what the role can, never more than the base role.

    \b
    Example:
      iam-sudo simulate --local --role-name TaskRole \\
        --principal Service:ecs-tasks.amazonaws.com -- python app.py
    """
    if dry_run and (remote or profile or cmd or format_name):
        raise click.UsageError(
            "--dry-run goes with --local, without --profile, --format or a command"
        )
    # --record first: without a command, its own message says what is missing.
    record_path = cli_recording.check_record(record_file, cmd, dry_run)
    if not dry_run:
        options.require_destination(profile, cmd, format_name, ecs_server)
    if remote and duration != DEFAULT_DURATION_SECONDS:
        # The function assumes the base role from its own role: STS caps such chains at 1 hour.
        raise click.UsageError("--duration goes with --local; --remote credentials last 1 hour")
    template = None
    if role_template is not None:
        if remote:
            raise click.UsageError(
                "--role-template goes with --local (the function simulates roles that exist)"
            )
        from ..core.template import Template
        from ..settings.config import region

        template = Template(*role_template, template_parameter, region())
    elif template_parameter:
        raise click.UsageError("--template-parameter goes with --role-template")
    if not dry_run:
        options.check_unattended(format_name, ecs_server, command=bool(cmd))

    local: dict[str, Any] = {
        "principal": principal,
        "base_role": base_role,
        "duration_seconds": duration,
        "session_tags": session_tags,
        "source_identity": source_identity,
        "exact": exact,
        "account": account,
        "drafts": add_policy,
        "template": template,
    }
    if dry_run:
        session = await sources.plan_local(role_name, **local)
        click.echo(json.dumps(session.to_dry_run(), indent=2))
        return
    sessions: list[Any] = []
    fetch = (
        sources.remote(
            role_name,
            principal=principal,
            base_role=base_role,
            function_name=function_name,
            exact=exact,
            account=account,
            drafts=add_policy,
        )
        if remote
        else sources.local(role_name, sessions=sessions, **local)
    )
    credentials = await credential_process.obtain(
        ctx.command_path, ctx.params, format_name, no_cache, fetch
    )
    recording = None
    if record_path is not None:
        recording = cli_recording.Recording(
            record_path,
            cli_recording.run_info(
                "simulate", "remote" if remote else "local", role_name, base_role
            ),
            cli_recording.with_identity if remote else cli_recording.simulated(sessions),
        )
    await ctx.aexit(deliver(credentials, profile, cmd, format_name, ecs_server, fetch, recording))


@cli.command(short_help="List the roles you may simulate.")
@options.principal
@click.option(
    "--remote/--local",
    default=True,
    show_default=True,
    help="Ask the iam-sudo function (its sudo policy, for you), or list with your credentials.",
)
@options.account
@click.option(
    "--all-accounts",
    is_flag=True,
    help="Every account the function reaches (its own and its spokes); roles by ARN.",
)
@options.function_name
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
@click.option(
    "--exact",
    "check_exact",
    is_flag=True,
    help=(
        "With --local: say whether each role simulates exactly under the base role "
        "(reads every role's policies and the base role's) [env IAM_SUDO_BASE_ROLE]."
    ),
)
async def roles(
    principal: Principal | None,
    remote: bool,
    account: str | None,
    all_accounts: bool,
    function_name: str,
    as_json: bool,
    check_exact: bool,
) -> None:
    """List the roles you may simulate: one per line, name and trusted principals."""
    from ..steps.remote import describe_roles

    if check_exact and remote:
        raise click.UsageError("--exact goes with --local")
    if account and all_accounts:
        raise click.UsageError("give --account or --all-accounts, not both")
    if check_exact and (account or all_accounts):
        raise click.UsageError("--exact reads this account's base role: drop --account")
    options.check_unattended(None, ecs_server=False)  # without a terminal: no MFA prompt
    narrowings: dict[str, list[str]] = {}
    async with sources.client() as sudo:
        if remote:
            listed = await sudo.roles_remote(
                principal=principal,
                function_name=function_name,
                account=account,
                all_accounts=all_accounts,
            )
        elif all_accounts:
            found, errors = await sudo.visible_roles_everywhere(principal=principal)
            listed = describe_roles(found) + [
                {"account": a, "error": e} for a, e in sorted(errors.items())
            ]
        else:
            visible = await sudo.visible_roles(principal=principal, account=account)
            listed = describe_roles(visible)
            if check_exact:
                narrowings = await sudo.narrowings(visible)
    if check_exact:
        for role in listed:
            role["exact"] = not narrowings[role["arn"]]
            role["narrowings"] = narrowings[role["arn"]]
    failed = [entry for entry in listed if "error" in entry]
    if as_json:
        click.echo(json.dumps(listed, indent=2))
    for role in [] if as_json else listed:
        if "error" in role:
            continue
        exact = ""
        if check_exact:
            count = len(role["narrowings"])
            exact = f"\tnarrower ({count})" if count else "\texact"
        shown = role["arn"] if all_accounts else role["name"]
        click.echo(f"{shown}\t{', '.join(role['principals'])}{exact}")
    for entry in failed:
        click.echo(f"iam-sudo: account {entry['account']}: {entry['error']}", err=True)
    if failed:
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@options.account
async def prune(dry_run: bool, account: str | None) -> None:
    """Delete the /iam-sudo/ policies no role needs any more.

    Simulations of roles too large for STS's limits create content-addressed policies
    under the IAM path /iam-sudo/ and reuse them. This plans every role of the account
    with your credentials and deletes the iam-sudo policies none of them needs; it never
    touches other policies. A simulation re-creates a deleted policy when it needs it.
    """
    options.check_unattended(None, ecs_server=False)  # without a terminal: no MFA prompt
    async with sources.client() as sudo:
        arns = await sudo.prune_policies(dry_run=dry_run, account=account)
    for arn in arns:
        click.echo(arn)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"iam-sudo: {verb} {len(arns)} unneeded iam-sudo policies", err=True)


cli.add_command(cli_configure.command(assume, simulate))
cli.add_command(cli_console.command(simulate, assume))
cli.add_command(cli_recording.report)
cli.add_command(cli_serve.command())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI (the ``iam-sudo`` console script); every error is one line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli(args=args, prog_name="iam-sudo", standalone_mode=False, _anyio_backend="asyncio")
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.format_message(), err=True)  # usage asked for, not an error
        sys.exit(error.exit_code)
    except click.UsageError as error:
        command = error.ctx.command_path if error.ctx else "iam-sudo"
        click.echo(f"iam-sudo: error: {error.format_message()} (see '{command} --help')", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"iam-sudo: error: {error.format_message()}", err=True)
        sys.exit(error.status if isinstance(error, UserError) else error.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("iam-sudo: aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

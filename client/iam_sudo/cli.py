"""The ``iam-sudo`` command line."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncclick as click

from ._exceptions import IamSudoError
from .credentials import Credentials, write_process_profile, write_profile
from .formats import FORMATS, render
from .session import DEFAULT_DURATION_SECONDS

if TYPE_CHECKING:
    from .client import IamSudo, SimulatedSession
    from .principal import Principal

log = logging.getLogger("iam_sudo")
F = TypeVar("F", bound=Callable[..., Any])

# Everything after the first argument belongs to the command, so that its own options
# (`aws s3 ls --recursive`) need no `--`.
_COMMAND_SETTINGS: dict[str, Any] = {"allow_interspersed_args": False}

_duration = click.option(
    "--duration",
    type=click.IntRange(900, 43200),
    default=DEFAULT_DURATION_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How long the credentials last, up to the role's maximum session duration.",
)


class UserError(click.ClickException):
    """An error the user can act on; shown as one line on stderr, exit code 1 by default."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.status = exit_code


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        log.setLevel(logging.INFO)


# -v after the subcommand too (`iam-sudo simulate -v ...`): every subcommand takes it.
_VERBOSE = click.Option(
    ["--verbose", "-v"],
    is_flag=True,
    expose_value=False,
    callback=_set_verbose,
    help="Log what iam-sudo does (never secrets).",
)


class _Cli(click.Group):
    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.append(_VERBOSE)
        super().add_command(cmd, name)

    async def invoke(self, ctx: click.Context) -> Any:
        try:
            return await super().invoke(ctx)
        except IamSudoError as error:
            raise UserError(str(error), getattr(error, "exit_code", 1)) from None


def _parse_principal(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from .principal import Principal

    try:
        return Principal.parse(value)
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None


def _require_destination(
    profile: str | None,
    command: Sequence[str],
    format_name: str | None = None,
    ecs_server: bool = False,
) -> None:
    if ecs_server and (not command or format_name):
        raise click.UsageError("--ecs-server serves a command: give one, without --format")
    if format_name and command:
        raise click.UsageError("--format prints the credentials; it goes without a command")
    if not profile and not command and not format_name:
        raise click.UsageError("specify --profile, a command to run, --format, or some of them")
    if profile:
        from .credentials import check_profile_name

        try:  # before any request: nothing is fetched for a profile that cannot be written
            check_profile_name(profile)
        except IamSudoError as error:
            raise click.BadParameter(str(error), param_hint="--profile") from None


def _options(**decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply options in the order given (click lists them in reverse of decoration)."""

    def apply(function: F) -> F:
        for decorator in reversed(list(decorators.values())):
            function = decorator(function)
        return function

    return apply


_principal = click.option(
    "--principal",
    metavar="TYPE:ID",
    callback=_parse_principal,
    help="Only roles that trust it, e.g. Service:ecs-tasks.amazonaws.com.",
)


def _parse_account(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from .accounts import check_account

    try:
        return check_account(value)
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None


_account = click.option(
    "--account",
    metavar="ID",
    callback=_parse_account,
    help="Another account of the Organization (12 digits), reached through its spoke.",
)
_function_name = click.option(
    "--function-name",
    metavar="NAME",
    envvar="IAM_SUDO_FUNCTION",
    default="iam-sudo",
    show_default=True,
    help="The iam-sudo Lambda function to ask with --remote [env IAM_SUDO_FUNCTION].",
)

_output = _options(
    format=click.option(
        "--format",
        "format_name",
        type=click.Choice(sorted(FORMATS)),
        metavar="FORMAT",
        help=(
            "Print the credentials as `aws configure export-credentials` does: process "
            "(credential_process JSON), env, env-no-export, powershell, windows-cmd, fish."
        ),
    ),
    no_cache=click.option(
        "--no-cache",
        is_flag=True,
        help="With --format process: ask AWS even if cached credentials are still fresh.",
    ),
    ecs_server=click.option(
        "--ecs-server",
        is_flag=True,
        help=(
            "Give the command an ECS credentials endpoint on loopback instead of static "
            "keys: SDKs refresh from it by themselves, for as long as the command runs."
        ),
    ),
)


async def _obtain(
    ctx: click.Context,
    format_name: str | None,
    no_cache: bool,
    fetch: Callable[[], Awaitable[Credentials]],
) -> Credentials:
    """``fetch()``, through the credential cache when printing for credential_process.

    A hit imports no AWS SDK and makes no request; concurrent askers refresh once.
    """
    from .progress import notice_if_slow

    if format_name != "process" or no_cache:
        return await notice_if_slow(fetch(), "waiting for AWS")
    from . import cache

    params = {k: v for k, v in ctx.params.items() if k != "no_cache"}
    arguments = [ctx.command_path, json.dumps(params, sort_keys=True, default=str)]
    return await cache.obtain(arguments, lambda: notice_if_slow(fetch(), "waiting for AWS"))


def _deliver(
    credentials: Credentials,
    profile: str | None,
    command: Sequence[str],
    format_name: str | None = None,
    ecs_server: bool = False,
    refresh: Callable[[], Coroutine[Any, Any, Credentials]] | None = None,
) -> int:
    """Save, print, and/or run the command with the credentials; the exit code to return.

    With ``ecs_server`` the command gets an ECS credentials endpoint, renewed by ``refresh``.
    """
    if format_name:
        # Nothing but the credentials on stdout: scripts and SDKs read it.
        click.echo(render(credentials, format_name), nl=False)
    if profile:
        path = write_profile(credentials, profile)
        click.echo(
            f"iam-sudo: credentials saved as profile {profile} in {path}, "
            f"valid until {credentials.expiration.isoformat()}",
            err=True,
        )
    if not command:
        return 0
    from .command import environment, run
    from .config import region

    if not ecs_server:
        return run(command, environment(os.environ, credentials, region()))
    from .ecs import CredentialsServer

    with CredentialsServer(credentials, refresh) as server:
        log.info("serving credentials to the command at %s", server.url)
        return run(command, server.env(os.environ, region()))


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

    Credentials go to a profile in the shared credentials file (--profile), to a command
    run with them (CMD...), or both. AWS settings come from the usual places: AWS_PROFILE,
    AWS_REGION, AWS_ENDPOINT_URL and friends.
    """
    # Only our own logger: botocore's INFO lines are noise to a user.
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("iam-sudo: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    from .config import use_source_profile

    try:
        use_source_profile(os.environ, source_profile)
    except IamSudoError as error:
        raise UserError(str(error)) from None


@cli.command(context_settings=_COMMAND_SETTINGS)
@click.option(
    "--role-name",
    required=True,
    metavar="NAME",
    help="Role to assume: a name in your account, or an ARN.",
)
@_duration
@click.option("--profile", metavar="PROFILE", help="Save the credentials under this profile.")
@_output
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
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="[CMD]...")
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
    cmd: tuple[str, ...],
) -> None:
    """Assume the IAM role NAME.

    \b
    Examples:
      iam-sudo assume --role-name Deployer aws sts get-caller-identity
      iam-sudo assume --role-name Admin --mfa-serial arn:aws:iam::123456789012:mfa/me \\
        --format env
    """
    _require_destination(profile, cmd, format_name, ecs_server)
    mfa_serial, token_code = await _assume_mfa(mfa_serial, token_code, external_id, session_name)

    async def fetch() -> Credentials:

        async with _sudo() as sudo:
            return await sudo.assume(
                role_name,
                duration_seconds=duration,
                session_name=session_name,
                external_id=external_id,
                mfa_serial=mfa_serial,
                token_code=token_code,
            )

    credentials = await _obtain(ctx, format_name, no_cache or bool(token_code), fetch)
    if ecs_server and token_code:
        # An MFA code is good once: such a session cannot be renewed without you.
        log.warning("with MFA the endpoint cannot renew the credentials: they end at expiry")
    await ctx.aexit(
        _deliver(credentials, profile, cmd, format_name, ecs_server, None if token_code else fetch)
    )


def _sudo() -> IamSudo:
    """The CLI's client: botocore in threads, not aiobotocore.

    A command makes a handful of requests once; importing aiobotocore and aiohttp would
    cost it more start-up time than their event loop saves (see README, Performance).
    """
    from ._aws import ThreadTransport
    from .client import IamSudo

    if os.environ.get("IAM_SUDO_CLI_TRANSPORT") == "aio":
        return IamSudo()
    return IamSudo(transport=ThreadTransport())


@cli.command(context_settings=_COMMAND_SETTINGS)
@click.option(
    "--role-name", required=True, metavar="NAME", help="Role to simulate: a part of its name."
)
@_principal
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
@_account
@_function_name
@_duration
@click.option("--profile", metavar="PROFILE", help="Save the credentials under this profile.")
@_output
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
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="[CMD]...")
@click.pass_context
async def simulate(
    ctx: click.Context,
    role_name: str,
    principal: Principal | None,
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
    if dry_run:
        if remote or profile or cmd or format_name:
            raise click.UsageError(
                "--dry-run goes with --local, without --profile, --format or a command"
            )
    else:
        _require_destination(profile, cmd, format_name, ecs_server)
    if remote and duration != DEFAULT_DURATION_SECONDS:
        # The function assumes the base role from its own role: STS caps such chains at 1 hour.
        raise click.UsageError("--duration goes with --local; --remote credentials last 1 hour")

    if remote:

        async def fetch_remote() -> Credentials:
            async with _sudo() as sudo:
                log.info("invoking the function %s to simulate %s", function_name, role_name)
                return await sudo.simulate_remote(
                    role_name,
                    principal=principal,
                    base_role=base_role,
                    function_name=function_name,
                    exact=exact,
                    account=account,
                )

        credentials = await _obtain(ctx, format_name, no_cache, fetch_remote)
        await ctx.aexit(_deliver(credentials, profile, cmd, format_name, ecs_server, fetch_remote))
    local = functools.partial(
        _simulate_local,
        role_name,
        principal=principal,
        base_role=base_role,
        duration=duration,
        session_tags=session_tags,
        source_identity=source_identity,
        exact=exact,
        account=account,
    )
    if dry_run:
        await local(dry_run=True)  # prints the plan and exits

    async def fetch_local() -> Credentials:
        return await local(dry_run=False)

    credentials = await _obtain(ctx, format_name, no_cache, fetch_local)
    await ctx.aexit(_deliver(credentials, profile, cmd, format_name, ecs_server, fetch_local))


async def _simulate_local(
    role_name: str,
    *,
    principal: Principal | None,
    base_role: str | None,
    duration: int,
    session_tags: bool,
    source_identity: bool,
    dry_run: bool,
    exact: bool = False,
    account: str | None = None,
) -> Credentials:
    """Plan and assume (or, with ``dry_run``, print the plan and return the empty marker)."""

    explain = dry_run or log.isEnabledFor(logging.INFO)
    async with _sudo() as sudo:
        session = await sudo.session(
            role_name,
            principal=principal,
            base_role=base_role,
            duration_seconds=duration,
            session_tags=session_tags,
            explain=explain,
            source_identity=source_identity,
            exact=exact,
            account=account,
        )
        request = session.request
        log.info(
            "simulating %s as %s: %d policy ARNs (%d created for it), %d plaintext characters "
            "of STS's 2048, %d session tags",
            session.role.arn,
            session.base_role_arn,
            len(request.policy_arns),
            len(session.plan.packed),
            request.plaintext_chars,
            len(request.tags),
        )
        if dry_run:
            click.echo(_describe_session(session))
            raise click.exceptions.Exit(0)
        for finding in session.fidelity:
            log.info("not reproduced: %s", finding)
        return await sudo.assume_session(session)


@cli.command()
@_principal
@click.option(
    "--remote/--local",
    default=True,
    show_default=True,
    help="Ask the iam-sudo function (its sudo policy, for you), or list with your credentials.",
)
@_account
@click.option(
    "--all-accounts",
    is_flag=True,
    help="Every account the function reaches (its own and its spokes); roles by ARN.",
)
@_function_name
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
    from .remote import describe_roles

    if account and all_accounts:
        raise click.UsageError("give --account or --all-accounts, not both")
    if check_exact and remote:
        raise click.UsageError("--exact goes with --local")
    if check_exact and (account or all_accounts):
        raise click.UsageError("--exact goes without --account and --all-accounts")
    narrowings: dict[str, list[str]] = {}
    async with _sudo() as sudo:
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
    else:
        for role in listed:
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


@cli.command(context_settings=_COMMAND_SETTINGS)
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
async def configure(source_profile: str | None, profile: str, arguments: tuple[str, ...]) -> None:
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
    from .credentials import process_line

    source_profile, arguments = _split_source_profile(source_profile, arguments)
    if not arguments or arguments[0] not in ("assume", "simulate"):
        raise click.UsageError(
            "give the iam-sudo command to run: assume or simulate, with its options"
        )
    command = cli.commands[arguments[0]]
    try:
        ctx = await command.make_context(f"iam-sudo {arguments[0]}", list(arguments[1:]))
    except click.UsageError as error:
        raise click.UsageError(f"{arguments[0]} {error.format_message()}") from None
    params = ctx.params
    if (
        params.get("cmd")
        or params.get("profile")
        or params.get("format_name")
        or params.get("dry_run")
    ):
        raise click.UsageError(
            "the command may not name a command to run, --profile, --format or --dry-run: "
            "iam-sudo adds --format process itself"
        )
    line = process_line(_self_command(), profile, source_profile, arguments)
    path = write_process_profile(profile, line)
    click.echo(f"iam-sudo: profile {profile} in {path} now runs: {line}", err=True)


def _split_source_profile(
    given: str | None, arguments: tuple[str, ...]
) -> tuple[str | None, tuple[str, ...]]:
    """--source-profile given after PROFILE, as the usage line shows it, taken out."""
    if arguments and arguments[0].startswith("--source-profile="):
        return arguments[0].split("=", 1)[1], arguments[1:]
    if len(arguments) >= 2 and arguments[0] == "--source-profile":
        return arguments[1], arguments[2:]
    return given, arguments


def _self_command() -> list[str]:
    """How an SDK can run this iam-sudo: its console script, else this interpreter."""
    import shutil

    script = Path(sys.argv[0])
    if script.name == "iam-sudo" and script.is_file():
        return [str(script.resolve())]
    found = shutil.which("iam-sudo")
    return [found] if found else [sys.executable, "-m", "iam_sudo"]


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@_account
async def prune(dry_run: bool, account: str | None) -> None:
    """Delete the /iam-sudo/ policies no role needs any more.

    Simulations of roles too large for STS's limits create content-addressed policies
    under the IAM path /iam-sudo/ and reuse them. This plans every role of the account
    with your credentials and deletes the iam-sudo policies none of them needs; it never
    touches other policies. A simulation re-creates a deleted policy when it needs it.
    """

    async with _sudo() as sudo:
        arns = await sudo.prune_policies(dry_run=dry_run, account=account)
    for arn in arns:
        click.echo(arn)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"iam-sudo: {verb} {len(arns)} unneeded iam-sudo policies", err=True)


# --- iam-sudo console (issue 18): one block, reusing simulate's and assume's own options ---
# The role options are simulate's and assume's Option objects themselves, not copies, so
# that their names, checks and help stay one copy each.
_CONSOLE_SIMULATE_OPTIONS = (
    "role_name",
    "principal",
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
    "base_role",
    "remote",
    "function_name",
    "source_identity",
    "session_tags",
)


def _reused_options(command: click.Command, names: Sequence[str]) -> list[click.Parameter]:
    return [param for param in command.params if param.name in names]


@cli.command(
    params=[
        *_reused_options(simulate, _CONSOLE_SIMULATE_OPTIONS),
        *_reused_options(assume, _CONSOLE_ASSUME_OPTIONS),
    ]
)
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
async def console(
    ctx: click.Context,
    role_name: str,
    principal: Principal | None,
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
    from . import console as signin

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
        # Bad input fails here, before any request.
        partition = signin.partition_of(console_region)
        signin.destination_url(destination, console_region, partition)
        signin.federation_endpoint(partition, os.environ)
    except IamSudoError as error:
        raise click.UsageError(str(error)) from None

    if assume_role:
        mfa_serial, token_code = await _assume_mfa(
            mfa_serial, token_code, external_id, session_name
        )
    caller: list[str] = []

    async def fetch() -> Credentials:
        if not assume_role and remote:
            async with _sudo() as sudo:
                log.info("invoking the function %s to simulate %s", function_name, role_name)
                return await sudo.simulate_remote(
                    role_name, principal=principal, base_role=base_role, function_name=function_name
                )
        async with _sudo() as sudo:
            caller.append((await sudo.identity()).arn)
            if assume_role:
                return await sudo.assume(
                    role_name,
                    duration_seconds=duration,
                    session_name=session_name,
                    external_id=external_id,
                    mfa_serial=mfa_serial,
                    token_code=token_code,
                )
        return await _simulate_local(
            role_name,
            principal=principal,
            base_role=base_role,
            duration=duration,
            session_tags=session_tags,
            source_identity=source_identity,
            dry_run=False,
        )

    credentials = await _obtain(ctx, None, True, fetch)
    # A --remote session is the function's role chain: never a SessionDuration for it.
    direct = bool(caller) and signin.is_direct_session(caller[0])
    session_duration = signin.session_duration(direct, duration)
    log.info(
        "signing in to the %s console in %s (%s)",
        partition.name,
        console_region,
        f"console session of {session_duration} s"
        if session_duration
        else "the console session ends with the credentials",
    )
    url = await signin.console_login_url(
        credentials, region=console_region, destination=destination, duration=session_duration
    )
    if print_url:
        click.echo(url)
        return
    # On this thread, not a worker: Ctrl-C while it waits for the browser must end it now.
    signin.open_in_browser(url)
    click.echo(
        f"iam-sudo: opened the AWS console in your browser, until "
        f"{credentials.expiration.isoformat()}",
        err=True,
    )


async def _assume_mfa(
    mfa_serial: str | None,
    token_code: str | None,
    external_id: str | None,
    session_name: str | None,
) -> tuple[str | None, str | None]:
    """Check assume's options; (MFA serial, code): the profile's serial, a code asked for.

    The serial defaults to ``mfa_serial`` of the calling profile, as the AWS CLI's; the
    code is prompted for on a terminal. Raises :class:`click.UsageError` for bad values.
    """
    from .session import check_assume_options

    if mfa_serial is None:
        from .config import mfa_serial as profile_mfa_serial

        mfa_serial = profile_mfa_serial()

    def check(code: str | None) -> None:
        try:
            check_assume_options(
                mfa_serial=mfa_serial,
                token_code=code,
                external_id=external_id,
                session_name=session_name,
            )
        except IamSudoError as error:
            raise click.UsageError(str(error)) from None

    check(token_code)
    if mfa_serial and token_code is None:
        if not sys.stdin.isatty():
            raise click.UsageError("--mfa-serial needs --token-code when not run on a terminal")
        token_code = str(await click.prompt(f"MFA code for {mfa_serial}", err=True)).strip()
        check(token_code)
    return mfa_serial, token_code


def _console_region() -> str:
    """The region as the AWS CLI finds it (see config.region), else us-east-1's partition."""
    from .config import region

    found = region()
    if found:
        return found
    import boto3

    from ._aws import map_exceptions

    with map_exceptions("aws", "session"):  # a missing AWS_PROFILE: one line
        return boto3.session.Session().region_name or "us-east-1"


# --- end of iam-sudo console ---


def _describe_session(session: SimulatedSession) -> str:
    request = session.request
    return json.dumps(
        {
            "Role": session.role.arn,
            "RoleArn": request.role_arn,
            "RoleSessionName": request.session_name,
            "SourceIdentity": request.source_identity,
            "DurationSeconds": request.duration_seconds,
            "PolicyArns": list(request.policy_arns),
            "Policy": json.loads(request.policy) if request.policy is not None else None,
            "Tags": [{"Key": k, "Value": v} for k, v in request.tags],
            "PlaintextCharacters": request.plaintext_chars,
            "PoliciesNeeded": [
                {
                    "Arn": packed.arn,
                    "Path": "/iam-sudo/",
                    "PolicyName": packed.name,
                    "Document": json.loads(packed.document),
                }
                for packed in session.plan.packed
            ],
            "ManagedPoliciesPacked": list(session.plan.inlined_managed),
            "Fidelity": list(session.fidelity),
            "Findings": [finding.to_json() for finding in session.findings],
        },
        indent=2,
    )


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

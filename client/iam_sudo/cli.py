"""The ``iam-sudo`` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._exceptions import IamSudoError
from .credentials import Credentials, write_profile
from .session import DEFAULT_DURATION_SECONDS

if TYPE_CHECKING:
    from .client import SimulatedSession
    from .principal import Principal

log = logging.getLogger("iam_sudo")

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


class _Cli(click.Group):
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


def _require_destination(profile: str | None, command: Sequence[str]) -> None:
    if not profile and not command:
        raise click.UsageError("specify --profile, a command to run, or both")


def _deliver(credentials: Credentials, profile: str | None, command: Sequence[str]) -> int:
    """Save the credentials and/or run the command with them; the exit code to return."""
    if profile:
        path = write_profile(credentials, profile)
        click.echo(
            f"iam-sudo: credentials saved as profile {profile} in {path}, "
            f"valid until {credentials.expiration.isoformat()}",
            err=True,
        )
    if not command:
        return 0
    from .command import run

    return run(command, credentials.env(os.environ))


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Log what iam-sudo does (never secrets).")
@click.version_option(package_name="iam-sudo")
def cli(verbose: bool) -> None:
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


@cli.command(context_settings=_COMMAND_SETTINGS)
@click.option(
    "--role-name",
    required=True,
    metavar="NAME",
    help="Role to assume: a name in your account, or an ARN.",
)
@_duration
@click.option("--profile", metavar="PROFILE", help="Save the credentials under this profile.")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="[CMD]...")
@click.pass_context
async def assume(
    ctx: click.Context, role_name: str, duration: int, profile: str | None, cmd: tuple[str, ...]
) -> None:
    """Assume the IAM role NAME.

    \b
    Example:
      iam-sudo assume --role-name Deployer aws sts get-caller-identity
    """
    _require_destination(profile, cmd)
    from .client import IamSudo

    async with IamSudo() as sudo:
        credentials = await sudo.assume(role_name, duration_seconds=duration)
    await ctx.aexit(_deliver(credentials, profile, cmd))


@cli.command(context_settings=_COMMAND_SETTINGS)
@click.option(
    "--role-name", required=True, metavar="NAME", help="Role to simulate: a part of its name."
)
@click.option(
    "--principal",
    metavar="TYPE:ID",
    callback=_parse_principal,
    help="Only roles that trust it, e.g. Service:ecs-tasks.amazonaws.com.",
)
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
@click.option(
    "--function-name",
    metavar="NAME",
    envvar="IAM_SUDO_FUNCTION",
    default="iam-sudo",
    show_default=True,
    help="The iam-sudo Lambda function to invoke with --remote [env IAM_SUDO_FUNCTION].",
)
@_duration
@click.option("--profile", metavar="PROFILE", help="Save the credentials under this profile.")
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
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="[CMD]...")
@click.pass_context
async def simulate(
    ctx: click.Context,
    role_name: str,
    principal: Principal | None,
    base_role: str | None,
    remote: bool,
    function_name: str,
    duration: int,
    profile: str | None,
    source_identity: bool,
    session_tags: bool,
    dry_run: bool,
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
        if remote or profile or cmd:
            raise click.UsageError("--dry-run goes with --local, without --profile or a command")
    else:
        _require_destination(profile, cmd)
    if remote and duration != DEFAULT_DURATION_SECONDS:
        # The function assumes the base role from its own role: STS caps such chains at 1 hour.
        raise click.UsageError("--duration goes with --local; --remote credentials last 1 hour")
    from .client import IamSudo

    if remote:
        async with IamSudo() as sudo:
            log.info("invoking the function %s to simulate %s", function_name, role_name)
            credentials = await sudo.simulate_remote(
                role_name, principal=principal, base_role=base_role, function_name=function_name
            )
        await ctx.aexit(_deliver(credentials, profile, cmd))
    explain = dry_run or log.isEnabledFor(logging.INFO)
    async with IamSudo() as sudo:
        session = await sudo.session(
            role_name,
            principal=principal,
            base_role=base_role,
            duration_seconds=duration,
            session_tags=session_tags,
            explain=explain,
            source_identity=source_identity,
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
            return
        for finding in session.fidelity:
            log.info("not reproduced: %s", finding)
        credentials = await sudo.assume_session(session)
    await ctx.aexit(_deliver(credentials, profile, cmd))


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
async def prune(dry_run: bool) -> None:
    """Delete the /iam-sudo/ policies no role needs any more.

    Simulations of roles too large for STS's limits create content-addressed policies
    under the IAM path /iam-sudo/ and reuse them. This plans every role of the account
    with your credentials and deletes the iam-sudo policies none of them needs; it never
    touches other policies. A simulation re-creates a deleted policy when it needs it.
    """
    from .client import IamSudo

    async with IamSudo() as sudo:
        arns = await sudo.prune_policies(dry_run=dry_run)
    for arn in arns:
        click.echo(arn)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"iam-sudo: {verb} {len(arns)} unneeded iam-sudo policies", err=True)


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
        },
        indent=2,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI (the ``iam-sudo`` console script); every error is one line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli(args=args, prog_name="iam-sudo", standalone_mode=False, _anyio_backend="asyncio")
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

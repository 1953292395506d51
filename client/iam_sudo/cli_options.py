"""The options the CLI's commands share, and the checks of how they combine.

Only parsing: what an option means is decided by the modules the commands call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncclick as click

from ._exceptions import IamSudoError
from .formats import FORMATS
from .remote import DEFAULT_FUNCTION_NAME
from .session import DEFAULT_DURATION_SECONDS

F = TypeVar("F", bound=Callable[..., Any])

# Everything after the first argument belongs to the command, so that its own options
# (`aws s3 ls --recursive`) need no `--`.
COMMAND_SETTINGS: dict[str, Any] = {"allow_interspersed_args": False}


def group(**decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply options in the order given (click lists them in reverse of decoration)."""

    def apply(function: F) -> F:
        for decorator in reversed(list(decorators.values())):
            function = decorator(function)
        return function

    return apply


def _parse_principal(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from .principal import Principal

    try:
        return Principal.parse(value)
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None


def require_destination(
    profile: str | None,
    command: Sequence[str],
    format_name: str | None = None,
    ecs_server: bool = False,
) -> None:
    """The credentials go somewhere, and the places given go together; else UsageError."""
    if ecs_server and (not command or format_name):
        raise click.UsageError("--ecs-server serves a command: give one, without --format")
    if format_name and command:
        raise click.UsageError("--format prints the credentials; it goes without a command")
    if not profile and not command and not format_name:
        raise click.UsageError("specify --profile, a command to run, --format, or some of them")


duration = click.option(
    "--duration",
    type=click.IntRange(900, 43200),
    default=DEFAULT_DURATION_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="How long the credentials last, up to the role's maximum session duration.",
)
principal = click.option(
    "--principal",
    metavar="TYPE:ID",
    callback=_parse_principal,
    help="Only roles that trust it, e.g. Service:ecs-tasks.amazonaws.com.",
)
function_name = click.option(
    "--function-name",
    metavar="NAME",
    envvar="IAM_SUDO_FUNCTION",
    default=DEFAULT_FUNCTION_NAME,
    show_default=True,
    help="The iam-sudo Lambda function to ask with --remote [env IAM_SUDO_FUNCTION].",
)
profile = click.option(
    "--profile", metavar="PROFILE", help="Save the credentials under this profile."
)
command = click.argument("cmd", nargs=-1, type=click.UNPROCESSED, metavar="[CMD]...")
output = group(
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

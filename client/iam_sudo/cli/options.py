"""The options the CLI's commands share, the checks of how they combine, the MFA prompt.

Only parsing: what an option means is decided by the modules the commands call.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import asyncclick as click

from ..core.defaults import DEFAULT_DURATION_SECONDS, DEFAULT_FUNCTION_NAME
from ..core.exceptions import IamSudoError
from .formats import FORMATS

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
    from ..core.principal import Principal

    try:
        return Principal.parse(value)
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None


def _parse_account(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from ..steps.spokes import check_account

    try:
        return check_account(value)
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None


def _read_drafts(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """The ``--add-policy`` files, read and checked before anything is sent."""
    from ..core.drafts import MAX_DRAFT_CHARS, check_drafts, parse_draft

    drafts = []
    try:
        for value in values:
            try:
                with open(value, "rb") as file:
                    data = file.read(4 * MAX_DRAFT_CHARS + 1)
                text = data.decode("utf-8")
            except OSError as error:
                raise click.BadParameter(f"{value}: {error.strerror or error}") from None
            except UnicodeDecodeError:
                raise click.BadParameter(f"{value}: not UTF-8 text") from None
            drafts.append(parse_draft(value, text))
        check_drafts(drafts)
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None
    return tuple(drafts)


def _read_template(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """(file, document) of ``--role-template``, read and checked before anything is sent."""
    if value is None:
        return None
    from ..core.template import MAX_TEMPLATE_CHARS, load_template

    try:
        with open(value, "rb") as file:
            text = file.read(MAX_TEMPLATE_CHARS + 1).decode("utf-8")
        return value, load_template(value, text)
    except OSError as error:
        raise click.BadParameter(f"{value}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise click.BadParameter(f"{value}: not UTF-8 text") from None
    except IamSudoError as error:
        raise click.BadParameter(str(error)) from None


def _parse_parameters(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        key, equals, given = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        parsed[key] = given
    return parsed


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
    if profile:
        from ..settings.config import check_profile_name
        from ..settings.credentials import check_keys_destination

        try:  # before any request: nothing is fetched for a profile that cannot be written
            check_profile_name(profile)
        except IamSudoError as error:
            raise click.BadParameter(str(error), param_hint="--profile") from None
        # Checked again under the file's lock when the keys are written.
        check_keys_destination(profile)


def _set_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        logging.getLogger("iam_sudo").setLevel(logging.INFO)


# Where the group's callback leaves what --source-profile after the subcommand needs.
SOURCE_PROFILE_GIVEN = "iam_sudo.source_profile"
RESOLVING_BEFORE = "iam_sudo.resolving_before"
# The profile variables of the user's own environment, before --source-profile set its own.
USER_PROFILE_VARIABLES = "iam_sudo.user_profile_variables"
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def user_profile_variables() -> list[str]:
    """The profile variables (AWS_PROFILE, AWS_DEFAULT_PROFILE) set where iam-sudo was run."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        import os

        return [name for name in PROFILE_VARIABLES if name in os.environ]
    return list(ctx.find_root().meta.get(USER_PROFILE_VARIABLES, []))


def _set_source_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    root = ctx.find_root()
    if root is ctx:  # parsed on its own (configure checking its command): nothing to set
        return
    if root.meta.get(SOURCE_PROFILE_GIVEN) is not None:
        raise click.UsageError("give --source-profile once")
    import os

    from ..settings.config import RESOLVING_VARIABLE, use_source_profile

    # The group already marked the profile in effect as being resolved: undo that first.
    before = root.meta.get(RESOLVING_BEFORE)
    if before is None:
        os.environ.pop(RESOLVING_VARIABLE, None)
    else:
        os.environ[RESOLVING_VARIABLE] = before
    use_source_profile(os.environ, value)


# --source-profile after the subcommand too (`iam-sudo simulate --source-profile dev ...`).
SOURCE_PROFILE = click.Option(
    ["--source-profile"],
    metavar="PROFILE",
    expose_value=False,
    callback=_set_source_profile,
    help="The AWS profile iam-sudo gets its own credentials from [default: AWS_PROFILE].",
)

# -v after the subcommand too (`iam-sudo simulate -v ...`): every subcommand takes it.
VERBOSE = click.Option(
    ["--verbose", "-v"],
    is_flag=True,
    expose_value=False,
    callback=_set_verbose,
    help="Log what iam-sudo does (never secrets).",
)
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
account = click.option(
    "--account",
    metavar="ID",
    callback=_parse_account,
    help="Another account of the Organization (12 digits), reached through its spoke.",
)
function_name = click.option(
    "--function-name",
    metavar="NAME",
    envvar="IAM_SUDO_FUNCTION",
    default=DEFAULT_FUNCTION_NAME,
    show_default=True,
    help="The iam-sudo Lambda function to ask with --remote [env IAM_SUDO_FUNCTION].",
)
add_policy = click.option(
    "--add-policy",
    "add_policy",
    multiple=True,
    metavar="FILE",
    callback=_read_drafts,
    help=(
        "Add this policy document (JSON or YAML) to the role's own, to try a fix before "
        "deploying it; repeatable. --remote: the function's sudo policy must allow it."
    ),
)
role_template = group(
    role_template=click.option(
        "--role-template",
        metavar="FILE",
        callback=_read_template,
        help=(
            "Simulate a role that need not exist yet: the AWS::IAM::Role NAME of this "
            "CloudFormation template (JSON or YAML); with --local."
        ),
    ),
    template_parameter=click.option(
        "--template-parameter",
        metavar="KEY=VALUE",
        multiple=True,
        callback=_parse_parameters,
        help="A value of one of the template's Parameters (else its Default); repeatable.",
    ),
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


async def assume_mfa(
    mfa_serial: str | None,
    token_code: str | None,
    external_id: str | None,
    session_name: str | None,
    unattended: bool = False,
) -> tuple[str | None, str | None]:
    """Check assume's options; (MFA serial, code): the profile's serial, a code asked for.

    The serial defaults to ``mfa_serial`` of the calling profile, as the AWS CLI's; the
    code is prompted for on a terminal, unless ``unattended`` (a credential_process: the
    SDK captures the prompt). Raises :class:`click.UsageError` for bad values.
    """
    from ..core.session import check_assume_options

    if mfa_serial is None:
        from ..settings.config import mfa_serial as profile_mfa_serial

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
        if unattended or not sys.stdin.isatty():
            where = "with --format process" if unattended else "when not run on a terminal"
            raise click.UsageError(f"--mfa-serial needs --token-code {where}")
        token_code = str(await click.prompt(f"MFA code for {mfa_serial}", err=True)).strip()
        check(token_code)
    return mfa_serial, token_code


def check_unattended(
    format_name: str | None, ecs_server: bool, refreshes: bool = True, command: bool = False
) -> None:
    """Refuse, before anything starts, a run that would wait on an MFA prompt no one sees.

    Unattended: printing for a credential_process (``--format process``; without a
    ``command`` to hand it on to, stdin is then emptied), an ECS endpoint that renews
    the credentials while the command holds the terminal, and any run without a terminal
    (CI, cron, ``setsid``): botocore's getpass would read the code from an empty or silent
    stdin, failing in several lines or waiting for ever. See
    :func:`iam_sudo.settings.unattended.check_unattended`. Raises :class:`click.UsageError`.
    """
    if format_name == "process":
        where = "as a credential_process"
        if not command:
            _detach_stdin()
    elif ecs_server and refreshes:
        where = "while --ecs-server renews the credentials"
    elif not _on_a_terminal():
        where = "without a terminal"
    else:
        return
    from ..settings.unattended import check_unattended as check

    try:
        check(where)
    except IamSudoError as error:
        raise click.UsageError(str(error)) from None


def _on_a_terminal() -> bool:
    """Whether an MFA prompt could reach a person: as getpass asks, on the controlling
    terminal (``/dev/tty``), else on stdin if it is one. Not POSIX: assumed so (getpass
    asks the Windows console)."""
    import os

    if sys.stdin.isatty() or os.name != "posix":
        return True
    try:
        terminal = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(terminal)
    return True


def _detach_stdin() -> None:
    """Give this process (and so every process it starts) an empty stdin.

    As a credential_process, no one answers on stdin: the SDK reads only stdout, and may
    have left its own terminal as stdin. A credential_process of iam-sudo's own source
    that asks for input (botocore runs it with our stdin) then reads end-of-file and
    fails at once, in one line, instead of waiting on a terminal nobody watches.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return
    os.dup2(devnull, 0)
    os.close(devnull)

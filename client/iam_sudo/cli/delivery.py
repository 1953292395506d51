"""Where credentials go: printed, saved as a profile, and/or given to a command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.exceptions import CredentialsFileError
from .formats import render, unsets

if TYPE_CHECKING:
    from ..settings.credentials import Credentials
    from .recording import Recording

log = logging.getLogger("iam_sudo")


def deliver(
    credentials: Credentials,
    profile: str | None,
    command: Sequence[str],
    format_name: str | None = None,
    ecs_server: bool = False,
    refresh: Callable[[], Coroutine[Any, Any, Credentials]] | None = None,
    recording: Recording | None = None,
) -> int:
    """Print, save, and/or run ``command`` with the credentials; the exit status to return.

    ``format_name`` prints them (see :mod:`iam_sudo.cli.formats`) and nothing else on stdout;
    ``profile`` saves them in the shared credentials file; with ``ecs_server`` the command
    gets an ECS credentials endpoint, renewed by ``refresh``, instead of static keys;
    with ``recording`` its AWS calls go through a recording endpoint (see
    :mod:`iam_sudo.cli.recording`). Raises :class:`CredentialsFileError` or :class:`CommandError`.
    """
    region = None
    if profile or command or format_name not in (None, "process"):
        from ..settings.config import region as resolved_region

        # The region iam-sudo resolved (AWS_REGION, AWS_DEFAULT_REGION, the source
        # profile's): handed over with the credentials, else a tool that reads them from a
        # profile or an environment without that source has none, or another. (Not for
        # `process`: the SDK running it has its profile's region.)
        region = resolved_region()
    from ..settings.credentials import handover, write_profile

    if format_name:
        # Nothing but the credentials on stdout: scripts and SDKs read it. As bytes, with
        # the format's own line ends: a text-mode stdout on Windows would add a \r to every
        # line, and `eval "$(...)"` in Git Bash would keep it in every value.
        text = render(credentials, format_name, handover(credentials, region))
        if format_name != "process" and not unsets(format_name):
            _warn_if_profile_set(format_name)
        out = getattr(sys.stdout, "buffer", None)
        sys.stdout.flush()
        if out is None:
            sys.stdout.write(text)
        else:
            out.write(text.encode())
            out.flush()
    if profile:
        path = write_profile(credentials, profile)
        print(
            f"iam-sudo: credentials saved as profile {profile} in {path}, "
            f"valid until {credentials.expiration.isoformat()}",
            file=sys.stderr,
        )
        if region:
            _give_region(profile, region)
    if not command:
        return 0
    from ..settings.credentials import environment
    from .command import run

    def run_it(env: Mapping[str, str], current: Callable[[], Credentials]) -> int:
        if recording is None:
            return run(command, env)
        return recording.run(command, env, current)

    if not ecs_server:
        return run_it(environment(os.environ, credentials, region), lambda: credentials)
    from .ecs import CredentialsServer

    with CredentialsServer(credentials, refresh) as server:
        log.info("serving credentials to the command at %s", server.url)
        return run_it(server.env(os.environ, region), server.current)


def _give_region(profile: str, region: str) -> None:
    """Give a saved profile ``region`` if it has none; say so, or why it could not be."""
    from ..settings.credentials import add_profile_region

    try:
        added = add_profile_region(profile, region)
    except CredentialsFileError as error:
        # The keys are saved and work with a region from elsewhere: a warning, not a failure.
        print(f"iam-sudo: warning: profile {profile} has no region: {error}", file=sys.stderr)
        return
    if added:
        print(f"iam-sudo: profile {profile} gets region {region} (it had none)", file=sys.stderr)


def _warn_if_profile_set(format_name: str) -> None:
    """Say so when the printed lines cannot win over a profile variable of the user's."""
    from .options import user_profile_variables

    names = user_profile_variables()
    if names:
        print(
            f"iam-sudo: warning: {format_name} cannot unset {' and '.join(names)}: where it is "
            "set, SDKs use that profile's credentials (the JS SDK v3 skips the environment's "
            "keys); use it where no profile is set (a container), or --format env",
            file=sys.stderr,
        )

"""Where credentials go: printed, saved as a profile, and/or given to a command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..settings.credentials import Credentials, write_profile
from .formats import render

if TYPE_CHECKING:
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
    if format_name:
        # Nothing but the credentials on stdout: scripts and SDKs read it.
        sys.stdout.write(render(credentials, format_name))
        sys.stdout.flush()
    if profile:
        path = write_profile(credentials, profile)
        print(
            f"iam-sudo: credentials saved as profile {profile} in {path}, "
            f"valid until {credentials.expiration.isoformat()}",
            file=sys.stderr,
        )
    if not command:
        return 0
    from ..settings.config import region
    from ..settings.credentials import environment
    from .command import run

    def run_it(env: Mapping[str, str], current: Callable[[], Credentials]) -> int:
        if recording is None:
            return run(command, env)
        return recording.run(command, env, current)

    if not ecs_server:
        return run_it(environment(os.environ, credentials, region()), lambda: credentials)
    from .ecs import CredentialsServer

    with CredentialsServer(credentials, refresh) as server:
        log.info("serving credentials to the command at %s", server.url)
        return run_it(server.env(os.environ, region()), server.current)

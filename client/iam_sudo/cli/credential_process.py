"""What ``credential_process`` runs: ``--format process`` through the credential cache.

An SDK runs ``credential_process`` whenever it needs credentials, often from many
processes at once: the CLI's answers go through :func:`iam_sudo.settings.cache.obtain` (a fresh
cached answer imports no AWS SDK and makes no request). :func:`self_command` is how such
a line runs this iam-sudo.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..settings.credentials import Credentials


def self_command() -> list[str]:
    """How an SDK can run this iam-sudo: its console script, else this interpreter."""
    import shutil

    script = Path(sys.argv[0])
    if script.name == "iam-sudo" and script.is_file():
        return [str(script.resolve())]
    found = shutil.which("iam-sudo")
    return [found] if found else [sys.executable, "-m", "iam_sudo"]


async def obtain(
    command_path: str,
    params: Mapping[str, Any],
    format_name: str | None,
    no_cache: bool,
    fetch: Callable[[], Awaitable[Credentials]],
) -> Credentials:
    """``fetch()``, through the credential cache when printing for credential_process.

    The command (``command_path`` and its parsed ``params``) is the cache key. A hit
    imports no AWS SDK and makes no request; concurrent askers refresh once.
    """
    from ..settings import cache
    from .progress import notice_if_slow

    if format_name != "process" or no_cache:
        return await notice_if_slow(fetch(), "waiting for AWS")
    request = {k: v for k, v in params.items() if k != "no_cache"}
    arguments = [command_path, json.dumps(request, sort_keys=True, default=str)]
    credentials = await cache.obtain(arguments, lambda: notice_if_slow(fetch(), "waiting for AWS"))
    started = _started
    if (
        started
        and started[0] == sys.argv[1:]
        and not any(params.get(k) for k in _MORE_THAN_PRINTED)
    ):
        # This command line prints the entry's answer and does nothing else.
        cache.remember(started[0], started[1], arguments)
    return credentials


# Options that make a command do more than print its credentials (save them, run a
# command, serve them), or print more (its log): such a command line is never answered
# before the CLI starts.
_MORE_THAN_PRINTED = ("profile", "cmd", "ecs_server", "dry_run")
_VERBOSE = {"-v", "--verbose"}
# The command line and the environment as this process started (the CLI then changes the
# environment: the profile in use, the profiles being resolved), set by answer_from_cache.
_started: tuple[list[str], dict[str, str]] | None = None


def answer_from_cache(argv: Sequence[str]) -> bool:
    """Print the answer to the command line ``argv`` from the cache, if a run of the same
    command line in the same environment recorded it (:func:`iam_sudo.settings.cache.recall`)
    and it is still fresh: a credential_process hit before the CLI (asyncclick, asyncio) is
    even imported. False, having printed nothing, otherwise."""
    global _started
    _started = None
    if ("process" not in argv and "--format=process" not in argv) or _VERBOSE.intersection(argv):
        return False
    _started = (list(argv), dict(os.environ))
    try:
        from ..settings.cache import recall
        from ..settings.credentials import handover
        from .formats import render

        credentials = recall(argv)
        if credentials is None:
            return False
        text = render(credentials, "process", handover(credentials, None)).encode()
    except Exception:  # never a traceback here: the CLI answers instead
        return False
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(text.decode())
    else:
        out.write(text)
    sys.stdout.flush()
    return True

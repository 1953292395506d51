"""What ``credential_process`` runs: ``--format process`` through the credential cache.

An SDK runs ``credential_process`` whenever it needs credentials, often from many
processes at once: the CLI's answers go through :func:`iam_sudo.settings.cache.obtain` (a fresh
cached answer imports no AWS SDK and makes no request). :func:`self_command` is how such
a line runs this iam-sudo.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from ..settings.credentials import Credentials


def self_command() -> list[str]:
    """How an SDK can run this iam-sudo: its console script, else this interpreter."""
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
    return await cache.obtain(arguments, lambda: notice_if_slow(fetch(), "waiting for AWS"))

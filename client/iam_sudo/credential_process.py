"""``--format process`` through the credential cache: what ``credential_process`` runs.

An SDK runs ``credential_process`` whenever it needs credentials, often from many
processes at once. A fresh cached answer is returned without importing any AWS SDK or
making a request; otherwise one process refreshes under the key's lock and the others
read what it wrote. The cache's files and their checks are :mod:`iam_sudo.cache`'s.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _files, cache
from ._exceptions import CredentialsFileError
from .credentials import Credentials
from .formats import render


def process_command(arguments: Sequence[str]) -> str:
    """The ``credential_process`` line that runs this iam-sudo with ``arguments``.

    This iam-sudo's console script if it runs as one, else the one on PATH, else this
    interpreter with ``-m iam_sudo``; ``--format process`` is added.
    """
    script = Path(sys.argv[0])
    if script.name == "iam-sudo" and script.is_file():
        program = [str(script.resolve())]
    else:
        found = shutil.which("iam-sudo")
        program = [found] if found else [sys.executable, "-m", "iam_sudo"]
    return shlex.join([*program, *arguments, "--format", "process"])


async def through_cache(
    arguments: Sequence[str],
    fetch: Callable[[], Awaitable[Credentials]],
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The cached credentials for ``arguments`` if fresh, else ``fetch()``'s, then cached.

    ``arguments`` are what makes the request (the command and its options); ``environ``
    (default: ``os.environ``) the settings that change its answer (see
    :func:`cache.cache_key`). Raises :class:`CredentialsFileError` if the cache directory
    cannot be used, and whatever ``fetch`` raises.
    """
    environ = os.environ if environ is None else environ
    path = cache.cache_dir(environ) / f"{cache.cache_key(arguments, environ)}.json"
    hit = cache.read(path)
    if hit is not None:
        return hit
    try:
        with _files.locked(path):
            hit = cache.read(path)  # another process may have refreshed it meanwhile
            if hit is not None:
                return hit
            credentials = await fetch()
            cache.write(path, render(credentials, "process"))
    except OSError as error:
        raise CredentialsFileError(
            f"cannot use the credential cache {path.parent}: {error.strerror or error}; "
            "check IAM_SUDO_CACHE_DIR or use --no-cache"
        ) from None
    return credentials


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
    if format_name != "process" or no_cache:
        return await fetch()
    request = {k: v for k, v in params.items() if k != "no_cache"}
    arguments = [command_path, json.dumps(request, sort_keys=True, default=str)]
    return await through_cache(arguments, fetch)

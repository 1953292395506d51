"""A credential cache for ``credential_process``, like the AWS CLI's ``~/.aws/cli/cache``.

An SDK runs ``credential_process`` whenever it needs credentials, and many processes may
run it at once. One 0600 file per request in a 0700 directory holds the answer until
:data:`REFRESH_MARGIN` before it expires; the key covers everything that changes the
answer. Concurrent askers take a lock per key, so one of them refreshes and the others
read what it wrote. A file that is corrupt, foreign (another owner, readable by others)
or not of the expected shape is ignored and replaced, never trusted.

This module is on the cold path of a cache hit: it imports no AWS SDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import _files
from .credentials import Credentials

# botocore refreshes credential_process credentials 15 minutes before they expire
# (advisory) and insists 10 minutes before: a cached answer closer than this to its
# expiry would be asked for again on every call.
REFRESH_MARGIN = timedelta(minutes=15)
_KEY_VERSION = "1"
# Settings that change which credentials iam-sudo gets, or as whom it asks.
_ENV_KEYS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "IAM_SUDO_BASE_ROLE",
    "IAM_SUDO_FUNCTION",
    "IAM_SUDO_POLICY",
)


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$IAM_SUDO_CACHE_DIR``, else ``~/.aws/iam-sudo/cache``."""
    environ = os.environ if environ is None else environ
    configured = environ.get("IAM_SUDO_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".aws/iam-sudo/cache"


def cache_key(arguments: Sequence[str], environ: Mapping[str, str]) -> str:
    """A file name for one request: the command's arguments and the settings that matter."""
    settings = {
        key: value
        for key, value in sorted(environ.items())
        if key in _ENV_KEYS or key.startswith("AWS_ENDPOINT_URL")
    }
    if "IAM_SUDO_POLICY" in settings:
        settings["IAM_SUDO_POLICY"] = hashlib.sha256(
            settings["IAM_SUDO_POLICY"].encode()
        ).hexdigest()
    material = json.dumps([_KEY_VERSION, list(arguments), settings], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _parse(text: str) -> Credentials | None:
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("Version") != 1:
            return None
        credentials = Credentials.from_sts(document)
    except (ValueError, TypeError, KeyError):
        return None
    return credentials


def read(path: Path, now: datetime | None = None) -> Credentials | None:
    """The cached credentials if the file is ours, sound and fresh enough; else None."""
    now = now or datetime.now(UTC)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or (hasattr(os, "getuid") and info.st_uid != os.getuid())
            or info.st_mode & 0o077
            or info.st_size > 64 * 1024
        ):
            return None
        with os.fdopen(os.dup(fd), encoding="utf-8") as file:
            credentials = _parse(file.read())
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    if credentials is None or credentials.expiration - now <= REFRESH_MARGIN:
        return None
    return credentials


def write(path: Path, document: str) -> None:
    """Store a credential_process answer (call it holding :func:`_files.locked`)."""
    path.parent.mkdir(mode=_files.DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path.parent, _files.DIR_MODE)
    _files.write_atomic(path, document)

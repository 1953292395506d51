"""A credential cache for ``credential_process``, like the AWS CLI's ``~/.aws/cli/cache``.

An SDK runs ``credential_process`` whenever it needs credentials, and many processes may
run it at once. One 0600 file per request in a 0700 directory holds the answer until it
is due for renewal by the refresh rule of :mod:`iam_sudo.core.refresh` (20 minutes
before expiry, or halfway through a shorter session; its age counted on the wall clock
and, within one boot, the monotonic clock); the key covers everything that changes the
answer, including who iam-sudo's own credentials are. Concurrent askers take a lock per
key, so one of them refreshes and the others read what it wrote.

Nobody else may touch it. The directory and every directory above it, up to the user's
home (or ``/``), must be owned by the user or root and not writable by group or others,
as OpenSSH's StrictModes requires of ``~/.ssh``; otherwise the cache is refused in one
line (``--no-cache`` still works). Every file is opened with ``O_NOFOLLOW`` and
``O_NONBLOCK`` (a symlink is not followed, a FIFO not waited on) and checked with
``fstat``: a regular file of the user's, mode 0600. An entry records its key and is used
for that key only; one that expires more than :data:`MAX_AHEAD` ahead (no STS session
lasts longer) is refused. Anything else is ignored and replaced, never trusted.

This module is on the cold path of a cache hit: it imports no AWS SDK and sends nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from ..core.exceptions import ConfigurationError
from ..core.refresh import Clock, Instant, Lease, system_clock
from . import files as _files
from .credentials import Credentials

log = logging.getLogger("iam_sudo")

# The longest STS session is 12 hours (AssumeRole DurationSeconds, up to 43200): an entry
# expiring later than that was not written by iam-sudo for an STS answer.
MAX_AHEAD = timedelta(hours=12)
# How long to wait for another process refreshing the same entry (a remote simulation
# may take the function's 40 s read timeout, and botocore retries).
LOCK_TIMEOUT = 90.0
_LOCK_POLL = 0.05
_MAX_ENTRY_BYTES = 64 * 1024
_MAX_IDENTITY_FILE_BYTES = 1024 * 1024
_KEY_VERSION = "3"  # 3: entries record when they were received
_KEY_FIELD = "IamSudoCacheKey"
_RECEIVED_FIELD = "IamSudoReceived"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
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
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
    "IAM_SUDO_BASE_ROLE",
    "IAM_SUDO_FUNCTION",
    "IAM_SUDO_POLICY",
)
# Secrets among the settings: they identify the caller, and are hashed before use.
_SECRET_ENV_KEYS = ("AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$IAM_SUDO_CACHE_DIR``, else ``~/.aws/iam-sudo/cache`` (``~``: ``environ``'s HOME).

    RuntimeError if there is no home to find."""
    environ = os.environ if environ is None else environ
    configured = environ.get("IAM_SUDO_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return _home(environ) / ".aws/iam-sudo/cache"


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME") or str(Path.home())  # RuntimeError if there is none
    return Path(os.path.realpath(home))


def _file_identity(path: Path) -> str | None:
    """SHA-256 of a small file's bytes (no symlink games: it is the user's own config);
    None if there is no such file.

    Raises :class:`ConfigurationError` for one that is not a regular file: a pipe (as
    ``AWS_CONFIG_FILE=<(...)`` gives) cannot be read without taking its content from the
    SDK that needs it, nor without waiting on a writer; without it, whose credentials the
    answer is for is unknown, so the cache is left out.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigurationError(
                f"{path} is not a regular file: whose credentials it holds cannot be told "
                "without reading it"
            )
        try:
            return hashlib.sha256(file.read(_MAX_IDENTITY_FILE_BYTES)).hexdigest()
        except OSError:
            return None


def _sso_identity(environ: Mapping[str, str]) -> list[tuple[str, int, int]]:
    """Names, sizes and mtimes of the SSO token caches: a new login is a new identity."""
    found: list[tuple[str, int, int]] = []
    for folder in ("sso/cache", "login/cache"):
        with contextlib.suppress(OSError), os.scandir(_home(environ) / ".aws" / folder) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    found.append((f"{folder}/{entry.name}", info.st_size, info.st_mtime_ns))
    return sorted(found)


def credentials_identity(environ: Mapping[str, str]) -> dict[str, object]:
    """What iam-sudo's own credentials resolve from, without an AWS SDK or a request.

    The access key id and session token in the environment; the shared credentials and
    config files' contents (hashed), so that replacing alice's keys by bob's is another
    identity; the web identity token file's; the SSO token caches' names, sizes and
    mtimes. A ``credential_process`` of the user's own that changes whom it answers for
    by itself is not seen: run ``--no-cache`` after switching its identity. Raises
    :class:`ConfigurationError` if one of those files is not a regular file (a pipe).
    """
    aws = _home(environ) / ".aws"
    files = {
        "credentials": environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(aws / "credentials"),
        "config": environ.get("AWS_CONFIG_FILE") or str(aws / "config"),
        "web_identity_token": environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or "",
    }
    return {
        "files": {
            name: _file_identity(Path(path).expanduser()) if path else None
            for name, path in files.items()
        },
        "secrets": {
            key: hashlib.sha256(environ[key].encode()).hexdigest()
            for key in _SECRET_ENV_KEYS
            if key in environ
        },
        "sso": _sso_identity(environ),
    }


def cache_key(arguments: Sequence[str], environ: Mapping[str, str]) -> str:
    """A file name for one request: the command's arguments, the settings that matter and
    the identity of iam-sudo's own credentials (:func:`credentials_identity`)."""
    settings = {
        key: value
        for key, value in sorted(environ.items())
        if key in _ENV_KEYS or key.startswith("AWS_ENDPOINT_URL")
    }
    if "IAM_SUDO_POLICY" in settings:
        settings["IAM_SUDO_POLICY"] = hashlib.sha256(
            settings["IAM_SUDO_POLICY"].encode()
        ).hexdigest()
    material = json.dumps(
        [_KEY_VERSION, list(arguments), settings, credentials_identity(environ)], sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()


_REFUSING = "refusing the credential cache: "


def _refused(directory: Path, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"{_REFUSING}{directory} {why}; make it yours and not writable "
        "by group or others (chown, chmod go-w), set IAM_SUDO_CACHE_DIR to a directory of "
        "your own, or use --no-cache"
    )


def _check_directory(directory: Path, info: os.stat_result) -> None:
    uid = os.getuid()
    if not stat.S_ISDIR(info.st_mode):
        raise _refused(directory, "is not a directory")
    if info.st_uid not in (uid, 0):
        raise _refused(directory, f"is owned by uid {info.st_uid}, not you nor root")
    if info.st_mode & 0o022:
        mode = f"{stat.S_IMODE(info.st_mode):o}"
        raise _refused(directory, f"is writable by group or others (mode {mode})")


def secure_directory(directory: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Create ``directory`` (0700) if needed, after checking what is above it; its real path.

    Checks, as OpenSSH's StrictModes does, the directory and every one above it up to the
    user's home (included) if it is inside it, else up to ``/``: each must be owned by the
    user or root and not writable by group or others, or another user could swap, add or
    redirect entries. Raises :class:`ConfigurationError` naming the first directory (from
    the cache upward) that fails, and what to do.
    """
    environ = os.environ if environ is None else environ
    if not hasattr(os, "getuid"):
        directory.mkdir(mode=_files.DIR_MODE, parents=True, exist_ok=True)
        return directory
    wanted = Path(os.path.abspath(directory.expanduser()))
    existing, missing = wanted, []
    while not existing.exists() and existing != existing.parent:
        missing.append(existing.name)
        existing = existing.parent
    real = Path(os.path.realpath(existing))
    home = _home(environ)
    stop = home if real == home or home in real.parents else Path("/")
    for each in [real, *real.parents]:
        try:
            _check_directory(each, os.stat(each))
        except OSError as error:
            raise _refused(each, f"cannot be checked ({error.strerror})") from None
        if each == stop:
            break
    for name in reversed(missing):
        real = real / name
        try:
            os.mkdir(real, _files.DIR_MODE)
        except FileExistsError:
            pass
        except OSError as error:
            raise _refused(real, f"cannot be created ({error.strerror})") from None
        info = os.lstat(real)
        if stat.S_ISLNK(info.st_mode):
            raise _refused(real, "is a symlink")
        _check_directory(real, info)
    return real


def _open_own(path: Path, flags: int, mode: int = _files.FILE_MODE) -> int | None:
    """A descriptor of ``path`` if it is a regular file of ours, mode 0600; else None.

    Never follows a symlink, never blocks on a FIFO.
    """
    try:
        fd = os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK, mode)
    except OSError:
        return None
    info = os.fstat(fd)
    if (
        not stat.S_ISREG(info.st_mode)
        or info.st_uid != os.getuid()
        or stat.S_IMODE(info.st_mode) != _files.FILE_MODE
    ):
        os.close(fd)
        return None
    return fd


@functools.cache
def _boot() -> str:
    """This boot's id (Linux): monotonic times of another boot mean nothing here."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _received(document: Mapping[str, object], now: Instant) -> Instant | None:
    """When the entry's credentials were received, as this boot can count it; None if
    the entry does not say or says nonsense."""
    field = document.get(_RECEIVED_FIELD)
    if not isinstance(field, dict):
        return None
    wall, mono, boot = field.get("wall"), field.get("mono"), field.get("boot")
    if not isinstance(wall, int | float) or not isinstance(mono, int | float):
        return None
    if boot and boot == _boot():
        return Instant(float(wall), float(mono))
    # Another boot (or no boot id): the wall clock alone counts, and must not go back.
    return Instant(float(wall), now.mono) if wall <= now.wall else None


def _parse(text: str, key: str, now: Instant) -> tuple[Credentials, Instant] | None:
    try:
        document = json.loads(text)
        if (
            not isinstance(document, dict)
            or document.get("Version") != 1
            or document.get(_KEY_FIELD) != key
        ):
            return None
        credentials = Credentials.from_sts(document)
        received = _received(document, now)
    except (ValueError, TypeError, KeyError):
        return None
    return (credentials, received) if received is not None else None


def read(path: Path, now: Instant | None = None, key: str | None = None) -> Credentials | None:
    """The cached credentials if the file is ours, sound, for ``key`` and not yet due for
    renewal at ``now`` (default: the clocks' now); else None.

    ``key`` defaults to the file's name without ``.json``: an entry renamed to another
    key's name is refused.
    """
    now = now or system_clock()
    key = key if key is not None else path.name.removesuffix(".json")
    fd = _open_own(path, os.O_RDONLY) if hasattr(os, "getuid") else None
    if fd is None:
        return None
    try:
        with os.fdopen(fd, "rb") as file:
            data = file.read(_MAX_ENTRY_BYTES + 1)
        parsed = None if len(data) > _MAX_ENTRY_BYTES else _parse(data.decode(), key, now)
    except (OSError, UnicodeDecodeError):
        return None
    if parsed is None:
        return None
    credentials, received = parsed
    lease = Lease(received, credentials.expiration.timestamp())
    if lease.expires - now.wall > MAX_AHEAD.total_seconds() or lease.due(now):
        return None
    return credentials


def entry(credentials: Credentials, key: str, received: Instant | None = None) -> str:
    """The text of a cache entry: the credential_process document, with its own key and
    when the credentials were received (default: now)."""
    received = received or system_clock()
    when = {"wall": received.wall, "mono": received.mono, "boot": _boot()}
    return json.dumps(
        {"Version": 1, **credentials.to_dict(), _KEY_FIELD: key, _RECEIVED_FIELD: when},
        indent=2,
    )


def write(path: Path, document: str) -> None:
    """Store an entry (call it holding :func:`lock`, in a :func:`secure_directory`)."""
    _files.write_atomic(path, document)


@contextlib.asynccontextmanager
async def lock(path: Path, wait_seconds: float = LOCK_TIMEOUT) -> AsyncIterator[None]:
    """Hold an exclusive lock on ``path``.lock, waiting for it at most ``wait_seconds``.

    The lock file is opened without following a symlink and checked like an entry; one
    that is not ours is removed and made anew (only we can write the directory). It holds
    the holder's process id, so a timeout can say who holds it. Raises
    :class:`ConfigurationError` on timeout.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = _open_own(lock_path, os.O_RDWR | os.O_CREAT)
    if fd is None:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
        except OSError as error:  # a read-only file system, say
            raise ConfigurationError(
                f"cannot create the credential cache lock {lock_path} ({error.strerror})"
            ) from None
        fd = _open_own(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        if fd is None:
            raise ConfigurationError(f"cannot create the credential cache lock {lock_path}")
    try:
        deadline = time.monotonic() + wait_seconds
        while not _files.try_lock(fd):
            if time.monotonic() >= deadline:
                raise ConfigurationError(
                    f"the credential cache entry {path.name} is locked by process "
                    f"{_files.lock_holder(fd)} for more than {wait_seconds:g} s; wait for it, "
                    "stop it, or use --no-cache"
                )
            await _sleep(_LOCK_POLL)
        _files.mark_holder(fd)
        _files._remove_stale_temps(path)  # a crashed writer's temporary files
        yield
    finally:
        os.close(fd)


async def _sleep(seconds: float) -> None:
    import asyncio  # here: a hit answered before the CLI starts imports no event loop

    await asyncio.sleep(seconds)


def _argv_key(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The name of the record (``<hash>.argv``, beside the ``<key>.json`` entries) of a
    command line as typed, in this environment: every AWS and iam-sudo
    variable (hashed with the rest) and the identity of iam-sudo's own credentials. The
    same command line with the same settings parses to the same request."""
    settings = sorted((k, v) for k, v in environ.items() if k.startswith(("AWS_", "IAM_SUDO_")))
    material = json.dumps(
        [_KEY_VERSION, "argv", list(argv), settings, credentials_identity(environ)],
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest() + ".argv"


def remember(argv: Sequence[str], started: Mapping[str, str], arguments: Sequence[str]) -> None:
    """Record that the command line ``argv``, run in the environment ``started``, asks for
    the entry that ``arguments`` key in this process's environment now (:func:`obtain`'s):
    :func:`recall` answers it again before the CLI starts. Call it only for a command line
    whose whole output is that entry's answer. Best effort: where the cache cannot be used
    nothing is recorded.
    """
    if sys.platform == "win32":
        return
    try:
        directory = secure_directory(cache_dir(os.environ), os.environ)
        key = cache_key(arguments, os.environ)
        alias = _argv_key(argv, started)
        write(directory / alias, json.dumps({_KEY_FIELD: key}))
    except (ConfigurationError, OSError, RuntimeError):
        return


def recall(
    argv: Sequence[str], environ: Mapping[str, str] | None = None, now: Instant | None = None
) -> Credentials | None:
    """The credentials :func:`remember` recorded for ``argv`` in this very environment, if
    their entry is still a hit (:func:`read`); else None, never an error (the CLI decides).
    Creates nothing: no cache directory, no lock."""
    environ = os.environ if environ is None else environ
    if sys.platform == "win32":
        return None
    try:
        directory = cache_dir(environ)
        if not directory.is_dir():
            return None
        directory = secure_directory(directory, environ)
        fd = _open_own(directory / _argv_key(argv, environ), os.O_RDONLY)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as file:
            key = json.loads(file.read(_MAX_ENTRY_BYTES))[_KEY_FIELD]
    except (ConfigurationError, OSError, RuntimeError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(key, str) or len(key) != 64 or not key.isalnum():
        return None
    return read(directory / f"{key}.json", now, key)


def _without_cache(reason: object) -> None:
    """Say once, on stderr, that the cache is left out this time, and why."""
    said = str(reason).removeprefix(_REFUSING)
    log.warning("not using the credential cache: %s; getting the credentials without it", said)


async def obtain(
    arguments: Sequence[str],
    fetch: Callable[[], Awaitable[Credentials]],
    *,
    environ: Mapping[str, str] | None = None,
    wait_seconds: float = LOCK_TIMEOUT,
    clock: Clock = system_clock,
) -> Credentials:
    """``fetch()``'s credentials through the cache; a hit sends nothing and imports no SDK.

    When the cache cannot be used safely (see the module) one warning line says why and
    ``fetch()`` answers without it; only ``fetch()``'s own errors are raised, and
    :class:`CredentialsExpired` for credentials fetched too near their expiry to hold.
    """
    environ = os.environ if environ is None else environ
    if sys.platform == "win32":  # no ownership checks to make there: no cache
        return await fetch()
    try:
        directory = secure_directory(cache_dir(environ), environ)
        key = cache_key(arguments, environ)
    except (ConfigurationError, OSError, RuntimeError) as error:  # RuntimeError: no home
        _without_cache(error)
        return await fetch()
    path = directory / f"{key}.json"
    hit = read(path, clock(), key)
    if hit is not None:
        return hit
    held = contextlib.AsyncExitStack()
    try:
        await held.enter_async_context(lock(path, wait_seconds))
    except (ConfigurationError, OSError) as error:
        _without_cache(error)
        return await fetch()
    async with held:
        hit = read(path, clock(), key)  # another process may have refreshed it meanwhile
        if hit is not None:
            return hit
        credentials = await fetch()
        received = clock()
        Lease.start(received, credentials.expiration)  # too short to hold: refused
        try:
            write(path, entry(credentials, key, received))
        except OSError as error:
            _without_cache(f"cannot write {path.name}: {error.strerror or error}")
    return credentials

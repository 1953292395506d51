"""Temporary credentials, and the two ways they reach a user: a profile or a command's env."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ._exceptions import CredentialsFileError

_SECTION = re.compile(r"^\s*\[\s*([^\]]*?)\s*\]\s*$")
_KEY = re.compile(r"^\s*([^=:\s]+)\s*[=:]")
_PROFILE_NAME = re.compile(r"[^\[\]\r\n]+")


@dataclass(frozen=True)
class Credentials:
    """Temporary AWS credentials. The secret parts never appear in ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    @classmethod
    def from_sts(cls, item: Mapping[str, Any]) -> Credentials:
        """Build from the ``Credentials`` of an AssumeRole response or the function's reply."""
        expiration = item["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        return cls(
            access_key_id=item["AccessKeyId"],
            secret_access_key=item["SecretAccessKey"],
            session_token=item["SessionToken"],
            expiration=expiration,
        )

    def to_dict(self) -> dict[str, str]:
        """The credentials in STS's shape, with an ISO 8601 expiration."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": self.expiration.isoformat(),
        }

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """A copy of ``base`` in which these credentials are the only ones an SDK will find."""
        env = {k: v for k, v in base.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
        env["AWS_ACCESS_KEY_ID"] = self.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key
        env["AWS_SESSION_TOKEN"] = self.session_token
        # Some tools (e.g. the older SDKs) still read the pre-2015 name.
        env.pop("AWS_SECURITY_TOKEN", None)
        return env


def shared_credentials_file(environ: Mapping[str, str] | None = None) -> Path:
    """The shared credentials file that the AWS CLI and SDKs read."""
    environ = os.environ if environ is None else environ
    configured = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return Path(configured).expanduser() if configured else Path.home() / ".aws" / "credentials"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``.lock while reading and replacing ``path``.

    A sidecar is locked because the credentials file itself is replaced, not rewritten.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_profile(text: str, profile: str, values: Mapping[str, str]) -> str:
    """``text`` of an INI file with ``values`` set in section ``profile``.

    Everything else, comments, order and other keys of the same section, stays as it was.
    A section with long-term access keys is never overwritten: temporary credentials
    would silently replace the only copy of a user's keys.
    """
    lines = text.splitlines()
    start = end = None
    for index, line in enumerate(lines):
        match = _SECTION.match(line)
        if match is None:
            continue
        if start is not None and end is None:
            end = index
        if match.group(1) == profile and start is None:
            start = index
    new = [f"{key} = {value}" for key, value in values.items()]
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            lines.append("")
        return "\n".join([*lines, f"[{profile}]", *new]) + "\n"
    end = len(lines) if end is None else end
    keys = {m.group(1).lower() for line in lines[start + 1 : end] if (m := _KEY.match(line))}
    if "aws_access_key_id" in keys and "aws_session_token" not in keys:
        raise CredentialsFileError(
            f"profile {profile} holds long-term access keys (no aws_session_token); "
            "iam-sudo will not overwrite them: choose another profile name"
        )
    body = [
        line
        for line in lines[start + 1 : end]
        if not ((m := _KEY.match(line)) and m.group(1).lower() in values)
    ]
    trailing: list[str] = []
    while body and not body[-1].strip():
        trailing.insert(0, body.pop())
    return "\n".join([*lines[: start + 1], *body, *new, *trailing, *lines[end:]]) + "\n"


def write_profile(credentials: Credentials, profile: str, path: Path | None = None) -> Path:
    """Save ``credentials`` under ``profile`` in the shared credentials file.

    The file is replaced atomically, with mode 0600, under a lock, keeping every other
    section and line. Returns the path written.
    """
    if not _PROFILE_NAME.fullmatch(profile) or profile != profile.strip():
        raise CredentialsFileError(
            f"invalid profile name {profile!r}: use a name without brackets, newlines "
            "or surrounding spaces"
        )
    # A symlinked file (dotfiles) is updated where it lives, and stays a symlink.
    path = (shared_credentials_file() if path is None else path).resolve()
    values = {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
        "expiration": credentials.expiration.isoformat(),
    }
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(path):
            text = path.read_text(encoding="utf-8") if path.exists() else ""
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(update_profile(text, profile, values))
                    file.flush()
                    os.fsync(file.fileno())
                os.chmod(temp, 0o600)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CredentialsFileError(
            f"cannot write credentials file {path}: {reason}; check its path and permissions"
        ) from None
    return path

"""A credential_process hit answered before the CLI starts: a command line, in the very
environment it ran in, recalls the entry it asked for; anything else recalls nothing."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iam_sudo import Credentials
from iam_sudo.core.refresh import Instant
from iam_sudo.settings.cache import (
    _argv_key,
    cache_key,
    entry,
    recall,
    remember,
    secure_directory,
    write,
)

ARGV = ["simulate", "--local", "--role-name", "TaskRole", "--format", "process"]
ARGUMENTS = ["iam-sudo simulate", '{"role_name": "TaskRole"}']


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private home and cache, as this process's environment."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "IAM_SUDO_")):
            monkeypatch.delenv(name)
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


def cached(minutes: int, received_ago: float = 0) -> Credentials:
    """An entry for ARGUMENTS, stored, received ``received_ago`` seconds ago and expiring in
    ``minutes``."""
    credentials = Credentials(
        "ASIAEXAMPLE", "secret", "token", datetime.now(UTC) + timedelta(minutes=minutes)
    )
    key = cache_key(ARGUMENTS, os.environ)
    directory = secure_directory(Path(os.environ["IAM_SUDO_CACHE_DIR"]), os.environ)
    received = Instant(time.time() - received_ago, time.monotonic() - received_ago)
    write(directory / f"{key}.json", entry(credentials, key, received))
    return credentials


def test_the_same_command_line_in_the_same_environment_recalls_its_entry(
    home: dict[str, str],
) -> None:
    credentials = cached(60)
    remember(ARGV, home, ARGUMENTS)
    assert recall(ARGV, home) == credentials
    assert recall([*ARGV, "--exact"], home) is None
    assert recall(ARGV, {**home, "AWS_PROFILE": "other"}) is None
    assert recall(ARGV, {**home, "IAM_SUDO_RESOLVING_PROFILES": "default"}) is None


def test_an_entry_due_for_renewal_is_not_recalled(home: dict[str, str]) -> None:
    cached(3, received_ago=3600)  # an hour's session within its last 20 minutes
    remember(ARGV, home, ARGUMENTS)
    assert recall(ARGV, home) is None


def test_a_record_naming_anything_but_a_key_recalls_nothing(home: dict[str, str]) -> None:
    cached(60)
    directory = Path(home["IAM_SUDO_CACHE_DIR"])
    record = directory / _argv_key(ARGV, home)
    for named in ("../elsewhere", "a" * 63, 42):
        write(record, json.dumps({"IamSudoCacheKey": named}))
        assert recall(ARGV, home) is None


def test_no_cache_directory_recalls_nothing_and_creates_nothing(home: dict[str, str]) -> None:
    assert recall(ARGV, home) is None
    assert not Path(home["IAM_SUDO_CACHE_DIR"]).exists()

"""The credential cache: sound entries only, for their own key, in a directory nobody else
can touch (tests run as root; the attacker is uid 65534)."""

import asyncio
import errno
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iam_sudo import ConfigurationError, Credentials
from iam_sudo.core.exceptions import CredentialsExpired
from iam_sudo.core.refresh import Instant
from iam_sudo.settings import cache
from iam_sudo.settings.cache import (
    MAX_AHEAD,
    cache_key,
    entry,
    lock,
    obtain,
    read,
    secure_directory,
    write,
)
from tests.fake_clock import FakeClock

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MONO = 5000.0


def at(seconds: float = 0, *, wall_only: float = 0) -> Instant:
    """NOW plus ``seconds`` on both clocks, plus ``wall_only`` on the wall clock alone."""
    return Instant(NOW.timestamp() + seconds + wall_only, MONO + seconds)


NOBODY = 65534


def creds(minutes: int, now: datetime = NOW, key_id: str = "ASIAX") -> Credentials:
    return Credentials(key_id, "secret", "token", now + timedelta(minutes=minutes))


def store(path: Path, credentials: Credentials, key: str | None = None) -> None:
    """An entry received at NOW."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write(path, entry(credentials, key or path.name.removesuffix(".json"), at()))


def test_fresh_credentials_are_reused_until_the_refresh_rule_says_renew(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "k.json"
    store(path, creds(60))
    assert read(path, at()) == creds(60)
    assert read(path, at(40 * 60 - 1)) == creds(60)
    assert read(path, at(40 * 60)) is None  # 20 minutes before expiry
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_15_minute_session_is_a_hit_for_half_its_life_not_never(tmp_path: Path) -> None:
    # botocore asks credential_process again at every call inside its 15-minute advisory
    # window (botocore/credentials.py): a 900 s answer must still be served from here.
    path = tmp_path / "k.json"
    store(path, creds(15))
    assert read(path, at(449)) == creds(15)
    assert read(path, at(450)) is None


def test_a_wall_clock_jump_or_set_back_never_serves_an_expired_entry(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    store(path, creds(60))
    assert read(path, at(0, wall_only=2 * 3600)) is None  # woke after two hours' suspend
    assert read(path, at(3600, wall_only=-2 * 3600)) is None  # clock set back two hours


async def test_one_fetch_per_window_over_a_simulated_hour(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC))
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache")}
    calls: list[int] = []

    async def fetch() -> Credentials:
        calls.append(1)
        return Credentials(f"ASIA{len(calls)}", "s", "t", clock.in_(900))

    for _ in range(120):  # an SDK running credential_process every 30 s
        got = await obtain(["a"], fetch, environ=env, clock=clock)
        assert got.expiration > clock.now()
        clock.advance(30)
    assert len(calls) == 8  # every 7.5 minutes, halfway through each 15-minute session


async def test_credentials_fetched_too_near_expiry_are_refused_not_cached(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache")}
    stale = creds(1, datetime.now(UTC))
    with pytest.raises(CredentialsExpired, match="clock"):
        await obtain(["a"], lambda: fetch_counting([], stale), environ=env)
    assert list((tmp_path / "cache").glob("*.json")) == []


def test_corrupt_or_foreign_files_are_never_trusted(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    for text in (
        "{",
        "[]",
        json.dumps({"Version": 2}),
        json.dumps({"Version": 1, "AccessKeyId": 1}),
        # A sound document without its key: not an entry for this key.
        json.dumps({"Version": 1, **creds(60).to_dict()}),
    ):
        path.write_text(text)
        os.chmod(path, 0o600)
        assert read(path, at()) is None
    store(path, creds(60))
    for mode in (0o644, 0o640, 0o400, 0o700):
        os.chmod(path, mode)
        assert read(path, at()) is None, f"mode {mode:o}: only 0600 is ours"
    os.chmod(path, 0o600)
    os.chown(path, NOBODY, -1)
    assert read(path, at()) is None, "another user's file"
    os.chown(path, 0, -1)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert read(link, at(), key="k") is None, "a symlink is not followed"
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo, 0o600)
    assert read(fifo, at()) is None, "a FIFO is neither waited on nor read"


def test_an_entry_is_used_for_its_own_key_only(tmp_path: Path) -> None:
    readonly, admin = tmp_path / "readonly.json", tmp_path / "admin.json"
    store(readonly, creds(60, key_id="ASIAREADONLY"))
    store(admin, creds(60, key_id="ASIAADMIN"))
    # Swapping the two entries serves neither.
    os.rename(admin, tmp_path / "x")
    os.rename(readonly, admin)
    os.rename(tmp_path / "x", readonly)
    assert read(readonly, at()) is None
    assert read(admin, at()) is None


def test_an_entry_expiring_later_than_any_sts_session_is_refused(tmp_path: Path) -> None:
    # STS API reference, AssumeRole DurationSeconds: at most 43200 seconds (12 hours).
    path = tmp_path / "k.json"
    store(path, creds(int(MAX_AHEAD.total_seconds() // 60)))
    assert read(path, at()) is not None
    store(path, creds(12 * 60 + 1))
    assert read(path, at()) is None
    store(path, creds(24 * 60 * 365))
    assert read(path, at()) is None


def test_the_key_covers_the_arguments_and_the_settings_that_change_the_answer(
    tmp_path: Path,
) -> None:
    base = {"AWS_PROFILE": "dev", "HOME": str(tmp_path), "IAM_SUDO_POLICY": "a"}
    key = cache_key(["simulate", "{}"], base)
    assert cache_key(["simulate", "{}"], {**base, "TERM": "x"}) == key
    for change in (
        {"AWS_PROFILE": "prod"},
        {"AWS_ENDPOINT_URL_STS": "http://x"},
        {"AWS_REGION": "eu-west-1"},
        {"IAM_SUDO_POLICY": "b"},
        {"AWS_ACCESS_KEY_ID": "AKIAOTHER"},
        {"AWS_SESSION_TOKEN": "another session"},
    ):
        assert cache_key(["simulate", "{}"], {**base, **change}) != key
    assert cache_key(["assume", "{}"], base) != key


def test_bobs_keys_in_alices_credentials_file_are_another_identity(tmp_path: Path) -> None:
    credentials = tmp_path / ".aws" / "credentials"
    credentials.parent.mkdir()
    env = {"HOME": str(tmp_path), "AWS_PROFILE": "default"}
    credentials.write_text("[default]\naws_access_key_id = AKIAALICE\naws_secret_access_key = a\n")
    alice = cache_key(["simulate", "{}"], env)
    assert cache_key(["simulate", "{}"], env) == alice
    credentials.write_text("[default]\naws_access_key_id = AKIABOB00\naws_secret_access_key = b\n")
    assert cache_key(["simulate", "{}"], env) != alice
    # A new SSO login (a new token in the SSO cache) is another identity too.
    bob = cache_key(["simulate", "{}"], env)
    sso = tmp_path / ".aws" / "sso" / "cache"
    sso.mkdir(parents=True)
    (sso / "token.json").write_text("{}")
    assert cache_key(["simulate", "{}"], env) != bob


async def fetch_counting(calls: list[int], credentials: Credentials) -> Credentials:
    calls.append(1)
    return credentials


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_refused_cache_is_one_warning_and_the_credentials_come_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)  # noqa: S103
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(shared / "cache")}
    calls: list[int] = []
    fresh = creds(60, datetime.now(UTC))
    assert await obtain(["a"], lambda: fetch_counting(calls, fresh), environ=env) == fresh
    assert warnings_of(caplog) == [
        f"not using the credential cache: {shared} is "
        "writable by group or others (mode 777); make it yours and not writable by group "
        "or others (chown, chmod go-w), set IAM_SUDO_CACHE_DIR to a directory of your own, "
        "or use --no-cache; getting the credentials without it"
    ]
    assert calls == [1]
    assert list(shared.iterdir()) == [], "nothing created"


async def test_an_entry_that_cannot_be_written_is_one_warning_after_one_fetch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache")}
    calls: list[int] = []
    fresh = creds(60, datetime.now(UTC))

    def disk_full(path: Path, data: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache, "write", disk_full)
    assert await obtain(["a"], lambda: fetch_counting(calls, fresh), environ=env) == fresh
    assert calls == [1]
    [warning] = warnings_of(caplog)
    assert warning.startswith("not using the credential cache: cannot write ")
    assert "No space left on device" in warning


async def test_a_lock_held_too_long_is_one_warning_and_the_credentials_come_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache")}
    calls: list[int] = []
    fresh = creds(60, datetime.now(UTC))
    directory = secure_directory(tmp_path / "cache", env)
    async with lock(directory / f"{cache_key(['a'], env)}.json"):  # flock: per open file
        got = await obtain(
            ["a"], lambda: fetch_counting(calls, fresh), environ=env, wait_seconds=0.1
        )
    assert got == fresh
    assert calls == [1]
    [warning] = warnings_of(caplog)
    assert f"is locked by process {os.getpid()} for more than 0.1 s" in warning


async def test_a_config_file_that_is_a_pipe_is_neither_read_nor_waited_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # AWS_CONFIG_FILE=<(...) is a pipe: hashing it would take its content from the SDK,
    # and with no writer, wait forever. The cache is left out instead.
    fifo = tmp_path / "config"
    os.mkfifo(fifo, 0o600)
    env = {
        "HOME": str(tmp_path),
        "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_CONFIG_FILE": str(fifo),
    }
    fresh = creds(60, datetime.now(UTC))
    got = await asyncio.wait_for(
        obtain(["a"], lambda: fetch_counting([], fresh), environ=env), timeout=60
    )
    assert got == fresh
    [warning] = warnings_of(caplog)
    assert f"{fifo} is not a regular file" in warning


async def test_no_home_at_all_is_one_warning_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nowhere() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(nowhere))
    fresh = creds(60, datetime.now(UTC))
    assert await obtain(["a"], lambda: fetch_counting([], fresh), environ={}) == fresh
    [warning] = warnings_of(caplog)
    assert "home directory" in warning


def test_a_directory_above_the_cache_up_to_home_is_checked_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "a" / "b").mkdir(parents=True)
    os.chmod(home / "a", 0o775)  # noqa: S103
    with pytest.raises(ConfigurationError, match=rf"{home / 'a'} is writable by group"):
        secure_directory(home / "a" / "b" / "cache", {"HOME": str(home)})
    os.chmod(home / "a", 0o755)  # noqa: S103
    made = secure_directory(home / "a" / "b" / "cache", {"HOME": str(home)})
    assert made.stat().st_mode & 0o777 == 0o700
    # Outside home, everything up to / is checked: /tmp is writable by others.
    with pytest.raises(ConfigurationError, match="refusing the credential cache: /tmp is"):
        secure_directory(Path("/tmp") / "iam-sudo-test-never-created", {"HOME": str(home)})
    assert not Path("/tmp/iam-sudo-test-never-created").exists()

"""The credential cache: sound entries only, for their own key, in a directory nobody else
can touch (tests run as root; the attacker is uid 65534)."""

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iam_sudo import ConfigurationError, Credentials
from iam_sudo.settings.cache import (
    MAX_AHEAD,
    REFRESH_MARGIN,
    cache_key,
    entry,
    obtain,
    read,
    secure_directory,
    write,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOBODY = 65534


def creds(minutes: int, now: datetime = NOW, key_id: str = "ASIAX") -> Credentials:
    return Credentials(key_id, "secret", "token", now + timedelta(minutes=minutes))


def store(path: Path, credentials: Credentials, key: str | None = None) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write(path, entry(credentials, key or path.name.removesuffix(".json")))


def test_fresh_credentials_are_reused_and_near_expiry_they_are_not(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "k.json"
    store(path, creds(60))
    assert read(path, NOW) == creds(60)
    assert read(path, NOW + timedelta(minutes=60) - REFRESH_MARGIN) is None
    assert os.stat(path).st_mode & 0o777 == 0o600


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
        assert read(path, NOW) is None
    store(path, creds(60))
    for mode in (0o644, 0o640, 0o400, 0o700):
        os.chmod(path, mode)
        assert read(path, NOW) is None, f"mode {mode:o}: only 0600 is ours"
    os.chmod(path, 0o600)
    os.chown(path, NOBODY, -1)
    assert read(path, NOW) is None, "another user's file"
    os.chown(path, 0, -1)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    assert read(link, NOW, key="k") is None, "a symlink is not followed"
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo, 0o600)
    assert read(fifo, NOW) is None, "a FIFO is neither waited on nor read"


def test_an_entry_is_used_for_its_own_key_only(tmp_path: Path) -> None:
    readonly, admin = tmp_path / "readonly.json", tmp_path / "admin.json"
    store(readonly, creds(60, key_id="ASIAREADONLY"))
    store(admin, creds(60, key_id="ASIAADMIN"))
    # Swapping the two entries serves neither.
    os.rename(admin, tmp_path / "x")
    os.rename(readonly, admin)
    os.rename(tmp_path / "x", readonly)
    assert read(readonly, NOW) is None
    assert read(admin, NOW) is None


def test_an_entry_expiring_later_than_any_sts_session_is_refused(tmp_path: Path) -> None:
    # STS API reference, AssumeRole DurationSeconds: at most 43200 seconds (12 hours).
    path = tmp_path / "k.json"
    store(path, creds(int(MAX_AHEAD.total_seconds() // 60)))
    assert read(path, NOW) is not None
    store(path, creds(12 * 60 + 1))
    assert read(path, NOW) is None
    store(path, creds(24 * 60 * 365))
    assert read(path, NOW) is None


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


async def test_a_refused_cache_is_one_line_and_no_cache_still_serves(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)  # noqa: S103
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(shared / "cache")}
    calls: list[int] = []
    fresh = creds(60, datetime.now(UTC))
    with pytest.raises(ConfigurationError) as caught:
        await obtain(["a"], lambda: fetch_counting(calls, fresh), environ=env)
    assert str(caught.value) == (
        f"refusing the credential cache: {shared} is writable by group or others (mode 777); "
        "make it yours and not writable by group or others (chown, chmod go-w), set "
        "IAM_SUDO_CACHE_DIR to a directory of your own, or use --no-cache"
    )
    assert calls == []
    assert list(shared.iterdir()) == [], "nothing created"


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

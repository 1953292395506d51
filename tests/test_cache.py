import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iam_sudo import Credentials
from iam_sudo.cache import REFRESH_MARGIN, cache_key, read, write
from iam_sudo.formats import render

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def creds(minutes: int) -> Credentials:
    return Credentials("ASIAX", "secret", "token", NOW + timedelta(minutes=minutes))


def test_fresh_credentials_are_reused_and_near_expiry_they_are_not(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "k.json"
    write(path, render(creds(60), "process"))
    assert read(path, NOW) == creds(60)
    assert read(path, NOW + timedelta(minutes=60) - REFRESH_MARGIN) is None
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700


def test_corrupt_or_foreign_files_are_never_trusted(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    for text in (
        "{",
        "[]",
        json.dumps({"Version": 2}),
        json.dumps({"Version": 1, "AccessKeyId": 1}),
    ):
        path.write_text(text)
        os.chmod(path, 0o600)
        assert read(path, NOW) is None
    write(path, render(creds(60), "process"))
    os.chmod(path, 0o644)
    assert read(path, NOW) is None, "readable by others: not ours to trust"
    link = tmp_path / "link.json"
    link.symlink_to(path)
    os.chmod(path, 0o600)
    assert read(link, NOW) is None, "a symlink is not followed"


def test_the_key_covers_the_arguments_and_the_settings_that_change_the_answer() -> None:
    base = {"AWS_PROFILE": "dev", "HOME": "/h", "IAM_SUDO_POLICY": "a"}
    key = cache_key(["simulate", "{}"], base)
    assert cache_key(["simulate", "{}"], {**base, "HOME": "/other"}) == key
    assert cache_key(["simulate", "{}"], {**base, "TERM": "x"}) == key
    for change in (
        {"AWS_PROFILE": "prod"},
        {"AWS_ENDPOINT_URL_STS": "http://x"},
        {"AWS_REGION": "eu-west-1"},
        {"IAM_SUDO_POLICY": "b"},
        {"AWS_ACCESS_KEY_ID": "AKIAOTHER"},
    ):
        assert cache_key(["simulate", "{}"], {**base, **change}) != key
    assert cache_key(["assume", "{}"], base) != key

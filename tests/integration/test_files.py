"""The file lock against another process holding it: the wait is bounded and names the holder
(the rest of the discipline: tests/unit/test_files.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from iam_sudo.core.exceptions import CredentialsFileError
from iam_sudo.settings import files as _files
from iam_sudo.settings.credentials import Credentials, write_profile

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.pwrite(fd, str(os.getpid()).encode(), 0)
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """Another process holding the lock of tmp_path/credentials, as a stuck writer would."""
    lock = tmp_path / "credentials.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    yield child
    child.kill()
    child.wait()


def test_a_lock_held_by_another_process_times_out_naming_it(tmp_path: Path, holder) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised, _files.locked(tmp_path / "credentials", 0.3):
        pass
    assert time.monotonic() - started < 10
    assert f"held by process {holder.pid}" in str(raised.value)


def test_a_profile_writer_behind_a_stuck_lock_fails_in_one_line_and_writes_nothing(
    tmp_path: Path, holder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_files, "LOCK_TIMEOUT", 0.3)
    target = tmp_path / "credentials"
    credentials = Credentials.from_sts(
        {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": "2030-01-01T00:00:00Z",
        }
    )
    with pytest.raises(CredentialsFileError) as raised:
        write_profile(credentials, "task", target)
    message = str(raised.value)
    assert "\n" not in message
    assert f"process {holder.pid}" in message
    assert not target.exists()

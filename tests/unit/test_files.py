"""The one discipline of every file iam-sudo writes: the lock waits a bounded time, names
who holds it, and is never taken through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iam_sudo.settings import files as _files


def test_the_lock_file_is_never_opened_through_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "credentials.lock").symlink_to(elsewhere)
    with (
        pytest.raises(OSError, match="symbolic links"),
        _files.locked(tmp_path / "credentials", 0.3),
    ):
        pass
    assert not elsewhere.exists()


def test_a_free_lock_records_its_holder(tmp_path: Path) -> None:
    with _files.locked(tmp_path / "credentials", 0.3):
        held = (tmp_path / "credentials.lock").read_text()
    assert held == str(os.getpid())

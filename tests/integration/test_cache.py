"""The credential cache against other processes: another holder of an entry's lock, and another
local user (uid 65534) who cannot plant, swap or redirect entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iam_sudo.settings.cache import (
    cache_key,
    entry,
    lock,
    obtain,
    secure_directory,
)
from tests.unit.test_cache import NOBODY, creds, fetch_counting, warnings_of

OTHER_USERS_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


async def test_the_lock_times_out_in_one_line_naming_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    async with lock(path):
        script = (
            "import asyncio, sys\nfrom pathlib import Path\n"
            "from iam_sudo.settings.cache import lock\n"
            "async def main():\n"
            "    async with lock(Path(sys.argv[1]), 0.2):\n        pass\n"
            "try:\n    asyncio.run(main())\nexcept Exception as e:\n    print(e)\n"
        )
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.stdout.strip() == (
        f"the credential cache entry k.json is locked by process {os.getpid()} for more "
        "than 0.2 s; wait for it, stop it, or use --no-cache"
    )


def as_nobody(script: str, *args: str) -> None:
    """Run ``script`` as another local user (uid/gid 65534)."""

    def drop() -> None:
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    subprocess.run(
        # A Python the other user can run (this venv's may live under root's home).
        [OTHER_USERS_PYTHON, "-I", "-c", script, *args],
        preexec_fn=drop,
        check=True,
        timeout=60,
        cwd="/",
    )


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory the other user can reach (pytest's are root's only)."""
    path = Path(tempfile.mkdtemp(prefix="iam-sudo-cache-test-"))
    os.chmod(path, 0o711)  # noqa: S103
    yield path
    shutil.rmtree(path)


async def test_another_local_user_cannot_plant_swap_or_redirect_entries(
    reachable: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path = reachable
    # A world-writable, sticky place like /tmp, where the attacker got there first.
    public = tmp_path / "public"
    public.mkdir()
    os.chmod(public, 0o1777)  # noqa: S103
    home = tmp_path / "victim"
    home.mkdir(mode=0o700)
    victim_file = home / "precious"
    victim_file.write_text("mine\n")
    shared = public / "shared"
    env = {"HOME": str(home), "IAM_SUDO_CACHE_DIR": str(shared)}
    key = cache_key(["simulate", "{}"], env)
    admin = entry(creds(600, datetime.now(UTC), "ASIAADMIN"), key)
    as_nobody(
        "import os, sys\n"
        "shared, key, admin, target = sys.argv[1:5]\n"
        "os.mkdir(shared, 0o777); os.chmod(shared, 0o777)\n"
        "open(os.path.join(shared, key + '.json'), 'w').write(admin)\n"
        "os.chmod(os.path.join(shared, key + '.json'), 0o600)\n"
        "os.symlink(target, os.path.join(shared, key + '.json.lock'))\n",
        str(shared),
        key,
        admin,
        str(victim_file),
    )
    calls: list[int] = []
    mine = creds(60, datetime.now(UTC), "ASIAREADONLY")
    got = await obtain(["simulate", "{}"], lambda: fetch_counting(calls, mine), environ=env)
    assert got == mine, "the planted entry is never served"
    assert calls == [1]
    assert f"{shared} is owned by uid {NOBODY}" in warnings_of(caplog)[-1]
    assert victim_file.read_text() == "mine\n", "nothing written through the symlink"
    assert sorted(p.name for p in shared.iterdir()) == [f"{key}.json", f"{key}.json.lock"]
    # The attacker's directory, even made not writable by others, is still not ours.
    as_nobody("import os, sys; os.chmod(sys.argv[1], 0o755)", str(shared))
    got = await obtain(["simulate", "{}"], lambda: fetch_counting(calls, mine), environ=env)
    assert got == mine
    assert f"owned by uid {NOBODY}" in warnings_of(caplog)[-1]
    # In a cache of one's own, the same planted files are ignored and replaced.
    own = home / "cache"
    env = {"HOME": str(home), "IAM_SUDO_CACHE_DIR": str(own)}
    key = cache_key(["simulate", "{}"], env)
    own.mkdir(mode=0o700)
    planted = own / f"{key}.json"
    planted.write_text(entry(creds(600, datetime.now(UTC), "ASIAADMIN"), key))
    os.chmod(planted, 0o600)
    os.chown(planted, NOBODY, NOBODY)
    (own / f"{key}.json.lock").symlink_to(victim_file)
    got = await obtain(["simulate", "{}"], lambda: fetch_counting(calls, mine), environ=env)
    assert got == mine
    assert calls == [1, 1, 1]
    assert victim_file.read_text() == "mine\n"
    assert planted.stat().st_uid == os.getuid()
    assert (
        await obtain(["simulate", "{}"], lambda: fetch_counting(calls, mine), environ=env) == mine
    )
    assert calls == [1, 1, 1], "the replaced entry is a hit"


async def test_a_read_only_home_is_one_warning_and_the_credentials_come_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    env = {"HOME": str(home)}  # the default cache, ~/.aws/iam-sudo/cache
    calls: list[int] = []
    fresh = creds(60, datetime.now(UTC))
    with read_only(home):
        for _ in range(2):
            assert await obtain(["a"], lambda: fetch_counting(calls, fresh), environ=env) == fresh
    assert calls == [1, 1]
    assert len(warnings_of(caplog)) == 2, "one line per run"
    assert "cannot be created" in warnings_of(caplog)[0]


async def test_a_read_only_cache_directory_is_one_warning_and_no_fetch_more(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"HOME": str(tmp_path), "IAM_SUDO_CACHE_DIR": str(tmp_path / "cache")}
    calls: list[int] = []
    fresh = creds(60, datetime.now(UTC))
    directory = secure_directory(tmp_path / "cache", env)
    with read_only(directory):
        assert await obtain(["a"], lambda: fetch_counting(calls, fresh), environ=env) == fresh
    assert calls == [1]
    [warning] = warnings_of(caplog)
    assert "cannot create the credential cache lock" in warning
    assert "Read-only file system" in warning


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` on a read-only bind mount, as a read-only home is (root ignores modes)."""
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(path), str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {done.stderr.decode()[-200:]}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)

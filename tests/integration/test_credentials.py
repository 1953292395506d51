"""The shared credentials file under concurrent writers, each a process of its own."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from iam_sudo import Credentials, write_profile
from tests.unit.test_credentials import CREDS, EXISTING, read


def _writer(path: str, index: int) -> None:
    credentials = Credentials(f"KEY{index}", "secret", "token", CREDS.expiration)
    write_profile(credentials, f"p{index}", Path(path))


def test_twenty_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(EXISTING)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(str(path), i)) for i in range(20)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    parser = read(path)
    assert {f"p{i}" for i in range(20)} <= set(parser.sections())
    assert all(parser[f"p{i}"]["aws_access_key_id"] == f"KEY{i}" for i in range(20))
    assert parser["prod"]["aws_access_key_id"] == "AKIAPROD"

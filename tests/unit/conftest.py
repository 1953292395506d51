"""Unit tests: pure code in this process, no moto, no child process, no network.

What keeps this folder honest: a test here that asks for a fixture of the local AWS, starts a
process or opens an internet socket fails, naming what it did; such a test belongs in
tests/integration/. Sockets that are not IP (AF_UNIX, asyncio's self-pipe) are fine.
"""

from __future__ import annotations

import multiprocessing.process
import os
import socket
import subprocess
from typing import Any

import pytest

from tests.conftest import INTEGRATION_FIXTURES

_MOVE = "a unit test {}: it belongs in tests/integration/"


@pytest.fixture(autouse=True)
def _in_process_only(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    used = sorted(INTEGRATION_FIXTURES.intersection(request.fixturenames))
    if used:
        pytest.fail(_MOVE.format(f"uses the fixtures {', '.join(used)}"), pytrace=False)

    def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(_MOVE.format(f"starts a process {args[1:2]!r}"))

    connect = socket.socket.connect

    def no_network(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(_MOVE.format(f"connects to {address!r}"))
        return connect(self, address)

    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", no_process)
    monkeypatch.setattr(os, "fork", no_process)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    return

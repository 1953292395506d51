"""The sudo policy's parser under a memory cap, in a process of its own: hostile YAML fails
fast in one short line.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.unit.test_policy import billion_laughs

HOSTILE = {
    "billion-laughs": (billion_laughs(), "anchors and aliases"),
    "nested-5000": ("allowed-role-names: " + "[" * 5000 + "]" * 5000, "nested deeper than 16"),
    "nested-block": ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 250)), "nested deeper"),
    "duplicate-key": (
        "allowed-role-names: ['*']\nallowed-principals: [{'*': '*'}]\n"
        "allowed-base-roles: ['arn:aws:iam::*:role/A']\nallowed-role-names: ['x']\n",
        "duplicate key 'allowed-role-names' at line 4",
    ),
    "huge": ("allowed-role-names: [" + "'x', " * 20000 + "]", "more than 65536"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_fails_fast_in_one_short_line_under_a_memory_cap(name: str) -> None:
    text, message = HOSTILE[name]
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))\n"
        "from iam_sudo import SudoPolicy, InvalidSudoPolicy\n"
        "try:\n"
        "    SudoPolicy.from_yaml(sys.stdin.read())\n"
        "except InvalidSudoPolicy as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-500:]
    [line] = result.stdout.splitlines()
    assert message in line
    assert len(line) < 200

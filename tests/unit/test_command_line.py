"""A credential_process line as botocore splits it on each platform (issue 22, 3: Windows).

``configure`` writes a line that botocore runs with ``compat_shell_split``: shlex on POSIX,
the Microsoft C runtime's rules on Windows, where single quotes are no quotes and
backslashes in a ``C:\\`` path are literal. A line quoted with ``shlex.join`` for Windows
was one botocore could not run.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.compat import _windows_shell_split, compat_shell_split
from hypothesis import given
from hypothesis import strategies as st

from iam_sudo.settings.config import (
    join_command_line,
    runs_iam_sudo,
    source_of_process,
    split_command_line,
)

WINDOWS_LINE = [
    r"C:\Users\Ana Lopez\venv\Scripts\iam-sudo.exe",
    "--source-profile",
    "dev",
    "simulate",
    "--role-name",
    'odd"name\\',
    "--format",
    "process",
]
arguments = st.lists(st.text(st.characters(exclude_characters="\x00"), max_size=12), max_size=6)


@given(arguments)
def test_a_windows_line_splits_back_as_botocore_splits_it_on_windows(argv: list[str]) -> None:
    line = join_command_line(argv, windows=True)
    assert split_command_line(line, windows=True) == argv
    assert _windows_shell_split(line) == argv


@given(arguments)
def test_a_posix_line_splits_back_as_botocore_splits_it_elsewhere(argv: list[str]) -> None:
    line = join_command_line(argv, windows=False)
    assert split_command_line(line, windows=False) == argv
    assert compat_shell_split(line, platform="linux") == argv


@given(st.text(st.characters(exclude_characters="\x00"), max_size=40))
def test_any_windows_line_splits_as_botocore_splits_it(line: str) -> None:
    def outcome(split: Callable[[str], list[str]]) -> list[str] | str:
        try:
            return split(line)
        except ValueError:
            return "ValueError"

    assert outcome(lambda text: split_command_line(text, windows=True)) == outcome(
        _windows_shell_split
    )


def test_the_windows_line_keeps_the_path_whole_in_double_quotes() -> None:
    line = join_command_line(WINDOWS_LINE, windows=True)
    assert line.startswith('"C:\\Users\\Ana Lopez\\venv\\Scripts\\iam-sudo.exe" --source-profile')
    assert "'" not in line


@pytest.mark.parametrize(
    "line",
    [
        r"C:\Users\me\venv\Scripts\iam-sudo.exe --source-profile dev simulate --format process",
        r'"C:\Program Files\Python311\python.exe" -m iam_sudo --source-profile dev assume',
    ],
)
def test_an_iam_sudo_line_written_on_windows_is_recognised_with_its_source(
    monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    monkeypatch.setattr("os.name", "nt")
    assert runs_iam_sudo(line)
    assert source_of_process(line) == "dev"

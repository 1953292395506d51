"""INI files read exactly as the AWS CLI and SDKs read them, and edited without loss.

botocore reads ``~/.aws/credentials`` and ``~/.aws/config`` with the standard library's
``configparser.RawConfigParser`` at its defaults. A writer that parses differently can
mistake where a section starts or ends, and then overwrite the wrong profile's keys
(``[prod] ; long-term`` is a section header to botocore; ``\\x0c`` ends no line for it;
an indented line continues the value above it). So this module locates sections and
options by configparser's own rules, edits only the lines of the options it sets, and
then checks its work with configparser itself: every other section must read back
exactly as before, or nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# configparser's own patterns (RawConfigParser defaults: delimiters = and :, comment
# prefixes # and ;, no inline comments, strict, empty lines allowed inside values).
_SECTION = re.compile(r"\[(?P<header>.+)\]")
_OPTION = re.compile(r"(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$")
_NONSPACE = re.compile(r"\S")
_COMMENT_PREFIXES = ("#", ";")
# Text-mode reading (universal newlines) ends a line at \r\n, \r or \n, and nowhere else:
# not at \x0c, \x85 or \u2028, where str.splitlines() would.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
DEFAULT_SECTION = "DEFAULT"


class IniError(ValueError):
    """The text is not an INI file that botocore would read; the message says why."""


@dataclass
class _Option:
    name: str
    first: int
    last: int


@dataclass
class _Section:
    name: str
    header: int
    options: list[_Option] = field(default_factory=list)


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _locate(lines: list[str]) -> list[_Section]:
    """Where each section and option is, by configparser's reading rules."""
    sections: list[_Section] = []
    current: _Section | None = None
    option: _Option | None = None
    indent_level = 0
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(_COMMENT_PREFIXES):
            continue  # blank and comment lines end nothing (empty lines may sit inside values)
        first = _NONSPACE.search(line)
        indent = first.start() if first else 0
        if current is not None and option is not None and indent > indent_level:
            option.last = index  # a continuation line of the option's value
            continue
        indent_level = indent
        header = _SECTION.match(stripped)
        if header:
            current = _Section(header.group("header"), index)
            sections.append(current)
            option = None
            continue
        match = _OPTION.match(stripped)
        if current is None or match is None or not match.group("option").rstrip():
            raise IniError(f"line {index + 1} is neither a section, an option nor a comment")
        option = _Option(match.group("option").rstrip().lower(), index, index)
        current.options.append(option)
    return sections


def read(text: str) -> dict[str, dict[str, str]]:
    """Each section's options and values as botocore sees them (DEFAULT's under its name).

    Raises :class:`IniError` where botocore would raise ConfigParseError.
    """
    import configparser  # here, not at import: the CLI's cold paths stay light
    import io

    parser = configparser.RawConfigParser()
    try:
        # Universal newlines, as botocore's reading of the file: read_string would not
        # end lines at a lone \r.
        parser.read_file(io.StringIO(text, newline=None))
    except configparser.Error as error:
        raise IniError(str(error).splitlines()[0][:200]) from None
    view = {name: dict(parser.items(name, raw=True)) for name in parser.sections()}
    defaults = dict(parser.defaults())
    if defaults:
        view[DEFAULT_SECTION] = defaults
    return view


def _line_ending(lines: list[str]) -> str:
    for line in lines:
        if line.endswith("\r\n"):
            return "\r\n"
        if line.endswith(("\n", "\r")):
            return line[-1]
    return "\n"


def set_options(text: str, section: str, values: Mapping[str, str]) -> str:
    """``text`` with ``values`` set in ``section`` (created at the end if missing).

    Every other line stays as it was: comments, order, other sections, and the section's
    other options. Option names are written lower-case, as configparser reads them.
    Raises :class:`IniError` if ``text`` is not a file botocore would read, or if the
    result would not read back as exactly the intended change.
    """
    if section == DEFAULT_SECTION:
        raise IniError("DEFAULT is every section's defaults, not a profile")
    before = read(text)
    lines = _lines(text)
    try:
        located = _locate(lines)
    except IniError:
        # configparser accepted what we could not place: never guess where lines belong.
        raise IniError("its layout could not be located line by line") from None
    newline = _line_ending(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    wanted = {key.lower(): value for key, value in values.items()}
    targets = [s for s in located if s.name == section]
    if not targets:
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            lines.append(newline)
        lines += [f"[{section}]{newline}", *(f"{k} = {v}{newline}" for k, v in wanted.items())]
    else:
        # A DEFAULT header may repeat; options go to the last one, where configparser reads on.
        target = targets[-1]
        drop = {
            line
            for s in targets
            for option in s.options
            if option.name in wanted
            for line in range(option.first, option.last + 1)
        }
        at = (target.options[-1].last if target.options else target.header) + 1
        # Indented like the next line that configparser reads as an option or a header:
        # indented any deeper, that line would become a continuation of ours.
        indent = next(
            (
                line[: _NONSPACE.search(line).start()]  # type: ignore[union-attr]
                for line in lines[at:]
                if line.strip() and not line.strip().startswith(_COMMENT_PREFIXES)
            ),
            "",
        )
        new = [f"{indent}{key} = {value}{newline}" for key, value in wanted.items()]
        lines = [
            *(line for i, line in enumerate(lines[:at]) if i not in drop),
            *new,
            *(line for i, line in enumerate(lines[at:], start=at) if i not in drop),
        ]
    result = "".join(lines)
    after = read(result)
    expected = {name: dict(options) for name, options in before.items()}
    # A new section inherits DEFAULT's options, as every section does.
    expected.setdefault(section, dict(before.get(DEFAULT_SECTION, {}))).update(wanted)
    if after != expected:
        raise IniError("the edit would not read back as intended")
    return result

"""The INI editor against botocore's own parser, over generated files."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import botocore.exceptions
import pytest
from botocore.configloader import raw_config_parse
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iam_sudo.settings import inifile

NAMES = ["default", "prod", "tmp", "dev", "DEFAULT", " prod", "prod "]
KEYS = ["aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region", "output"]
SPACES = ["", " ", "  ", "\t", "\x0c", "\x0b", "\x85", "\u2028", "\u00a0"]
ENDINGS = ["\n", "\r\n", "\r"]


def botocore_reads(text: str) -> dict[str, Any] | None:
    """What botocore's config loader makes of ``text``, or None where it refuses the file."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", delete=False) as file:
        file.write(text)
    try:
        return raw_config_parse(file.name, parse_subsections=False)  # type: ignore[no-any-return]
    except botocore.exceptions.ConfigParseError:
        return None
    finally:
        os.unlink(file.name)


space = st.sampled_from(SPACES)
header = st.builds(
    lambda indent, name, pad, tail: f"{indent}[{pad}{name}{pad}]{tail}",
    space,
    st.sampled_from(NAMES),
    st.sampled_from(["", " "]),
    st.sampled_from(["", " ; long-term", " # note", "  ", "\x0c", "\x85", " x]"]),
)
option = st.builds(
    lambda indent, key, before, delimiter, after, value: (
        f"{indent}{key}{before}{delimiter}{after}{value}"
    ),
    space,
    st.sampled_from(KEYS),
    st.sampled_from(["", " ", "\t"]),
    st.sampled_from(["=", ":"]),
    st.sampled_from(["", " "]),
    st.sampled_from(["AKIAOLD", "ASIAOLD", "secret", "", "a\x0cb", "x\u2028[prod]", "v ; c"]),
)
comment = st.builds(lambda indent, mark: f"{indent}{mark} comment", space, st.sampled_from("#;"))
line = st.one_of(header, option, comment, space, st.just("[prod]\x0c[dev]"))
files = st.builds(
    lambda parts, trailing: "".join(text + ending for text, ending in parts) + trailing,
    st.lists(st.tuples(line, st.sampled_from(ENDINGS)), max_size=14),
    st.sampled_from(["", "region = x"]),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(text=files, section=st.sampled_from([*(n for n in NAMES if n != "DEFAULT"), "new"]))
def test_an_edit_changes_exactly_the_section_as_botocore_reads_it(text: str, section: str) -> None:
    before = botocore_reads(text)
    assume(before is not None)
    assert before is not None
    values = {"aws_access_key_id": "ASIANEW", "aws_session_token": "NEW-TOKEN"}
    result = inifile.set_options(text, section, values)
    after = botocore_reads(result)
    assert after is not None, "botocore must still read the file"
    expected = {name: dict(options) for name, options in before.items()}
    expected.setdefault(section, {}).update(values)
    assert {k: v for k, v in after.items() if k != section} == {
        k: v for k, v in expected.items() if k != section
    }
    assert {k: after[section][k] for k in values} == values
    assert {k: v for k, v in after[section].items() if k not in values} == {
        k: v for k, v in before.get(section, {}).items() if k not in values
    } or section not in before


@settings(max_examples=300, deadline=None)
@given(text=files)
def test_the_reader_agrees_with_botocore(text: str) -> None:
    seen = botocore_reads(text)
    try:
        ours = inifile.read(text)
    except inifile.IniError:
        assert seen is None
        return
    assert seen is not None
    ours.pop("DEFAULT", None)
    assert ours == seen


def test_a_header_followed_by_a_comment_is_a_section() -> None:
    text = "[tmp]\naws_access_key_id = ASIA1\n[prod] ; long-term\naws_access_key_id = AKIAPROD\n"
    result = inifile.set_options(text, "tmp", {"aws_access_key_id": "ASIANEW"})
    assert result == "[tmp]\naws_access_key_id = ASIANEW\n[prod] ; long-term\n" + (
        "aws_access_key_id = AKIAPROD\n"
    )


def test_form_feed_and_unicode_separators_end_no_line() -> None:
    text = "[tmp]\nregion = a\x0c[prod]\u2028x\n[dev]\nk = v\n"
    result = inifile.set_options(text, "tmp", {"region": "b"})
    assert result == "[tmp]\nregion = b\n[dev]\nk = v\n"


def test_continuation_lines_go_with_their_option() -> None:
    text = "[tmp]\naws_session_token = a\n  b\n[prod]\nk = v\n"
    result = inifile.set_options(text, "tmp", {"aws_session_token": "new"})
    assert result == "[tmp]\naws_session_token = new\n[prod]\nk = v\n"


def test_line_endings_and_a_missing_final_newline_are_kept() -> None:
    text = "[a]\r\nk = v\r\n[b]\r\nx = y"
    assert inifile.set_options(text, "c", {"k": "1"}) == text + "\r\n\r\n[c]\r\nk = 1\r\n"


def test_a_file_botocore_refuses_is_refused() -> None:
    with pytest.raises(inifile.IniError, match=r"already exists"):
        inifile.set_options("[a]\nk = v\n[a]\nk = w\n", "b", {"k": "1"})


def test_default_is_no_section_to_edit() -> None:
    with pytest.raises(inifile.IniError, match="DEFAULT"):
        inifile.set_options("[a]\nk = v\n", "DEFAULT", {"k": "1"})

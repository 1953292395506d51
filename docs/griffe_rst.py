"""griffe extension: the package's docstrings are reStructuredText-flavoured; the site is Markdown.

Two constructs would show raw: cross-reference roles (``:class:`Timeouts```) and literal
blocks introduced by ``::``. Roles become code spans (not links: a role may name an
internal module, which the reference does not render, and the build is strict); a
paragraph ending in ``::`` gets its indented block fenced as Python.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"::\n\n((?:(?: {4,}.*)?\n)+)")


def _fence(match: re.Match[str]) -> str:
    block = match.group(1).rstrip("\n")
    lines = [line[4:] if line.startswith("    ") else line for line in block.split("\n")]
    return ":\n\n```python\n" + "\n".join(lines) + "\n```\n\n"


def markdown(text: str) -> str:
    """``text`` with RST roles as code spans and ``::`` literal blocks fenced."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LITERAL.sub(_fence, text + "\n").rstrip("\n")


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Walk the package's own objects (aliases are resolved to them)."""
        seen: set[int] = set()
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if obj.docstring is not None:
                obj.docstring.value = markdown(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)

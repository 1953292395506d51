"""Wildcard matching, one copy of each rule AWS gives, and the sudo policy's own globs.

* **Actions** (IAM User Guide, "IAM JSON policy elements: Action"): ``service:Name``,
  case-insensitive; ``*`` matches any run of characters, ``?`` exactly one; nothing else
  is special (a ``[`` is a literal, unlike a shell glob). :func:`action_matches`.
* **Resources** ("IAM JSON policy elements: Resource"): ARNs, case-sensitive; within a
  segment (the parts between colons) ``*`` matches any run and ``?`` one character,
  neither a colon; a ``*`` that ends a segment "can expand to match beyond the colon
  boundaries". :func:`resource_matches`.
* **StringLike** ("Condition operators", String condition operators): case-sensitive,
  ``*`` and ``?`` anywhere, colons included. :func:`string_like`.
* **ArnLike/ArnEquals** ("Condition operators", ARN condition operators): the six
  colon-separated parts of the ARN match one by one, each as StringLike. :func:`arn_like`.
* **The sudo policy's globs** (``allowed-roles``, ``allowed-base-roles``, callers...):
  shell-style, as :mod:`fnmatch` reads them (``*``, ``?``, ``[seq]``), case-sensitive.
  They are iam-sudo's own format, not IAM's. :func:`shell_glob`.

Action and resource patterns are automata (:func:`tokens`, :func:`closure`, :func:`step`),
so that :mod:`.ceiling` can run several in product.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

# A token: a literal character, or ("*"|"?", may match a colon).
Token = tuple[str, bool]


def tokens(pattern: str, resource: bool) -> tuple[Token, ...]:
    text = pattern if resource else pattern.lower()
    found: list[Token] = []
    for i, char in enumerate(text):
        if char == "*":
            # A resource's * that ends a segment may match beyond the colons.
            ends_segment = i + 1 == len(text) or text[i + 1] == ":"
            found.append(("*", not resource or ends_segment))
        elif char == "?":
            found.append(("?", not resource))
        else:
            found.append((char, False))
    return tuple(found)


def closure(tokens: tuple[Token, ...], states: Iterable[int]) -> frozenset[int]:
    result = set(states)
    stack = list(result)
    while stack:
        i = stack.pop()
        if i < len(tokens) and tokens[i][0] == "*" and i + 1 not in result:
            result.add(i + 1)
            stack.append(i + 1)
    return frozenset(result)


def step(tokens: tuple[Token, ...], states: frozenset[int], char: str) -> frozenset[int]:
    moved: set[int] = set()
    for i in states:
        if i >= len(tokens):
            continue
        kind, colon = tokens[i]
        if kind == "*":
            if colon or char != ":":
                moved.add(i)
        elif kind == "?":
            if colon or char != ":":
                moved.add(i + 1)
        elif kind == char:
            moved.add(i + 1)
    return closure(tokens, moved) if moved else frozenset()


def is_literal(pattern: str) -> bool:
    return "*" not in pattern and "?" not in pattern


def matches(text: str, pattern: str, resource: bool) -> bool:
    automaton = tokens(pattern, resource)
    states = closure(automaton, [0])
    for char in text if resource else text.lower():
        states = step(automaton, states, char)
        if not states:
            return False
    return len(automaton) in states


def action_matches(action: str, pattern: str) -> bool:
    """Whether an IAM action pattern matches ``action`` (case-insensitive, ``*`` and ``?``)."""
    return matches(action, pattern, resource=False)


def resource_matches(arn: str, pattern: str) -> bool:
    """Whether a Resource pattern matches ``arn`` (case-sensitive, segment-aware)."""
    return matches(arn, pattern, resource=True)


def string_like(value: str, pattern: str) -> bool:
    """StringLike: ``*`` and ``?`` are the only wildcards, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def arn_like(value: str, pattern: str) -> bool:
    """ArnEquals/ArnLike: the six colon-separated parts match one by one, with wildcards."""
    parts, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(parts) == len(patterns) == 6 and all(map(string_like, parts, patterns))


def shell_glob(value: str, patterns: Sequence[str]) -> bool:
    """Whether ``value`` equals or matches one of the sudo policy's shell-style globs."""
    return any(value == pattern or fnmatchcase(value, pattern) for pattern in patterns)

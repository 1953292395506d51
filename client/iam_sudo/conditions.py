"""Principal-dependent conditions, decided for the target role before they reach STS.

A simulated session is the *base role's* session: STS evaluates ``aws:PrincipalArn``,
``aws:userid``, ``aws:username`` and ``aws:PrincipalTag/*`` (and the policy variables of
those keys) against it, not against the role being simulated. A Deny conditioned on the
target's tag would go inert there, and the simulation would grant more than the role.

So each statement that depends on the principal is rewritten for the target, whose
values are known (its ARN, its tags; a role has no ``aws:username``) or not (the
``aws:userid`` of a role session ends in a session name nobody knows in advance):

* decidable and true: the condition is dropped, the statement kept;
* decidable and false: the statement never applies to the role, and is left out;
* undecidable: resolved in the narrowing direction: an Allow that depends on it is left
  out, a Deny that depends on it applies regardless of it.

Every rewrite is a :class:`Rewrite`, a line of the fidelity report.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A key's value for the target: a string, None for a key the role's requests lack, or this.
UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()

_PRINCIPAL_KEY = re.compile(r"aws:(principalarn|userid|username|principaltag/.+)", re.IGNORECASE)
_VARIABLE = re.compile(
    r"\$\{\s*(aws:(?:principalarn|userid|username|principaltag/[^,}]+?))\s*"
    r"(?:,\s*'([^']*)'\s*)?\}",
    re.IGNORECASE,
)
_NEGATED = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals"}
_NEGATED |= {"arnnotlike"}
_POSITIVE = {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"}
_WILDCARDS = re.compile(r"[*?$]")


@dataclass(frozen=True)
class Target:
    """What iam-sudo knows of the role a session stands in for."""

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        """The key's value in the role's requests: a string, None (absent) or UNKNOWN."""
        lowered = key.lower()
        if lowered == "aws:principalarn":
            return self.arn  # for a role session, the role's ARN
        if lowered == "aws:username":
            return None  # only IAM users have one
        if lowered.startswith("aws:principaltag/"):
            wanted = lowered.split("/", 1)[1]
            return next((v for k, v in self.tags.items() if k.lower() == wanted), None)
        return UNKNOWN  # aws:userid: the role id, a colon and a session name


@dataclass(frozen=True)
class Rewrite:
    """One principal-dependent part of a statement and what became of it."""

    source: str
    statement: str
    part: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.source}, {self.statement}: {self.part}: {self.outcome}"


def is_principal_key(key: str) -> bool:
    return _PRINCIPAL_KEY.fullmatch(key) is not None


def _like(value: str, pattern: str) -> bool:
    """IAM's StringLike: ``*`` and ``?`` are the only wildcards, case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _arn_like(value: str, pattern: str) -> bool:
    """IAM's ArnLike: the six parts of an ARN match one by one."""
    parts, patterns = value.split(":", 5), pattern.split(":", 5)
    return len(parts) == len(patterns) == 6 and all(map(_like, parts, patterns))


def decide(operator: str, values: Any, value: Any) -> bool | None:
    """Whether one condition (operator, the key's values) holds for the key's ``value``.

    None where it cannot be decided here (an UNKNOWN value, an operator that makes no
    sense for these keys, values that are themselves policy variables).
    """
    qualifier, _, name = operator.rpartition(":")
    qualifier = qualifier.lower()
    base = name.lower()
    if_exists = base.endswith("ifexists")
    base = base.removesuffix("ifexists")
    listed = values if isinstance(values, list) else [values]
    if not all(isinstance(v, str | bool) for v in listed) or qualifier not in (
        "",
        "foranyvalue",
        "forallvalues",
    ):
        return None
    texts = [str(v).lower() if isinstance(v, bool) else v for v in listed]
    if value is UNKNOWN:
        return True if base == "stringlike" and "*" in texts else None
    if base == "null":
        if if_exists or not all(t.lower() in ("true", "false") for t in texts):
            return None
        # Null: "true" holds where the key is absent, "false" where it is present.
        return any((t.lower() == "true") == (value is None) for t in texts)
    if base not in _POSITIVE | _NEGATED:
        return None
    if value is None:
        if if_exists or qualifier == "forallvalues":
            return True
        return base in _NEGATED
    if any("${" in t for t in texts):
        return None
    match base.removeprefix("string").removeprefix("arn").replace("not", ""):
        case "equals" if base.startswith("arn"):
            hit = any(_arn_like(value, t) for t in texts)
        case "like" if base.startswith("arn"):
            hit = any(_arn_like(value, t) for t in texts)
        case "equals":
            hit = value in texts
        case "equalsignorecase":
            hit = value.lower() in (t.lower() for t in texts)
        case "like":
            hit = any(_like(value, t) for t in texts)
        case _:
            return None
    return not hit if base in _NEGATED else hit


def _describe(statement: Mapping[str, Any], index: int) -> str:
    actions = statement.get("Action", statement.get("NotAction", "?"))
    shown = actions if isinstance(actions, str) else ",".join(map(str, actions[:3]))
    more = "" if isinstance(actions, str) or len(actions) <= 3 else ",..."
    return f"statement {index + 1} ({statement.get('Effect')} {shown}{more})"


def _variables(value: Any) -> list[tuple[str, str | None]]:
    text = json.dumps(value)
    return [(m.group(1), m.group(2)) for m in _VARIABLE.finditer(text)]


def _substitute(value: Any, target: Target) -> tuple[Any, bool]:
    """``value`` with principal variables replaced where known exactly; (value, all known)."""
    known = True

    def replace(match: re.Match[str]) -> str:
        nonlocal known
        found = target.value(match.group(1))
        if found is None and match.group(2) is not None:
            found = match.group(2)  # ${key, 'default'}
        if not isinstance(found, str) or _WILDCARDS.search(found):
            known = False  # a wildcard in the value would widen the pattern
            return match.group(0)
        return found

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _VARIABLE.sub(replace, item)
        if isinstance(item, list):
            return [walk(i) for i in item]
        if isinstance(item, Mapping):
            return {k: walk(v) for k, v in item.items()}
        return item

    return walk(value), known


def rewrite(
    statement: Mapping[str, Any], target: Target, source: str, index: int
) -> tuple[dict[str, Any] | None, list[Rewrite]]:
    """The statement as it must be sent for ``target``, or None to leave it out.

    Statements without principal-dependent parts come back unchanged, with no rewrites.
    """
    result: dict[str, Any] = copy.deepcopy(dict(statement))
    deny = result.get("Effect") == "Deny"
    label = _describe(statement, index)
    rewrites: list[Rewrite] = []

    def note(part: str, outcome: str) -> None:
        rewrites.append(Rewrite(source, label, part, outcome))

    for element in ("Resource", "NotResource"):
        if element not in result or not _variables(result[element]):
            continue
        names = ", ".join(sorted({f"${{{n}}}" for n, _ in _variables(result[element])}))
        substituted, known = _substitute(result[element], target)
        if known:
            result[element] = substituted
            note(f"{element} uses {names}", "replaced by the role's value")
        elif deny:
            result.pop(element)
            result["Resource"] = "*"
            note(
                f"{element} uses {names}",
                "unknown for the role: the Deny applies to every resource",
            )
        else:
            note(f"{element} uses {names}", "unknown for the role: the Allow is left out")
            return None, rewrites

    condition = result.get("Condition")
    if isinstance(condition, Mapping):
        kept: dict[str, Any] = {}
        for operator, block in condition.items():
            if not isinstance(block, Mapping):
                kept[operator] = block
                continue
            kept_block: dict[str, Any] = {}
            for key, values in block.items():
                variables = _variables(values)
                if variables:
                    values, known = _substitute(values, target)
                    if not known:
                        part = f"{operator} {key} uses {variables[0][0]}"
                        if deny:
                            note(part, "unknown for the role: the Deny applies regardless")
                            continue
                        note(part, "unknown for the role: the Allow is left out")
                        return None, rewrites
                if not is_principal_key(str(key)):
                    kept_block[key] = values
                    continue
                value = target.value(str(key))
                shown = (
                    "absent" if value is None else "unknown" if value is UNKNOWN else repr(value)
                )
                part = f"{operator} {key} (for the role: {shown})"
                verdict = decide(str(operator), values, value)
                if verdict is True:
                    note(part, "holds for the role: condition dropped")
                elif verdict is False:
                    note(part, "never holds for the role: statement left out")
                    return None, rewrites
                elif deny:
                    note(part, "undecidable: the Deny applies regardless")
                else:
                    note(part, "undecidable: the Allow is left out")
                    return None, rewrites
            if kept_block:
                kept[operator] = kept_block
        if kept:
            result["Condition"] = kept
        else:
            result.pop("Condition")
    return result, rewrites

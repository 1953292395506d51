"""What a set of policy statements grants, as comparable tuples (a test oracle).

(effect, action-part, resource-part, condition) with Action and Resource lists expanded
one value per tuple; NotAction and NotResource sets stay whole, since they must never be
split or merged. Two statement lists with the same tuples grant exactly the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

Grant = tuple[str, tuple[str, Any], tuple[str, Any], str]


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(statements: Iterable[Mapping[str, Any]]) -> set[Grant]:
    result: set[Grant] = set()
    for statement in statements:
        condition = json.dumps(statement.get("Condition"), sort_keys=True)
        if "Action" in statement:
            actions = [("Action", a) for a in _values(statement["Action"])]
        else:
            actions = [("NotAction", frozenset(_values(statement["NotAction"])))]
        if "Resource" in statement:
            resources = [("Resource", r) for r in _values(statement["Resource"])]
        else:
            resources = [("NotResource", frozenset(_values(statement["NotResource"])))]
        result |= {(statement["Effect"], a, r, condition) for a in actions for r in resources}
    return result


def document_statements(documents: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for document in documents:
        statement = document["Statement"]
        found.extend([statement] if isinstance(statement, Mapping) else statement)
    return found

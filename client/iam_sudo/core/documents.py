"""How IAM policy documents spell one-or-many: the readers every policy module shares.

IAM accepts a single statement or a list of them for ``Statement``, and a single value or
a list for elements such as ``Action`` and ``Principal`` (IAM User Guide, "IAM JSON
policy element reference").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def as_list(value: Any) -> list[Any]:
    """An element's values as a new list: a list as it is, anything else as one value."""
    return list(value) if isinstance(value, list) else [value]


def statement_list(document: Mapping[str, Any] | None) -> list[Any]:
    """A document's ``Statement`` as a list (one statement, a list, or none: ``[]``).

    Items are not checked: a caller that trusts the document raises on a non-object, one
    that reads a foreign document skips it.
    """
    return as_list((document or {}).get("Statement", []))

"""Draft policies (``--add-policy``): identity-based policy documents tried on a role.

A draft is simulated as one more inline policy of the role: the same fitting, packing,
fidelity report and ``--exact`` as the role's own. Its name, ``added:<file name>``, cannot
be an IAM policy's (IAM policy names take no ``:``), so it never replaces one of the role's.

Never wider than the role plus the drafts, by construction: the session policies are
planned from the role's statements and the drafts' alone, and a session's permissions are
the intersection of the base role's and the session policies (IAM User Guide, "Session
policies"). A draft widens what the *caller* gets, though (up to the base role): the
function serves one only if the caller's sudo policy rule says ``allowed-added-policies:
true`` (see :mod:`iam_sudo.core.sudo_policy`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .exceptions import InvalidRequest
from .roles import RolePolicies
from .text import bounded

#: How the drafts' inline policies are named (``:`` is in no IAM policy name).
PREFIX = "added:"
#: At most this many drafts, each at most this many characters (as compact JSON): bounds
#: for a request to the function. IAM's own quota for a role's inline policies is 10,240.
MAX_DRAFTS = 10
MAX_DRAFT_CHARS = 32 * 1024
MAX_NAME_CHARS = 128
# "IAM JSON policy element reference": the elements of a policy and of a statement.
_POLICY_KEYS = ("Version", "Id", "Statement")
_VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition")


@dataclass(frozen=True)
class Draft:
    """A draft identity-based policy: ``name`` (its file's name) and its ``document``."""

    name: str
    document: Mapping[str, Any]

    def __str__(self) -> str:
        # The credential cache keys a command by its parameters: by content, not file name.
        return f"{self.name}:{json.dumps(self.document, sort_keys=True)}"

    def to_event(self) -> dict[str, Any]:
        """The draft in a request to the function."""
        return {"name": self.name, "document": dict(self.document)}


def _strings(value: object) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(item, str) and item for item in items)


def check_document(name: str, document: object) -> Mapping[str, Any]:
    """``document`` if it is an identity-based policy ("IAM JSON policy grammar"), else
    :class:`InvalidRequest` saying, after ``name``, what is wrong."""
    if not isinstance(document, Mapping):
        raise InvalidRequest(
            f"{name}: a policy document is a JSON object, not {type(document).__name__}"
        )
    unknown = [key for key in document if key not in _POLICY_KEYS]
    if unknown:
        raise InvalidRequest(
            f"{name}: unknown policy element {bounded(str(unknown[0]), 40)}; expected "
            "Version, Id and Statement"
        )
    version = document.get("Version", _VERSIONS[0])
    if version not in _VERSIONS:
        raise InvalidRequest(f"{name}: Version must be 2012-10-17, not {bounded(str(version), 40)}")
    found = document.get("Statement")
    statements = found if isinstance(found, list) else [found]
    if found is None or not statements:
        raise InvalidRequest(f"{name}: the policy has no Statement")
    for index, statement in enumerate(statements, 1):
        where = f"{name}: statement {index}"
        if not isinstance(statement, Mapping):
            raise InvalidRequest(f"{where} is not a JSON object")
        if "Principal" in statement or "NotPrincipal" in statement:
            raise InvalidRequest(
                f"{where} names a Principal: an identity-based policy has none (it applies "
                "to the role it is attached to)"
            )
        unknown = [key for key in statement if key not in _STATEMENT_KEYS]
        if unknown:
            raise InvalidRequest(f"{where} has an unknown element {bounded(str(unknown[0]), 40)}")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise InvalidRequest(f"{where}: Effect must be Allow or Deny")
        for pair in (("Action", "NotAction"), ("Resource", "NotResource")):
            given = [key for key in pair if key in statement]
            if len(given) != 1:
                raise InvalidRequest(f"{where} needs exactly one of {' or '.join(pair)}")
            if not _strings(statement[given[0]]):
                raise InvalidRequest(f"{where}: {given[0]} must be a string or a list of strings")
        condition = statement.get("Condition", {})
        if not isinstance(condition, Mapping) or not all(
            isinstance(block, Mapping) for block in condition.values()
        ):
            raise InvalidRequest(f"{where}: Condition must map operators to {{key: values}}")
    if len(json.dumps(document, separators=(",", ":"))) > MAX_DRAFT_CHARS:
        raise InvalidRequest(f"{name}: the policy is larger than {MAX_DRAFT_CHARS} characters")
    return document


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("an added policy's name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise InvalidRequest(
            f"an added policy's name must be at most {MAX_NAME_CHARS} printable characters"
        )
    return name


def parse_draft(name: str, text: str) -> Draft:
    """A draft from a file's text, JSON or YAML (a JSON document is YAML too); raises
    :class:`InvalidRequest` naming ``name`` and what is wrong."""
    if len(text) > 4 * MAX_DRAFT_CHARS:
        raise InvalidRequest(f"{name}: larger than a policy document can be")
    return Draft(_check_name(name), check_document(name, load_document(name, text)))


def load_document(name: str, text: str, loader: Any = None) -> object:
    """``text`` parsed as JSON, else as YAML with :func:`json_loader` (or ``loader``, a
    subclass of it): no anchors or aliases (a "billion laughs" would expand into gigabytes
    when the document is serialised), no duplicate keys, bounded nesting, and nothing JSON
    cannot hold. Raises :class:`InvalidRequest` naming ``name``, in one line."""
    import yaml

    from .exceptions import InvalidSudoPolicy

    try:
        try:
            document: object = json.loads(text)
        except ValueError:
            document = yaml.load(text, Loader=loader or json_loader())  # noqa: S506 (SafeLoader)
        odd = _not_json(document)
    except InvalidSudoPolicy as error:
        # The loader's words are the sudo policy's: keep what it found, name this file.
        found = str(error).removeprefix("invalid sudo policy: ")
        raise InvalidRequest(f"{name}: {found}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidRequest(f"{name}: neither JSON nor YAML{where}") from None
    except RecursionError:
        # json's decoder recurses per level: a hostile file nests deeper than the stack.
        raise InvalidRequest(f"{name}: nested too deeply to be a policy document") from None
    if odd:
        raise InvalidRequest(f"{name}: {odd} is no JSON value a policy document can hold")
    return document


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def json_loader() -> Any:
    """The sudo policy's hardened YAML loader, reading only what JSON can say: a date or
    time stays the string it was written as (IAM's grammar has no date: ``Version:
    2012-10-17`` and a ``DateLessThan`` value are strings)."""
    from .sudo_policy import _loader

    base = _loader()

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    # PyYAML keeps the resolvers per class: this class's own copy, without timestamps.
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    Loader.add_constructor(_TIMESTAMP, lambda loader, node: loader.construct_scalar(node))
    return Loader


def _not_json(value: object) -> str | None:
    """What in ``value`` JSON cannot hold (a type's name, or nan/inf), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"a key of type {type(key).__name__}"
            found = _not_json(item)
            if found:
                return found
        return None
    if isinstance(value, list):
        return next((found for item in value if (found := _not_json(item))), None)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return None
    return f"a value of type {type(value).__name__}"


def drafts_from_event(value: object) -> tuple[Draft, ...]:
    """The ``add_policies`` of a request to the function (a list of ``{"name",
    "document"}``), checked as :func:`parse_draft` checks a file; InvalidRequest else."""
    if not isinstance(value, list):
        raise InvalidRequest(f"add_policies must be a list, got {type(value).__name__}")
    if len(value) > MAX_DRAFTS:
        raise InvalidRequest(f"add_policies holds at most {MAX_DRAFTS} policies")
    drafts = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"name", "document"}:
            raise InvalidRequest('each of add_policies must be {"name": ..., "document": ...}')
        name = _check_name(item["name"])
        drafts.append(Draft(name, check_document(name, item["document"])))
    check_drafts(drafts)
    return tuple(drafts)


def check_drafts(drafts: Sequence[Draft]) -> None:
    """At most :data:`MAX_DRAFTS`, with distinct names; InvalidRequest else."""
    if len(drafts) > MAX_DRAFTS:
        raise InvalidRequest(f"give --add-policy at most {MAX_DRAFTS} times")
    names = [draft.name for draft in drafts]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise InvalidRequest(f"{twice}: added twice; give each file once")


def with_drafts(policies: RolePolicies, drafts: Sequence[Draft]) -> RolePolicies:
    """The role's policies with the drafts as more inline policies (``added:<name>``)."""
    arns, documents, inline = policies
    added = {f"{PREFIX}{draft.name}": dict(draft.document) for draft in drafts}
    return arns, documents, {**inline, **added}

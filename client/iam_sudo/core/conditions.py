"""Conditions and policy variables, decided for the target role before they reach STS.

A simulated session is the *base role's* session, assumed by iam-sudo: STS evaluates its
principal and session keys, not the role's (:mod:`.context_keys` classifies every key).
A Deny conditioned on the role's tag would go inert, an Allow conditioned on a
``SourceIdentity`` would grant what the role cannot. So each statement is rewritten for
the role, by the class of each key it uses (in a Condition, or as a ``${...}`` variable):

* ``principal`` keys, whose value for the role is known (its ARN, account, tags; a role
  has no ``aws:username``): the condition is decided as IAM would for the role. True: the
  condition is dropped, the statement kept; false: the statement never applies to the
  role and is left out. A variable is replaced by the role's value.
* ``session``, ``compute`` and ``unknown`` keys, and anything not decidable: resolved in
  the narrowing direction: an Allow that depends on it is left out, a Deny applies
  regardless of it.
* ``environment`` keys: kept and evaluated where the user runs the session; reported.
* ``same`` keys: kept as written.

A variable with no value and no default never matches (IAM User Guide, "IAM policy
elements: Variables and tags", policy variables with no value): a ``Resource`` pattern
with one matches nothing, so a Deny that only names such patterns never applies and is
left out, not widened.

Every rewrite is a :class:`Rewrite`, a line of the fidelity report.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .arn import account_of
from .context_keys import KeyClass, lookup
from .globs import arn_like, string_like
from .principal import allows_session_tags

# A key's value for the role: a string, a list of strings (multivalued; may be empty),
# None where the role's requests lack the key, or one of these.
UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
"""Present in every request of the role, with a value nobody knows in advance."""
MAYBE_ABSENT: Any = type("MaybeAbsent", (), {"__repr__": lambda self: "MAYBE_ABSENT"})()
"""Perhaps present, with an unknown value, perhaps absent."""
AS_SESSION: Any = type("AsSession", (), {"__repr__": lambda self: "AS_SESSION"})()
"""Whatever it is, the simulated session has the same value: keep the condition."""

EXACT, NARROWER, ENVIRONMENT = "exact", "narrower", "environment"

_VARIABLE = re.compile(r"\$\{\s*([^}]*?)\s*\}")
_DEFAULTED = re.compile(r"([^,]+?)\s*,\s*'([^']*)'")
_SPECIAL_VARIABLES = {"*", "?", "$"}  # ${*}, ${?}, ${$}: literal characters
_WILDCARDS = re.compile(r"[*?$]")
_QUALIFIERS = {"", "foranyvalue", "forallvalues"}
# operator (lowercase, without IfExists) -> (its positive form, negated)
_OPERATORS: dict[str, tuple[str, bool]] = {
    "stringequals": ("stringequals", False),
    "stringnotequals": ("stringequals", True),
    "stringequalsignorecase": ("stringequalsignorecase", False),
    "stringnotequalsignorecase": ("stringequalsignorecase", True),
    "stringlike": ("stringlike", False),
    "stringnotlike": ("stringlike", True),
    "numericequals": ("numericequals", False),
    "numericnotequals": ("numericequals", True),
    "numericlessthan": ("numericlessthan", False),
    "numericlessthanequals": ("numericlessthanequals", False),
    "numericgreaterthan": ("numericgreaterthan", False),
    "numericgreaterthanequals": ("numericgreaterthanequals", False),
    "dateequals": ("dateequals", False),
    "datenotequals": ("dateequals", True),
    "datelessthan": ("datelessthan", False),
    "datelessthanequals": ("datelessthanequals", False),
    "dategreaterthan": ("dategreaterthan", False),
    "dategreaterthanequals": ("dategreaterthanequals", False),
    "bool": ("bool", False),
    "binaryequals": ("binaryequals", False),
    "ipaddress": ("ipaddress", False),
    "notipaddress": ("ipaddress", True),
    "arnequals": ("arnlike", False),
    "arnlike": ("arnlike", False),
    "arnnotequals": ("arnlike", True),
    "arnnotlike": ("arnlike", True),
    "null": ("null", False),
}
# Policy variables are substituted only in string and ARN operators' values (IAM User
# Guide, "Where you can use policy variables"); elsewhere a ${ is not decided here.
_SUBSTITUTING = ("string", "arn")


@dataclass(frozen=True)
class Target:
    """What iam-sudo knows of the role a session stands in for: its ARN, its IAM tags,
    the base role whose session stands in for it (for the organization keys), and
    whether the role's own sessions may carry session tags.

    ``session_tags``: True when the role's trust policy lets its sessions be tagged
    (see :func:`iam_sudo.core.principal.allows_session_tags`). A session's principal tags are
    its session tags, incoming transitive tags and the role's IAM tags, session tags
    overriding the role's (IAM User Guide, "Pass session tags in AWS STS"): then no
    ``aws:PrincipalTag/*`` value is known, a tag the role has may be overridden, one it
    lacks may be present. Build it with :meth:`for_role` from the trust policy; the
    default (False) is for a role whose trust policy allows no tagging.
    """

    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)
    base_arn: str | None = None
    session_tags: bool = False

    @classmethod
    def for_role(
        cls,
        arn: str,
        tags: Mapping[str, str],
        trust_policy: Mapping[str, Any] | None,
        base_arn: str | None = None,
    ) -> Target:
        """The target for a role with these tags and this trust policy (None: unknown,
        read as allowing session tags)."""
        return cls(arn, dict(tags), base_arn, allows_session_tags(trust_policy))

    @property
    def account(self) -> str:
        return account_of(self.arn)

    def value(self, key: str) -> Any:
        """The key's value in the role's own requests: a string, a list (multivalued),
        None (absent), :data:`UNKNOWN`, :data:`MAYBE_ABSENT` or :data:`AS_SESSION`."""
        row = lookup(key)
        if row.key_class in (KeyClass.SAME, KeyClass.ENVIRONMENT):
            return AS_SESSION
        lowered = key.lower()
        if row.key_class is not KeyClass.PRINCIPAL:
            # A role's requests are always made with a session: both keys are present.
            return UNKNOWN if lowered in ("aws:userid", "aws:tokenissuetime") else MAYBE_ABSENT
        if lowered == "aws:principalarn":
            return self.arn  # for a role session, the role's ARN (not the session's)
        if lowered in ("aws:principalaccount", "kms:calleraccount"):
            return self.account or MAYBE_ABSENT
        if lowered.startswith("aws:principaltag/"):
            if self.session_tags:
                return MAYBE_ABSENT  # a session tag may set, or override, any of them
            wanted = lowered.split("/", 1)[1]
            return next((v for k, v in self.tags.items() if k.lower() == wanted), None)
        if lowered == "aws:principaltype":
            return "AssumedRole"
        if lowered == "aws:principalisawsservice":
            return "false"
        if lowered in ("aws:principalorgid", "aws:principalorgpaths"):
            # The organization is the account's: the session's is the role's only when
            # the base role is in the same account.
            same = self.base_arn is not None and account_of(self.base_arn) == self.account
            return AS_SESSION if same else MAYBE_ABSENT
        return None  # aws:username, aws:AssumedRoot, aws:PrincipalServiceName(sList)


@dataclass(frozen=True)
class Rewrite:
    """One context-dependent part of a statement and what became of it.

    ``policy`` is the inline policy's name or the managed policy's ARN, ``index`` the
    statement's 1-based index in it, ``keys`` the condition keys or policy variables
    concerned, ``key_class`` their :class:`KeyClass` value, ``kind`` one of ``"exact"``
    (decided as for the role), ``"narrower"`` (the session grants less than the role:
    an Allow left out, a Deny applying regardless) or ``"environment"`` (evaluated where
    the user runs the session).
    """

    source: str
    statement: str
    part: str
    outcome: str
    policy: str = ""
    index: int = 0
    keys: tuple[str, ...] = ()
    key_class: str = ""
    kind: str = EXACT

    def __str__(self) -> str:
        line = f"{self.source}, {self.statement}: {self.part}: {self.outcome}"
        return f"{line} [{self.key_class} key]" if self.key_class else line


def is_principal_key(key: str) -> bool:
    """Whether ``key`` names the principal's identity (see :mod:`.context_keys`)."""
    return lookup(key).key_class is KeyClass.PRINCIPAL


# --- IAM's condition operators (IAM User Guide, "IAM JSON policy elements: Condition
# operators") ----------------------------------------------------------------------------


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _date(text: str) -> datetime | None:
    """ISO 8601 (W3C profile) or seconds since the epoch, as the Date operators accept."""
    stripped = text.strip()
    if re.fullmatch(r"-?\d+", stripped):
        try:
            return datetime.fromtimestamp(int(stripped), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda a, b: a == b,
    "lessthan": lambda a, b: a < b,
    "lessthanequals": lambda a, b: a <= b,
    "greaterthan": lambda a, b: a > b,
    "greaterthanequals": lambda a, b: a >= b,
}


def _matches(positive: str, context: str, policy: str) -> bool | None:
    """Whether one context value matches one policy value under the positive operator;
    None where either value is not one the operator can read."""
    if positive == "stringequals":
        return context == policy
    if positive == "stringequalsignorecase":
        if context == policy:
            return True
        if not (context.isascii() and policy.isascii()):
            return None  # how IAM folds other letters' case is not documented
        return context.lower() == policy.lower()
    if positive == "stringlike":
        return string_like(context, policy)
    if positive == "arnlike":
        return arn_like(context, policy)
    # A context value the operator cannot read (a tag "high" under NumericNotEquals) is
    # not documented to match or not: undecided, so that a negation does not "hold".
    if positive == "bool":
        if policy.lower() not in ("true", "false") or context.lower() not in ("true", "false"):
            return None
        return context.lower() == policy.lower()
    if positive == "binaryequals":
        wanted, given = _binary(policy), _binary(context)
        return None if wanted is None or given is None else given == wanted
    if positive == "ipaddress":
        try:
            network = ipaddress.ip_network(policy.strip(), strict=False)
            address = ipaddress.ip_address(context.strip())
        except ValueError:
            return None
        return address.version == network.version and address in network
    for family, parse in (("numeric", _number), ("date", _date)):
        if positive.startswith(family):
            right, left = parse(policy), parse(context)
            if right is None or left is None:
                return None
            return _ORDER[positive.removeprefix(family)](left, right)
    return None


def parse_operator(operator: str) -> tuple[str, str, bool, bool] | None:
    """``(qualifier, positive operator, negated, if_exists)``, lowercase, or None for an
    operator IAM does not have."""
    qualifier, _, name = str(operator).rpartition(":")
    qualifier, base = qualifier.lower(), name.lower()
    if_exists = base.endswith("ifexists")
    base = base.removesuffix("ifexists")
    if qualifier not in _QUALIFIERS or base not in _OPERATORS:
        return None
    if base == "null" and (if_exists or qualifier):
        return None  # Null takes no IfExists nor set operator
    positive, negated = _OPERATORS[base]
    return qualifier, positive, negated, if_exists


def _texts(values: Any) -> list[str] | None:
    listed = values if isinstance(values, list) else [values]
    texts: list[str] = []
    for item in listed:
        if isinstance(item, bool):
            texts.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            texts.append(str(item))
        else:
            return None
    return texts


def decide(operator: str, values: Any, value: Any) -> bool | None:
    """Whether one condition (operator, the key's policy values) holds for the key's
    ``value`` in the role's request (see :meth:`Target.value`); None where it cannot be
    decided here (an unknown value, an operator or value IAM would not accept, values
    that are still policy variables, a multivalued value without a set operator).

    Rules (IAM User Guide): the policy values of a key are ORed, negated operators match
    when no value matches ("Condition operators"); a missing key makes a condition
    false, a negated one true, an ``...IfExists`` one true ("Condition operators",
    IfExists); with ``ForAnyValue`` a missing or empty key makes it false and with
    ``ForAllValues`` true, whatever IfExists or negation ("Single-valued vs. multivalued
    context keys"); ``Null`` "true" holds where the key is absent, "false" where present.
    """
    parsed = parse_operator(operator)
    texts = _texts(values)
    if parsed is None or texts is None or not texts or value is AS_SESSION:
        return None
    qualifier, positive, negated, if_exists = parsed
    if any("${" in text for text in texts) or value is MAYBE_ABSENT:
        return None
    if positive == "null":
        flags = {text.lower() for text in texts}
        if not flags <= {"true", "false"} or (isinstance(value, list) and not value):
            return None
        absent = value is None
        return any((flag == "true") == absent for flag in flags)
    if value is None:
        if qualifier:
            return qualifier == "forallvalues"
        return if_exists or negated
    if value is UNKNOWN:
        # Present and single-valued: only a pattern matching every string is decided.
        if positive == "stringlike" and "*" in texts:
            return not negated
        return None
    context = value if isinstance(value, list) else [value]
    if not context:
        return {"foranyvalue": False, "forallvalues": True}.get(qualifier)
    if not qualifier and len(context) > 1:
        return None
    results = []
    for item in context:
        hits = [_matches(positive, item, text) for text in texts]
        if None in hits:
            return None
        results.append(any(hits) != negated)
    return all(results) if qualifier == "forallvalues" else any(results)


# --- policy variables (IAM User Guide, "IAM policy elements: Variables and tags") -------


@dataclass
class _Substituted:
    """A value with the role's values put in; what could not be, and the variables seen."""

    value: Any
    unknown: bool = False
    no_value: bool = False
    names: list[str] = field(default_factory=list)


def _variable(body: str) -> tuple[str, str | None] | None:
    """``${key}`` or ``${key, 'default'}`` as (key, default); None for ``${*}`` etc."""
    if body in _SPECIAL_VARIABLES:
        return None
    defaulted = _DEFAULTED.fullmatch(body)
    if defaulted:
        return defaulted.group(1).strip(), defaulted.group(2)
    return body, None


def variables_in(value: Any, *, environment: bool = False) -> list[str]:
    """The keys of the policy variables in a JSON value that the role has differently:
    not ``same`` nor ``environment`` (or, with ``environment``, only those)."""
    found: list[str] = []
    kept = (KeyClass.SAME, KeyClass.ENVIRONMENT)

    def walk(item: Any) -> None:
        if isinstance(item, str):
            for match in _VARIABLE.finditer(item):
                parsed = _variable(match.group(1))
                if parsed is None:
                    continue
                key_class = lookup(parsed[0]).key_class
                if (key_class is KeyClass.ENVIRONMENT) if environment else key_class not in kept:
                    found.append(parsed[0])
        elif isinstance(item, list):
            for entry in item:
                walk(entry)

    walk(value)
    return list(dict.fromkeys(found))


def _substitute_text(text: str, target: Target) -> _Substituted:
    result = _Substituted(text)

    def replace(match: re.Match[str]) -> str:
        parsed = _variable(match.group(1))
        if parsed is None:
            return match.group(0)
        key, default = parsed
        row = lookup(key)
        if row.key_class in (KeyClass.SAME, KeyClass.ENVIRONMENT):
            return match.group(0)  # the session resolves it as the role's would
        result.names.append(key)
        found = target.value(key)
        if found is None and default is not None:
            found = default
        if found is None:
            result.no_value = True
        elif not isinstance(found, str) or row.multivalued or _WILDCARDS.search(found):
            # Unknown, multivalued (not usable as a variable), or a value whose wildcard
            # would widen the pattern it lands in.
            result.unknown = True
        else:
            return found
        return match.group(0)

    result.value = _VARIABLE.sub(replace, text)
    return result


def _substitute_list(values: Any, target: Target) -> tuple[list[_Substituted], bool]:
    listed = values if isinstance(values, list) else [values]
    done = [
        _substitute_text(item, target) if isinstance(item, str) else _Substituted(item)
        for item in listed
    ]
    return done, isinstance(values, list)


# --- statements --------------------------------------------------------------------------


def _describe(statement: Mapping[str, Any], index: int) -> str:
    actions = statement.get("Action", statement.get("NotAction", "?"))
    if isinstance(actions, list):
        shown = ",".join(map(str, actions[:3])) + (",..." if len(actions) > 3 else "")
    else:
        shown = str(actions)
    return f"statement {index + 1} ({statement.get('Effect')} {shown})"


def _shown(value: Any) -> str:
    if value is None:
        return "absent"
    if value is UNKNOWN or value is MAYBE_ABSENT:
        return "unknown"
    return repr(value)


def _class_of(keys: list[str]) -> str:
    """The most telling class of several keys: the one that made the decision."""
    classes = [lookup(key).key_class for key in keys]
    for wanted in (KeyClass.UNKNOWN, KeyClass.SESSION, KeyClass.COMPUTE, KeyClass.PRINCIPAL):
        # the first class present here is the one that decided
        if wanted in classes:
            return wanted.value
    return classes[0].value if classes else ""


def rewrite(
    statement: Mapping[str, Any],
    target: Target,
    source: str,
    index: int,
    *,
    policy: str = "",
) -> tuple[dict[str, Any] | None, list[Rewrite]]:
    """The statement as it must be sent for ``target``, or None to leave it out.

    ``index`` is 0-based; ``policy`` names the policy for :attr:`Rewrite.policy`.
    Statements whose keys and variables are all ``same`` come back unchanged, with no
    rewrites.
    """
    result: dict[str, Any] = copy.deepcopy(dict(statement))
    deny = result.get("Effect") == "Deny"
    label = _describe(statement, index)
    rewrites: list[Rewrite] = []

    def note(part: str, outcome: str, keys: list[str], kind: str) -> None:
        rewrites.append(
            Rewrite(
                source,
                label,
                part,
                outcome,
                policy=policy,
                index=index + 1,
                keys=tuple(keys),
                key_class=KeyClass.ENVIRONMENT.value if kind == ENVIRONMENT else _class_of(keys),
                kind=kind,
            )
        )

    for element in ("Resource", "NotResource"):
        if element in result and not _element_for_role(result, element, target, deny, note):
            return None, rewrites

    condition = result.get("Condition")
    if isinstance(condition, Mapping):
        kept: dict[str, Any] = {}
        for operator, block in condition.items():
            if not isinstance(block, Mapping):
                kept[operator] = block  # not a policy IAM would accept; left to IAM
                continue
            kept_block: dict[str, Any] = {}
            for key, values in block.items():
                verdict = _condition_for_role(str(operator), str(key), values, target, deny)
                if verdict.note is not None:
                    note(*verdict.note)
                if verdict.leave_out:
                    if verdict.note is not None and verdict.note[3] == EXACT:
                        # It never applies to the role: what was narrowed before is moot.
                        rewrites[:] = [r for r in rewrites if r.kind != NARROWER]
                    return None, rewrites
                if verdict.keep:
                    kept_block[key] = verdict.values
            if kept_block:
                kept[operator] = kept_block
        if kept:
            result["Condition"] = kept
        else:
            result.pop("Condition")
    return result, rewrites


_Note = Callable[[str, str, list[str], str], None]


def _element_for_role(
    result: dict[str, Any], element: str, target: Target, deny: bool, note: _Note
) -> bool:
    """Put the role's values into ``Resource``/``NotResource`` of ``result``, in place.

    A pattern with a variable that has no value matches nothing; one with an unknown
    value is dropped from an Allow's Resource (it grants less) and makes a Deny's
    Resource ``*`` (it denies more). A NotResource pattern that cannot be known exactly
    leaves an Allow out and is dropped from a Deny. Returns False to leave the statement
    out.
    """
    raw = result[element]
    listed = raw if isinstance(raw, list) else [raw]
    if not any(isinstance(p, str) and variables_in(p) for p in listed):
        where = variables_in(listed, environment=True)
        if where:
            part = f"{element} uses " + ", ".join(f"${{{n}}}" for n in where)
            note(part, "kept: evaluated where you run the session", where, ENVIRONMENT)
        return True
    exact: list[Any] = []
    unknown: list[str] = []
    no_value: list[str] = []
    names: list[str] = []
    for pattern in listed:
        done = _substitute_text(pattern, target) if isinstance(pattern, str) else None
        if done is None or not done.names:
            exact.append(pattern)
            continue
        names += done.names
        if done.no_value:
            no_value.append(pattern)
        elif done.unknown:
            unknown.append(pattern)
        else:
            exact.append(done.value)
    names = list(dict.fromkeys(names))
    part = f"{element} uses " + ", ".join(f"${{{n}}}" for n in names)
    missing = "a variable with no value for the role matches nothing"
    if element == "NotResource":
        if (unknown or no_value) and not deny:
            note(part, "not known exactly for the role: the Allow is left out", names, NARROWER)
            return False
        if exact:
            result[element] = exact if isinstance(raw, list) else exact[0]
        else:
            result.pop(element)
            result["Resource"] = "*"
        if unknown:
            note(part, "unknown for the role: the Deny covers those resources too", names, NARROWER)
        elif no_value:
            note(part, f"{missing}: pattern left out of NotResource", names, EXACT)
        else:
            note(part, "replaced by the role's value", names, EXACT)
        return True
    if unknown and deny:
        result[element] = "*"
        note(part, "unknown for the role: the Deny applies to every resource", names, NARROWER)
        return True
    if not exact:
        if unknown:
            note(part, "unknown for the role: the Allow is left out", names, NARROWER)
        else:
            note(part, f"{missing}: the statement never applies and is left out", names, EXACT)
        return False
    result[element] = exact if isinstance(raw, list) else exact[0]
    if unknown:
        note(part, "unknown for the role: those resources are left out", names, NARROWER)
    elif no_value:
        note(part, f"{missing}: those patterns are left out", names, EXACT)
    else:
        note(part, "replaced by the role's value", names, EXACT)
    return True


@dataclass
class _Verdict:
    """What becomes of one key of one condition operator."""

    keep: bool = True
    leave_out: bool = False
    values: Any = None
    note: tuple[str, str, list[str], str] | None = None


def _narrowed(part: str, keys: list[str], deny: bool, why: str) -> _Verdict:
    if deny:
        return _Verdict(
            keep=False, note=(part, f"{why}: the Deny applies regardless", keys, NARROWER)
        )
    return _Verdict(leave_out=True, note=(part, f"{why}: the Allow is left out", keys, NARROWER))


def _condition_for_role(
    operator: str, key: str, values: Any, target: Target, deny: bool
) -> _Verdict:
    """Decide one ``operator: {key: values}`` for the role (see the module's rules)."""
    parsed = parse_operator(operator)
    row = lookup(key)
    names = variables_in(values)
    where = variables_in(values, environment=True)
    keys = [key, *names, *where]
    replaced = "replaced by the role's value"
    part = f"{operator} {key}"
    if names or where:
        part += " uses " + ", ".join(f"${{{n}}}" for n in [*names, *where])
    if names:
        done, was_list = _substitute_list(values, target)
        if parsed is None or not parsed[1].startswith(_SUBSTITUTING):
            return _narrowed(part, keys, deny, "unknown for the role")
        if any(item.unknown for item in done):
            return _narrowed(part, keys, deny, "unknown for the role")
        if any(item.no_value for item in done):
            qualifier, _, negated, if_exists = parsed
            if negated:  # a value that matches nothing: the negation's meaning is unsure
                return _narrowed(part, keys, deny, "a variable with no value for the role")
            done = [item for item in done if not item.no_value]
            replaced += "; values with a variable that has no value left out (never match)"
            if not done and not qualifier and not if_exists:
                outcome = "a variable with no value never matches: statement left out"
                return _Verdict(leave_out=True, note=(part, outcome, keys, EXACT))
            if not done:
                return _narrowed(part, keys, deny, "a variable with no value for the role")
        values = [item.value for item in done] if was_list or len(done) > 1 else done[0].value
    if row.key_class is KeyClass.ENVIRONMENT or (row.key_class is KeyClass.SAME and where):
        outcome = "kept: evaluated where you run the session, not where the role runs"
        if names:
            outcome = f"{replaced}; {outcome}"
        return _Verdict(values=values, note=(part, outcome, keys, ENVIRONMENT))
    if row.key_class is KeyClass.SAME:
        if names:
            return _Verdict(values=values, note=(part, replaced, keys, EXACT))
        return _Verdict(values=values)
    value = target.value(key)
    if value is AS_SESSION:
        outcome = "the base role is in the role's account, so its value is the role's: kept"
        return _Verdict(values=values, note=(part, outcome, keys, EXACT))
    part = f"{part} (for the role: {_shown(value)})"
    verdict = decide(operator, values, value)
    if verdict is True:
        return _Verdict(
            keep=False, note=(part, "holds for the role: condition dropped", keys, EXACT)
        )
    if verdict is False:
        outcome = "never holds for the role: statement left out"
        return _Verdict(leave_out=True, note=(part, outcome, keys, EXACT))
    return _narrowed(part, keys, deny, "undecidable")

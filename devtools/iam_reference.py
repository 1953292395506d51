"""A reference evaluator of identity-based policies, written from the IAM User Guide.

Independent of ``iam_sudo.core.conditions``: it evaluates a request against statements and a
request context as AWS documents it, and is what the never-wider property is judged by.
Each rule cites its section of the IAM User Guide (docs.aws.amazon.com/IAM/latest/UserGuide).

A request context maps a lowercased key to a list of strings (a single-valued key has a
one-element list; a multivalued key may have an empty list); a key that is not in the
mapping is not present in the request context.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Context = Mapping[str, list[str]]


@dataclass(frozen=True)
class Request:
    """An action on a resource, with its request context."""

    action: str
    resource: str
    context: Context


# --- wildcards ----------------------------------------------------------------------------


def glob(value: str, pattern: str, *, ignore_case: bool = False) -> bool:
    """ "IAM JSON policy elements: Action / Resource" and StringLike ("Condition operators",
    String condition operators): ``*`` matches any run of characters, ``?`` any single
    character; nothing else is special. Case-sensitive unless said otherwise."""
    out = []
    for char in pattern:
        out.append({"*": ".*", "?": "."}.get(char) or re.escape(char))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(out), value, flags) is not None


# --- policy variables ("IAM policy elements: Variables and tags") ------------------------

NO_VALUE = object()
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def resolve(text: str, context: Context) -> Any:
    """``text`` with its variables replaced from the request context, or NO_VALUE.

    * "Using variables in policies": ``${key}`` is replaced by the key's value in the
      request context; key names are case-insensitive ("Condition" element).
    * "Special characters": ``${*}``, ``${?}``, ``${$}`` stand for a literal ``*``, ``?``,
      ``$``. (Kept as written here when the result is a pattern: a literal wildcard only
      matters where a value has one, which the tests do not generate.)
    * "Specifying default values": ``${key, 'default'}`` is the default when the key is
      not present.
    * "Policy variables with no value": a variable with no value (and no default) matches
      nothing: the element or condition value it is in does not match.
    * "Single-valued vs. multivalued context keys": a multivalued key cannot be a variable.
    """
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        body = match.group(1).strip()
        if body in ("*", "?", "$"):
            return match.group(0)
        key, default = body, None
        defaulted = re.fullmatch(r"(.+?)\s*,\s*'(.*)'", body)
        if defaulted:
            key, default = defaulted.group(1).strip(), defaulted.group(2)
        values = context.get(key.lower())
        if values is not None and len(values) == 1:
            return values[0]
        if values is None and default is not None:
            return default
        missing = True
        return ""

    replaced = _VARIABLE.sub(replace, text)
    return NO_VALUE if missing else replaced


# --- condition operators ("IAM JSON policy elements: Condition operators") -------------


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    """Date condition operators: ISO 8601 dates or epoch (UNIX) time."""
    if text.lstrip("-").isdigit():
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _arn(value: str, pattern: str) -> bool:
    """ARN condition operators: each of the six colon-delimited components is checked
    separately and each can include ``*`` and ``?`` wildcards."""
    left, right = value.split(":", 5), pattern.split(":", 5)
    return (
        len(left) == 6
        and len(right) == 6
        and all(glob(a, b) for a, b in zip(left, right, strict=True))
    )


def _ip(value: str, pattern: str) -> bool:
    """IP address condition operators: an address within a CIDR range."""
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return False


def _binary(value: str, pattern: str) -> bool:
    """BinaryEquals: the base-64 encoded values compared byte for byte."""
    try:
        return base64.b64decode(value) == base64.b64decode(pattern)
    except ValueError:
        return False


def _compare(kind: str, value: str, pattern: str) -> bool:
    """Whether one request value matches one policy value for a *positive* operator."""
    if kind == "StringEquals":
        return value == pattern
    if kind == "StringEqualsIgnoreCase":
        return value.lower() == pattern.lower()
    if kind == "StringLike":
        return glob(value, pattern)
    if kind in ("ArnEquals", "ArnLike"):
        return _arn(value, pattern)
    if kind == "Bool":
        return value.lower() == pattern.lower()
    if kind == "BinaryEquals":
        return _binary(value, pattern)
    if kind == "IpAddress":
        return _ip(value, pattern)
    family = "Numeric" if kind.startswith("Numeric") else "Date"
    parse = _number if family == "Numeric" else _date
    left, right = parse(value), parse(pattern)
    if left is None or right is None:
        return False
    relation = kind.removeprefix(family)
    return {
        "Equals": left == right,
        "LessThan": left < right,
        "LessThanEquals": left <= right,
        "GreaterThan": left > right,
        "GreaterThanEquals": left >= right,
    }[relation]


# Negated operators and the positive operator they negate ("Evaluation logic for negated
# matching condition operators": the request value matches none of the policy values).
NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
# "Where you can use policy variables": in Condition values of string and ARN operators.
_VARIABLES_IN = ("String", "Arn")


def condition_holds(operator: str, key: str, policy_values: Any, context: Context) -> bool:
    """One ``operator: {key: values}`` of a Condition element, for a request context."""
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    listed = policy_values if isinstance(policy_values, list) else [policy_values]
    texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in listed]
    present = context.get(key.lower())
    if name == "Null":
        # "Condition operator to check existence of condition keys": true means the key
        # does not exist (is null), false that it exists and is not null.
        is_null = present is None or present == []
        return any((text.lower() == "true") == is_null for text in texts)
    # "Single-valued vs. multivalued context keys": ForAnyValue is false and ForAllValues
    # true when the key is missing or resolves to an empty set.
    if qualifier == "ForAnyValue" and not present:
        return False
    if qualifier == "ForAllValues" and not present:
        return True
    if present is None:
        # "...IfExists condition operators": a missing key makes the condition true.
        # "Condition operators": a missing key does not match; a negated operator then
        # holds ("the condition can return true").
        return if_exists or name in NEGATED
    positive = NEGATED.get(name, name)
    if name.startswith(_VARIABLES_IN):
        resolved = [resolve(text, context) for text in texts]
    else:
        resolved = texts
    patterns = [text for text in resolved if text is not NO_VALUE]

    def one(value: str) -> bool:
        # "Condition with multiple context keys or values": values of a key are ORed,
        # a negated operator holds when the request value matches none of them.
        hit = any(_compare(positive, value, pattern) for pattern in patterns)
        return not hit if name in NEGATED else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in present)
    # ForAnyValue, and (where the tests generate one) a single-valued key.
    return any(one(value) for value in present)


# --- statements and evaluation ------------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_matches(patterns: list[Any], request: Request) -> bool:
    """ "IAM JSON policy elements: Resource": any pattern matching the resource, with its
    variables resolved; a pattern with a variable that has no value matches nothing."""
    for pattern in patterns:
        resolved = resolve(str(pattern), request.context)
        if resolved is not NO_VALUE and glob(request.resource, resolved):
            return True
    return False


def applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Whether a statement matches the request: its Action (or NotAction), Resource (or
    NotResource), and every condition ("IAM JSON policy elements: Condition": multiple
    operators and keys are ANDed)."""
    if "Action" in statement:
        if not any(glob(request.action, a, ignore_case=True) for a in _listed(statement["Action"])):
            return False
    elif any(glob(request.action, a, ignore_case=True) for a in _listed(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not _resource_matches(_listed(statement["Resource"]), request):
            return False
    elif _resource_matches(_listed(statement["NotResource"]), request):
        return False
    for operator, block in statement.get("Condition", {}).items():
        for key, values in block.items():
            if not condition_holds(operator, key, values, request.context):
                return False
    return True


def allowed(statements: Sequence[Mapping[str, Any]], request: Request) -> bool:
    """ "Policy evaluation logic": an explicit Deny in any statement that applies wins;
    otherwise an applying Allow allows; otherwise the request is implicitly denied.

    For a session of a role whose own policy allows everything, the session policies alone
    decide ("Session policies": the permissions are the intersection of the role's
    identity-based policies and the session policies).
    """
    applying = [s for s in statements if applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)


# --- policy evaluation logic ("Policy evaluation logic": "Determining whether a request is
# allowed or denied within an account") ---------------------------------------------------

# The policy types as the access-denied messages name them ("Troubleshoot access denied
# error messages": "with an explicit deny in a <type> policy", "because no <type> policy
# allows the <action> action"; a permissions boundary is named without "policy").
IDENTITY = "identity-based policy"
RESOURCE = "resource-based policy"
BOUNDARY = "permissions boundary"
SESSION = "session policy"


@dataclass(frozen=True)
class Principal:
    """Who makes the request: ``arn`` is the caller's ARN (a role session's
    ``arn:aws:sts::A:assumed-role/R/S``, or a user's), ``entity_arn`` the IAM entity's
    (the role's ``arn:aws:iam::A:role/PATH/R``, or the user's again), ``account`` its account.
    """

    arn: str
    entity_arn: str
    account: str


@dataclass(frozen=True)
class Decision:
    """The final decision on a request: ``allowed``, or the policy type that denied it
    (one of IDENTITY, RESOURCE, BOUNDARY, SESSION) and whether by an explicit deny."""

    allowed: bool
    policy_type: str | None = None
    explicit: bool = False

    def reason(self, action: str) -> str:
        """The phrase AWS ends an access-denied message with ("Troubleshoot access denied
        error messages"), e.g. ``because no session policy allows the s3:GetObject action``.
        ValueError for an allowed request."""
        if self.allowed or self.policy_type is None:
            raise ValueError("an allowed request has no reason for a denial")
        if self.explicit:
            article = "an" if self.policy_type[0] in "aeiou" else "a"
            return f"with an explicit deny in {article} {self.policy_type}"
        return f"because no {self.policy_type} allows the {action} action"


def statements(document: Any) -> list[Mapping[str, Any]]:
    """ "IAM JSON policy elements: Statement": a document's Statement is one statement or a
    list of them. ``document`` is the document's JSON text or its parsed mapping."""
    import json

    parsed = json.loads(document) if isinstance(document, str | bytes) else document
    found = parsed.get("Statement", [])
    return list(found) if isinstance(found, list) else [found]


def _principal_kind(value: str, principal: Principal) -> str | None:
    """What one ``"AWS"`` principal value names, for the caller ("IAM JSON policy elements:
    Principal"): ``"session"`` (``*``, or the caller's own ARN: a role session's ARN or a
    user's), ``"entity"`` (the role's ARN), ``"account"`` (the account, by ID or root ARN:
    it delegates to the account's identity-based policies, and grants nothing by itself), or
    None (someone else)."""
    if value == "*" or value == principal.arn:
        return "session"
    if value == principal.entity_arn:
        return "entity"
    partition = principal.arn.split(":")[1]
    if value in (principal.account, f"arn:{partition}:iam::{principal.account}:root"):
        return "account"
    return None


def _principals_named(statement: Mapping[str, Any], principal: Principal) -> set[str]:
    """The kinds (see _principal_kind) under which a resource-based statement names the
    caller; a ``NotPrincipal`` statement names everyone it does not list, as the caller."""
    if "NotPrincipal" in statement:
        listed = statement["NotPrincipal"]
        values = _listed(listed.get("AWS", [])) if isinstance(listed, Mapping) else [listed]
        named = {_principal_kind(str(v), principal) for v in values} - {None}
        return set() if named else {"session"}
    given = statement.get("Principal")
    if given == "*":
        return {"session"}
    values = _listed(given.get("AWS", [])) if isinstance(given, Mapping) else []
    return {kind for v in values if (kind := _principal_kind(str(v), principal))}


def decide(
    request: Request,
    principal: Principal,
    *,
    identity: Sequence[Mapping[str, Any]],
    session: Sequence[Mapping[str, Any]] | None = None,
    boundary: Sequence[Mapping[str, Any]] | None = None,
    resource: Sequence[Mapping[str, Any]] | None = None,
) -> Decision:
    """The final decision on a request by a principal of the resource's own account.

    ``identity``: the statements of the principal's identity-based policies; ``session``:
    of the session policies the session was created with (None: no session policy was
    passed, not "an empty one"); ``boundary``: of the entity's permissions boundary (None:
    no boundary); ``resource``: of the resource's resource-based policy (None: none).

    "Determining whether a request is allowed or denied within an account", step by step:

    1. Deny evaluation: an applicable Deny in any of these policies is the final decision
       (a resource-based statement applies only if it names the caller). Several may deny;
       "If multiple policy types deny an authorization request, AWS includes only one of
       those policy types in the error message": here the first in the flow chart's order
       (resource-based, identity-based, boundary, session).
    2. Organizations SCPs and RCPs: not modelled (no organization policy reaches here).
    3. Resource-based policies: an Allow naming the caller itself (the role session's ARN,
       the user's ARN, or ``*``) is final: "not limited by an implicit deny in an
       identity-based policy, a permissions boundary, or session policy". An Allow naming
       the role's ARN counts as the identity's own ("IAM role": "limited by an implicit
       deny in a permissions boundary or session policy"; "Session policies": "the
       permissions from the resource-based policy are added to the role or user's
       identity-based policy before the session is created").
    4. Identity-based policies: without an Allow (nor one from step 3), an implicit deny.
    5. Permissions boundaries: if present, it must allow ("Evaluating identity-based
       policies with permissions boundaries": the intersection).
    6. Session policies: if passed, they must allow ("Session policies": "the resulting
       session's permissions are the intersection of the IAM entity's identity-based
       policy and the session policies").
    """
    applying_resource = [
        (s, kinds)
        for s in resource or ()
        if applies(s, request) and (kinds := _principals_named(s, principal))
    ]
    applying = {
        IDENTITY: [s for s in identity if applies(s, request)],
        BOUNDARY: [s for s in boundary or () if applies(s, request)],
        SESSION: [s for s in session or () if applies(s, request)],
    }
    # 1. Deny evaluation.
    if any(s["Effect"] == "Deny" for s, _ in applying_resource):
        return Decision(False, RESOURCE, explicit=True)
    for kind in (IDENTITY, BOUNDARY, SESSION):
        if any(s["Effect"] == "Deny" for s in applying[kind]):
            return Decision(False, kind, explicit=True)
    # 3. Resource-based policies.
    granted_to = set().union(*(kinds for s, kinds in applying_resource if s["Effect"] == "Allow"))
    if "session" in granted_to:
        return Decision(True)
    # 4. Identity-based policies (with what a resource-based policy grants the role's ARN).
    if "entity" not in granted_to and not any(s["Effect"] == "Allow" for s in applying[IDENTITY]):
        return Decision(False, IDENTITY)
    # 5. Permissions boundaries, 6. session policies.
    for kind, present in ((BOUNDARY, boundary), (SESSION, session)):
        if present is not None and not any(s["Effect"] == "Allow" for s in applying[kind]):
            return Decision(False, kind)
    return Decision(True)

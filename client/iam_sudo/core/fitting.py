"""Fitting a role's policies into STS's session-policy limits, exactly, never wider.

STS takes one inline session policy and at most 10 managed policy ARNs, and counts
**the inline policy and the ARNs together** against 2,048 plaintext characters. Many roles
fit as they are; the rest are fitted, in this order, each step exact:

1. compaction: compact JSON, and statements that differ only in their actions (or only
   in their resources) merged into one. Purely syntactic: no wildcard is introduced,
   NotAction and NotResource sets are never merged, Deny statements and Conditions stay
   as they are;
2. packing: statements go into *content-addressed* customer-managed policies under the
   path ``/iam-sudo/`` (named after a hash of their document, so the same statements
   always make the same policy, created once and reused), passed by ARN;
3. managed policies beyond what 10 ARNs hold are read and packed the same way.

Session policies are evaluated as one set (an Allow in any grants, a Deny in any
denies), so moving a statement from one document to another changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .documents import as_list
from .exceptions import SessionLimitExceeded

MAX_POLICY_ARNS = 10
MAX_PLAINTEXT_CHARS = 2048
MAX_MANAGED_POLICY_CHARS = 6144
POLICY_VERSION = "2012-10-17"
POLICY_PATH = "/iam-sudo/"
POLICY_NAME_PREFIX = "iam-sudo-"  # with POLICY_PATH, marks the policies iam-sudo owns
_HASH_CHARS = 20

Statement = dict[str, Any]


def compact_json(value: Any) -> str:
    """JSON as STS and IAM count it: no whitespace outside strings."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def document(statements: Sequence[Statement]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def plaintext_chars(policy: str | None, arns: Sequence[str]) -> int:
    """What STS counts against its 2,048 characters: the inline policy and the ARNs."""
    return len(policy or "") + sum(len(arn) for arn in arns)


def _one_or_list(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else values


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _key(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_ELEMENTS = ("Action", "NotAction", "Resource", "NotResource")


def _normalized(statement: Statement) -> Statement:
    """Element values as sorted lists without repeats: the same grants, one spelling."""
    result = {k: v for k, v in statement.items() if k != "Sid"}
    for element in _ELEMENTS:
        if element in result:
            values = _unique(as_list(result[element]))
            result[element] = sorted(values) if all(isinstance(v, str) for v in values) else values
    return result


def _merge_by(statements: list[Statement], merged: str, same: tuple[str, ...]) -> list[Statement]:
    """Merge statements whose every element but ``merged`` is one of ``same`` and equal."""
    out: list[Statement] = []
    groups: dict[str, Statement] = {}
    for statement in statements:
        if merged not in statement or not set(statement) - {merged} <= set(same):
            out.append(statement)
            continue
        group = _key({k: statement.get(k) for k in same}) + _key(sorted(statement))
        if group in groups:
            into = groups[group]
            into[merged] = sorted(_unique([*into[merged], *statement[merged]]))
        else:
            groups[group] = {**statement, merged: list(statement[merged])}
            out.append(groups[group])
    return out


def compact(statements: Sequence[Statement]) -> list[Statement]:
    """Exactly the same grants in as few characters as syntax allows.

    Statements that differ only in Action merge (same Effect, Resource or NotResource,
    Condition), then those that differ only in Resource (same Effect, Action,
    Condition). A statement with NotAction never merges its actions, nor one with
    NotResource its resources. Identical statements appear once. The order is
    canonical, so that the same statements always make the same documents.
    """
    merged = [_normalized(s) for s in statements]
    while True:  # a merge by resource can make statements that now merge by action
        before = len(merged)
        merged = _merge_by(merged, "Action", ("Effect", "Resource", "NotResource", "Condition"))
        merged = _merge_by(merged, "Resource", ("Effect", "Action", "Condition"))
        merged = list({_key(s): s for s in merged}.values())
        if len(merged) == before:
            break
    result: dict[str, Statement] = {}
    for statement in merged:
        tidy = {
            k: _one_or_list(v) if k in _ELEMENTS and isinstance(v, list) else v
            for k, v in statement.items()
        }
        result.setdefault(_key(tidy), tidy)
    return [result[key] for key in sorted(result)]


def policy_name(doc: Mapping[str, Any]) -> str:
    """A content-addressed policy name: the same document always has the same name."""
    digest = hashlib.sha256(compact_json(doc).encode()).hexdigest()[:_HASH_CHARS]
    return f"{POLICY_NAME_PREFIX}{digest}"


@dataclass(frozen=True)
class PackedPolicy:
    """A customer-managed policy iam-sudo creates (once) to carry statements by ARN."""

    name: str
    arn: str
    document: str


@dataclass(frozen=True)
class ManagedPolicy:
    """A managed policy attached to the role, with its document where it was read."""

    arn: str
    statements: tuple[Statement, ...] | None = None
    #: Its statements needed rewriting (principal-dependent): it must not go by ARN.
    rewritten: bool = False


@dataclass(frozen=True)
class Fit:
    """The session policies of one AssumeRole request, within STS's limits."""

    policy: str | None
    policy_arns: tuple[str, ...]
    packed: tuple[PackedPolicy, ...] = ()
    inlined_managed: tuple[str, ...] = field(default=())

    @property
    def plaintext_chars(self) -> int:
        return plaintext_chars(self.policy, self.policy_arns)


def _bins(statements: list[Statement]) -> list[list[Statement]] | None:
    """First-fit-decreasing into documents of at most 6,144 characters; None if one cannot."""
    empty = len(compact_json(document([])))
    sized = sorted(statements, key=lambda s: (-len(compact_json(s)), _key(s)))
    bins: list[tuple[list[Statement], int]] = []
    for statement in sized:
        size = len(compact_json(statement)) + 1
        if empty + size > MAX_MANAGED_POLICY_CHARS:
            return None
        for index, (members, used) in enumerate(bins):
            if used + size <= MAX_MANAGED_POLICY_CHARS:
                bins[index] = ([*members, statement], used + size)
                break
        else:
            bins.append(([statement], empty + size))
    return [compact(members) for members, _ in bins]


def _packed(statements: list[Statement], partition: str, account: str) -> PackedPolicy:
    doc = document(statements)
    name = policy_name(doc)
    return PackedPolicy(
        name, f"arn:{partition}:iam::{account}:policy{POLICY_PATH}{name}", compact_json(doc)
    )


def _try(
    arns: list[str], pool: list[Statement], partition: str, account: str
) -> tuple[str | None, list[str], list[PackedPolicy]] | None:
    """Fit ``pool`` beside ``arns``: all inline, else one packed bin inline and the rest by ARN."""
    inline = compact_json(document(pool)) if pool else None
    if len(arns) <= MAX_POLICY_ARNS and plaintext_chars(inline, arns) <= MAX_PLAINTEXT_CHARS:
        return inline, arns, []
    bins = _bins(pool)
    if bins is None:
        return None
    packed = [_packed(members, partition, account) for members in bins]
    if not packed:
        return None  # nothing to pack, and the ARNs alone do not fit
    # The smallest bin inline, where it fits there: one policy fewer to create and pass.
    smallest = min(range(len(packed)), key=lambda i: len(packed[i].document))
    others = [p for i, p in enumerate(packed) if i != smallest]
    with_inline = arns + [p.arn for p in others]
    kept = packed[smallest].document
    if (
        len(with_inline) <= MAX_POLICY_ARNS
        and plaintext_chars(kept, with_inline) <= MAX_PLAINTEXT_CHARS
    ):
        return kept, with_inline, others
    all_arns = arns + [p.arn for p in packed]
    if len(all_arns) <= MAX_POLICY_ARNS and plaintext_chars(None, all_arns) <= MAX_PLAINTEXT_CHARS:
        return None, all_arns, packed
    return None


def fit(
    *,
    role_name: str,
    managed: Sequence[ManagedPolicy],
    inline: Sequence[Statement],
    partition: str,
    account: str,
) -> Fit:
    """The session policies for a role's managed policies and inline statements.

    ``inline`` holds the statements of the inline policies, already normalized
    (2012-10-17 meaning, no Sids) and rewritten for principal-dependent conditions.
    Raises :class:`SessionLimitExceeded` when even packing cannot fit them.
    """
    by_arn = [m for m in managed if not m.rewritten]
    pool = list(inline)
    for rewritten_policy in managed:
        if rewritten_policy.rewritten:
            pool += list(rewritten_policy.statements or ())
    pool = compact(pool)
    if not pool and not by_arn:
        # Without any session policy the session would get all of the base role's rights.
        pool = [{"Effect": "Deny", "Action": "*", "Resource": "*"}]
    arns = list(dict.fromkeys(m.arn for m in by_arn))
    readable = sorted(
        (m for m in by_arn if m.statements is not None),
        key=lambda m: (len(compact_json(list(m.statements or ()))), m.arn),
    )
    # Convert managed policies into packed statements, smallest first, until it fits.
    for converted in range(len(readable) + 1):
        inlined = [m.arn for m in readable[:converted]]
        extra = [s for m in readable[:converted] for s in (m.statements or ())]
        attempt = _try(
            [a for a in arns if a not in inlined], compact(pool + extra), partition, account
        )
        if attempt is not None:
            inline_policy, policy_arns, packed = attempt
            rewritten = tuple(m.arn for m in managed if m.rewritten)
            return Fit(inline_policy, tuple(policy_arns), tuple(packed), (*rewritten, *inlined))
    unread = len(arns) - len(readable)
    raise SessionLimitExceeded(
        f"role {role_name}'s policies cannot fit STS's session limits even packed into "
        f"managed policies ({len(arns)} managed policies, {unread} of them unreadable, "
        f"{len(compact_json(pool))} characters of inline statements); STS allows "
        f"{MAX_POLICY_ARNS} ARNs and {MAX_PLAINTEXT_CHARS} characters"
    )

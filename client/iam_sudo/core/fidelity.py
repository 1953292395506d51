"""What a simulated session cannot reproduce of the role it stands in for, said plainly.

A session of the base role with the target's policies can do what the target can, never
more, but it is not the target: it has another principal, and the base role's own
policies are its ceiling. Each :class:`Finding` is one structured object and one line.

Kinds (what ``--dry-run`` prints under ``Findings``, what scripts and CI read):

* ``narrower``: the session is refused something the role is allowed (the base role
  cannot grant it, or an Allow was left out because a value is unknown for the role).
  ``--exact`` refuses a simulation with any.
* ``environment``: the outcome depends on where and how the request is made.
* ``not-reproduced``: what no session policy reproduces: another principal, trust,
  resource-based policies, tags.
* ``exact``: informational: what iam-sudo did so that the session matches the role (a
  principal condition decided and dropped, a boundary carried by a base role variant).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .ceiling import Narrowing
from .roles import Role
from .session import SessionPlan
from .text import names_and_more as _names

Kind = Literal["narrower", "environment", "not-reproduced", "exact"]
KINDS: tuple[Kind, ...] = ("narrower", "environment", "not-reproduced", "exact")


@dataclass(frozen=True)
class Finding:
    """One thing the session does not reproduce of the role, or does differently.

    ``policy``: the role's inline policy name or managed policy ARN (None for the role as
    a whole); ``statement``: its 1-based index (None likewise); ``actions`` or
    ``condition_keys``: what is concerned; ``kind``: see the module; ``reason``: why;
    ``line``: the one-line form, as the fidelity report prints it.
    """

    kind: Kind
    reason: str
    line: str
    policy: str | None = None
    statement: int | None = None
    actions: tuple[str, ...] = ()
    condition_keys: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.line

    def to_json(self) -> dict[str, Any]:
        """``{"Policy", "Statement", "Actions", "ConditionKeys", "Kind", "Reason"}``."""
        return {
            "Policy": self.policy,
            "Statement": self.statement,
            "Actions": list(self.actions),
            "ConditionKeys": list(self.condition_keys),
            "Kind": self.kind,
            "Reason": self.reason,
        }


def narrowing_finding(narrowing: Narrowing, base_role: str) -> Finding:
    """A finding of kind ``narrower`` for what the base role cannot (or may not) grant."""
    line = narrowing.line(base_role)
    return Finding(
        kind="narrower",
        reason=line.split("): ", 1)[1],
        line=line,
        policy=narrowing.policy,
        statement=narrowing.statement,
        actions=narrowing.actions,
    )


_SOURCE = re.compile(r"(inline policy|managed policy) (.+)")
_INDEX = re.compile(r"statement (\d+)")
_KEY = re.compile(r"\$?\{?\s*(aws:[A-Za-z]+(?:/[^\s,}]+)?)")


def rewrite_finding(rewrite: Any) -> Finding:
    """A finding for a :class:`~iam_sudo.core.conditions.Rewrite`, with or without its
    structured fields (``policy``, ``index``, ``keys``, ``kind``).

    Without them they are read from its text; the kind from the outcome: an Allow left
    out or a Deny applied regardless is ``narrower``; a condition decided for the role (or
    a variable replaced by the role's value, or a statement that never applies to the
    role) is ``exact``.
    """
    line = str(rewrite)
    source = str(getattr(rewrite, "source", ""))
    policy = getattr(rewrite, "policy", None) or None  # "" and 0: not given
    if policy is None:
        match = _SOURCE.fullmatch(source)
        policy = match.group(2) if match else None
    index = getattr(rewrite, "index", None) or None
    if index is None:
        found = _INDEX.match(str(getattr(rewrite, "statement", "")))
        index = int(found.group(1)) if found else None
    keys = getattr(rewrite, "keys", None) or None
    if keys is None:
        keys = tuple(dict.fromkeys(_KEY.findall(str(getattr(rewrite, "part", "")))))
    given = getattr(rewrite, "kind", None)
    outcome = str(getattr(rewrite, "outcome", ""))
    kind: Kind = next((k for k in KINDS if k == given), "exact")
    if given not in KINDS:
        narrower = "Allow is left out" in outcome or "Deny applies" in outcome
        kind = "narrower" if narrower else "exact"
    return Finding(
        kind=kind,
        reason=outcome or line,
        line=line,
        policy=str(policy) if policy is not None else None,
        statement=int(index) if index is not None else None,
        condition_keys=tuple(str(k) for k in keys),
    )


def roles_trusting(role: Role, roles: Iterable[Role]) -> list[str]:
    """Names of the roles whose trust policy names ``role`` by its ARN."""
    return sorted(
        other.name
        for other in roles
        if other.arn != role.arn
        and any(p.type == "AWS" and p.id == role.arn for p in other.principals)
    )


def report(
    *,
    role: Role,
    plan: SessionPlan,
    roles: Iterable[Role] = (),
    boundary: str | None = None,
    role_tags: Mapping[str, str] | None = None,
    tags_passed: bool = True,
    base_role_tags: Mapping[str, str] | None = None,
    narrowings: Iterable[Narrowing] = (),
    ceiling_unknown: str | None = None,
) -> list[Finding]:
    """The fidelity report: one finding per thing the session will not reproduce.

    ``narrowings`` are what the base role cannot grant (see :mod:`iam_sudo.core.ceiling`);
    ``ceiling_unknown`` says why the base role's policies could not be read, if they
    could not: then every Allow may be narrowed, and that is a ``narrower`` finding.
    """
    base = plan.request.role_arn
    findings = [rewrite_finding(rewrite) for rewrite in plan.rewrites]
    base_name = base.rsplit("/", 1)[-1]
    findings += [narrowing_finding(n, base_name) for n in narrowings]

    def note(kind: Kind, line: str) -> None:
        findings.append(Finding(kind=kind, reason=line, line=line))

    if ceiling_unknown:
        note(
            "narrower",
            f"the base role {base_name}'s policies could not be read ({ceiling_unknown}): "
            "the session may be refused what the role is allowed",
        )
    trusting = roles_trusting(role, roles)
    if trusting:
        note(
            "not-reproduced",
            f"roles {_names(trusting)} trust {role.arn}; the session is {base}'s and cannot "
            "assume them",
        )
    note(
        "not-reproduced",
        f"resource-based policies (S3 buckets, KMS keys, SQS queues, SNS topics, Lambda "
        f"functions, ...) that name {role.arn} do not match the session, whose principal "
        f"is a session of {base}",
    )
    if boundary:
        note(
            "exact",
            f"the role's permissions boundary {boundary} applies through the base role "
            f"{base}, which carries the same boundary",
        )
    if role_tags and not tags_passed:
        note(
            "not-reproduced",
            f"role tags {_names(sorted(role_tags))} are not passed as session tags "
            "(--no-session-tags): ABAC conditions on resources will not see them",
        )
    elif plan.dropped_tags:
        note(
            "not-reproduced",
            f"role tags {_names(list(plan.dropped_tags))} are not passed as session tags: "
            "over STS's limits (50 tags, keys of 128 and values of 256 characters)",
        )
    if base_role_tags:
        own = sorted(k for k in base_role_tags if k not in (role_tags or {}) or not tags_passed)
        if own:
            note(
                "not-reproduced",
                f"the base role's own tags {_names(own)} show in the session's "
                "aws:PrincipalTag; the role has no such tags",
            )
    return findings


def narrowing_lines(findings: Iterable[Finding]) -> list[str]:
    """The lines of the findings that make a simulation inexact (what ``--exact`` refuses)."""
    return [f.line for f in findings if f.kind == "narrower"]

"""What a simulated session cannot reproduce of the role it stands in for, said plainly.

A session of the base role with the target's policies can do what the target can, never
more, but it is not the target: it has another principal. Each finding is one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._text import names_and_more as _names
from .roles import Role
from .session import SessionPlan


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
) -> list[str]:
    """The fidelity report: one plain line per thing the session will not reproduce."""
    base = plan.request.role_arn
    lines = [str(rewrite) for rewrite in plan.rewrites]
    trusting = roles_trusting(role, roles)
    if trusting:
        lines.append(
            f"roles {_names(trusting)} trust {role.arn}; the session is {base}'s and cannot "
            "assume them"
        )
    lines.append(
        f"resource-based policies (S3 buckets, KMS keys, SQS queues, SNS topics, Lambda "
        f"functions, ...) that name {role.arn} do not match the session, whose principal "
        f"is a session of {base}"
    )
    if boundary:
        lines.append(
            f"the role's permissions boundary {boundary} applies through the base role "
            f"{base}, which carries the same boundary"
        )
    if role_tags and not tags_passed:
        lines.append(
            f"role tags {_names(sorted(role_tags))} are not passed as session tags "
            "(--no-session-tags): ABAC conditions on resources will not see them"
        )
    elif plan.dropped_tags:
        lines.append(
            f"role tags {_names(list(plan.dropped_tags))} are not passed as session tags: "
            "over STS's limits (50 tags, keys of 128 and values of 256 characters)"
        )
    if base_role_tags:
        own = sorted(k for k in base_role_tags if k not in (role_tags or {}) or not tags_passed)
        if own:
            lines.append(
                f"the base role's own tags {_names(own)} show in the session's "
                "aws:PrincipalTag; the role has no such tags"
            )
    return lines

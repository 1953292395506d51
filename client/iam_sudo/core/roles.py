"""Roles, and how a requested name resolves to exactly one of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .arn import ROLE_ARN, ROLE_NAME
from .exceptions import AmbiguousRole, InvalidRequest, RoleNotFound
from .principal import Principal, admits, trusted_principals
from .text import bounded, names_and_more


@dataclass(frozen=True)
class Role:
    """An IAM role as listed by IAM: its name, ARN and trust policy."""

    name: str
    arn: str
    trust_policy: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_iam(cls, item: Mapping[str, Any]) -> Role:
        """Build from an item of IAM's ListRoles or GetRole response."""
        return cls(
            name=item["RoleName"],
            arn=item["Arn"],
            trust_policy=item.get("AssumeRolePolicyDocument") or {},
        )

    @property
    def principals(self) -> list[Principal]:
        """The principals the role's trust policy allows to assume it."""
        return trusted_principals(self.trust_policy)


@dataclass(frozen=True)
class RoleDetails:
    """What GetRole tells of a role beyond the listing."""

    arn: str
    boundary: str | None
    tags: dict[str, str]

    @classmethod
    def from_iam(cls, role: dict[str, Any]) -> RoleDetails:
        """From the ``Role`` of an iam:GetRole answer."""
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        tags = {str(t["Key"]): str(t["Value"]) for t in role.get("Tags") or []}
        return cls(str(role["Arn"]), str(boundary) if boundary else None, tags)


# A role's managed policy ARNs, their documents (ARN -> document), and inline policies.
RolePolicies = tuple[list[str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]


def is_role_arn(text: str) -> bool:
    """Whether ``text`` is an IAM role ARN, in any partition (:mod:`.partitions`)."""
    return ROLE_ARN.fullmatch(text) is not None


def role_name_of(arn: str) -> str:
    """The role name at the end of a role ARN (after any path)."""
    match = ROLE_ARN.fullmatch(arn)
    if match is None:
        raise ValueError(f"not a role ARN: {arn}")
    return match.group(3)


def check_role_reference(name_or_arn: str) -> None:
    """Raise :class:`InvalidRequest` unless ``name_or_arn`` is a role name or role ARN."""
    if name_or_arn.startswith("arn:"):
        if not is_role_arn(name_or_arn):
            raise InvalidRequest(
                f"{bounded(name_or_arn)} is not a valid IAM role ARN; "
                "use arn:<partition>:iam::<account>:role/<name> or a bare role name"
            )
    elif not ROLE_NAME.fullmatch(name_or_arn):
        path, _, last = name_or_arn.rpartition("/")
        if path and ROLE_NAME.fullmatch(last):
            # A role at a path (/app/Admin): IAM names it without the path.
            raise InvalidRequest(
                f"{bounded(name_or_arn)} is not a valid IAM role name: a role's name has no "
                f"path; use {last} (the name alone) or the role's ARN"
            )
        raise InvalidRequest(
            f"{bounded(name_or_arn)} is not a valid IAM role name; "
            "use up to 64 letters, digits and +=,.@_- or a role ARN"
        )


def boundary_variant_name(base_role_name: str, boundary_arn: str) -> str:
    """The name of the base role's variant for a boundary: ``<base>-<boundary policy name>``."""
    return f"{base_role_name}-{boundary_arn.rsplit('/', 1)[-1]}"[:64]


def boundary_variant_arn(base_role_arn: str, boundary_arn: str) -> str:
    """The ARN of the base role's variant carrying ``boundary_arn``, beside the base role.

    The Pulumi program creates one per ARN in ``iam-sudo:boundaryVariants``.
    """
    prefix = base_role_arn.rsplit("/", 1)[0]
    return f"{prefix}/{boundary_variant_name(role_name_of(base_role_arn), boundary_arn)}"


def role_arn(name_or_arn: str, *, partition: str, account: str) -> str:
    """The ARN of a role given by ARN (returned as is) or by bare name in ``account``."""
    check_role_reference(name_or_arn)
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:{partition}:iam::{account}:role/{name_or_arn}"


def resolve_role(roles: Iterable[Role], name: str, principal: Principal | None = None) -> Role:
    """The one role whose name contains ``name`` and whose trust policy admits ``principal``.

    An exact name match wins over roles that merely contain ``name``. Raises
    :class:`RoleNotFound` when nothing matches and :class:`AmbiguousRole` when several do.
    """
    candidates = [
        role
        for role in roles
        if name in role.name and (principal is None or admits(role.trust_policy, principal))
    ]
    exact = [role for role in candidates if role.name == name]
    if len(exact) == 1:
        return exact[0]
    if len(candidates) == 1:
        return candidates[0]

    criteria = f"name {name!r}" + (f" and principal {principal}" if principal else "")
    if not candidates:
        raise RoleNotFound(
            f"no role matches {criteria} among the roles you may simulate; list them with "
            "`iam-sudo roles` (or `iam-sudo roles --local`)"
        )
    names = sorted(role.name for role in candidates)
    hint = "use a longer part of the name" + ("" if principal else " or --principal")
    raise AmbiguousRole(
        f"{len(names)} roles match {criteria}: {names_and_more(names)}; {hint}",
        candidates=names,
    )

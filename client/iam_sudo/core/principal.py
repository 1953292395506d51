"""Principals (``TYPE:ID``) and what a role's trust policy admits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import arn
from .arn import is_account_id
from .documents import as_list, statement_list
from .exceptions import InvalidPrincipal
from .globs import action_matches
from .partitions import NAMES, service_principal_aliases

# The actions by which a trusted principal becomes the role: a statement that allows none
# of them (e.g. only sts:TagSession) lets nobody assume the role.
_ASSUME_ACTIONS = ("sts:assumerole", "sts:assumerolewithwebidentity", "sts:assumerolewithsaml")
# The actions by which a session of the role may carry principal tags other than the
# role's: session tags (sts:TagSession) and the federated assumptions, whose tokens and
# assertions carry tags (IAM User Guide, "Pass session tags in AWS STS").
_TAGGING_ACTIONS = ("sts:tagsession", "sts:assumerolewithwebidentity", "sts:assumerolewithsaml")


@dataclass(frozen=True, order=True)
class Principal:
    """A principal as IAM names it in a trust policy, e.g. ``Service:ecs-tasks.amazonaws.com``."""

    type: str
    id: str

    @classmethod
    def parse(cls, text: str) -> Principal:
        """Parse ``TYPE:ID``, splitting on the first colon so that ARNs survive intact."""
        type_, sep, id_ = text.partition(":")
        if not sep or not type_.strip() or not id_.strip() or type_ != type_.strip():
            raise InvalidPrincipal(
                f"invalid principal {text!r}: expected TYPE:ID, "
                "e.g. Service:ecs-tasks.amazonaws.com or AWS:arn:aws:iam::123456789012:root"
            )
        return cls(type_, id_.strip())

    def __str__(self) -> str:
        return f"{self.type}:{self.id}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every spelling IAM accepts for this principal's id.

        An account is ``123456789012`` or ``arn:<partition>:iam::123456789012:root``: IAM
        stores the short form as the ARN, so a glob written for one must match the other.
        A service is ``X.amazonaws.com`` or, in AWS in China, also ``X.amazonaws.com.cn``
        (:func:`partitions.service_principal_aliases`).
        """
        if self.type == "Service":
            return service_principal_aliases(self.id)
        if self.type != "AWS":
            return (self.id,)
        account = _account_of(self.id)
        if account is None:
            return (self.id,)
        return (account, *(f"arn:{partition}:iam::{account}:root" for partition in NAMES))

    @property
    def is_wildcard(self) -> bool:
        """Whether this is IAM's everyone principal (``"*"`` or ``{"AWS": "*"}``)."""
        return self.id == "*" and self.type in ("*", "AWS")


def _allows_assuming(
    statement: Mapping[str, Any], actions: tuple[str, ...] = _ASSUME_ACTIONS
) -> bool:
    """Whether the statement's Action (or NotAction) covers one of ``actions`` (default:
    the AssumeRole actions)."""

    def covered(patterns: Any) -> bool:
        return any(
            isinstance(pattern, str) and action_matches(action, pattern)
            for pattern in as_list(patterns)
            for action in actions
        )

    if "NotAction" in statement:
        excluded = as_list(statement["NotAction"])
        return any(
            not any(isinstance(p, str) and action_matches(action, p) for p in excluded)
            for action in actions
        )
    return covered(statement.get("Action"))


def trusted_principals(trust_policy: Mapping[str, Any] | None) -> list[Principal]:
    """The principals that a trust policy allows to assume the role, in order, once each.

    Only Allow statements whose actions include assuming the role count: Deny statements
    never add a principal, nor does one that allows only, say, ``sts:TagSession``.
    ``"Principal": "*"`` is IAM's shorthand for ``{"AWS": "*"}`` and is returned as that.
    """
    found: dict[Principal, None] = {}
    for statement in statement_list(trust_policy):
        if not isinstance(statement, Mapping):
            continue  # a foreign document: what cannot be read grants nothing
        if statement.get("Effect") != "Allow" or not _allows_assuming(statement):
            continue
        principal = statement.get("Principal")
        if principal == "*":
            found[Principal("AWS", "*")] = None
        elif isinstance(principal, Mapping):
            for type_, ids in principal.items():
                for id_ in as_list(ids):
                    if isinstance(id_, str):
                        found[Principal(str(type_), id_)] = None
    return list(found)


def _account_of(value: str) -> str | None:
    """The account of an account principal, in either of its spellings: ``123456789012``
    or ``arn:<partition>:iam::123456789012:root``."""
    if is_account_id(value):
        return value
    fields = arn.parse(value)
    if fields and fields.service == "iam" and not fields.region and fields.resource == "root":
        return fields.account if is_account_id(fields.account) else None
    return None


def _same_aws_account_principal(a: str, b: str) -> bool:
    """IAM treats ``123456789012`` and ``arn:aws:iam::123456789012:root`` as the same principal."""
    account_a = _account_of(a)
    return account_a is not None and account_a == _account_of(b)


def admits(trust_policy: Mapping[str, Any] | None, principal: Principal) -> bool:
    """Whether any Allow statement of the trust policy names ``principal`` (or everyone)."""
    for trusted in trusted_principals(trust_policy):
        if trusted.is_wildcard:
            return True
        if trusted.type != principal.type:
            continue
        if trusted.id == principal.id or trusted.id in principal.aliases:
            return True
        if trusted.type == "AWS" and _same_aws_account_principal(trusted.id, principal.id):
            return True
    return False


def allows_session_tags(trust_policy: Mapping[str, Any] | None) -> bool:
    """Whether the role's sessions may carry principal tags that are not the role's tags.

    A session's ``aws:PrincipalTag`` keys come from its session tags, the incoming
    transitive tags of a role chain, and the role's IAM tags, session tags overriding the
    role's (IAM User Guide, "Pass session tags in AWS STS"); passing them needs
    ``sts:TagSession`` in the trust policy, and SAML assertions and web identity tokens
    carry them. So: True when an Allow statement's Action (or NotAction) covers
    ``sts:TagSession``, ``sts:AssumeRoleWithWebIdentity`` or ``sts:AssumeRoleWithSAML``
    (``sts:*`` and ``*`` included), whoever the principal and whatever the conditions:
    EKS Pod Identity, IAM Roles Anywhere, Identity Center and any principal so trusted
    can set them. Unknown trust (None) is True: never assume the tags are the role's.
    """
    if trust_policy is None:
        return True
    return any(
        isinstance(statement, Mapping)
        and statement.get("Effect") == "Allow"
        and _allows_assuming(statement, _TAGGING_ACTIONS)
        for statement in statement_list(trust_policy)
    )

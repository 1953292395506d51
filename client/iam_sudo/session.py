"""The AssumeRole request that simulates a role: its session policies and STS's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._exceptions import SessionLimitExceeded

MAX_POLICY_ARNS = 10
MAX_INLINE_POLICY_CHARS = 2048
MAX_SESSION_NAME_CHARS = 64
DEFAULT_DURATION_SECONDS = 3600
POLICY_VERSION = "2012-10-17"

# A role without any policy may do nothing. Without a session policy the session would get
# all of the base role's permissions, so an empty role is simulated by an explicit deny.
DENY_ALL: Mapping[str, Any] = {
    "Version": POLICY_VERSION,
    "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
}

_SESSION_NAME_INVALID = re.compile(r"[^\w+=,.@-]")


@dataclass(frozen=True)
class SessionRequest:
    """Exactly what is sent to ``sts:AssumeRole``."""

    role_arn: str
    session_name: str
    policy_arns: tuple[str, ...] = ()
    policy: str | None = None
    duration_seconds: int = DEFAULT_DURATION_SECONDS

    def to_params(self) -> dict[str, Any]:
        """The request as keyword arguments of botocore's ``assume_role``."""
        params: dict[str, Any] = {
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in self.policy_arns]
        if self.policy is not None:
            params["Policy"] = self.policy
        return params


def session_name(role_name: str) -> str:
    """``iam-sudo-<role name>`` in STS's charset, cut to its 64 characters."""
    return _SESSION_NAME_INVALID.sub("-", f"iam-sudo-{role_name}")[:MAX_SESSION_NAME_CHARS]


def _statements(document: Mapping[str, Any]) -> list[Any]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _literal_dollars(value: Any) -> Any:
    """``value`` with ``${`` spelled ``${$}{``: the 2012-10-17 way to write a literal ``${``."""
    if isinstance(value, str):
        return value.replace("${", "${$}{")
    if isinstance(value, Mapping):
        return {_literal_dollars(k): _literal_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal_dollars(item) for item in value]
    return value


def merge_inline_policies(policies: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """All statements of the inline policies as one policy document, or None if there are none.

    Sids are dropped: they carry no meaning in evaluation, must be unique within one
    document, and cost characters of the 2048 STS allows. Identical statements appear once.
    The merged document is version 2012-10-17; statements of an older document (or one
    without a version) keep their meaning, since their ``${...}`` are literals there and
    would otherwise become policy variables, which could grant more.
    """
    merged: list[Any] = []
    seen: set[str] = set()
    for name in sorted(policies):
        document = policies[name]
        older = document.get("Version") != POLICY_VERSION
        for statement in _statements(document):
            if older:
                statement = _literal_dollars(statement)
            if isinstance(statement, Mapping):
                statement = {key: value for key, value in statement.items() if key != "Sid"}
            key = _compact({"s": statement})
            if key not in seen:
                seen.add(key)
                merged.append(statement)
    if not merged:
        return None
    return {"Version": POLICY_VERSION, "Statement": merged}


def build_session(
    *,
    role_name: str,
    base_role_arn: str,
    attached_policy_arns: Sequence[str],
    inline_policies: Mapping[str, Mapping[str, Any]],
    duration_seconds: int = DEFAULT_DURATION_SECONDS,
) -> SessionRequest:
    """The AssumeRole request of the base role limited to the role's policies.

    Raises :class:`SessionLimitExceeded` rather than build a request STS would refuse.
    """
    arns = tuple(dict.fromkeys(attached_policy_arns))
    if len(arns) > MAX_POLICY_ARNS:
        raise SessionLimitExceeded(
            f"role {role_name} has {len(arns)} managed policies, {len(arns) - MAX_POLICY_ARNS} "
            f"over STS's limit of {MAX_POLICY_ARNS} session policy ARNs: {', '.join(arns)}"
        )
    merged = merge_inline_policies(inline_policies)
    if merged is None and not arns:
        merged = dict(DENY_ALL)
    policy = _compact(merged) if merged is not None else None
    if policy is not None and len(policy) > MAX_INLINE_POLICY_CHARS:
        sizes = ", ".join(
            f"{name} ({len(_compact(policies))} chars)"
            for name, policies in sorted(inline_policies.items())
        )
        raise SessionLimitExceeded(
            f"inline policies of role {role_name} make a {len(policy)}-character session policy, "
            f"{len(policy) - MAX_INLINE_POLICY_CHARS} over STS's limit of "
            f"{MAX_INLINE_POLICY_CHARS}: {sizes}"
        )
    return SessionRequest(
        role_arn=base_role_arn,
        session_name=session_name(role_name),
        policy_arns=arns,
        policy=policy,
        duration_seconds=duration_seconds,
    )

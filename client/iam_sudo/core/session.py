"""The AssumeRole request that simulates a role: its session policies and STS's limits."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from .arn import EXTERNAL_ID, NOT_SESSION_NAME_CHARACTER, account_of, is_session_name, partition_of
from .conditions import Rewrite, Target, rewrite
from .defaults import DEFAULT_DURATION_SECONDS as DEFAULT_DURATION_SECONDS
from .documents import statement_list
from .exceptions import InvalidRequest, UnsupportedRole
from .fitting import (
    POLICY_VERSION,
    ManagedPolicy,
    PackedPolicy,
    fit,
    plaintext_chars,
)
from .partitions import NAME_PATTERN
from .text import bounded

MAX_SESSION_NAME_CHARS = 64
# STS's session tag limits.
MAX_TAGS = 50
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256

# A role without any policy may do nothing. Without a session policy the session would get
# all of the base role's permissions, so an empty role is simulated by an explicit deny.
DENY_ALL: Mapping[str, Any] = {
    "Version": POLICY_VERSION,
    "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
}

_MFA_SERIAL = re.compile(
    rf"arn:{NAME_PATTERN}:iam::\d{{12}}:mfa/[\w+=,.@/-]{{1,512}}|[\w+=/:,.@-]{{9,256}}", re.ASCII
)
_TOKEN_CODE = re.compile(r"\d{6}", re.ASCII)
_TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*")


@dataclass(frozen=True)
class SessionRequest:
    """Exactly what is sent to ``sts:AssumeRole``."""

    role_arn: str
    session_name: str
    policy_arns: tuple[str, ...] = ()
    policy: str | None = None
    duration_seconds: int = DEFAULT_DURATION_SECONDS
    tags: tuple[tuple[str, str], ...] = ()
    source_identity: str | None = None
    external_id: str | None = None
    serial_number: str | None = None
    token_code: str | None = field(default=None, repr=False)

    @property
    def plaintext_chars(self) -> int:
        """What STS counts against its 2,048 characters: the inline policy and the ARNs."""
        return plaintext_chars(self.policy, self.policy_arns)

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
        if self.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags]
        if self.source_identity is not None:
            params["SourceIdentity"] = self.source_identity
        if self.external_id is not None:
            params["ExternalId"] = self.external_id
        if self.serial_number is not None:
            params["SerialNumber"] = self.serial_number
            params["TokenCode"] = self.token_code
        return params


class SentStatement(NamedTuple):
    """One statement of the role as the session gets it, after the rewrites: ``policy``
    (inline name or managed ARN), ``source`` (how the report names the policy, "inline
    policy deploy"), ``number`` (the statement's 1-based index in the role's policy),
    ``statement``. A tuple, in that order: what :meth:`Ceiling.narrowings_sent` takes."""

    policy: str
    source: str
    number: int
    statement: Mapping[str, Any]


@dataclass(frozen=True)
class SessionPlan:
    """A simulation's AssumeRole request, the policies it needs created, and what it
    cannot reproduce (principal-dependent rewrites, role tags left out).

    ``statements``: every statement of the role that the session is sent, as sent
    (variables replaced, conditions decided), in policy order; what the base role must
    grant (see :mod:`iam_sudo.core.ceiling`).
    """

    request: SessionRequest
    packed: tuple[PackedPolicy, ...] = ()
    inlined_managed: tuple[str, ...] = ()
    rewrites: tuple[Rewrite, ...] = ()
    dropped_tags: tuple[str, ...] = ()
    statements: tuple[SentStatement, ...] = ()


def check_assume_options(
    *,
    mfa_serial: str | None = None,
    token_code: str | None = None,
    external_id: str | None = None,
    session_name: str | None = None,
) -> None:
    """Raise :class:`InvalidRequest` for a value STS would refuse, before asking it."""
    if session_name is not None and not is_session_name(session_name):
        raise InvalidRequest(
            f"invalid --session-name {bounded(session_name)}: "
            "use 2 to 64 letters, digits and +=,.@_-"
        )
    if external_id is not None and not EXTERNAL_ID.fullmatch(external_id):
        raise InvalidRequest("invalid --external-id: use 2 to 1224 letters, digits and +=,.@:/_-")
    if mfa_serial is not None and not _MFA_SERIAL.fullmatch(mfa_serial):
        raise InvalidRequest(
            f"invalid --mfa-serial {bounded(mfa_serial)}: use the MFA device's ARN "
            "(arn:aws:iam::<account>:mfa/<name>) or a hardware device's serial number"
        )
    if token_code is not None and not _TOKEN_CODE.fullmatch(token_code):
        raise InvalidRequest("invalid --token-code: use the 6 digits the MFA device shows")
    if token_code is not None and mfa_serial is None:
        raise InvalidRequest("--token-code goes with --mfa-serial (or mfa_serial in your profile)")


def session_name(role_name: str) -> str:
    """``iam-sudo-<role name>`` in STS's charset, cut to its 64 characters."""
    return NOT_SESSION_NAME_CHARACTER.sub("-", f"iam-sudo-{role_name}")[:MAX_SESSION_NAME_CHARS]


def _literal_dollars(value: Any) -> Any:
    """``value`` with ``${`` spelled ``${$}{``: the 2012-10-17 way to write a literal ``${``."""
    if isinstance(value, str):
        return value.replace("${", "${$}{")
    if isinstance(value, Mapping):
        return {_literal_dollars(k): _literal_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal_dollars(item) for item in value]
    return value


def statements_of(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A policy document's statements with their meaning in a 2012-10-17 document.

    Sids are dropped: they carry no meaning in evaluation, must be unique within one
    document, and cost characters. Statements of an older document (or one without a
    version) keep their meaning: their ``${...}`` are literals there and would otherwise
    become policy variables, which could grant more.
    """
    older = document.get("Version") != POLICY_VERSION
    result = []
    for statement in statement_list(document):
        if not isinstance(statement, Mapping):
            raise TypeError("a policy statement is not an object")
        if older:
            statement = _literal_dollars(statement)
        result.append({key: value for key, value in statement.items() if key != "Sid"})
    return result


def session_tags(tags: Mapping[str, str]) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The role's tags as STS session tags, and the keys left out (over STS's limits)."""
    kept: list[tuple[str, str]] = []
    dropped: list[str] = []
    for key, value in sorted(tags.items()):
        valid = (
            0 < len(key) <= MAX_TAG_KEY_CHARS
            and len(value) <= MAX_TAG_VALUE_CHARS
            and _TAG_TEXT.fullmatch(key) is not None
            and _TAG_TEXT.fullmatch(value) is not None
            and not key.lower().startswith("aws:")
        )
        if valid and len(kept) < MAX_TAGS:
            kept.append((key, value))
        else:
            dropped.append(key)
    return tuple(kept), tuple(dropped)


def _rewritten(
    statements: list[dict[str, Any]], target: Target, source: str, policy: str
) -> tuple[list[dict[str, Any]], list[Rewrite], list[SentStatement]]:
    kept: list[dict[str, Any]] = []
    rewrites: list[Rewrite] = []
    sent: list[SentStatement] = []
    for index, statement in enumerate(statements):
        result, notes = rewrite(statement, target, source, index, policy=policy)
        rewrites += notes
        if result is not None:
            kept.append(result)
            sent.append(SentStatement(policy, source, index + 1, result))
    return kept, rewrites, sent


def check_base_role_account(role_arn: str, base_role_arn: str) -> None:
    """Raise :class:`UnsupportedRole` unless the base role is in the role's account.

    A session of a base role in account B is a principal of B: B's resources are in its
    own account, where identity policies suffice, while the role in account A would
    need B's resource-based policies too (IAM User Guide, "Cross-account policy
    evaluation logic"). The session would be wider; no session policy can say so.
    """
    role_account, base_account = account_of(role_arn), account_of(base_role_arn)
    if role_account != base_account:
        raise UnsupportedRole(
            f"base role {base_role_arn} is in account {base_account or '?'}, the role "
            f"{role_arn} in {role_account or '?'}: its session would reach account "
            f"{base_account or '?'}'s resources as its own, which the role cannot; use a "
            f"base role in account {role_account or '?'} (deploy iam-sudo's base role there)"
        )


def plan_session(
    *,
    role_name: str,
    base_role_arn: str,
    attached_policy_arns: Sequence[str],
    inline_policies: Mapping[str, Mapping[str, Any]],
    managed_documents: Mapping[str, Mapping[str, Any]],
    target: Target,
    tags: Mapping[str, str] | None = None,
    duration_seconds: int = DEFAULT_DURATION_SECONDS,
    source_identity: str | None = None,
) -> SessionPlan:
    """The AssumeRole request of the base role limited to exactly the role's policies.

    ``managed_documents`` (ARN -> default version's document) must hold every attached
    ARN: each statement is rewritten for the role (see :mod:`iam_sudo.core.conditions`)
    before it is sent, and managed policies are packed when 10 ARNs do not hold them;
    ``target`` is the role (:meth:`Target.for_role`) for deciding conditions; ``tags``
    become session tags; ``source_identity`` names the caller (STS SourceIdentity).
    Raises :class:`ValueError` for a missing document or a target that is not a
    :class:`Target` (nothing is ever sent unrewritten), :class:`UnsupportedRole` for a
    base role in another account than the role's (see :func:`check_base_role_account`),
    :class:`SessionLimitExceeded` rather than build a request STS would refuse.
    """
    if not isinstance(target, Target):
        raise ValueError("plan_session needs the role as a Target, to rewrite its statements")
    missing = [arn for arn in attached_policy_arns if arn not in managed_documents]
    if missing:
        raise ValueError(
            f"plan_session needs the document of every attached managed policy; missing: "
            f"{', '.join(missing)}"
        )
    check_base_role_account(target.arn, base_role_arn)
    if target.base_arn is None:  # the organization keys need it
        target = replace(target, base_arn=base_role_arn)
    inline: list[dict[str, Any]] = []
    rewrites: list[Rewrite] = []
    sent: list[SentStatement] = []
    for name in sorted(inline_policies):
        kept, notes, done = _rewritten(
            statements_of(inline_policies[name]), target, f"inline policy {name}", name
        )
        inline += kept
        rewrites += notes
        sent += done
    managed = []
    for arn in dict.fromkeys(attached_policy_arns):
        original = statements_of(managed_documents[arn])
        kept, notes, done = _rewritten(original, target, f"managed policy {arn}", arn)
        rewrites += notes
        sent += done
        # Environment findings and kept conditions change nothing: the ARN still serves.
        managed.append(ManagedPolicy(arn, tuple(kept), rewritten=kept != original))
    partition, account = partition_of(base_role_arn), account_of(base_role_arn)
    fitted = fit(
        role_name=role_name, managed=managed, inline=inline, partition=partition, account=account
    )
    session_tag_pairs, dropped = session_tags(tags or {})
    request = SessionRequest(
        role_arn=base_role_arn,
        session_name=session_name(role_name),
        policy_arns=fitted.policy_arns,
        policy=fitted.policy,
        duration_seconds=duration_seconds,
        tags=session_tag_pairs,
        source_identity=source_identity,
    )
    return SessionPlan(
        request, fitted.packed, fitted.inlined_managed, tuple(rewrites), dropped, tuple(sent)
    )

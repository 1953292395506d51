"""A simulated session: the resolved role and the plan that simulates it, before it is sent."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .ceiling import Ceiling, Narrowing
from .conditions import Target
from .fidelity import Finding, report
from .fitting import MAX_PLAINTEXT_CHARS, POLICY_PATH
from .roles import Role, RoleDetails, RolePolicies
from .session import SessionPlan, SessionRequest, plan_session


@dataclass(frozen=True)
class SimulatedSession:
    """A resolved role and the plan that simulates it, before anything is created or sent.

    ``findings`` (:class:`~iam_sudo.core.fidelity.Finding`) say what the session will not
    reproduce of the role; ``fidelity`` is their lines.
    """

    role: Role
    base_role_arn: str
    plan: SessionPlan
    findings: tuple[Finding, ...] = ()
    #: The other account the role is in, read through its spoke (None: the client's own).
    account: str | None = None

    @property
    def fidelity(self) -> tuple[str, ...]:
        """The fidelity report: one line per finding."""
        return tuple(str(finding) for finding in self.findings)

    @property
    def request(self) -> SessionRequest:
        """Exactly what is sent to sts:AssumeRole."""
        return self.plan.request

    def summary(self) -> str:
        """One line: the role, the base role, and the request's size against STS's limits."""
        request = self.request
        return (
            f"simulating {self.role.arn} as {self.base_role_arn}: {len(request.policy_arns)} "
            f"policy ARNs ({len(self.plan.packed)} created for it), {request.plaintext_chars} "
            f"plaintext characters of STS's {MAX_PLAINTEXT_CHARS}, {len(request.tags)} "
            "session tags"
        )

    def to_dry_run(self) -> dict[str, Any]:
        """What ``simulate --dry-run`` prints: the request in AssumeRole's own field names,
        the policies it needs created under ``/iam-sudo/``, and the fidelity report."""
        request = self.request
        return {
            "Role": self.role.arn,
            "RoleArn": request.role_arn,
            "RoleSessionName": request.session_name,
            "SourceIdentity": request.source_identity,
            "DurationSeconds": request.duration_seconds,
            "PolicyArns": list(request.policy_arns),
            "Policy": json.loads(request.policy) if request.policy is not None else None,
            "Tags": [{"Key": k, "Value": v} for k, v in request.tags],
            "PlaintextCharacters": request.plaintext_chars,
            "PoliciesNeeded": [
                {
                    "Arn": packed.arn,
                    "Path": POLICY_PATH,
                    "PolicyName": packed.name,
                    "Document": json.loads(packed.document),
                }
                for packed in self.plan.packed
            ],
            "ManagedPoliciesPacked": list(self.plan.inlined_managed),
            "Fidelity": list(self.fidelity),
            "Findings": [finding.to_json() for finding in self.findings],
        }


def simulated_session(
    role: Role,
    base_role_arn: str,
    details: RoleDetails,
    policies: RolePolicies,
    *,
    listing: Sequence[Role] = (),
    session_tags: bool = True,
    duration_seconds: int,
    base_role_tags: dict[str, str] | None = None,
    ceiling: Ceiling | str | None = None,
    source_identity: str | None = None,
    account: str | None = None,
) -> SimulatedSession:
    """The session that simulates ``role`` (pure: everything is read already).

    ``details`` and ``policies`` are the role's (see :mod:`iam_sudo.aws.iam_reader`);
    ``listing`` the roles it was resolved among, and ``base_role_tags`` the base role's when
    known, for the fidelity report. ``session_tags`` passes the role's tags as session tags.
    ``ceiling`` is what the base role can grant (or why it could not be read): what it
    cannot grant of the role becomes findings of kind ``narrower``. ``source_identity``
    goes into the request as it is; ``account`` is the other account the role is in
    (see :attr:`SimulatedSession.account`). Raises
    :class:`SessionLimitExceeded` when the policies do not fit STS's limits.
    """
    arns, documents, inline_policies = policies
    plan = plan_session(
        role_name=role.name,
        base_role_arn=base_role_arn,
        attached_policy_arns=arns,
        inline_policies=inline_policies,
        managed_documents=documents,
        target=Target.for_role(role.arn, details.tags, role.trust_policy),
        tags=details.tags if session_tags else {},
        duration_seconds=duration_seconds,
        source_identity=source_identity,
    )
    narrowings: list[Narrowing] = []
    if isinstance(ceiling, Ceiling):
        narrowings = ceiling.narrowings_sent(plan.statements, role_boundary=details.boundary)
    findings = report(
        role=role,
        plan=plan,
        roles=listing,
        boundary=details.boundary,
        role_tags=details.tags,
        tags_passed=session_tags,
        base_role_tags=base_role_tags,
        narrowings=narrowings,
        ceiling_unknown=ceiling if isinstance(ceiling, str) else None,
    )
    return SimulatedSession(role, base_role_arn, plan, tuple(findings), account)

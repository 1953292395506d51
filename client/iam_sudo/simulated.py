"""A simulated session: the resolved role and the plan that simulates it, before it is sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .fitting import MAX_PLAINTEXT_CHARS, POLICY_PATH
from .roles import Role
from .session import SessionPlan, SessionRequest


@dataclass(frozen=True)
class SimulatedSession:
    """A resolved role and the plan that simulates it, before anything is created or sent.

    ``fidelity`` lists, one line each, what the session will not reproduce of the role.
    """

    role: Role
    base_role_arn: str
    plan: SessionPlan
    fidelity: tuple[str, ...] = ()

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
        }

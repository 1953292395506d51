"""Never wider, through the command: --dry-run reports each condition key's decision and its
class (the property itself: tests/unit/test_never_wider.py).
"""

from __future__ import annotations

import json
from typing import Any

from devtools import localaws
from tests.unit.test_never_wider import ECS_TRUST, EKS_POD_IDENTITY_TRUST


def test_dry_run_reports_each_decision_with_the_keys_class(cli: Any, iam: Any, prefix: str) -> None:
    name = f"{prefix}SourceIdentity"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:SourceIdentity": "*"}},
            },
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::home/*"},
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::home/${aws:username}/*",
            },
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            },
        ],
    }
    localaws.create_role(iam, name, inline={"app": policy})
    result = cli("simulate", "--local", "--dry-run", "--role-name", name)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    sent = shown["Policy"]["Statement"]
    assert not any("secretsmanager" in json.dumps(s) for s in sent), "the Allow is left out"
    assert not any(s["Effect"] == "Deny" for s in sent), "a Deny that cannot match is left out"
    assert any(s.get("Condition") == {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}} for s in sent)
    lines = shown["Fidelity"]
    expected = [
        "inline policy app, statement 1 (Allow secretsmanager:GetSecretValue): StringLike "
        "aws:SourceIdentity (for the role: unknown): undecidable: the Allow is left out "
        "[session key]",
        "inline policy app, statement 3 (Deny s3:PutObject): Resource uses ${aws:username}: a "
        "variable with no value for the role matches nothing: the statement never applies and "
        "is left out [principal key]",
        "inline policy app, statement 4 (Allow s3:GetObject): IpAddress aws:SourceIp: kept: "
        "evaluated where you run the session, not where the role runs [environment key]",
    ]
    for line in expected:
        assert line in lines, lines


def test_dry_run_keeps_a_deny_on_a_tag_that_the_roles_sessions_may_carry(
    cli: Any, iam: Any, prefix: str
) -> None:
    # The client reads the role's trust policy: EKS Pod Identity may tag its sessions
    # (IAM User Guide, "Pass session tags in AWS STS"), so a Deny on a tag the role lacks
    # still applies; for an ECS role, which nobody can tag, it never applies (exact).
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "s3:DeleteObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "dev"}},
            },
        ],
    }
    sent = {}
    for name, trust_policy in (("Pod", EKS_POD_IDENTITY_TRUST), ("Task", ECS_TRUST)):
        localaws.create_role(iam, f"{prefix}{name}", trust=trust_policy, inline={"app": policy})
        result = cli("simulate", "--local", "--dry-run", "--role-name", f"{prefix}{name}")
        assert result.returncode == 0, result.stderr
        sent[name] = json.loads(result.stdout)["Policy"]["Statement"]
    assert {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"} in sent["Pod"]
    assert not any(s["Effect"] == "Deny" for s in sent["Task"])

"""The fidelity report as structured findings, and the lines derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from iam_sudo.core.ceiling import Ceiling
from iam_sudo.core.conditions import Rewrite, Target, rewrite
from iam_sudo.core.fidelity import (
    Finding,
    narrowing_lines,
    report,
    rewrite_finding,
)
from iam_sudo.core.roles import Role
from iam_sudo.core.session import plan_session

ROLE = Role("app-TaskRole", "arn:aws:iam::123456789012:role/app-TaskRole")
BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"
TEAM_ONLY = {
    "Effect": "Allow",
    "Action": "s3:GetObject",
    "Resource": "*",
    "Condition": {"StringEquals": {"aws:PrincipalTag/team": "payments"}},
}


def test_a_finding_is_its_line_and_a_json_object() -> None:
    finding = Finding(
        kind="narrower",
        reason="why",
        line="iam:PassRole (inline policy p, statement 2): why",
        policy="p",
        statement=2,
        actions=("iam:PassRole",),
    )
    assert str(finding) == "iam:PassRole (inline policy p, statement 2): why"
    assert finding.to_json() == {
        "Policy": "p",
        "Statement": 2,
        "Actions": ["iam:PassRole"],
        "ConditionKeys": [],
        "Kind": "narrower",
        "Reason": "why",
    }


@dataclass(frozen=True)
class TextRewrite:
    """A Rewrite as it was before issue 13: its text alone."""

    source: str
    statement: str
    part: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.source}, {self.statement}: {self.part}: {self.outcome}"


def test_rewrites_without_structured_fields_are_read_from_their_text() -> None:
    never = TextRewrite(
        "inline policy p",
        "statement 2 (Allow s3:GetObject)",
        "StringEquals aws:PrincipalTag/team (for the role: absent)",
        "never holds for the role: statement left out",
    )
    finding = rewrite_finding(never)
    assert finding.kind == "exact"  # the tag is absent: the role never gets it either
    assert (finding.policy, finding.statement) == ("p", 2)
    assert finding.condition_keys == ("aws:PrincipalTag/team",)
    assert finding.line == str(never)

    undecided = TextRewrite(
        "managed policy arn:x",
        "statement 1 (Allow s3:GetObject)",
        "StringLike aws:userid (for the role: unknown)",
        "undecidable: the Allow is left out",
    )
    finding = rewrite_finding(undecided)
    assert finding.kind == "narrower"
    assert (finding.policy, finding.statement) == ("arn:x", 1)
    assert finding.condition_keys == ("aws:userid",)


def test_rewrites_of_the_conditions_module_become_findings() -> None:
    _, notes = rewrite(dict(TEAM_ONLY), Target(ROLE.arn, {}), "inline policy p", 1)
    [finding] = [rewrite_finding(note) for note in notes]
    assert finding.kind == "exact"
    assert finding.statement == 2
    assert finding.line == str(notes[0])


@dataclass(frozen=True)
class StructuredRewrite(Rewrite):
    """A Rewrite as the conditions module will make it (issue 13): fields, not text."""

    policy: str = ""
    index: int = 0
    keys: tuple[str, ...] = ()
    key_class: str = ""
    kind: str = ""


def test_rewrites_with_structured_fields_are_taken_at_their_word() -> None:
    given = StructuredRewrite(
        "inline policy p",
        "statement 9 (Allow s3:GetObject)",
        "IpAddress aws:SourceIp",
        "depends on where the request is made",
        policy="p",
        index=3,
        keys=("aws:SourceIp",),
        key_class="network",
        kind="environment",
    )
    finding = rewrite_finding(given)
    assert finding.kind == "environment"
    assert (finding.policy, finding.statement) == ("p", 3)
    assert finding.condition_keys == ("aws:SourceIp",)
    assert finding.line == str(given)


def test_the_report_kinds_and_what_exact_counts() -> None:
    unknown = {
        "Version": "2012-10-17",
        "Statement": [{**TEAM_ONLY, "Condition": {"StringLike": {"aws:userid": "AROA*:x"}}}],
    }
    role_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}],
    }
    plan = plan_session(
        role_name=ROLE.name,
        base_role_arn=BASE,
        attached_policy_arns=[],
        inline_policies={"who": unknown, "pass": role_policy},
        managed_documents={},
        target=Target(ROLE.arn, {"team": "a"}),
    )
    base = {"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}
    ceiling = Ceiling.from_policies("IAMSudoUser", {"arn:aws:iam::aws:policy/Power": base})
    narrowings = ceiling.narrowings([("pass", "inline policy pass", role_policy)])
    findings = report(
        role=ROLE,
        plan=plan,
        role_tags={"team": "a"},
        tags_passed=False,
        boundary="arn:aws:iam::123456789012:policy/B",
        narrowings=narrowings,
    )
    kinds = [f.kind for f in findings]
    assert kinds == ["narrower", "narrower", "not-reproduced", "exact", "not-reproduced"]
    assert narrowing_lines(findings) == [findings[0].line, findings[1].line]
    assert findings[1].line == (
        "iam:PassRole (inline policy pass, statement 1): the base role IAMSudoUser cannot "
        "grant them (Power allows NotAction iam:*)"
    )


def test_a_base_role_whose_policies_cannot_be_read_is_a_narrowing() -> None:
    plan = plan_session(
        role_name=ROLE.name,
        base_role_arn=BASE,
        attached_policy_arns=[],
        inline_policies={},
        managed_documents={},
        target=Target(ROLE.arn),
    )
    findings = report(role=ROLE, plan=plan, ceiling_unknown="AccessDenied: iam:GetRole")
    [line] = narrowing_lines(findings)
    assert line.startswith("the base role IAMSudoUser's policies could not be read")

"""What a record says: actions used, denials with their causes, grants never used, the fix.

Pure. A denial's cause is read from AWS's own wording (:mod:`iam_sudo.core.denials`) and
joined with what iam-sudo sent and declared for the run (:class:`iam_sudo.core.record.Run`).
In a simulated session the identity-based policies are the *base role's* and the session
policies carry the *target role's* (IAM User Guide, "Session policies": the session's
permissions are the intersection of both), so:

* ``because no session policy allows``: the role lacks it (``role-lacks-it``), unless a
  ``narrower`` finding of the fidelity report covers the action: iam-sudo left that Allow
  out (``narrowed-by-iam-sudo``);
* ``because no identity-based policy allows``: the base role cannot grant it, the
  simulation's ceiling (``base-role-cannot-grant``); for a real role (``assume``) it is
  the role's own gap (``role-lacks-it``);
* ``with an explicit deny in a <type>``: ``explicit-deny``, where it says (an SCP, an RCP,
  a permissions boundary, a session or identity policy; a session policy's Deny that a
  ``narrower`` finding covers is iam-sudo's: ``narrowed-by-iam-sudo``);
* ``resource-based policy``: ``resource-policy``: it may name the real role, which the
  simulated session is not: the simulation cannot reproduce it;
* an implicit denial by another policy type (a permissions boundary, a VPC endpoint policy,
  a trust policy): ``other-policy``, where it says;
* no reason given (S3's ``Access Denied``, moto): ``unknown``, never guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .denials import Denial, parse
from .globs import action_matches
from .record import Call, Record, Run

Cause = Literal[
    "role-lacks-it",
    "base-role-cannot-grant",
    "explicit-deny",
    "resource-policy",
    "narrowed-by-iam-sudo",
    "other-policy",
    "unknown",
]
_SIMULATED = ("local", "remote", "library")
_WHERE = {
    "identity-based": "an identity-based policy",
    "session": "a session policy",
    "resource-based": "a resource-based policy",
    "permissions-boundary": "a permissions boundary",
    "vpc-endpoint": "a VPC endpoint policy",
    "service-control": "a service control policy (SCP)",
    "resource-control": "a resource control policy (RCP)",
    "role-trust": "a role trust policy",
}


@dataclass(frozen=True)
class Denied:
    """A denied call and why: ``cause``, ``where`` (the policy type AWS named, with its
    ARN when given), ``explanation`` (one sentence) and the covering ``finding`` line."""

    call: Call
    cause: Cause
    where: str | None
    explanation: str
    finding: str | None = None
    #: The action AWS's message named as denied (None: it named none).
    action: str | None = None
    #: The resource ARN AWS's message named (None: it named none, or not an ARN).
    resource: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "Time": self.call.time,
            "Service": self.call.service,
            "Operation": self.call.operation,
            "Actions": list(self.call.actions),
            "Resources": list(self.call.resources),
            "Cause": self.cause,
            "Where": self.where,
            "Explanation": self.explanation,
            "Finding": self.finding,
            "ErrorCode": self.call.error_code,
            "ErrorMessage": self.call.error_message,
        }


@dataclass(frozen=True)
class Used:
    """An IAM action the run used: calls per outcome, and the resources they named."""

    action: str
    outcomes: Mapping[str, int]
    resources: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "Action": self.action,
            "Calls": sum(self.outcomes.values()),
            "Outcomes": dict(self.outcomes),
            "Resources": list(self.resources),
        }


@dataclass(frozen=True)
class Unused:
    """An Allow statement sent as a session policy whose action patterns no call used."""

    policy: str
    number: int
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "Policy": self.policy,
            "Statement": self.number,
            "Actions": list(self.actions),
            "Resources": list(self.resources),
        }


@dataclass(frozen=True)
class Report:
    """The three classes, the operations the catalogue could not name, and the refusals.

    ``unused`` is None when iam-sudo sent no session policies it knows of (a real role,
    or ``--remote``, whose policies the function sent).
    """

    run: Run
    complete: bool
    calls: int
    used: tuple[Used, ...]
    denied: tuple[Denied, ...]
    unused: tuple[Unused, ...] | None
    uncatalogued: tuple[tuple[str, str, int], ...]
    refused: int

    def to_json(self) -> dict[str, Any]:
        """``iam-sudo report --json``: one document (see docs/record.md)."""
        return {
            "Run": self.run.to_json(),
            "Complete": self.complete,
            "Calls": self.calls,
            "Used": [u.to_json() for u in self.used],
            "Denied": [d.to_json() for d in self.denied],
            "GrantedNeverUsed": None if self.unused is None else [u.to_json() for u in self.unused],
            "NoCatalogueAction": [
                {"Service": s, "Operation": o, "Calls": n} for s, o, n in self.uncatalogued
            ],
            "Refused": self.refused,
        }


def _covering_finding(run: Run, action: str | None) -> str | None:
    if not action:
        return None
    for finding in run.findings:
        if finding.get("Kind") != "narrower":
            continue
        actions = [a for a in finding.get("Actions") or [] if isinstance(a, str)]
        if any(action_matches(action, pattern) for pattern in actions):
            return str(finding.get("Reason") or finding.get("Line") or "")
    return None


def cause_of(call: Call, run: Run) -> Denied:
    """The cause of one denied ``call`` in ``run`` (see the module)."""
    denial: Denial = parse(call.error_message)
    action = denial.action or (call.actions[0] if call.actions else None)
    simulated = run.mode in _SIMULATED
    if not denial.says_why:
        return Denied(
            call,
            "unknown",
            None,
            "the service does not say which policy denied it (no policy type in its message); "
            "iam-sudo does not guess",
        )
    denied = _cause_of(call, run, denial, action, simulated)
    named = denial.resource if denial.resource and denial.resource.startswith("arn:") else None
    return replace(denied, action=denial.action, resource=named)


def _cause_of(call: Call, run: Run, denial: Denial, action: str | None, simulated: bool) -> Denied:
    kind = denial.policy_type
    where = _WHERE[kind] if kind else None
    if where and denial.policy_arn:
        where = f"{where} {denial.policy_arn}"
    if where and denial.via:
        where = f"{where}, through {_WHERE[denial.via]}"
    finding = _covering_finding(run, action) if simulated else None
    if kind == "resource-based":
        return Denied(
            call,
            "resource-policy",
            where,
            "a resource-based policy denies it; it may name the real role, which the simulated "
            "session is not: the simulation cannot reproduce that",
        )
    if denial.explicit:
        if kind == "session" and finding:
            return Denied(
                call,
                "narrowed-by-iam-sudo",
                where,
                "iam-sudo applied this Deny to the session "
                "where the role's own would depend on an unknown value",
                finding,
            )
        owner = ""
        if kind == "session" and simulated:
            owner = ": the role's own Deny, carried into the session"
        elif kind == "identity-based" and simulated:
            owner = ": the base role's own policies deny it"
        return Denied(call, "explicit-deny", where, f"an explicit Deny in {where}{owner}")
    if kind == "session":
        if not simulated:
            return Denied(call, "other-policy", where, "no session policy allows it")
        if finding:
            return Denied(
                call,
                "narrowed-by-iam-sudo",
                where,
                "the role allows it, but iam-sudo left the Allow out (see the finding)",
                finding,
            )
        note = ""
        if run.mode == "remote":
            note = " (with --remote the function's fidelity report is not known here)"
        return Denied(
            call,
            "role-lacks-it",
            where,
            f"no policy of the role allows it: a real gap of the role{note}",
        )
    if kind == "identity-based":
        if simulated:
            return Denied(
                call,
                "base-role-cannot-grant",
                where,
                "the base role's policies do not allow it: the simulation's ceiling, not the role",
                finding,
            )
        return Denied(call, "role-lacks-it", where, "no policy of the role allows it")
    return Denied(call, "other-policy", where, f"no Allow in {where}")


def build(record: Record) -> Report:
    """The report of ``record``."""
    run = record.run
    outcomes: dict[str, Counter[str]] = {}
    resources: dict[str, dict[str, None]] = {}
    uncatalogued: Counter[tuple[str, str]] = Counter()
    denied = []
    for call in record.calls:
        if call.outcome == "denied":
            denied.append(cause_of(call, run))
        if not call.actions:
            uncatalogued[(call.service, call.operation or "(unknown operation)")] += 1
        for action in call.actions:
            if call.outcome == "denied":
                continue
            outcomes.setdefault(action, Counter())[call.outcome] += 1
            for resource in call.resources:
                resources.setdefault(action, {})[resource] = None
    used = tuple(Used(a, dict(outcomes[a]), tuple(resources.get(a, {}))) for a in sorted(outcomes))
    return Report(
        run=run,
        complete=run.complete,
        calls=len(record.calls),
        used=used,
        denied=tuple(denied),
        unused=_unused(record),
        uncatalogued=tuple((s, o, n) for (s, o), n in sorted(uncatalogued.items())),
        refused=len(record.refused),
    )


def _unused(record: Record) -> tuple[Unused, ...] | None:
    statements = record.run.session_policies
    if statements is None:
        return None
    actions = {a for call in record.calls for a in call.actions}
    found = []
    for sent in statements:
        statement = sent.statement
        if statement.get("Effect") != "Allow" or "Action" not in statement:
            continue
        patterns = statement["Action"]
        patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        unused = tuple(p for p in patterns if not any(action_matches(a, p) for a in actions))
        if unused:
            res = statement.get("Resource", [])
            res = [res] if isinstance(res, str) else list(res)
            found.append(Unused(sent.policy, sent.number, unused, tuple(res)))
    return tuple(found)


_LITERAL_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")


def _literal(arn: str) -> str:
    """``arn`` as a Resource that matches only itself: IAM's ``${*}``, ``${?}`` and ``${$}``
    stand for the characters (IAM User Guide, "IAM policy elements: Variables and tags",
    special characters)."""
    return "".join({"*": "${*}", "?": "${?}", "$": "${$}"}.get(c, c) for c in arn)


def fix_policy(
    report: Report, resource_types: Callable[[str], list[str] | None]
) -> tuple[dict[str, Any], list[str]]:
    """The policy that grants exactly the calls denied because the role lacks them, and a
    line for each denial it does not cover, saying why.

    ``resource_types(action)`` is the catalogue's list of resource types for an action
    ([] when it takes none, so ``*`` is exact; None when unknown).
    """
    wanted: dict[str, dict[str, None]] = {}
    notes = []
    for denied in report.denied:
        call = denied.call
        name = f"{call.service} {call.operation or '?'}"
        if denied.cause != "role-lacks-it":
            notes.append(f"{name}: not covered: {denied.cause}: {denied.explanation}")
            continue
        # Only the action AWS named as denied: the record's Actions list may say more (a
        # hand-edited record), and a wildcard would grant more than the call needed.
        if not denied.action:
            notes.append(f"{name}: not covered: no IAM action known (AWS did not name one)")
            continue
        if not _LITERAL_ACTION.fullmatch(denied.action):
            notes.append(
                f"{name}: {denied.action} not covered: a wildcard action would grant more "
                "than the call needed"
            )
            continue
        # IAM's action names are case-insensitive; the record's spelling is the catalogue's.
        spelled = [a for a in call.actions if a.lower() == denied.action.lower()]
        for action in spelled[:1] or [denied.action]:
            # AWS's named resource when it names one: the record may list more (a call on
            # two resources, a hand-edited record) than the one denied.
            named = (denied.resource,) if denied.resource else call.resources
            if named:
                exact = [_literal(r) for r in named]
            elif resource_types(action) == []:
                exact = ["*"]  # the action takes no resource: "*" is exactly it
            else:
                notes.append(
                    f"{name}: {action} not covered: the request named no resource iam-sudo "
                    "could read, and a wildcard would grant more than the call needed"
                )
                continue
            for target in exact:
                wanted.setdefault(action, {})[target] = None
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for action, targets in sorted(wanted.items()):
        by_resources.setdefault(tuple(sorted(targets)), []).append(action)
    statements = [
        {
            "Effect": "Allow",
            "Action": actions if len(actions) > 1 else actions[0],
            "Resource": list(targets) if len(targets) > 1 else targets[0],
        }
        for targets, actions in by_resources.items()
    ]
    return {"Version": "2012-10-17", "Statement": statements}, notes


_CAUSE_TEXT = {
    "role-lacks-it": "role lacks it",
    "base-role-cannot-grant": "base role cannot grant it",
    "explicit-deny": "explicit deny",
    "resource-policy": "resource policy",
    "narrowed-by-iam-sudo": "narrowed by iam-sudo",
    "other-policy": "another policy",
    "unknown": "unknown",
}


def table(report: Report) -> str:
    """``iam-sudo report``: the run, then one section per class, plain text."""
    run = report.run
    total = report.calls
    denied = len(report.denied)
    who = run.target_role or "?"
    head = f"{run.command} ({run.mode}) as {who}"
    if run.base_role:
        head += f" through {run.base_role}"
    state = "complete" if report.complete else "INCOMPLETE (the run did not finish writing it)"
    lines = [f"{head}: {total} calls, {denied} denied; record {state}", ""]
    lines.append(f"USED ({len(report.used)} actions)")
    for used in report.used:
        detail = ", ".join(f"{n} {o}" for o, n in sorted(used.outcomes.items()))
        shown = ", ".join(used.resources[:3]) + (" ..." if len(used.resources) > 3 else "")
        lines.append(f"  {used.action:<40} {detail:<20} {shown}")
    lines += ["", f"DENIED ({len(report.denied)} calls)"]
    for item in report.denied:
        action = ", ".join(item.call.actions) or f"{item.call.service} {item.call.operation}"
        resource = ", ".join(item.call.resources) or "-"
        lines.append(f"  {action:<40} {resource}")
        lines.append(f"    cause: {_CAUSE_TEXT[item.cause]}: {item.explanation}")
        if item.where:
            lines.append(f"    where: {item.where}")
        if item.finding:
            lines.append(f"    finding: {item.finding}")
    lines.append("")
    if report.unused is None:
        lines.append(
            "GRANTED BUT NEVER USED: not known (iam-sudo sent no session policies it knows)"
        )
    else:
        lines.append(f"GRANTED BUT NEVER USED ({len(report.unused)} statements)")
        for unused in report.unused:
            lines.append(
                f"  {unused.policy} #{unused.number}: {', '.join(unused.actions)} "
                f"on {', '.join(unused.resources) or '-'}"
            )
    if report.uncatalogued:
        lines += ["", "NO IAM ACTION IN THE CATALOGUE (not counted above)"]
        for service, operation, number in report.uncatalogued:
            lines.append(f"  {service} {operation} ({number} calls)")
    if report.refused:
        lines += ["", f"REFUSED: {report.refused} requests not signed by the session"]
    return "\n".join(lines) + "\n"

"""The base role is the ceiling: what of a role's Allows the base role cannot grant.

A simulated session can do what the role's policies allow *and* the base role's own
policies (and its permissions boundary) allow. Whatever a role's Allow statement grants
that the base role does not is a narrowing: the session is refused it, the role is not.

Decided at the level of action and resource patterns, with IAM's matching rules (IAM User
Guide, "IAM JSON policy elements: Action", "NotAction", "Resource", "NotResource"):

* actions: ``service:Name``, case-insensitive; ``*`` matches any run of characters, ``?``
  exactly one;
* resources: ARNs, case-sensitive; within a segment (the parts between colons) ``*``
  matches any run of characters and ``?`` one, neither a colon; a ``*`` that ends a
  segment "can expand to match beyond the colon boundaries";
* ``NotAction``/``NotResource`` match everything but their patterns; a Deny that matches
  refuses whatever an Allow grants; an identity Allow *and* (when there is one) a
  boundary Allow must match.

Each pattern is an automaton; the role's pattern runs in product with every base-role
pattern, so that every distinct way an action (or resource) can fall among the base
role's statements is found with a shortest example. The answer is exact for the
patterns; it does not know which actions exist or which resources an action takes (a
role's ``s3:GetObject`` on ``*`` is reported against a base role allowing ``s3:*`` only
on ``arn:aws:s3:::*``, although S3 has no other resources): it errs towards reporting.

Where a base-role statement that would decide has a ``Condition`` (or a policy variable
in its resources), the answer is "may be refused". Where the product grows beyond
:data:`MAX_STATES`, the pattern is reported as undecided: never as granted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .globs import closure, is_literal, matches, step, tokens

MAX_STATES = 20_000
_CANDIDATE_OTHER = "xqzjkvw0123456789#~"

Effect = Literal["Allow", "Deny"]
Layer = Literal["identity", "boundary"]


@dataclass(frozen=True)
class Spec:
    """An Action/Resource element: its patterns, negated for NotAction/NotResource."""

    patterns: tuple[str, ...]
    negated: bool = False

    def __str__(self) -> str:
        return ("Not " if self.negated else "") + ", ".join(self.patterns)


@dataclass(frozen=True)
class BaseStatement:
    """One statement of the base role's identity policies or of its boundary."""

    policy: str  # how it is named in a reason: a managed policy's name, "inline policy X"
    index: int  # 1-based
    effect: Effect
    actions: Spec
    resources: Spec
    conditional: bool
    layer: Layer = "identity"


@dataclass(frozen=True)
class Cell:
    """One action spec of a role statement on one resource spec, and how the base role
    narrows it: ``whole`` when it grants none of it, else only some; ``example`` is an
    (action, resource) pair it does not grant (lower-case action)."""

    actions: Spec
    resources: Spec
    whole: bool
    example: tuple[str, str]


@dataclass(frozen=True)
class Narrowing:
    """Actions of one Allow statement of the role that the base role cannot (or may not)
    grant, and why.

    ``policy`` is the role's inline policy name or managed policy ARN, ``source`` how the
    fidelity report names it ("inline policy deploy"), ``statement`` the 1-based index,
    ``actions`` the statement's action patterns concerned (as written), ``certain`` False
    for "may be refused" (a condition of the base role decides), ``partly`` True when the
    base role grants some of those actions, ``cells`` the detail (for tests and JSON).
    """

    policy: str
    source: str
    statement: int
    actions: tuple[str, ...]
    certain: bool
    partly: bool
    reason: str
    cells: tuple[Cell, ...] = field(default=(), compare=False, repr=False)

    def line(self, base_role: str) -> str:
        """The one-line form of the fidelity report."""
        shown = ", ".join(self.actions)
        verb = "cannot grant" if self.certain else "may refuse"
        what = "some of them" if self.partly else "them"
        return (
            f"{shown} ({self.source}, statement {self.statement}): the base role "
            f"{base_role} {verb} {what} ({self.reason})"
        )


class Undecided(Exception):
    """The patterns' product is too large to explore."""


@functools.lru_cache(maxsize=4096)
def signatures(
    role: Spec, base: tuple[Spec, ...], *, resource: bool
) -> dict[frozenset[tuple[int, int]], str]:
    """Each distinct set of ``base`` patterns (spec index, pattern index) that a string
    matched by ``role`` can match, with a shortest such string (actions in lower case).
    Raises :class:`Undecided`.

    Cached: one base role's specs serve every role of a listing. Do not mutate the result.
    """
    if not role.negated and all(is_literal(p) for p in role.patterns):
        # The common case (a role listing actions one by one) needs no search.
        literal: dict[frozenset[tuple[int, int]], str] = {}
        for pattern in role.patterns:
            text = pattern if resource else pattern.lower()
            literal.setdefault(_hits(text, base, resource), text)
        return literal
    patterns = list(role.patterns) + [p for spec in base for p in spec.patterns]
    automata = [tokens(p, resource) for p in patterns]
    alphabet = {c for tokens in automata for c, _ in tokens if len(c) == 1 and c not in "*?"}
    alphabet |= {":"}
    alphabet.add(next(c for c in _CANDIDATE_OTHER + "\u00e9\u00e8" if c not in alphabet))
    ordered = sorted(alphabet)
    owners: list[tuple[int, int]] = []  # (spec index, -1 for the role) per pattern
    owners += [(-1, i) for i in range(len(role.patterns))]
    for index, spec in enumerate(base):
        owners += [(index, i) for i in range(len(spec.patterns))]
    start = tuple(closure(t, [0]) for t in automata)
    seen = {start: ""}
    queue = [start]
    found: dict[frozenset[tuple[int, int]], str] = {}
    n_role = len(role.patterns)
    while queue:
        state = queue.pop(0)
        accepts = [len(automata[k]) in state[k] for k in range(len(automata))]
        if any(accepts[:n_role]) != role.negated:
            hits = frozenset(owners[k] for k in range(n_role, len(automata)) if accepts[k])
            found.setdefault(hits, seen[state])
        if not role.negated and not any(state[:n_role]):
            continue  # no extension can match the role's patterns
        for char in ordered:
            following = tuple(step(automata[k], state[k], char) for k in range(len(automata)))
            if following not in seen:
                if len(seen) >= MAX_STATES:
                    raise Undecided
                seen[following] = seen[state] + char
                queue.append(following)
    return found


def _hits(text: str, specs: Sequence[Spec], resource: bool) -> frozenset[tuple[int, int]]:
    return frozenset(
        (i, k)
        for i, spec in enumerate(specs)
        for k, pattern in enumerate(spec.patterns)
        if matches(text, pattern, resource)
    )


def _matched(hits: frozenset[tuple[int, int]], specs: Sequence[Spec]) -> frozenset[int]:
    """The specs that match, given which of their patterns do (NotAction: none must)."""
    hit = {i for i, _ in hits}
    return frozenset(i for i, spec in enumerate(specs) if (i in hit) != spec.negated)


def matching(text: str, specs: Sequence[Spec], *, resource: bool) -> frozenset[int]:
    """Indexes of the specs that match ``text`` (an action or a resource)."""
    return frozenset(
        i
        for i, spec in enumerate(specs)
        if any(matches(text, p, resource) for p in spec.patterns) != spec.negated
    )


# -- policies ------------------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _spec(statement: Mapping[str, Any], name: str) -> Spec | None:
    if name in statement:
        values = _strings(statement[name])
        return None if values is None else Spec(values)
    values = _strings(statement.get(f"Not{name}"))
    return None if values is None else Spec(values, negated=True)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _unvariable(pattern: str) -> str:
    """A Resource pattern of a 2012-10-17 statement as the patterns it may stand for:
    ``${$}``/``${*}``/``${?}`` are those characters, any other variable any value."""
    return _VARIABLE.sub(lambda m: m.group(1) if m.group(1) in ("$", "*", "?") else "*", pattern)


def statements_of(document: Mapping[str, Any]) -> list[Any]:
    """A policy document's statements, one object or a list."""
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def base_statements(policy: str, document: Mapping[str, Any], layer: Layer) -> list[BaseStatement]:
    """The base role's statements of one policy, read so as never to widen its grants.

    A statement this cannot read is an Allow that matches nothing, or a Deny that matches
    everything. Policy variables in a Resource make the statement conditional.
    """
    result = []
    for index, statement in enumerate(statements_of(document), 1):
        if not isinstance(statement, Mapping):
            continue
        effect = statement.get("Effect")
        actions, resources = _spec(statement, "Action"), _spec(statement, "Resource")
        if effect == "Deny" and (actions is None or resources is None):
            actions, resources = actions or Spec(("*",)), resources or Spec(("*",))
        if effect not in ("Allow", "Deny") or actions is None or resources is None:
            continue
        variables = document.get("Version") == "2012-10-17" and any(
            "${" in p for p in resources.patterns
        )
        conditional = bool(statement.get("Condition")) or variables
        result.append(BaseStatement(policy, index, effect, actions, resources, conditional, layer))
    return result


@dataclass(frozen=True)
class _Verdict:
    outcome: Literal["granted", "refused", "maybe"]
    reason: tuple[str, str] = ("", "")  # (reason family, its subject), detail apart
    detail: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ceiling:
    """What a base role can grant: its identity policies' statements and its boundary's.

    Build it with :meth:`from_policies`; ask it with :meth:`narrowings`.
    """

    base_role: str
    statements: tuple[BaseStatement, ...]
    boundary: str | None = None

    @classmethod
    def from_policies(
        cls,
        base_role: str,
        policies: Mapping[str, Mapping[str, Any]],
        boundary: tuple[str, Mapping[str, Any]] | None = None,
    ) -> Ceiling:
        """From the base role's name, its policies (inline name or managed ARN -> document)
        and its permissions boundary (ARN, document), if it has one."""
        statements: list[BaseStatement] = []
        for name, document in policies.items():
            label = name.rsplit("/", 1)[-1] if name.startswith("arn:") else f"inline policy {name}"
            statements += base_statements(label, document, "identity")
        if boundary is not None:
            label = f"permissions boundary {boundary[0].rsplit('/', 1)[-1]}"
            statements += base_statements(label, boundary[1], "boundary")
        return cls(base_role, tuple(statements), boundary[0] if boundary is not None else None)

    def _verdict(
        self, matched: frozenset[int], action: str, resource: str, shared: bool
    ) -> _Verdict:
        stmts = [self.statements[i] for i in sorted(matched)]
        if shared:
            # The role has the same boundary: what it refuses, it refuses the role too.
            bound = [s for s in stmts if s.layer == "boundary"]
            if any(s.effect == "Deny" for s in bound) or not any(
                s.effect == "Allow" for s in bound
            ):
                return _Verdict("granted")
            stmts = [s for s in stmts if s.layer == "identity"]
        layers: tuple[Layer, ...] = ("identity",)
        if self.boundary is not None and not shared:
            layers = ("identity", "boundary")
        denies = [s for s in stmts if s.effect == "Deny"]
        for deny in denies:
            if not deny.conditional:
                return _Verdict("refused", ("deny", f"{deny.policy} statement {deny.index}"))
        for layer in layers:
            allows = [s for s in stmts if s.effect == "Allow" and s.layer == layer]
            if not allows:
                return self._why_not(layer, action, resource, matched)
        conditional = [s for s in stmts if s.conditional and (s.effect == "Deny")]
        for layer in layers:
            allows = [s for s in stmts if s.effect == "Allow" and s.layer == layer]
            if all(s.conditional for s in allows):
                conditional += allows
        if conditional:
            first = conditional[0]
            verb = "denies" if first.effect == "Deny" else "allows"
            return _Verdict(
                "maybe", ("condition", f"{first.policy} statement {first.index} {verb} them")
            )
        return _Verdict("granted")

    def _why_not(self, layer: str, action: str, resource: str, matched: frozenset[int]) -> _Verdict:
        """Why no Allow of ``layer`` matches: a NotAction, a resource, or nothing at all."""
        for i, s in enumerate(self.statements):
            if s.effect != "Allow" or s.layer != layer or i in matched:
                continue
            action_hit = bool(matching(action, [s.actions], resource=False))
            resource_hit = bool(matching(resource, [s.resources], resource=True))
            if not action_hit and s.actions.negated and resource_hit:
                excluded = tuple(
                    p for p in s.actions.patterns if matches(action, p, resource=False)
                )
                return _Verdict("refused", ("notaction", s.policy), excluded)
            if action_hit and not resource_hit:
                word = "NotResource" if s.resources.negated else "only"
                return _Verdict(
                    "refused", ("resource", f"{s.policy} allows them {word}"), s.resources.patterns
                )
        if layer == "boundary":
            return _Verdict("refused", ("boundary", "its permissions boundary"))
        return _Verdict("refused", ("none", ""))

    def narrowings(
        self,
        role_policies: Iterable[tuple[str, str, Mapping[str, Any]]],
        *,
        role_boundary: str | None = None,
        left_out: Collection[tuple[str, int]] = (),
    ) -> list[Narrowing]:
        """What the base role cannot grant of each Allow statement of the role.

        ``role_policies``: (inline name or managed ARN, source label, document) for each
        policy of the role; ``role_boundary``: the role's permissions boundary ARN. When
        the base role carries the same boundary (a boundary variant), what the boundary
        refuses is refused the role too, and is no narrowing. ``left_out``: (policy,
        1-based statement) pairs not sent at all (a condition that never holds for the
        role, an unknown value): reported elsewhere, not here. The role's own Denies are
        not subtracted: an action the role denies itself may be reported too (never the
        other way round).
        """
        statements = [
            (policy, source, index, statement)
            for policy, source, document in role_policies
            for index, statement in enumerate(statements_of(document), 1)
            if (policy, index) not in left_out
        ]
        return self.narrowings_sent(statements, role_boundary=role_boundary)

    def narrowings_sent(
        self,
        statements: Iterable[tuple[str, str, int, Any]],
        *,
        role_boundary: str | None = None,
    ) -> list[Narrowing]:
        """What the base role cannot grant of each Allow statement the session is sent.

        ``statements``: (policy, source label, 1-based index, statement) as the session
        gets them, after the rewrites (:attr:`iam_sudo.core.session.SessionPlan.statements`):
        a variable replaced by the role's value is judged on that value, a statement
        left out is not judged at all. A variable still in a Resource (its value is
        the request's) may take any value: it is read as ``*``, so that a narrowing is
        never missed; ``${$}``, ``${*}``, ``${?}`` are read as the characters.
        """
        shared = role_boundary is not None and role_boundary == self.boundary
        result: list[Narrowing] = []
        for policy, source, index, statement in statements:
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                continue
            # What cannot be read is read as everything: a narrowing is never missed.
            actions = _spec(statement, "Action") or Spec(("*",))
            resources = _spec(statement, "Resource") or Spec(("*",))
            resources = Spec(tuple(map(_unvariable, resources.patterns)), resources.negated)
            result += self._statement(policy, source, index, actions, resources, shared)
        return result

    def _statement(
        self, policy: str, source: str, index: int, actions: Spec, resources: Spec, shared: bool
    ) -> list[Narrowing]:
        action_specs = tuple(s.actions for s in self.statements)
        resource_specs = tuple(s.resources for s in self.statements)
        parts = [Spec((p,)) for p in actions.patterns] if not actions.negated else [actions]
        resource_parts = (
            [Spec((p,)) for p in resources.patterns] if not resources.negated else [resources]
        )
        # (certain, partly, reason family, subject) -> (actions, detail, cells)
        groups: dict[tuple[bool, bool, str, str], tuple[list[str], list[str], list[Cell]]]
        groups = {}
        for part in parts:
            shown = f"NotAction {part}" if part.negated else part.patterns[0]
            for resource_part in resource_parts:
                try:
                    by_action = signatures(part, action_specs, resource=False)
                    by_resource = signatures(resource_part, resource_specs, resource=True)
                except Undecided:
                    group = groups.setdefault((False, False, "undecided", ""), ([], [], []))
                    if shown not in group[0]:
                        group[0].append(shown)
                    continue
                verdicts = [
                    (self._verdict(sa & sr, a, r, shared), a, r)
                    for sa, a in ((_matched(h, action_specs), a) for h, a in by_action.items())
                    for sr, r in ((_matched(h, resource_specs), r) for h, r in by_resource.items())
                ]
                narrowed = [(v, a, r) for v, a, r in verdicts if v.outcome != "granted"]
                partly = len(narrowed) < len(verdicts)
                for verdict, a, r in narrowed:
                    key = (verdict.outcome == "refused", partly, *verdict.reason)
                    group = groups.setdefault(key, ([], [], []))
                    if shown not in group[0]:
                        group[0].append(shown)
                    group[1].extend(d for d in verdict.detail if d not in group[1])
                    group[2].append(Cell(part, resource_part, not partly, (a, r)))
        return [
            Narrowing(
                policy,
                source,
                index,
                tuple(shown),
                certain,
                partly,
                self._reason(family, subject, detail),
                tuple(cells),
            )
            for (certain, partly, family, subject), (shown, detail, cells) in groups.items()
        ]

    def _reason(self, family: str, subject: str, detail: list[str]) -> str:
        order = {p: i for s in self.statements for i, p in enumerate(s.actions.patterns)}
        listed = ", ".join(sorted(detail, key=lambda p: order.get(p, 0)))
        match family:
            case "deny":
                return f"{subject} denies them"
            case "notaction":
                return f"{subject} allows NotAction {listed}"
            case "resource":
                return f"{subject} on {listed}"
            case "boundary":
                return "its permissions boundary does not allow them"
            case "condition":
                return f"{subject} under a condition"
            case "undecided":
                return "too many patterns to decide; treated as not granted"
            case _:
                return "no Allow of its policies matches them"

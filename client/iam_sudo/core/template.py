"""A role that does not exist yet, from an ``AWS::IAM::Role`` of a CloudFormation template.

Pure. :func:`load_template` reads a template's text (JSON, or YAML with CloudFormation's
short-form tags such as ``!Sub``); :func:`template_role` picks one role resource and
resolves what it can of it: ``Ref`` to parameters (their ``Default`` or a value given) and
to the pseudo parameters ``AWS::AccountId``, ``AWS::Region``, ``AWS::Partition``,
``AWS::URLSuffix`` and ``AWS::NoValue``, ``Ref``/``Fn::GetAtt ... Arn`` of the template's
roles, ``Fn::Sub`` and ``Fn::Join`` ("Intrinsic function reference", CloudFormation User
Guide). The role's ``Policies``, its ``ManagedPolicyArns``, and ``AWS::IAM::Policy``
resources naming it in ``Roles`` become its policies.

Anything else cannot be known before the stack exists. It is never guessed and never
widens: an Allow loses the values it cannot resolve (the statement goes when nothing is
left), a Deny grows (an unresolvable resource or action becomes ``*``, an unresolvable
condition goes), a managed policy ARN that cannot be resolved is left out; each of these
is a finding of kind ``narrower``, so ``--exact`` refuses. A permissions boundary that
cannot be resolved cannot be reproduced at all: :class:`UnsupportedRole`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import AmbiguousRole, InvalidRequest, RoleNotFound, UnsupportedRole
from .fidelity import Finding
from .roles import Role, RoleDetails

ROLE_TYPE = "AWS::IAM::Role"
POLICY_TYPE = "AWS::IAM::Policy"
MAX_TEMPLATE_CHARS = 1024 * 1024  # CloudFormation's own limit for a template from S3


class _Unresolved:
    """A value only the stack will know; ``what`` says which, for the finding."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


_NO_VALUE = object()


def load_template(name: str, text: str) -> Mapping[str, Any]:
    """A template's document from its text, JSON or YAML with short-form tags; raises
    :class:`InvalidRequest` naming ``name`` and what is wrong."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise InvalidRequest(f"{name}: larger than a CloudFormation template can be")
    import yaml

    from .drafts import json_loader, load_document

    # The drafts' hardened loader (no anchors or aliases, no duplicate keys, bounded
    # nesting, dates kept as strings), with CloudFormation's short-form tags.
    class Loader(json_loader()):  # type: ignore[misc]
        pass

    def tagged(loader: Any, suffix: str, node: Any) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix in ("Ref", "Condition"):
            return {suffix: value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", tagged)
    document = load_document(name, text, Loader)
    if not isinstance(document, Mapping) or not isinstance(document.get("Resources"), Mapping):
        raise InvalidRequest(f"{name}: not a CloudFormation template (no Resources)")
    return document


@dataclass(frozen=True)
class Template:
    """A template to simulate a role of: ``name`` (its file, for messages), its parsed
    ``document``, values of its ``parameters``, and the ``region`` it would deploy to."""

    name: str
    document: Mapping[str, Any]
    parameters: Mapping[str, str]
    region: str | None

    def __str__(self) -> str:
        # The credential cache keys a command by its parameters: by content.
        return json.dumps([self.document, self.parameters, self.region], sort_keys=True)


@dataclass(frozen=True)
class TemplateRole:
    """A role of a template, as far as it can be known before the stack exists.

    ``logical_id``: its resource's; ``role``, ``details``: as IAM would list it (named by
    ``RoleName``, else by its logical ID); ``managed_arns`` and ``inline``: its policies;
    ``findings``: what was narrowed because it could not be resolved.
    """

    logical_id: str
    role: Role
    details: RoleDetails
    managed_arns: tuple[str, ...]
    inline: Mapping[str, Mapping[str, Any]]
    findings: tuple[Finding, ...] = ()


class _Resolver:
    def __init__(
        self, template: Mapping[str, Any], pseudo: Mapping[str, str], given: Mapping[str, str]
    ) -> None:
        self.resources: Mapping[str, Any] = template["Resources"]
        self.pseudo = pseudo
        self.parameters: dict[str, str] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in given:
                self.parameters[name] = given[name]
            elif isinstance(spec, Mapping) and "Default" in spec:
                self.parameters[name] = str(spec["Default"])

    def role_name(self, logical_id: str) -> Any:
        properties = self.resources[logical_id].get("Properties") or {}
        if "RoleName" in properties:
            return self.value(properties["RoleName"])
        return logical_id

    def role_arn(self, logical_id: str) -> Any:
        name = self.role_name(logical_id)
        path = self.value((self.resources[logical_id].get("Properties") or {}).get("Path", "/"))
        if isinstance(name, _Unresolved) or isinstance(path, _Unresolved):
            return _Unresolved(f"the ARN of {logical_id}")
        account, partition = self.pseudo.get("AWS::AccountId"), self.pseudo["AWS::Partition"]
        return f"arn:{partition}:iam::{account}:role{path}{name}"

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources.get(name)
        if isinstance(resource, Mapping) and resource.get("Type") == ROLE_TYPE:
            return self.role_name(name)
        return _Unresolved(f"Ref {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.resources.get(logical_id)
        if (
            isinstance(resource, Mapping)
            and resource.get("Type") == ROLE_TYPE
            and attribute == "Arn"
        ):
            return self.role_arn(logical_id)
        return _Unresolved(f"Fn::GetAtt {logical_id}.{attribute}")

    def sub(self, text: str, variables: Mapping[str, Any]) -> Any:
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                value = self.value(variables[inner])
            elif "." in inner:
                value = self.get_att(*inner.split(".", 1))
            else:
                value = self.ref(inner)
            if isinstance(value, str):
                return value
            missing.append(inner)
            return ""

        out = re.sub(r"\$\{([^}]*)\}", replace, text)
        return _Unresolved(f"${{{missing[0]}}} in Fn::Sub") if missing else out

    def value(self, node: Any) -> Any:
        """``node`` with its intrinsic functions resolved; _Unresolved where they cannot be."""
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not _NO_VALUE]
        if not isinstance(node, Mapping):
            return node
        if len(node) == 1:
            [(key, argument)] = node.items()
            if key == "Ref" and isinstance(argument, str):
                return self.ref(argument)
            if key == "Fn::GetAtt":
                parts = argument.split(".", 1) if isinstance(argument, str) else argument
                if (
                    isinstance(parts, list)
                    and len(parts) == 2
                    and all(isinstance(p, str) for p in parts)
                ):
                    return self.get_att(parts[0], parts[1])
                return _Unresolved("Fn::GetAtt")
            if key == "Fn::Sub":
                if isinstance(argument, str):
                    text, variables = argument, {}
                elif isinstance(argument, list) and len(argument) == 2:
                    text, variables = argument
                else:
                    return _Unresolved("Fn::Sub")
                if not isinstance(text, str) or not isinstance(variables, Mapping):
                    return _Unresolved("Fn::Sub")
                return self.sub(text, variables)
            if key == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
                delimiter, items = argument[0], self.value(argument[1])
                if isinstance(items, list) and all(isinstance(i, str) for i in items):
                    return str(delimiter).join(items)
                return _Unresolved("Fn::Join")
            if key.startswith("Fn::") or key == "Condition":
                return _Unresolved(key)
        resolved = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}


def _unresolved_in(value: Any) -> list[_Unresolved]:
    if isinstance(value, _Unresolved):
        return [value]
    if isinstance(value, list):
        return [u for item in value for u in _unresolved_in(item)]
    if isinstance(value, Mapping):
        return [u for item in value.values() for u in _unresolved_in(item)]
    return []


def _narrowed(
    statement: Mapping[str, Any], policy: str, index: int
) -> tuple[Mapping[str, Any] | None, list[Finding]]:
    """The statement with what cannot be resolved narrowed (see the module), and findings."""
    unknown = _unresolved_in(statement)
    if not unknown:
        return statement, []
    what = ", ".join(dict.fromkeys(u.what for u in unknown))
    out = dict(statement)
    if statement.get("Effect") == "Deny":
        how = "denied more broadly"
        for element in ("Action", "NotAction"):
            if _unresolved_in(out.get(element)):
                out.pop(element)
                out["Action"] = "*"
        for element in ("Resource", "NotResource"):
            if _unresolved_in(out.get(element)):
                out.pop(element)
                out["Resource"] = "*"
        if _unresolved_in(out.get("Condition")):
            out.pop("Condition")
    else:
        keep: Mapping[str, Any] | None = out
        for element in ("Action", "Resource"):
            listed = out.get(element)
            if isinstance(listed, list):
                out[element] = [v for v in listed if not isinstance(v, _Unresolved)]
            if _unresolved_in(out.get(element)) or out.get(element) == []:
                keep = None
        if any(_unresolved_in(out.get(e)) for e in ("NotAction", "NotResource", "Condition")):
            keep = None
        out = dict(keep) if keep is not None else {}
        how = "its unknown values left out" if keep is not None else "left out"
    line = (
        f"{policy} statement {index}: {what} cannot be known before the stack exists; "
        f"{'this Deny is ' if statement.get('Effect') == 'Deny' else 'this Allow is '}{how}"
    )
    listed = statement.get("Action", [])
    actions = tuple(
        a for a in (listed if isinstance(listed, list) else [listed]) if isinstance(a, str)
    )
    finding = Finding(
        kind="narrower",
        reason=f"{what} is unknown before deployment",
        line=line,
        policy=policy.removeprefix("inline policy "),
        statement=index,
        actions=actions,
    )
    return (out or None), [finding]


def _document(
    resolver: _Resolver, node: Any, policy: str
) -> tuple[dict[str, Any] | None, list[Finding]]:
    resolved = resolver.value(node)
    if not isinstance(resolved, Mapping):
        return None, [
            Finding(
                kind="narrower",
                reason="the policy document is unknown before deployment",
                line=f"{policy}: its document cannot be known before the stack exists; left out",
                policy=policy,
            )
        ]
    found = resolved.get("Statement", [])
    statements = found if isinstance(found, list) else [found]
    kept, findings = [], []
    for index, statement in enumerate(statements, 1):
        if not isinstance(statement, Mapping):
            continue
        narrowed, notes = _narrowed(statement, policy, index)
        findings += notes
        if narrowed is not None:
            kept.append(dict(narrowed))
    return {"Version": "2012-10-17", "Statement": kept}, findings


def template_role(
    template: Mapping[str, Any],
    name: str,
    *,
    account: str,
    partition: str,
    region: str | None,
    parameters: Mapping[str, str] | None = None,
) -> TemplateRole:
    """The ``AWS::IAM::Role`` of ``template`` whose logical ID or ``RoleName`` is ``name``
    (or, failing that, the one containing it). Raises :class:`RoleNotFound`,
    :class:`AmbiguousRole`, :class:`UnsupportedRole` (a boundary that cannot be known)."""
    pseudo = {"AWS::AccountId": account, "AWS::Partition": partition}
    if region:
        pseudo["AWS::Region"] = region
        pseudo["AWS::URLSuffix"] = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    resolver = _Resolver(template, pseudo, parameters or {})
    roles = [
        key
        for key, resource in resolver.resources.items()
        if isinstance(resource, Mapping) and resource.get("Type") == ROLE_TYPE
    ]
    named = {key: resolver.role_name(key) for key in roles}
    exact = [k for k in roles if name in (k, named[k])]
    matches = exact or [k for k in roles if name in k or name in str(named[k])]
    if not matches:
        raise RoleNotFound(f"the template has no {ROLE_TYPE} matching {name!r}")
    if len(matches) > 1:
        raise AmbiguousRole(
            f"{name!r} matches the template's roles {', '.join(matches)}; give one", matches
        )
    [logical_id] = matches
    properties = resolver.resources[logical_id].get("Properties") or {}
    findings: list[Finding] = []
    arn = resolver.role_arn(logical_id)
    role_name = named[logical_id]
    if isinstance(arn, _Unresolved) or isinstance(role_name, _Unresolved):
        role_name = logical_id
        arn = f"arn:{partition}:iam::{account}:role/{logical_id}"
    # The trust policy only says who may assume the role (a session reproduces none of
    # it): a principal it cannot resolve is left out, and so may fail the sudo policy.
    trust, _ = _document(resolver, properties.get("AssumeRolePolicyDocument", {}), "trust")
    boundary = resolver.value(properties.get("PermissionsBoundary"))
    if isinstance(boundary, _Unresolved):
        raise UnsupportedRole(
            f"the permissions boundary of {logical_id} cannot be known before the stack "
            f"exists ({boundary.what}): a session without it could be wider than the role"
        )
    tags = {
        str(tag["Key"]): str(tag["Value"])
        for tag in resolver.value(properties.get("Tags") or [])
        if isinstance(tag, Mapping) and isinstance(tag.get("Value"), str)
    }
    inline: dict[str, Mapping[str, Any]] = {}
    for item in properties.get("Policies") or []:
        policy_name = resolver.value(item.get("PolicyName")) if isinstance(item, Mapping) else None
        if not isinstance(policy_name, str):
            policy_name = f"{logical_id}.Policies[{len(inline)}]"
        document, notes = _document(
            resolver, item.get("PolicyDocument"), f"inline policy {policy_name}"
        )
        findings += notes
        if document is not None:
            inline[policy_name] = document
    for key, resource in resolver.resources.items():
        if not (isinstance(resource, Mapping) and resource.get("Type") == POLICY_TYPE):
            continue
        attached = resolver.value((resource.get("Properties") or {}).get("Roles") or [])
        if role_name in attached or logical_id in attached:
            document, notes = _document(
                resolver, resource["Properties"].get("PolicyDocument"), f"inline policy {key}"
            )
            findings += notes
            if document is not None:
                inline[key] = document
    managed: list[str] = []
    for value in resolver.value(properties.get("ManagedPolicyArns") or []):
        if isinstance(value, str):
            managed.append(value)
        else:
            what = value.what if isinstance(value, _Unresolved) else "a managed policy ARN"
            findings.append(
                Finding(
                    kind="narrower",
                    reason=f"{what} is unknown before deployment",
                    line=(
                        f"managed policy ({what}) cannot be known before the stack exists; left out"
                    ),
                )
            )
    role = Role(str(role_name), str(arn), trust or {})
    details = RoleDetails(str(arn), boundary if isinstance(boundary, str) else None, tags)
    return TemplateRole(logical_id, role, details, tuple(managed), inline, tuple(findings))

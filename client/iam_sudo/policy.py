"""The sudo policy: which roles, principals and base roles may be used to simulate.

A sudo policy is YAML with three glob lists::

    allowed-role-names: ["*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/*"]

Globs are shell-style (``*``, ``?``, ``[...]``) and case-sensitive, like IAM names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ._exceptions import InvalidSudoPolicy, SudoPolicyDenied
from .principal import Principal
from .roles import Role, is_role_arn

ROLE_NAMES = "allowed-role-names"
PRINCIPALS = "allowed-principals"
BASE_ROLES = "allowed-base-roles"

DEFAULT_POLICY_YAML = """\
allowed-role-names:
  - "*"
allowed-principals:
  - "*": "*"
allowed-base-roles:
  - "arn:aws:iam::*:role/*"
"""


def _matches(value: str, patterns: Sequence[str]) -> bool:
    return any(value == pattern or fnmatchcase(value, pattern) for pattern in patterns)


def _string_list(document: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = document[key]
    if not isinstance(value, list):
        raise InvalidSudoPolicy(f"invalid sudo policy: {key} must be a list of glob strings")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: {key}[{index}] must be a non-empty glob string, got {item!r}"
            )
    return tuple(value)


def _principal_list(document: Mapping[str, Any]) -> tuple[Principal, ...]:
    value = document[PRINCIPALS]
    if not isinstance(value, list):
        raise InvalidSudoPolicy(
            f"invalid sudo policy: {PRINCIPALS} must be a list of TYPE: ID glob mappings"
        )
    principals: list[Principal] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not item:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: {PRINCIPALS}[{index}] must be a mapping of TYPE: ID globs, "
                f'e.g. Service: "ecs-tasks.amazonaws.com", got {item!r}'
            )
        for type_, id_ in item.items():
            if not isinstance(type_, str) or not isinstance(id_, str) or not type_ or not id_:
                raise InvalidSudoPolicy(
                    f"invalid sudo policy: {PRINCIPALS}[{index}] must map a TYPE glob string "
                    f"to an ID glob string, got {type_!r}: {id_!r}"
                )
            principals.append(Principal(type_, id_))
    return tuple(principals)


@dataclass(frozen=True)
class SudoPolicy:
    """Which role names, principals and base roles may be simulated."""

    allowed_role_names: tuple[str, ...]
    allowed_principals: tuple[Principal, ...]
    allowed_base_roles: tuple[str, ...]

    @classmethod
    def from_document(cls, document: object) -> SudoPolicy:
        """Validate a parsed policy document; raise :class:`InvalidSudoPolicy` naming the field."""
        if not isinstance(document, Mapping):
            raise InvalidSudoPolicy(
                f"invalid sudo policy: expected a mapping with {ROLE_NAMES}, {PRINCIPALS} "
                f"and {BASE_ROLES}, got {type(document).__name__}"
            )
        fields = (ROLE_NAMES, PRINCIPALS, BASE_ROLES)
        unknown = sorted(str(key) for key in document if key not in fields)
        if unknown:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: unknown field {unknown[0]!r}; "
                f"expected {ROLE_NAMES}, {PRINCIPALS} and {BASE_ROLES}"
            )
        missing = [key for key in fields if key not in document]
        if missing:
            raise InvalidSudoPolicy(f"invalid sudo policy: missing field {missing[0]}")
        return cls(
            allowed_role_names=_string_list(document, ROLE_NAMES),
            allowed_principals=_principal_list(document),
            allowed_base_roles=_string_list(document, BASE_ROLES),
        )

    @classmethod
    def from_yaml(cls, text: str) -> SudoPolicy:
        """Parse and validate a YAML sudo policy."""
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or "malformed YAML"
            raise InvalidSudoPolicy(f"invalid sudo policy: {problem}{where}") from None
        return cls.from_document(document)

    @classmethod
    def default(cls) -> SudoPolicy:
        """The client's default: every role name, principal and base role is allowed."""
        return cls.from_yaml(DEFAULT_POLICY_YAML)

    def allows_role_name(self, name: str) -> bool:
        """Whether a role of this name may be simulated."""
        return _matches(name, self.allowed_role_names)

    def allows_principal(self, principal: Principal) -> bool:
        """Whether ``principal`` matches one of the allowed TYPE: ID globs."""
        return any(
            fnmatchcase(principal.type, allowed.type) and fnmatchcase(principal.id, allowed.id)
            for allowed in self.allowed_principals
        )

    def allows_base_role(self, arn: str) -> bool:
        """Whether the base role ARN is a role ARN that matches an allowed glob."""
        return is_role_arn(arn) and _matches(arn, self.allowed_base_roles)

    def check(self, role: Role, base_role_arn: str, principal: Principal | None = None) -> None:
        """Raise :class:`SudoPolicyDenied` unless the policy allows this simulation.

        The role name and trust principals are those of the *resolved* role, so a short
        substring cannot slip past the policy.
        """
        reason = None
        if not self.allows_base_role(base_role_arn):
            reason = f"sudo policy does not allow the base role {base_role_arn}"
        elif not self.allows_role_name(role.name):
            reason = f"sudo policy does not allow the role {role.name}"
        elif principal is not None and not self.allows_principal(principal):
            reason = f"sudo policy does not allow the principal {principal}"
        elif not any(self.allows_principal(trusted) for trusted in role.principals):
            trusted = ", ".join(str(p) for p in role.principals) or "none"
            reason = f"sudo policy allows none of the principals of role {role.name} ({trusted})"
        if reason is not None:
            raise SudoPolicyDenied(reason, role_arn=role.arn, base_role_arn=base_role_arn)

"""The sudo policy: who may simulate which roles, principals and base roles.

A sudo policy is YAML with three glob lists, and optionally the callers it is for::

    allowed-role-names: ["*"]
    allowed-principals: [{"*": "*"}]
    allowed-base-roles: ["arn:aws:iam::*:role/*"]
    allowed-callers: ["arn:aws:sts::123456789012:assumed-role/Developers/*"]

or, like sudoers, a list of such rules under ``rules:``, each with its own callers.
Callers are verified ARNs (what STS says, never what a request claims).

``allowed-added-policies: true`` lets the rule's callers add draft policies to the role
(``--add-policy``, :mod:`iam_sudo.core.drafts`): never wider than the role plus the drafts, but
that can be anything the base role can do, so it is off unless a rule says so.

``allowed-accounts`` (12-digit account globs) says *where*: at the top level it bounds
every rule, in a rule it bounds that rule further. Absent, every account the deployment
can reach (its own and its spokes) is allowed. It applies to the account of the simulated
role and to that of the base role (which, across accounts, is the base role in the role's
own account).

Globs are shell-style (``*``, ``?``, ``[...]``) and case-sensitive, like IAM names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .arn import account_of
from .duties import DEPLOY_ROLE, READER_ROLE, reserved_duty, reserved_roles
from .exceptions import InvalidSudoPolicy, RoleNotFound, SudoPolicyDenied, UnsafeBaseRole
from .globs import shell_glob
from .partitions import ANY_ROLE_GLOB
from .principal import Principal, admits
from .roles import Role, is_role_arn, resolve_role, role_name_of

ROLE_NAMES = "allowed-role-names"
PRINCIPALS = "allowed-principals"
BASE_ROLES = "allowed-base-roles"
CALLERS = "allowed-callers"
ACCOUNTS = "allowed-accounts"
ADDED = "allowed-added-policies"
RULES = "rules"
# A 12-digit account id glob: digits, * and ?; without *, exactly 12 characters.
_ACCOUNT_GLOB = re.compile(r"[0-9?*]+")

# The client's default, as a document: parsing it needs no YAML parser (imported only for a
# policy the user gives), which keeps `simulate --local`'s start-up short. Every
# partition's roles (arn:aws:, arn:aws-us-gov:, arn:aws-cn:, ...): the client's default
# assumes no partition; roles iam-sudo deploys for other duties stay refused.
DEFAULT_POLICY: dict[str, Any] = {
    "allowed-role-names": ["*"],
    "allowed-principals": [{"*": "*"}],
    "allowed-base-roles": [ANY_ROLE_GLOB],
    "allowed-added-policies": True,
}


def __getattr__(name: str) -> str:
    """``DEFAULT_POLICY_YAML``: the default as YAML text, made when asked for."""
    if name == "DEFAULT_POLICY_YAML":
        import yaml

        return str(yaml.safe_dump(DEFAULT_POLICY, sort_keys=False))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A sudo policy is a few lines: these bounds make a hostile one fail fast and small.
MAX_POLICY_CHARS = 64 * 1024
MAX_DEPTH = 16
_SHOWN_CHARS = 80


def _shown(value: object) -> str:
    """A bounded repr for messages: a hostile document must not make a huge one."""
    text = repr(value) if isinstance(value, str | int | float | bool | None) else None
    if text is None:
        text = f"a {type(value).__name__}"
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


@functools.cache
def _loader() -> Any:
    """PyYAML's safe loader, refusing what a sudo policy never needs and an attacker would use.

    Anchors and aliases (a billion laughs expands them into gigabytes), nesting deeper
    than :data:`MAX_DEPTH` (the composer recurses), and duplicate keys (YAML lets the
    later one win silently: a rule could be shadowed unseen).
    """
    import yaml

    class Loader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1
                raise InvalidSudoPolicy(
                    f"invalid sudo policy: anchors and aliases (&, *) are not allowed, "
                    f"at line {line}"
                )
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise InvalidSudoPolicy(
                    f"invalid sudo policy: nested deeper than {MAX_DEPTH} levels, "
                    f"at line {event.start_mark.line + 1}"
                )
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # unhashable: the base class reports it
                if duplicate:
                    raise InvalidSudoPolicy(
                        f"invalid sudo policy: duplicate key {_shown(key)} at line "
                        f"{key_node.start_mark.line + 1}; write each key once"
                    )
            return super().construct_mapping(node, deep)

    return Loader


def load_yaml(text: str) -> object:
    """Parse a sudo policy's YAML within :func:`_loader`'s limits, or raise InvalidSudoPolicy."""
    import yaml

    if len(text) > MAX_POLICY_CHARS:
        raise InvalidSudoPolicy(
            f"invalid sudo policy: {len(text)} characters, more than {MAX_POLICY_CHARS}"
        )
    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "malformed YAML"
        raise InvalidSudoPolicy(f"invalid sudo policy: {problem}{where}") from None
    except RecursionError:
        raise InvalidSudoPolicy("invalid sudo policy: nested too deeply") from None


def _string_list(document: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...]:
    value = document[key]
    if not isinstance(value, list):
        raise InvalidSudoPolicy(f"invalid sudo policy: {where}{key} must be a list of glob strings")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: {where}{key}[{index}] must be a non-empty glob string, "
                f"got {_shown(item)}"
            )
    return tuple(value)


def _account_list(document: Mapping[str, Any], where: str = "") -> tuple[str, ...]:
    """``allowed-accounts``: globs that can each match a 12-digit account id, and only that."""
    globs = _string_list(document, ACCOUNTS, where)
    for index, glob in enumerate(globs):
        if not _ACCOUNT_GLOB.fullmatch(glob) or (
            ("*" not in glob and len(glob) != 12) or len(glob.replace("*", "")) > 12
        ):
            raise InvalidSudoPolicy(
                f"invalid sudo policy: {where}{ACCOUNTS}[{index}] must be a 12-digit account id "
                f"or a glob of one (digits, * and ?), got {_shown(glob)}"
            )
    return globs


def _principal_list(document: Mapping[str, Any], where: str = "") -> tuple[Principal, ...]:
    value = document[PRINCIPALS]
    if not isinstance(value, list):
        raise InvalidSudoPolicy(
            f"invalid sudo policy: {where}{PRINCIPALS} must be a list of TYPE: ID glob mappings"
        )
    principals: list[Principal] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not item:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: {where}{PRINCIPALS}[{index}] must be a mapping of TYPE: "
                f'ID globs, e.g. Service: "ecs-tasks.amazonaws.com", got {_shown(item)}'
            )
        for type_, id_ in item.items():
            if not isinstance(type_, str) or not isinstance(id_, str) or not type_ or not id_:
                raise InvalidSudoPolicy(
                    f"invalid sudo policy: {where}{PRINCIPALS}[{index}] must map a TYPE glob "
                    f"string to an ID glob string, got {_shown(type_)}: {_shown(id_)}"
                )
            principals.append(Principal(type_, id_))
    return tuple(principals)


_ROLE_CALLER = re.compile(r"arn:(?P<partition>[^:]*):iam::(?P<account>[^:]*):role/(?P<rest>.*)")
_CALLER_ARN = re.compile(r"arn:[^:]*:(?P<service>[^:]*)::[^:]*:(?P<resource>.*)")
_GLOB_CHARS = re.compile(r"[*?\[]")
# What sts:GetCallerIdentity names a caller (IAM User Guide, "IAM identifiers", IAM ARNs):
# the service and resource type of each; any other literal pair never matches anyone.
_CALLER_KINDS = {
    "iam": ("user/", "root"),
    "sts": ("assumed-role/", "federated-user/"),
}
_CALLER_FORMS = (
    "write arn:PARTITION:iam::ACCOUNT:role/NAME or arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/* "
    "(NAME may be a glob), arn:PARTITION:iam::ACCOUNT:user/[PATH/]NAME or "
    "arn:PARTITION:iam::ACCOUNT:root (PARTITION: aws, aws-us-gov, aws-cn, ...)"
)


def _caller_glob(caller: str, index: int, where: str) -> str:
    """One ``allowed-callers`` entry as a glob over caller ARNs, or InvalidSudoPolicy.

    STS names a role's caller ``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``, never by
    the role's ARN, and without the role's path. So a role ARN is matched by the role's
    name: ``arn:aws:iam::ACCOUNT:role/NAME`` becomes ``.../assumed-role/NAME/*``, NAME
    possibly a glob over names. A path cannot be checked: with a literal path and a
    literal name it is dropped (a role's name is unique in its account whatever its path,
    IAM User Guide, IAM identifiers, "Friendly names and paths"); any other path (a glob
    in it, or a literal one before a name glob such as ``role/ci/*``, meant as "the roles
    under /ci/") would match roles outside it by name, and is refused. An entry that
    names something no caller ARN can be (a bare account id, ``iam::...:assumed-role/``,
    a session-less ``assumed-role/NAME``) is refused too: it would silently match nobody.
    """

    def refused(why: str) -> InvalidSudoPolicy:
        return InvalidSudoPolicy(
            f"invalid sudo policy: {where}{CALLERS}[{index}] {caller[:200]!r} {why}; "
            + _CALLER_FORMS
        )

    role = _ROLE_CALLER.fullmatch(caller)
    if role is not None:
        path, _, name = role["rest"].rpartition("/")
        if not name:
            raise refused("names no role")
        if path and (_GLOB_CHARS.search(path) or _GLOB_CHARS.search(name)):
            raise refused(
                "chooses roles by path, which a role session's ARN does not carry: roles "
                "are matched by name only"
            )
        return f"arn:{role['partition']}:sts::{role['account']}:assumed-role/{name}/*"
    arn = _CALLER_ARN.fullmatch(caller)
    if arn is None:
        if not _GLOB_CHARS.search(caller):
            raise refused("is not a caller ARN")
        return caller  # a glob over whole ARNs, such as "*" or "arn:aws:*"
    service, resource = arn["service"], arn["resource"]
    if _GLOB_CHARS.search(service) or _GLOB_CHARS.search(resource.partition("/")[0]):
        return caller
    kinds = _CALLER_KINDS.get(service, ())
    if not any(resource == k or (k.endswith("/") and resource.startswith(k)) for k in kinds):
        raise refused("is no ARN that STS names a caller by")
    session = resource.removeprefix("assumed-role/")
    if session != resource and "/" not in session and not _GLOB_CHARS.search(session):
        raise refused("names no session (add /SESSION, or /* for any)")
    return caller


def _caller_list(document: Mapping[str, Any], where: str = "") -> tuple[str, ...]:
    """``allowed-callers`` globs over caller ARNs, role ARNs meaning sessions of the role."""
    callers = _string_list(document, CALLERS, where)
    return tuple(_caller_glob(caller, index, where) for index, caller in enumerate(callers))


RULE_FIELDS = (ROLE_NAMES, PRINCIPALS, BASE_ROLES)


@dataclass(frozen=True)
class Rule:
    """Who (``allowed_callers``; None: anyone) may simulate which roles, through which bases."""

    allowed_role_names: tuple[str, ...]
    allowed_principals: tuple[Principal, ...]
    allowed_base_roles: tuple[str, ...]
    allowed_callers: tuple[str, ...] | None = None
    #: Account id globs of the roles and base roles; None: every account within reach.
    allowed_accounts: tuple[str, ...] | None = None
    #: The policy's top-level ``allowed-accounts``, which bounds every rule as well.
    policy_accounts: tuple[str, ...] | None = None
    #: ``allowed-added-policies``: whether the callers may add draft policies to the role.
    allowed_added_policies: bool = False

    @classmethod
    def from_document(cls, document: Mapping[str, Any], where: str = "") -> Rule:
        unknown = [key for key in document if key not in (*RULE_FIELDS, CALLERS, ACCOUNTS, ADDED)]
        if unknown:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: unknown field {where}{_shown(unknown[0])}; expected "
                f"{ROLE_NAMES}, {PRINCIPALS}, {BASE_ROLES} and optionally {CALLERS}, "
                f"{ACCOUNTS}, {ADDED}"
            )
        added = document.get(ADDED, False)
        if not isinstance(added, bool):
            raise InvalidSudoPolicy(
                f"invalid sudo policy: {where}{ADDED} must be true or false, got {_shown(added)}"
            )
        missing = [key for key in RULE_FIELDS if key not in document]
        if missing:
            raise InvalidSudoPolicy(f"invalid sudo policy: missing field {where}{missing[0]}")
        return cls(
            allowed_role_names=_string_list(document, ROLE_NAMES, where),
            allowed_principals=_principal_list(document, where),
            allowed_base_roles=_string_list(document, BASE_ROLES, where),
            allowed_callers=_caller_list(document, where) if CALLERS in document else None,
            allowed_accounts=_account_list(document, where) if ACCOUNTS in document else None,
            allowed_added_policies=added,
        )

    def applies_to(self, caller: str | None) -> bool:
        """Whether the rule is for ``caller`` (a verified ARN; None: unknown, everyone's only)."""
        if self.allowed_callers is None:
            return True
        return caller is not None and shell_glob(caller, self.allowed_callers)

    def allows_role_name(self, name: str) -> bool:
        return shell_glob(name, self.allowed_role_names)

    def allows_principal(self, principal: Principal) -> bool:
        """An account matches in either spelling (``123456789012`` or its root ARN)."""
        return any(
            shell_glob(principal.type, (allowed.type,))
            and any(shell_glob(alias, (allowed.id,)) for alias in principal.aliases)
            for allowed in self.allowed_principals
        )

    def allows_account(self, account: str) -> bool:
        """Whether a role of ``account`` (a 12-digit id) may be simulated under this rule."""
        return all(
            globs is None or shell_glob(account, globs)
            for globs in (self.allowed_accounts, self.policy_accounts)
        )

    def allows_role(self, role: Role) -> bool:
        """Whether the role's account, name and one of the principals it trusts are allowed."""
        return (
            self.allows_account(account_of(role.arn))
            and self.allows_role_name(role.name)
            and any(self.allows_principal(trusted) for trusted in role.principals)
        )

    def allows_base_role_glob(self, arn: str) -> bool:
        return (
            is_role_arn(arn)
            and shell_glob(arn, self.allowed_base_roles)
            and self.allows_account(account_of(arn))
        )


@dataclass(frozen=True)
class SudoPolicy:
    """Who may simulate which role names, principals and base roles: a list of rules.

    The seed's form (the three ``allowed-*`` keys, optionally ``allowed-callers``) is one
    rule; ``rules:`` lists more, each with its own callers, like sudoers. A request is
    allowed when a rule for its caller allows the role, principal and base role.
    """

    rules: tuple[Rule, ...]
    #: Accounts a base role may be in; None: any account the globs allow. The function
    #: sets it to its own account (and those its stack configuration adds), so that an
    #: ``arn:aws:iam::*:role/X`` glob cannot reach a role of a stranger's account.
    base_role_accounts: tuple[str, ...] | None = None
    #: The top-level ``allowed-accounts`` (already applied to each rule); None if absent.
    allowed_accounts: tuple[str, ...] | None = None
    #: Role name globs iam-sudo deploys for other duties -> that duty: never base roles,
    #: whatever the globs (:mod:`.duties`; :meth:`reserving` adds configured names).
    reserved: Mapping[str, str] = field(default_factory=reserved_roles, compare=False)

    @classmethod
    def from_document(cls, document: object) -> SudoPolicy:
        """Validate a parsed policy document; raise :class:`InvalidSudoPolicy` naming the field."""
        if not isinstance(document, Mapping):
            raise InvalidSudoPolicy(
                f"invalid sudo policy: expected a mapping with {ROLE_NAMES}, {PRINCIPALS} "
                f"and {BASE_ROLES} (or {RULES}), got {type(document).__name__}"
            )
        unknown = [
            key for key in document if key not in (*RULE_FIELDS, CALLERS, ACCOUNTS, ADDED, RULES)
        ]
        if unknown:
            raise InvalidSudoPolicy(
                f"invalid sudo policy: unknown field {_shown(unknown[0])}; expected "
                f"{ROLE_NAMES}, {PRINCIPALS} and {BASE_ROLES}, {CALLERS}, {ACCOUNTS}, {ADDED}, "
                f"or {RULES}"
            )
        # A top-level allowed-accounts bounds every rule, the top-level one and those listed.
        everywhere = _account_list(document) if ACCOUNTS in document else None
        rules: list[Rule] = []
        top = {k: v for k, v in document.items() if k not in (RULES, ACCOUNTS)}
        if top or RULES not in document:
            rules.append(Rule.from_document(top))
        if RULES in document:
            listed = document[RULES]
            if not isinstance(listed, list) or not listed:
                raise InvalidSudoPolicy(
                    f"invalid sudo policy: {RULES} must be a non-empty list of rules"
                )
            for index, item in enumerate(listed):
                where = f"{RULES}[{index}]."
                if not isinstance(item, Mapping):
                    raise InvalidSudoPolicy(
                        f"invalid sudo policy: {RULES}[{index}] must be a mapping, got "
                        f"{_shown(item)}"
                    )
                rules.append(Rule.from_document(item, where))
        if everywhere is not None:
            rules = [replace(rule, policy_accounts=everywhere) for rule in rules]
        return cls(tuple(rules), allowed_accounts=everywhere)

    @classmethod
    def from_yaml(cls, text: str) -> SudoPolicy:
        """Parse and validate a YAML sudo policy."""
        return cls.from_document(load_yaml(text))

    @classmethod
    def default(cls) -> SudoPolicy:
        """The client's default: every role name, principal and base role is allowed."""
        return cls.from_document(DEFAULT_POLICY)

    @property
    def allowed_role_names(self) -> tuple[str, ...]:
        """Every rule's role name globs."""
        return tuple(dict.fromkeys(g for r in self.rules for g in r.allowed_role_names))

    @property
    def allowed_principals(self) -> tuple[Principal, ...]:
        """Every rule's principal globs."""
        return tuple(dict.fromkeys(p for r in self.rules for p in r.allowed_principals))

    @property
    def allowed_base_roles(self) -> tuple[str, ...]:
        """Every rule's base role globs: what the function may ever assume."""
        return tuple(dict.fromkeys(g for r in self.rules for g in r.allowed_base_roles))

    def scoped_to_accounts(self, accounts: Iterable[str]) -> SudoPolicy:
        """This policy, allowing base roles only in ``accounts``."""
        return replace(self, base_role_accounts=tuple(dict.fromkeys(accounts)))

    def reserving(
        self,
        *,
        reader_role: str | None = None,
        function_names: Iterable[str | None] = (),
        deploy_role: str | None = None,
    ) -> SudoPolicy:
        """This policy, also refusing as base roles the reader ``reader_role``, the
        execution roles of ``function_names`` and ``deploy_role`` (configured names)."""
        extra = reserved_roles(
            reader_role=reader_role or READER_ROLE,
            function_names=tuple(name for name in function_names if name),
            deploy_role=deploy_role or DEPLOY_ROLE,
        )
        return replace(self, reserved={**self.reserved, **extra})

    def duty_of(self, base_role: str) -> str | None:
        """The other duty of the role ``base_role`` (an ARN or a name), for which iam-sudo
        deploys or uses it: never a base role. None if it has none."""
        name = role_name_of(base_role) if is_role_arn(base_role) else base_role
        return None if name.startswith("arn:") else reserved_duty(name, self.reserved)

    def check_not_reserved(self, base_role_arn: str, role_arn: str | None = None) -> None:
        """Raise :class:`UnsafeBaseRole` if the base role (an ARN or a name) serves
        another duty."""
        duty = self.duty_of(base_role_arn)
        if duty is not None:
            raise UnsafeBaseRole(
                f"the base role {base_role_arn} is {duty}: a role iam-sudo deploys or uses "
                "for another duty is never a base role, whatever the sudo policy allows; "
                "use a base role (IAMSudoUser, or one the Pulumi program deployed)",
                role_arn=role_arn,
                base_role_arn=base_role_arn,
            )

    def rules_for(self, caller: str | None) -> list[Rule]:
        return [rule for rule in self.rules if rule.applies_to(caller)]

    def _in_accounts(self, arn: str) -> bool:
        return self.base_role_accounts is None or account_of(arn) in self.base_role_accounts

    def allows_account(self, account: str, caller: str | None = None) -> bool:
        """Whether ``caller`` may simulate roles in ``account`` (a 12-digit id) at all."""
        return any(rule.allows_account(account) for rule in self.rules_for(caller))

    def allows_role_name(self, name: str, caller: str | None = None) -> bool:
        """Whether a role of this name may be simulated by ``caller``."""
        return any(rule.allows_role_name(name) for rule in self.rules_for(caller))

    def allows_principal(self, principal: Principal, caller: str | None = None) -> bool:
        """Whether ``principal`` matches one of ``caller``'s allowed TYPE: ID globs."""
        return any(rule.allows_principal(principal) for rule in self.rules_for(caller))

    def allows_base_role(self, arn: str, caller: str | None = None) -> bool:
        """Whether the base role ARN matches a glob of one of ``caller``'s rules (and is no
        role of another duty)."""
        return (
            self._in_accounts(arn)
            and self.duty_of(arn) is None
            and any(rule.allows_base_role_glob(arn) for rule in self.rules_for(caller))
        )

    def allows_base_role_for_anyone(self, arn: str) -> bool:
        """Whether any rule, whoever it is for, allows this base role (and it is no role of
        another duty)."""
        return (
            self._in_accounts(arn)
            and self.duty_of(arn) is None
            and any(r.allows_base_role_glob(arn) for r in self.rules)
        )

    def allows_role(self, role: Role, caller: str | None = None) -> bool:
        """Whether ``caller`` may simulate ``role`` (its name and a trusted principal)."""
        return any(rule.allows_role(role) for rule in self.rules_for(caller))

    def resolve(
        self,
        roles: Iterable[Role],
        name: str,
        principal: Principal | None,
        base_role_arn: str,
        caller: str | None = None,
    ) -> Role:
        """The one role matching ``name`` (and ``principal``) among those ``caller`` may simulate.

        Resolution sees only allowed roles, so that neither an ambiguity nor a denial names
        a role the caller may not simulate. Raises :class:`SudoPolicyDenied` naming only
        what was asked when just forbidden roles match, :class:`RoleNotFound` when none does.
        """
        listed = list(roles)
        try:
            visible = [r for r in listed if self.allows_role(r, caller)]
            return resolve_role(visible, name, principal)
        except RoleNotFound:
            forbidden = [
                role
                for role in listed
                if name in role.name and (principal is None or admits(role.trust_policy, principal))
            ]
            if not forbidden:
                raise
        asked = f"name {name!r}" + (f" and principal {principal}" if principal else "")
        raise SudoPolicyDenied(
            f"sudo policy allows no role matching {asked}",
            role_arn=forbidden[0].arn if len(forbidden) == 1 else None,
            base_role_arn=base_role_arn,
        )

    def check(
        self,
        role: Role,
        base_role_arn: str,
        principal: Principal | None = None,
        caller: str | None = None,
        *,
        added_policies: bool = False,
    ) -> None:
        """Raise :class:`SudoPolicyDenied` unless one of ``caller``'s rules allows all of it.

        The role name and trust principals are those of the *resolved* role, so a short
        substring cannot slip past the policy. A denial names what was asked, never the
        rules or the role's trust. A base role of another duty (:mod:`.duties`) is refused
        first, with :class:`UnsafeBaseRole`, whatever the rules. ``added_policies``: draft
        policies are added to the role (the rule must say ``allowed-added-policies: true``).
        """
        self.check_not_reserved(base_role_arn, role.arn)
        rules = self.rules_for(caller)
        if any(
            rule.allows_base_role_glob(base_role_arn)
            and rule.allows_role(role)
            and (principal is None or rule.allows_principal(principal))
            and (rule.allowed_added_policies or not added_policies)
            for rule in rules
        ) and self._in_accounts(base_role_arn):
            return
        account = account_of(role.arn)
        if not rules:
            reason = f"sudo policy allows {caller or 'an unknown caller'} no simulation"
        elif not self.allows_account(account, caller):
            reason = (
                f"sudo policy does not allow simulating roles in account {account}; ask for it "
                f"in the policy's {ACCOUNTS}"
            )
        elif not self.allows_base_role(base_role_arn, caller):
            reason = f"sudo policy does not allow the base role {base_role_arn}"
            if self.base_role_accounts is not None and is_role_arn(base_role_arn):
                reason += f" (base roles must be in account {', '.join(self.base_role_accounts)})"
        elif not self.allows_role_name(role.name, caller):
            reason = f"sudo policy does not allow the role {role.name}"
        elif principal is not None and not self.allows_principal(principal, caller):
            reason = f"sudo policy does not allow the principal {principal}"
        elif not self.allows_role(role, caller):
            reason = f"sudo policy allows none of the principals of role {role.name}"
        elif added_policies and not any(rule.allowed_added_policies for rule in rules):
            reason = (
                f"sudo policy does not allow you to add policies to role {role.name} "
                f"(--add-policy needs {ADDED}: true in your rule); try the draft with --local"
            )
        else:
            reason = (
                f"sudo policy has no rule that allows role {role.name} through the base role "
                f"{base_role_arn}"
            )
        raise SudoPolicyDenied(reason, role_arn=role.arn, base_role_arn=base_role_arn)

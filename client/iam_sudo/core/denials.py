"""What AWS's access-denied messages say: who, which action, which resource, and why.

Pure. The wording is the IAM User Guide's, "Troubleshoot access denied error messages":

* ``User: <principal> is not authorized to perform: <action> [on resource: <resource>]``
* then, for an implicit denial, ``because no <type> policy allows the <action> action``
  (``<type>``: identity-based, session, resource-based, permissions boundary, VPC endpoint,
  service control, role trust);
* or, for an explicit one, ``with an explicit deny in a <type> policy`` (the guide's own
  example writes "a sessions policy"), optionally followed by the policy's ARN
  (``...: arn:aws:organizations::...``, AWS Security Blog, "Enhanced access denied error
  messages with policy ARNs", same account or organization only) and by ``transitively
  through a service control policy`` for a VPC endpoint's denial;
* an SCP's denial is always worded as explicit, "even if the denial is implicit" (the guide).

Services that do not use this format (S3's plain ``Access Denied``, SQS, moto's
``... is not authorized to perform: <action>`` without a reason) give no policy type:
:attr:`Denial.policy_type` is then None, and nobody may guess one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

PolicyType = Literal[
    "identity-based",
    "session",
    "resource-based",
    "permissions-boundary",
    "vpc-endpoint",
    "service-control",
    "resource-control",
    "role-trust",
]

# The words AWS uses for each policy type, lower-cased, longest first where one contains another.
_TYPES: tuple[tuple[str, PolicyType], ...] = (
    ("identity-based policy", "identity-based"),
    ("identity-based policies", "identity-based"),
    ("sessions policy", "session"),
    ("session policy", "session"),
    ("session policies", "session"),
    ("resource-based policy", "resource-based"),
    ("resource-based policies", "resource-based"),
    ("permissions boundary policy", "permissions-boundary"),
    ("permissions boundary", "permissions-boundary"),
    ("permission boundary", "permissions-boundary"),
    ("vpc endpoint policy", "vpc-endpoint"),
    ("service control policy", "service-control"),
    ("resource control policy", "resource-control"),
    ("role trust policy", "role-trust"),
    ("trust policy", "role-trust"),
)

_HEAD = re.compile(
    r"(?:User|Principal)?:?\s*(?P<principal>\S+)\s+is not authorized to perform:?\s+"
    # The action ends the word: "s3:GetObjec?" is garbled, not s3:GetObjec.
    r"(?P<action>[A-Za-z0-9-]+:[A-Za-z0-9*?]+)(?=[\s.,;]|$)",
    re.IGNORECASE,
)
_RESOURCE = re.compile(r"\s+on resource:?\s+", re.IGNORECASE)
_IMPLICIT = re.compile(
    r"because no (?P<type>.+?) allows? the (?P<action>\S+) action(?=[\s.;]|$)",
    re.IGNORECASE | re.DOTALL,
)
# The guide's own example of a trust policy's implicit denial drops the "no".
_TRUST_IMPLICIT = re.compile(r"because the role trust policy allows", re.IGNORECASE)
# "due to an explicit deny": the guide's note on SCPs ("When an SCP denies access, the error
# message can include the phrase due to an explicit deny in a Service Control Policy").
_EXPLICIT = re.compile(
    r"(?:with|due to) an explicit deny in (?:an?|the) (?P<type>.+?)"
    r"(?::\s*(?P<arn>arn:[^\s,;]+?))?"
    r"(?:\s+transitively through (?:an?|the) (?P<via>[a-z -]+?))?\s*(?:[.;]\s|[.;]?$)",
    re.IGNORECASE | re.DOTALL,
)
_REASON_START = re.compile(r"\s+(?:because |(?:with|due to) an explicit deny)", re.IGNORECASE)
# Every place a reason could begin: a message that has more than one is garbled.
_ANY_REASON = re.compile(r"\b(?:because|(?:with|due to) an explicit deny)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Denial:
    """One access-denied message, read.

    ``action``/``resource``/``principal``: as AWS names them (None when not said);
    ``explicit``: True for an explicit deny, False for "no policy allows", None when the
    message gives no reason; ``policy_type``: which kind of policy decided (None: not
    said); ``policy_arn``: the deciding policy when AWS names it; ``via``: the policy type
    a VPC endpoint's denial came through ("transitively through ...").
    """

    action: str | None = None
    resource: str | None = None
    principal: str | None = None
    explicit: bool | None = None
    policy_type: PolicyType | None = None
    policy_arn: str | None = None
    via: PolicyType | None = None

    @property
    def says_why(self) -> bool:
        """Whether AWS said which kind of policy denied the request."""
        return self.policy_type is not None


def _policy_type(words: str) -> PolicyType | None:
    text = " ".join(words.lower().split())
    for phrase, kind in _TYPES:
        # Exactly AWS's words: "session policy statement in the ..." is no known form.
        if text == phrase:
            return kind
    return None


def parse(message: str | None) -> Denial:
    """Read an access-denied ``message`` (any service's); what it does not say stays None.

    Never raises: an unreadable message is a :class:`Denial` with nothing known.
    """
    if not message:
        return Denial()
    text = " ".join(message.split())
    head = _HEAD.search(text)
    if head is None:
        return Denial()
    action = head["action"]
    rest = text[head.end() :]
    resource = None
    on = _RESOURCE.match(rest)
    if on:
        after = rest[on.end() :]
        if after.startswith('"'):
            # S3 quotes the resource; its name is the requester's text and may hold anything,
            # a reason's words included: the reason is only what follows the closing quote.
            close = after.rfind('"')
            if close <= 0:
                return Denial(action=action, principal=head["principal"])
            resource, rest = after[1:close], after[close + 1 :]
        else:
            reason = _REASON_START.search(after)
            resource = (after[: reason.start()] if reason else after).strip().rstrip(".")
            rest = after[reason.start() :] if reason else ""
    denial = Denial(action=action, resource=resource or None, principal=head["principal"])
    rest = rest.strip()
    if len(_ANY_REASON.findall(rest)) != 1:
        return denial  # no reason, or several that may contradict: AWS's form has one
    implicit = _IMPLICIT.match(rest)
    if implicit:
        if implicit["action"].lower() != action.lower():
            return denial  # the reason is about another action: garbled
        return Denial(
            action=action,
            resource=denial.resource,
            principal=denial.principal,
            explicit=False,
            policy_type=_policy_type(implicit["type"]),
        )
    if _TRUST_IMPLICIT.match(rest):
        return Denial(action, denial.resource, denial.principal, False, "role-trust")
    explicit = _EXPLICIT.match(rest)
    if explicit:
        kind = _policy_type(explicit["type"])
        via = _policy_type(explicit["via"]) if explicit["via"] else None
        return Denial(
            action=action,
            resource=denial.resource,
            principal=denial.principal,
            explicit=True if kind is not None else None,
            policy_type=kind,
            policy_arn=explicit["arn"],
            via=via,
        )
    return denial

"""ARNs and the IAM and STS identifiers in them: one copy of each rule.

* An ARN is ``arn:partition:service:region:account-id:resource``, the resource part
  possibly holding more colons (AWS General Reference / IAM User Guide, "Identify AWS
  resources with Amazon Resource Names (ARNs)").
* An account id is exactly 12 digits (IAM User Guide, "AWS account identifiers").
* IAM names (a role's name, a path's segments) are of ``[\\w+=,.@-]``; a role name has
  1-64 of them (IAM API Reference, CreateRole: RoleName; "IAM and AWS STS quotas").
* STS's RoleSessionName and SourceIdentity are 2-64 of the same characters (AWS STS API
  Reference, AssumeRole: RoleSessionName, SourceIdentity); ExternalId is 2-1224 of
  ``[\\w+=,.@:/-]`` (AssumeRole: ExternalId).

IAM's character sets are ASCII: Python's ``\\w`` alone would also take any Unicode letter,
so every pattern here is compiled with :data:`re.ASCII`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from .partitions import NAME_PATTERN

#: One character of an IAM name (role, session, source identity), as a regex class.
IAM_NAME_CHARACTER = r"[\w+=,.@-]"
ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)
#: The partitions IAM roles are read in: ``aws``, ``aws-cn``, ``aws-us-gov`` and the
#: isolated ``aws-iso*`` ones, as :mod:`.partitions` lists them.
PARTITION = re.compile(NAME_PATTERN, re.ASCII)
ROLE_NAME = re.compile(rf"{IAM_NAME_CHARACTER}{{1,64}}", re.ASCII)
#: A role ARN with its path: group 1 the partition, 2 the account, 3 the role's name.
ROLE_ARN = re.compile(
    rf"arn:({NAME_PATTERN}):iam::(\d{{12}}):role/"
    rf"(?:{IAM_NAME_CHARACTER}+/)*({IAM_NAME_CHARACTER}{{1,64}})",
    re.ASCII,
)
#: RoleSessionName and SourceIdentity.
SESSION_NAME = re.compile(rf"{IAM_NAME_CHARACTER}{{2,64}}", re.ASCII)
#: One character that may not stand in a session name or source identity.
NOT_SESSION_NAME_CHARACTER = re.compile(r"[^\w+=,.@-]", re.ASCII)
EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


@dataclass(frozen=True)
class Arn:
    """The six fields of an ARN; ``resource`` keeps any colons it has."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse(text: str) -> Arn | None:
    """The fields of ``text`` if it has an ARN's six fields and a known partition's shape;
    ``None`` otherwise (nothing is guessed from a malformed value)."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not PARTITION.fullmatch(parts[1]):
        return None
    return Arn(*parts[1:])


def is_account_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is an AWS account id: exactly 12 digits."""
    return isinstance(value, str) and ACCOUNT_ID.fullmatch(value) is not None


def account_of(arn: str) -> str:
    """The account field of an ARN: ``''`` for a resource with none (an S3 bucket) or a
    malformed ARN; ``'aws'`` for an AWS managed policy (check with :func:`is_account_id`)."""
    fields = parse(arn)
    return fields.account if fields else ""


def partition_of(arn: str) -> str:
    """The partition of an ARN (``aws``, ``aws-cn``, ``aws-us-gov``, ...); ``''`` if malformed."""
    fields = parse(arn)
    return fields.partition if fields else ""


def is_role_name(text: object) -> TypeGuard[str]:
    """Whether ``text`` is a valid IAM role name (without a path)."""
    return isinstance(text, str) and ROLE_NAME.fullmatch(text) is not None


def is_session_name(text: object) -> TypeGuard[str]:
    """Whether ``text`` is a valid RoleSessionName or SourceIdentity."""
    return isinstance(text, str) and SESSION_NAME.fullmatch(text) is not None

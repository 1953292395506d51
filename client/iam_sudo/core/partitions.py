"""AWS partitions: every fact iam-sudo needs of each, in one place.

A partition is a group of regions with its own accounts and credentials, its own ARNs
(``arn:<partition>:...``), DNS suffix and console; nothing crosses between partitions
(IAM User Guide, "AWS partitions"; AWS General Reference, "Amazon Resource Names":
``arn:partition:service:region:account-id:...``). Nothing else in iam-sudo may write
``arn:aws:`` or ``amazonaws.com`` for a partition it has not looked up here.

The names, region patterns and DNS suffixes are botocore's (``partitions.json``: ``id``,
``regionRegex``, ``outputs.dnsSuffix``); tests/unit compares them with the installed
botocore's, without this module (or the Lambda's import) reading botocore at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The partition of a region no partition's pattern matches (botocore's default too).
DEFAULT_PARTITION = "aws"


@dataclass(frozen=True)
class Partition:
    """One AWS partition: its name, regions, DNS suffix and (if public) console hosts."""

    name: str
    #: botocore's ``regionRegex``: the partition's region names.
    region_regex: str
    #: Endpoint hosts end with it: ``sts.<region>.<dns_suffix>``.
    dns_suffix: str
    #: The global sign-in host (``/federation``) and the console's; empty for the isolated
    #: partitions, whose console is not on the internet.
    signin_host: str = ""
    console_host: str = ""

    def has_region(self, region: str) -> bool:
        """Whether ``region`` (e.g. ``us-gov-west-1``) is one of this partition's names."""
        return re.fullmatch(self.region_regex.strip("^$"), region) is not None

    def role_arn(self, account: str, name: str) -> str:
        """The ARN of role ``name`` (no path) of ``account`` in this partition."""
        return f"arn:{self.name}:iam::{account}:role/{name}"


# The global sign-in host of each public partition, not the regional <region>.signin...
# ones: it is the one the IAM User Guide documents for every region of the partition
# ("Enable custom identity broker access to the AWS console"), and a token it issues signs
# in to the console of any of its regions. AWS in China: signin.amazonaws.cn
# (docs.amazonaws.cn, "Amazon Web Services Management Console"); GovCloud (US):
# signin.amazonaws-us-gov.com (AWS GovCloud (US) User Guide, "Signing in").
PARTITIONS: dict[str, Partition] = {
    partition.name: partition
    for partition in (
        Partition(
            "aws",
            r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$",
            "amazonaws.com",
            "signin.aws.amazon.com",
            "console.aws.amazon.com",
        ),
        Partition(
            "aws-cn",
            r"^cn\-\w+\-\d+$",
            "amazonaws.com.cn",
            "signin.amazonaws.cn",
            "console.amazonaws.cn",
        ),
        Partition(
            "aws-us-gov",
            r"^us\-gov\-\w+\-\d+$",
            "amazonaws.com",
            "signin.amazonaws-us-gov.com",
            "console.amazonaws-us-gov.com",
        ),
        Partition("aws-eusc", r"^eusc\-(de)\-\w+\-\d+$", "amazonaws.eu"),
        Partition("aws-iso", r"^us\-iso\-\w+\-\d+$", "c2s.ic.gov"),
        Partition("aws-iso-b", r"^us\-isob\-\w+\-\d+$", "sc2s.sgov.gov"),
        Partition("aws-iso-e", r"^eu\-isoe\-\w+\-\d+$", "cloud.adc-e.uk"),
        Partition("aws-iso-f", r"^us\-isof\-\w+\-\d+$", "csp.hci.ic.gov"),
    )
}
#: The partitions' names, ``aws`` first.
NAMES = tuple(PARTITIONS)
#: A regular expression matching exactly a partition's name (for ARN patterns).
NAME_PATTERN = "(?:" + "|".join(sorted(map(re.escape, NAMES), key=len, reverse=True)) + ")"
#: Every role ARN of every partition, as a sudo policy glob.
ANY_ROLE_GLOB = "arn:*:iam::*:role/*"


def partition_of_region(region: str) -> Partition:
    """The partition of ``region``: the one whose region pattern it matches, else ``aws``
    (as botocore resolves a region it does not know)."""
    for partition in PARTITIONS.values():
        if partition.name != DEFAULT_PARTITION and partition.has_region(region):
            return partition
    return PARTITIONS[DEFAULT_PARTITION]


def partition_of_arn(arn: str) -> str | None:
    """The partition field of ``arn`` if it is a known partition's ARN, else None."""
    parts = arn.split(":", 2)
    if len(parts) == 3 and parts[0] == "arn" and parts[1] in PARTITIONS:
        return parts[1]
    return None


# Service principals are <service>.amazonaws.com in every partition, China included
# (AWS CDK's region-info: "Service principals are now globally <SERVICE>.amazonaws.com");
# in AWS in China a few services' roles were written with the China DNS suffix
# (ec2.amazonaws.com.cn, elasticmapreduce.amazonaws.com.cn, opsworks.amazonaws.com.cn), and
# both spellings name the same service there.
_CHINA_SUFFIX = ".amazonaws.com.cn"
_SUFFIX = ".amazonaws.com"


def service_principal(service: str) -> str:
    """The service principal of ``service`` (``lambda`` -> ``lambda.amazonaws.com``), the
    same in every partition (see the note above)."""
    return f"{service}{_SUFFIX}"


def service_principal_aliases(principal_id: str) -> tuple[str, ...]:
    """Every spelling of a service principal: ``X.amazonaws.com`` and ``X.amazonaws.com.cn``
    name the same service (the latter in AWS in China); any other id is only itself."""
    if principal_id.endswith(_CHINA_SUFFIX):
        return (principal_id, principal_id.removesuffix(_CHINA_SUFFIX) + _SUFFIX)
    if principal_id.endswith(_SUFFIX):
        return (principal_id, principal_id + ".cn")
    return (principal_id,)

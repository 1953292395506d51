"""Which request-context keys a simulated session has as the role's own session would.

A simulated session is a session of the *base role*, assumed by iam-sudo, made from
wherever the user runs it. For every condition key (and every ``${...}`` policy variable)
that means one of:

* ``principal``: the principal's identity. The session has the base role's; the role's
  is known from its ARN and tags, so conditions on it are decided for the role.
* ``session``: a property of the session itself (how and by whom it was made). The
  role's own sessions have values iam-sudo cannot know, so an Allow that depends on one
  is left out and a Deny applies regardless of it.
* ``compute``: set on the credentials that a service delivers to the role's code (EC2,
  Lambda, Glue, CodeBuild, the IoT credentials provider, SSM). The simulated session
  never carries them; the role's sessions do when it runs there. Unknown for the role,
  handled as ``session``.
* ``environment``: the network the request comes from. Kept as written and evaluated
  where the user runs the session, which is where the role's credentials would be
  evaluated if used from there: never wider. Reported per statement.
* ``same``: request, resource and time keys: the same request has the same values for the
  role and for the session. Kept as written.

Service keys (``s3:prefix``, ``ec2:InstanceType``, ...) are ``same`` unless listed: a
service key describes the request or the resource it acts on, which the simulated
session sends alike; narrowing every one would narrow most policies for nothing. The
exceptions are the keys a service sets on the *credentials* it hands to compute running
as the role (listed here as ``compute``, by exact name or namespace prefix): for those,
"same request" does not hold, since the role's requests carry them and the session's
never do. A key found to be of that kind belongs in the table, not in ``same``.
* ``unknown``: an ``aws:`` key not in this table: handled as ``session``, never "holds".

This table is the one definition; the README's table lists the same keys (a test checks).
Source: IAM User Guide, "AWS global condition context keys" (the Availability of each
key), and the Service Authorization Reference for the service keys named below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KeyClass(StrEnum):
    """How a key's value in the simulated session relates to the role's (see module)."""

    PRINCIPAL = "principal"
    SESSION = "session"
    COMPUTE = "compute"
    ENVIRONMENT = "environment"
    SAME = "same"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ContextKey:
    """One row of the classification: the key (a ``/`` ending names a prefix), its class,
    its value in the role's own session and in the simulated session, whether it is
    multivalued (IAM User Guide, "Single-valued vs. multivalued context keys")."""

    name: str
    key_class: KeyClass
    in_role: str
    in_session: str
    multivalued: bool = False


P, S, C, E, Q = (
    KeyClass.PRINCIPAL,
    KeyClass.SESSION,
    KeyClass.COMPUTE,
    KeyClass.ENVIRONMENT,
    KeyClass.SAME,
)
_REQUEST = "the request's"

KEYS: tuple[ContextKey, ...] = (
    # The principal: decided for the role from its ARN and tags.
    ContextKey("aws:PrincipalArn", P, "the role's ARN", "the base role's ARN"),
    ContextKey("aws:PrincipalAccount", P, "the role's account", "the base role's account"),
    ContextKey("kms:CallerAccount", P, "the role's account", "the base role's account"),
    ContextKey("aws:PrincipalTag/", P, "the role's tags", "base role tags + session tags"),
    ContextKey("aws:PrincipalType", P, "AssumedRole", "AssumedRole"),
    ContextKey("aws:PrincipalIsAWSService", P, "false", "false"),
    ContextKey("aws:PrincipalServiceName", P, "absent", "absent"),
    ContextKey("aws:PrincipalServiceNamesList", P, "absent", "absent", multivalued=True),
    ContextKey("aws:username", P, "absent (roles have none)", "absent"),
    ContextKey("aws:AssumedRoot", P, "absent (not a root session)", "absent"),
    ContextKey(
        "aws:PrincipalOrgID",
        P,
        "the role's account's organization",
        "the base role's account's (the same when the accounts are)",
    ),
    ContextKey(
        "aws:PrincipalOrgPaths",
        P,
        "the role's account's organization paths",
        "the base role's account's (the same when the accounts are)",
        multivalued=True,
    ),
    # The session: how and by whom it was made.
    ContextKey("aws:userid", S, "role id:session name", "base role id:iam-sudo-<role>"),
    ContextKey("aws:SourceIdentity", S, "usually absent, or whoever set it", "the caller"),
    ContextKey("sts:SourceIdentity", S, "usually absent, or whoever set it", "the caller"),
    ContextKey("aws:TokenIssueTime", S, "when its session began", "when iam-sudo's began"),
    ContextKey("aws:MultiFactorAuthPresent", S, "however it was assumed", "iam-sudo's"),
    ContextKey("aws:MultiFactorAuthAge", S, "however it was assumed", "iam-sudo's"),
    ContextKey("aws:FederatedProvider", S, "its identity provider, if federated", "absent"),
    ContextKey("sts:RoleSessionName", S, "its session name", "iam-sudo-<role>"),
    ContextKey("aws:ChatbotSourceArn", S, "the chat channel, via Chatbot", "absent"),
    ContextKey("identitystore:UserId", S, "the Identity Center user, if any", "absent"),
    ContextKey("saml:", S, "SAML assertion claims", "absent"),
    ContextKey("<provider>:", S, "web identity claims (e.g. ...amazonaws.com:sub)", "absent"),
    # Credentials delivered to compute.
    ContextKey("aws:Ec2InstanceSourceVPC", C, "the instance's VPC, on EC2", "absent"),
    ContextKey("aws:Ec2InstanceSourcePrivateIPv4", C, "the instance's IP, on EC2", "absent"),
    ContextKey("ec2:SourceInstanceARN", C, "the instance, on EC2", "absent"),
    ContextKey("ec2:RoleDelivery", C, "the IMDS version, on EC2", "absent"),
    ContextKey("ssm:SourceInstanceARN", C, "the managed instance, via SSM", "absent"),
    ContextKey("lambda:SourceFunctionArn", C, "the function, on Lambda", "absent"),
    ContextKey("glue:RoleAssumedBy", C, "Glue, on Glue", "absent"),
    ContextKey("glue:CredentialIssuingService", C, "Glue, on Glue", "absent"),
    # CodeBuild User Guide, "Use CodeBuild condition keys as IAM service role variables".
    ContextKey("codebuild:projectArn", C, "the build's project, on CodeBuild", "absent"),
    ContextKey("codebuild:buildArn", C, "the build, on CodeBuild", "absent"),
    # AWS IoT Core Developer Guide, "Authorizing direct calls to AWS services using AWS
    # IoT Core credential provider": credentials-iot:ThingName, ThingTypeName,
    # AwsCertificateId (and whatever the namespace gains) describe the device.
    ContextKey("credentials-iot:", C, "the device's thing, via IoT", "absent"),
    # The network the request comes from.
    ContextKey("aws:SourceIp", E, "where the role runs", "where the user runs it"),
    ContextKey("aws:SourceVpc", E, "where the role runs", "where the user runs it"),
    ContextKey("aws:SourceVpcArn", E, "where the role runs", "where the user runs it"),
    ContextKey("aws:SourceVpce", E, "where the role runs", "where the user runs it"),
    ContextKey("aws:VpcSourceIp", E, "where the role runs", "where the user runs it"),
    ContextKey("aws:VpceAccount", E, "where the role runs", "where the user runs it"),
    ContextKey("aws:VpceOrgID", E, "where the role runs", "where the user runs it"),
    ContextKey(
        "aws:VpceOrgPaths", E, "where the role runs", "where the user runs it", multivalued=True
    ),
    # The request, the resource, the time: the same request has the same values.
    ContextKey("aws:RequestTag/", Q, _REQUEST, _REQUEST),
    ContextKey("aws:TagKeys", Q, _REQUEST, _REQUEST, multivalued=True),
    ContextKey("aws:RequestedRegion", Q, _REQUEST, _REQUEST),
    ContextKey("aws:SecureTransport", Q, _REQUEST, _REQUEST),
    ContextKey("aws:UserAgent", Q, _REQUEST, _REQUEST),
    ContextKey("aws:Referer", Q, _REQUEST, _REQUEST),
    ContextKey("aws:CurrentTime", Q, _REQUEST, _REQUEST),
    ContextKey("aws:EpochTime", Q, _REQUEST, _REQUEST),
    ContextKey("aws:ViaAWSService", Q, _REQUEST, _REQUEST),
    ContextKey("aws:CalledVia", Q, _REQUEST, _REQUEST, multivalued=True),
    ContextKey("aws:CalledViaFirst", Q, _REQUEST, _REQUEST),
    ContextKey("aws:CalledViaLast", Q, _REQUEST, _REQUEST),
    ContextKey("aws:SourceArn", Q, _REQUEST, _REQUEST),
    ContextKey("aws:SourceAccount", Q, _REQUEST, _REQUEST),
    ContextKey("aws:SourceOrgID", Q, _REQUEST, _REQUEST),
    ContextKey("aws:SourceOrgPaths", Q, _REQUEST, _REQUEST, multivalued=True),
    ContextKey("aws:SourceOwner", Q, _REQUEST, _REQUEST),
    ContextKey("aws:IsMcpServiceAction", Q, _REQUEST, _REQUEST),
    ContextKey("aws:ResourceTag/", Q, "the resource's", "the resource's"),
    ContextKey("aws:ResourceAccount", Q, "the resource's", "the resource's"),
    ContextKey("aws:ResourceOrgID", Q, "the resource's", "the resource's"),
    ContextKey("aws:ResourceOrgPaths", Q, "the resource's", "the resource's", multivalued=True),
    ContextKey("<service>:<key>", Q, "the request's or resource's", "the same"),
)

_EXACT = {row.name.lower(): row for row in KEYS if not row.name.endswith(("/", ":", ">"))}
_PREFIXES = tuple(
    (row.name.lower(), row) for row in KEYS if row.name.endswith(("/", ":")) and "<" not in row.name
)
_FEDERATED = next(row for row in KEYS if row.name == "<provider>:")
_SERVICE = next(row for row in KEYS if row.name == "<service>:<key>")
_UNKNOWN_AWS = ContextKey("aws:?", KeyClass.UNKNOWN, "unknown", "unknown")


def lookup(key: str) -> ContextKey:
    """The classification row of a condition key or policy variable name.

    Keys are case-insensitive (IAM User Guide, "IAM JSON policy elements: Condition").
    A key with a ``${`` in it or with blanks around it (IAM does not trim keys: it is not
    the key it looks like), an ``aws:`` key not in :data:`KEYS`, or anything that is not
    ``namespace:name`` is ``unknown``. A namespace with a dot or a slash is an identity
    provider's (``accounts.google.com:sub``, ``oidc.eks....:sub``): ``session``.
    """
    lowered = key.lower()
    if "${" in lowered or lowered != lowered.strip():
        return _UNKNOWN_AWS
    if lowered in _EXACT:
        return _EXACT[lowered]
    for prefix, row in _PREFIXES:
        if lowered.startswith(prefix) and len(lowered) > len(prefix):
            return row
    namespace, colon, name = lowered.partition(":")
    if not colon or not namespace or not name or namespace == "aws":
        return _UNKNOWN_AWS
    if "." in namespace or "/" in namespace:
        return _FEDERATED
    return _SERVICE


def classify(key: str) -> KeyClass:
    """The :class:`KeyClass` of a condition key or policy variable name."""
    return lookup(key).key_class

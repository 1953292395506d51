"""Caller proofs: how the iam-sudo function learns, from STS, who is asking.

The scheme of HashiCorp Vault's AWS IAM auth and the EKS authenticator. The client signs
an ``sts:GetCallerIdentity`` request with its own credentials (SigV4) *without sending it*,
with a header naming the function it is meant for (the audience) among the signed headers,
and puts method, URL, headers and body into the invoke event. The function checks that
the request is exactly that, for a genuine STS endpoint of its partition (only its own
when an endpoint override is in force), for itself, and recent; then sends it to that
endpoint and takes the caller's ARN from STS's answer, never from the event.

The audience is the function's unqualified ARN (partition, region, account, name): a proof
signed for one deployment is refused by every other, in any account, region or partition.
A stolen proof lets its holder ask *this* deployment as the signer for at most
:data:`MAX_AGE` (STS refuses older signatures too); it cannot be replayed to another
deployment (the audience is signed) nor turned into any other STS call (the body is fixed).
Only the headers the signature covers, and ``Authorization``, are forwarded to STS; a proof
the function could not forward exactly as signed is refused before anything is sent.
"""

from __future__ import annotations

import functools
import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..core.arn import NOT_SESSION_NAME_CHARACTER, is_session_name
from ..core.exceptions import ConfigurationError, Unauthenticated
from ..core.partitions import NAME_PATTERN

AUDIENCE_HEADER = "X-IAM-Sudo-Audience"
IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
MAX_AGE = timedelta(minutes=15)
MAX_HEADERS = 20
MAX_HEADER_CHARS = 4096
MIN_SOURCE_IDENTITY_CHARS = 2
MAX_SOURCE_IDENTITY_CHARS = 64
# SigV4's Authorization header, exactly as the IAM User Guide gives it ("Authentication
# methods", HTTP authorization header): the algorithm, a space, then Credential,
# SignedHeaders and Signature once each, in that order, separated by ", ". The credential
# scope is <access key id>/<yyyymmdd>/<region>/sts/aws4_request; signed header names are
# lower case, sorted and separated by ";"; the signature is 64 lower-case hex digits.
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]{16,128})/(?P<date>\d{8})/"
    r"(?P<region>[a-z0-9-]{1,64})/sts/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*), "
    r"Signature=(?P<signature>[0-9a-f]{64})",
    re.ASCII,
)
# The headers a proof may sign, all forwarded as they are; host comes from the URL.
_SIGNABLE = frozenset(
    {"content-type", "host", "x-amz-date", "x-amz-security-token", AUDIENCE_HEADER.lower()}
)
_MUST_SIGN = frozenset({"host", "x-amz-date", AUDIENCE_HEADER.lower()})
# Header names are RFC 9110 tokens; values are sent byte for byte only if they are printable
# ASCII without surrounding blanks (no CR/LF, no obs-text, nothing http.client would alter).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}", re.ASCII)
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?", re.ASCII)
# Lambda function names and qualifiers (Lambda API reference, Invoke: FunctionName, Qualifier).
_FUNCTION_ARN = re.compile(
    rf"arn:(?P<partition>{NAME_PATTERN}):lambda:(?P<region>[a-z]{{2,4}}(?:-[a-z0-9]+)+-\d+):"
    r"(?P<account>\d{12}):function:(?P<name>[A-Za-z0-9_-]{1,64})(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?",
    re.ASCII,
)
_PARTIAL_ARN = re.compile(
    r"(?P<account>\d{12}):function:(?P<name>[A-Za-z0-9_-]{1,64})(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?",
    re.ASCII,
)
_FUNCTION_NAME = re.compile(
    r"(?P<name>[A-Za-z0-9_-]{1,64})(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?", re.ASCII
)
_ARN = re.compile(r"<Arn>([^<]+)</Arn>")
_REFUSED = "the caller's identity proof was refused"


@dataclass(frozen=True)
class CallerProof:
    """A signed, unsent sts:GetCallerIdentity request."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: str

    def to_event(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body,
        }

    @classmethod
    def from_event(cls, value: object) -> CallerProof:
        """The proof in an event, strictly shaped and bounded; :class:`Unauthenticated` if not."""
        if not isinstance(value, Mapping) or set(value) != {"method", "url", "headers", "body"}:
            raise Unauthenticated(_REFUSED)
        headers = value["headers"]
        if (
            not all(isinstance(value[k], str) for k in ("method", "url", "body"))
            or not isinstance(headers, Mapping)
            or len(headers) > MAX_HEADERS
            or not all(
                isinstance(k, str) and isinstance(v, str) and len(k) + len(v) <= MAX_HEADER_CHARS
                for k, v in headers.items()
            )
            or len(value["url"]) > MAX_HEADER_CHARS
            or len(value["body"]) > MAX_HEADER_CHARS
        ):
            raise Unauthenticated(_REFUSED)
        return cls(value["method"], value["url"], dict(headers), value["body"])

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        found = [v for k, v in self.headers.items() if k.lower() == wanted]
        return found[0] if len(found) == 1 else None


def _unknown_function(function: str) -> ConfigurationError:
    return ConfigurationError(
        f"{function[:200]!r} is not a Lambda function name, ARN "
        "(arn:aws:lambda:REGION:ACCOUNT:function:NAME) or partial ARN (ACCOUNT:function:NAME); "
        "check --function-name or IAM_SUDO_FUNCTION"
    )


def needs_caller_account(function: str) -> bool:
    """Whether ``function`` (as Invoke's FunctionName takes it) is a bare name.

    Lambda invokes a bare name in the caller's own account, which only STS can say.
    """
    return _FUNCTION_NAME.fullmatch(function) is not None


def deployment_audience(
    function: str, *, partition: str, region: str, account: str | None = None
) -> str:
    """The audience of a proof for ``function``: its unqualified ARN, as a string.

    ``function`` is what lambda:Invoke's ``FunctionName`` takes (Lambda API reference,
    Invoke): a full ARN, a partial ARN ``ACCOUNT:function:NAME`` or a name, each optionally
    with a version or alias qualifier. A qualifier names the same deployment (the same
    sudo policy and execution role), so it is dropped on both sides. A partial ARN or a
    name is invoked in ``region`` and ``partition`` (the Lambda client's), a name in the
    caller's own ``account`` (from STS; required then). Raises :class:`ConfigurationError`
    for anything Lambda would not take as a function.
    """
    full = _FUNCTION_ARN.fullmatch(function)
    if full is not None:
        partition, region, account = full["partition"], full["region"], full["account"]
        name = full["name"]
    else:
        partial = _PARTIAL_ARN.fullmatch(function) or _FUNCTION_NAME.fullmatch(function)
        if partial is None:
            raise _unknown_function(function)
        name = partial["name"]
        account = partial.groupdict().get("account") or account
        if account is None:
            raise ValueError("a bare function name needs the caller's account")
    return f"arn:{partition}:lambda:{region}:{account}:function:{name}"


def own_audience(invoked_function_arn: object) -> str:
    """The function's own audience, from its Lambda context's ``invoked_function_arn``.

    Lambda gives the ARN the caller invoked, with its qualifier if any; it is normalised to
    the unqualified ARN as :func:`deployment_audience` does. Raises
    :class:`ConfigurationError` if the context has no function ARN: without it the function
    cannot tell which proofs are meant for it, and refuses them all.
    """
    given = invoked_function_arn if isinstance(invoked_function_arn, str) else ""
    match = _FUNCTION_ARN.fullmatch(given)
    if match is None:
        raise ConfigurationError(
            "the Lambda context gives no function ARN (invoked_function_arn): the function "
            "cannot tell which caller proofs are meant for it"
        )
    return (
        f"arn:{match['partition']}:lambda:{match['region']}:{match['account']}"
        f":function:{match['name']}"
    )


# The STS endpoint sts_regional_endpoints = legacy (and region aws-global) sign for;
# "global requests map to the US East (N. Virginia) Region" (AWS SDKs and Tools Reference
# Guide, "AWS STS Regional endpoints"), so their SigV4 scope is us-east-1.
_GLOBAL_STS = ("aws", "sts.amazonaws.com", "us-east-1")


@functools.cache
def genuine_sts_endpoints(partition: str) -> Mapping[str, str]:
    """The genuine STS endpoints of ``partition``: ``{"https://HOST/": signing region}``.

    STS's endpoint in each region is ``sts.<region>.<partition's DNS suffix>`` (IAM User
    Guide, "AWS STS Regions and endpoints"), for the regions botocore's partition data
    lists; the ``aws`` partition also has the global ``sts.amazonaws.com``, signed for
    us-east-1. Empty for a partition botocore does not know. Reads botocore's data
    (imported here, on the function's side only).
    """
    from botocore.loaders import create_loader

    endpoints: dict[str, str] = {}
    for known in create_loader().load_data("partitions")["partitions"]:
        if known["id"] != partition:
            continue
        suffix = known["outputs"]["dnsSuffix"]
        for region in known["regions"]:
            if not region.endswith("-global"):  # aws-global, aws-cn-global: not STS hosts
                endpoints[f"https://sts.{region}.{suffix}/"] = region
    if partition == _GLOBAL_STS[0]:
        endpoints[f"https://{_GLOBAL_STS[1]}/"] = _GLOBAL_STS[2]
    return endpoints


def _as_endpoint(url: str) -> str | None:
    """``scheme://host[:port]/`` of a URL naming just an endpoint, else None."""
    given = urllib.parse.urlsplit(url)
    if (
        given.scheme not in ("http", "https")
        or not given.hostname
        or given.path not in ("", "/")
        or given.query
        or given.fragment
        or given.username is not None
        or given.password is not None
        or "@" in given.netloc
    ):
        return None
    return f"{given.scheme}://{given.netloc.lower()}/"


def accepted_sts_endpoints(sts_endpoint: str, audience: str) -> Mapping[str, str | None]:
    """Where the function accepts (and sends) proofs: ``{"URL/": signing region or None}``.

    ``sts_endpoint`` is the function's own, as boto3 resolves it. If it is a genuine STS
    endpoint of the function's partition (that of ``audience``, its ARN), every genuine
    STS endpoint of that partition is accepted, each only with a SigV4 scope of its own
    region: a client signs for its own endpoint (global with ``sts_regional_endpoints =
    legacy`` or region ``aws-global``, or its region's), STS checks the signature wherever
    it is sent, and the signed audience header binds the deployment. Otherwise an endpoint
    override is in force (``AWS_ENDPOINT_URL_STS``, ``AWS_ENDPOINT_URL``): only that URL,
    any scope. Never a host the event names.
    """
    own = _as_endpoint(sts_endpoint)
    function = _FUNCTION_ARN.fullmatch(audience)
    genuine = genuine_sts_endpoints(function["partition"]) if function else {}
    if own is not None and own in genuine:
        return genuine
    return {own: None} if own is not None else {}


def _forwardable(proof: CallerProof) -> re.Match[str]:
    """The proof's parsed Authorization, if its headers are exactly the signed ones (host
    aside) and Authorization, each sendable as it is; else :class:`Unauthenticated`.
    """
    names = [k.lower() for k in proof.headers]
    if len(set(names)) != len(names) or not all(
        _HEADER_NAME.fullmatch(k) and _HEADER_VALUE.fullmatch(v) for k, v in proof.headers.items()
    ):
        raise Unauthenticated(_REFUSED)
    authorization = _AUTHORIZATION.fullmatch(proof.header("Authorization") or "")
    if authorization is None:
        raise Unauthenticated(_REFUSED)
    listed = authorization["signed"].split(";")
    signed = frozenset(listed)
    if (
        listed != sorted(signed)
        or not _MUST_SIGN <= signed <= _SIGNABLE
        # Host is the URL's; Transfer-Encoding, Content-Length and the like are never sent.
        or not set(names) <= (signed - {"host"}) | {"authorization"}
        or not signed - {"host"} <= set(names)
    ):
        raise Unauthenticated(_REFUSED)
    return authorization


def check_proof(
    proof: CallerProof, *, sts_endpoint: str, audience: str, now: datetime
) -> CallerProof:
    """Everything about the proof that can be checked before STS sees it; what to send.

    ``sts_endpoint`` is the function's own (as boto3 resolves it); ``audience`` its
    unqualified ARN (:func:`own_audience`). The proof's URL must be one of
    :func:`accepted_sts_endpoints`, its headers exactly the signed ones (host aside: it is
    the URL's) and ``Authorization`` in SigV4's grammar, each value printable ASCII that is
    sent byte for byte. Returns the proof to send, to its ``url``. Raises
    :class:`Unauthenticated` with one line that helps no attacker, before any request.
    """
    authorization = _forwardable(proof)
    stamp = proof.header("X-Amz-Date") or ""
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Unauthenticated(_REFUSED) from None
    accepted = accepted_sts_endpoints(sts_endpoint, audience)
    url = _as_endpoint(proof.url)
    if (
        proof.method != "POST"
        or url is None
        or url not in accepted
        or accepted[url] not in (None, authorization["region"])
        or proof.body != IDENTITY_BODY
        or proof.header(AUDIENCE_HEADER) != audience
        or authorization["date"] != stamp[:8]
        or abs(now - when) > MAX_AGE
    ):
        raise Unauthenticated(_REFUSED)
    # The URL sent to is ours (a key of ``accepted``), equal to the one signed for.
    return CallerProof(proof.method, url, dict(proof.headers), proof.body)


def caller_from_answer(status: int, body: bytes) -> str:
    """The caller's ARN from STS's answer to the proof, or :class:`Unauthenticated`."""
    match = _ARN.search(body.decode("utf-8", "replace")) if status == 200 else None
    if match is None:
        raise Unauthenticated(_REFUSED)
    return match.group(1)


class ProofVerifier(Protocol):
    """What verifying a proof needs of a transport: its own STS endpoint, and a way to STS."""

    async def sts_endpoint(self) -> str: ...

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]: ...


async def verify(
    transport: ProofVerifier, proof: object, *, audience: str, now: datetime | None = None
) -> str:
    """The ARN of whoever signed ``proof``, as STS says; :class:`Unauthenticated` if not.

    The function's first step: the proof must be a GetCallerIdentity request for a
    genuine STS endpoint of the function's partition (or the endpoint override in force;
    see :func:`accepted_sts_endpoints`), for ``audience`` (the function's unqualified ARN, see
    :func:`own_audience`), signed in the last :data:`MAX_AGE`, carrying only signed
    headers; STS then checks the signature and names the signer.
    """
    checked = check_proof(
        CallerProof.from_event(proof),
        sts_endpoint=await transport.sts_endpoint(),
        audience=audience,
        now=now or datetime.now(UTC),
    )
    status, body = await transport.send_proof(checked)
    return caller_from_answer(status, body)


_HASH_CHARS = 20


def source_identity(caller_arn: str, home_account: str | None = None) -> str:
    """The STS SourceIdentity that names the caller in CloudTrail; never shared by two callers.

    Within STS's 2-64 characters of ``[\\w+=,.@-]`` (STS API reference, AssumeRole:
    SourceIdentity). ``home_account`` is the account of the session's base role (default:
    the caller's own). In that account an IAM user ``U`` is ``U`` (a user's name is unique
    in its account), if it has no ``@`` (what Identity Center user names look like) nor
    ``,``.

    Everything else is ``<readable>,<hash>``: the role and session (``Ops.alice``) or the
    name, cut to fit, then a comma and 20 hex digits of SHA-256 of the caller's ARN. That
    covers other role sessions, whose session name whoever assumes the role chooses;
    IAM Identity Center sessions too (``AWSReservedSSO_Dev_1.carol@example.com,...``):
    the session ARN does not carry the role's path (``/aws-reserved/sso.amazonaws.com/``),
    and neither the IAM API reference (CreateRole: RoleName, Path) nor the Identity Center
    User Guide says that IAM refuses a customer's role named ``AWSReservedSSO_...``, so such
    a name proves nothing. Federated users, root, callers of other accounts and names that
    do not fit are hashed too. Bare forms never hold a comma and hashed forms always do:
    different callers never share a SourceIdentity (short of an 80-bit hash collision).
    """
    parts = caller_arn.split(":", 5)
    account = parts[4] if len(parts) == 6 else ""
    kind, _, rest = parts[-1].partition("/")
    home = home_account if home_account is not None else account
    bare: str | None = None
    readable = kind or caller_arn
    if kind == "user":
        readable = rest.rsplit("/", 1)[-1]
        if "@" not in readable:
            bare = readable
    elif kind == "assumed-role":
        role, _, session = rest.partition("/")
        readable = f"{role}.{session}"
    elif kind == "federated-user":
        readable = rest
    if bare is not None and account == home and "," not in bare and is_session_name(bare):
        return bare
    digest = hashlib.sha256(caller_arn.encode()).hexdigest()[:_HASH_CHARS]
    # No colon survives, so the reserved "aws:" prefix cannot either.
    shown = NOT_SESSION_NAME_CHARACTER.sub("-", readable).replace(",", "-")
    return f"{shown[: MAX_SOURCE_IDENTITY_CHARS - _HASH_CHARS - 1]},{digest}"

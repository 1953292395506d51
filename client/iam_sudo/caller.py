"""Caller proofs: how the iam-sudo function learns, from STS, who is asking.

The scheme of HashiCorp Vault's AWS IAM auth and the EKS authenticator. The client signs
an ``sts:GetCallerIdentity`` request with its own credentials (SigV4) *without sending it*,
with a header naming the function it is meant for (the audience) among the signed headers,
and puts method, URL, headers and body into the invoke event. The function checks that
the request is exactly that, for its own STS endpoint, for itself, and recent; then sends
it to STS and takes the caller's ARN from STS's answer, never from the event.

A stolen proof lets its holder ask *this* function as the signer for at most
:data:`MAX_AGE` (STS refuses older signatures too); it cannot be replayed to another
function (the audience is signed) nor turned into any other STS call (the body is fixed).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ._exceptions import Unauthenticated

AUDIENCE_HEADER = "X-IAM-Sudo-Audience"
IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
MAX_AGE = timedelta(minutes=15)
MAX_HEADERS = 20
MAX_HEADER_CHARS = 4096
MIN_SOURCE_IDENTITY_CHARS = 2
MAX_SOURCE_IDENTITY_CHARS = 64
_SIGNED_HEADERS = re.compile(r"SignedHeaders=([^,\s]+)")
_SOURCE_IDENTITY_INVALID = re.compile(r"[^\w+=,.@-]", re.ASCII)
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


def _same_endpoint(url: str, endpoint: str) -> bool:
    given, own = urllib.parse.urlsplit(url), urllib.parse.urlsplit(endpoint)
    return (
        given.scheme == own.scheme
        and given.netloc.lower() == own.netloc.lower()
        and given.path in ("", "/")
        and not given.query
        and not given.fragment
        and not given.username
        and not given.password
    )


def check_proof(proof: CallerProof, *, sts_endpoint: str, audience: str, now: datetime) -> None:
    """Everything about the proof that can be checked before STS sees it.

    ``sts_endpoint`` is the function's own (as boto3 resolves it); ``audience`` its name.
    Raises :class:`Unauthenticated` with one line that helps no attacker.
    """
    signed = _SIGNED_HEADERS.search(proof.header("Authorization") or "")
    signed_headers = set(signed.group(1).lower().split(";")) if signed else set()
    stamp = proof.header("X-Amz-Date") or ""
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Unauthenticated(_REFUSED) from None
    if (
        proof.method != "POST"
        or not _same_endpoint(proof.url, sts_endpoint)
        or proof.body != IDENTITY_BODY
        or proof.header(AUDIENCE_HEADER) != audience
        or not {AUDIENCE_HEADER.lower(), "host", "x-amz-date"} <= signed_headers
        or abs(now - when) > MAX_AGE
    ):
        raise Unauthenticated(_REFUSED)


def caller_from_answer(status: int, body: bytes) -> str:
    """The caller's ARN from STS's answer to the proof, or :class:`Unauthenticated`."""
    match = _ARN.search(body.decode("utf-8", "replace")) if status == 200 else None
    if match is None:
        raise Unauthenticated(_REFUSED)
    return match.group(1)


def function_audience(function_name: str) -> str:
    """The function's own name (what AWS_LAMBDA_FUNCTION_NAME holds), from a name or ARN.

    The audience a proof is signed for: the function compares it with its own name.
    """
    if function_name.startswith("arn:"):
        return function_name.split(":")[6]
    return function_name.split(":")[0]


class ProofVerifier(Protocol):
    """What verifying a proof needs of a transport: its own STS endpoint, and a way there."""

    async def sts_endpoint(self) -> str: ...

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]: ...


async def verify(
    transport: ProofVerifier, proof: object, *, audience: str, now: datetime | None = None
) -> str:
    """The ARN of whoever signed ``proof``, as STS says; :class:`Unauthenticated` if not.

    The function's first step: the proof must be a GetCallerIdentity request for the
    transport's own STS endpoint, for ``audience`` (the function's name), signed in the
    last :data:`MAX_AGE`; STS then checks the signature and names the signer.
    """
    checked = CallerProof.from_event(proof)
    check_proof(
        checked,
        sts_endpoint=await transport.sts_endpoint(),
        audience=audience,
        now=now or datetime.now(UTC),
    )
    status, body = await transport.send_proof(checked)
    return caller_from_answer(status, body)


def source_identity(caller_arn: str) -> str:
    """The STS SourceIdentity that names the caller in CloudTrail.

    The user name of an IAM user, the session name of an assumed role (the person, for
    SSO), the name of a federated user; within STS's 2-64 characters of ``[\\w+=,.@-]``.
    """
    resource = caller_arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        name = rest.split("/", 1)[-1]
    elif kind in ("user", "federated-user"):
        name = rest.rsplit("/", 1)[-1]
    else:
        name = kind or caller_arn
    # No colon survives, so the reserved "aws:" prefix cannot either.
    name = _SOURCE_IDENTITY_INVALID.sub("-", name)[:MAX_SOURCE_IDENTITY_CHARS]
    return name.ljust(MIN_SOURCE_IDENTITY_CHARS, "-")

"""AWS Signature Version 4 as a receiver checks it, and S3's signed chunks re-signed.

Pure: bytes and strings in, bytes and strings out; no I/O, no SDK. The recording endpoint
(:mod:`iam_sudo.recorder`) uses it to accept only requests its session signed, and to
carry S3's chunk-signed uploads across a re-signing. Every rule is the AWS General
Reference's "Create a signed AWS API request" (canonical request, string to sign, signing
key) and the Amazon S3 API Reference's "Signature Calculations for the Authorization
Header: Transferring Payload in Multiple Chunks" (chunk string to sign).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from .exceptions import IamSudoError

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
# AWS refuses a request whose X-Amz-Date is more than 15 minutes away from its clock
# (the General Reference, "Elements of an AWS API request signature": RequestTimeTooSkewed).
MAX_SKEW = timedelta(minutes=15)
MAX_EXPIRES = 7 * 24 * 3600

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*"
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"[0-9]{8}")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class SignatureError(IamSudoError):
    """A request that is not validly signed by the expected key (the message says why)."""


@dataclass(frozen=True)
class Scope:
    """A signature's credential scope: ``AKID/20130524/us-east-1/s3/aws4_request``."""

    access_key: str
    date: str
    region: str
    service: str

    @property
    def text(self) -> str:
        """``date/region/service/aws4_request``, as the string to sign has it."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"

    @classmethod
    def parse(cls, credential: str) -> Scope:
        """Read ``AKID/date/region/service/aws4_request``; :class:`SignatureError` if not that."""
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts[:4]):
            raise SignatureError(
                "the credential scope is not AKID/date/region/service/aws4_request"
            )
        # The region and the service choose where the request is forwarded: names, never
        # URL syntax ("us-east-1.evil.example#" would make a host of its own).
        if not _DATE.fullmatch(parts[1]):
            raise SignatureError("the credential scope's date is not YYYYMMDD")
        if not (_NAME.fullmatch(parts[2]) and _NAME.fullmatch(parts[3])):
            raise SignatureError("the credential scope's region or service is not a name")
        return cls(*parts[:4])


@dataclass(frozen=True)
class Signed:
    """What a SigV4 request says about its own signature (header or query string form)."""

    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    #: True when the signature is in the query string (a presigned URL).
    presigned: bool = False
    #: A presigned URL's X-Amz-Expires: seconds it is valid from ``amz_date``.
    expires: int | None = None


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key: HMAC chain of ``AWS4``+secret over date, region, service, aws4_request."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def uri_encode(text: str, safe: str = "-_.~") -> str:
    """``text`` percent-encoded as SigV4 requires (RFC 3986: unreserved characters stay)."""
    # RFC 3986 unreserved characters stay; everything else is %XX in upper case.
    return quote(text, safe=safe)


def canonical_uri(raw_path: str, service: str) -> str:
    """The canonical URI of a path as received (still percent-encoded).

    S3 signs the path encoded once, as sent; every other service signs each segment
    encoded twice, which for a path received encoded is encoding it once more
    (botocore's ``SigV4Auth._normalize_url_path`` + ``quote``, the JS SDK's
    ``uriEscapePath``).
    """
    path = raw_path or "/"
    if service == "s3":
        return path
    return quote(path, safe="/~")


def canonical_query(raw_query: str, drop: Iterable[str] = ()) -> str:
    """The canonical query string: each name and value decoded, re-encoded, sorted."""
    dropped = set(drop)
    pairs = []
    for part in raw_query.split("&") if raw_query else ():
        name, _, value = part.partition("=")
        name, value = unquote(name.replace("+", "%20")), unquote(value.replace("+", "%20"))
        if name in dropped:
            continue
        pairs.append((uri_encode(name), uri_encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_headers(headers: Sequence[tuple[str, str]], signed: Sequence[str]) -> str:
    """``name:value\\n`` per signed header, values of repeated headers joined by commas.

    Raises :class:`SignatureError` if a signed header is missing.
    """
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    lines = []
    for name in signed:
        if name not in values:
            raise SignatureError(f"the signed header {name} is missing")
        lines.append(f"{name}:{','.join(values[name])}\n")
    return "".join(lines)


def string_to_sign(amz_date: str, scope: Scope, canonical_request: str) -> str:
    """``AWS4-HMAC-SHA256\\n<date>\\n<scope>\\n<sha256 of the canonical request>``."""
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope.text}\n{digest}"


def parse_signed(headers: Mapping[str, str], raw_query: str) -> Signed:
    """The signature a request carries, in its Authorization header or its query string.

    ``headers``: lower-case names. Raises :class:`SignatureError` for a request that is
    not SigV4-signed (unsigned, SigV2, SigV4a) or whose signature fields are malformed.
    """
    authorization = headers.get("authorization", "")
    if authorization:
        match = _AUTHORIZATION.fullmatch(authorization.strip())
        if not match:
            raise SignatureError("the Authorization header is not an AWS SigV4 signature")
        amz_date = headers.get("x-amz-date", "")
        signed = tuple(match["signed"].split(";"))
        if "host" not in signed:
            raise SignatureError("the signature does not cover the Host header")
        return Signed(Scope.parse(match["credential"]), signed, match["signature"], amz_date)
    query = {
        unquote(name): unquote(value)
        for name, _, value in (part.partition("=") for part in raw_query.split("&") if part)
    }
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise SignatureError("the request is not signed with AWS SigV4 (AWS4-HMAC-SHA256)")
    signature = query.get("X-Amz-Signature", "")
    if not _HEX64.fullmatch(signature):
        raise SignatureError("the presigned URL's X-Amz-Signature is malformed")
    signed = tuple(query.get("X-Amz-SignedHeaders", "").split(";"))
    if "host" not in signed:
        raise SignatureError("the signature does not cover the Host header")
    expires = query.get("X-Amz-Expires", "")
    # "Authenticating Requests: Using Query Parameters" (S3 API Reference): 1 to 604800
    # seconds (seven days).
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_EXPIRES:
        raise SignatureError("the presigned URL's X-Amz-Expires is not 1 to 604800 seconds")
    return Signed(
        Scope.parse(query.get("X-Amz-Credential", "")),
        signed,
        signature,
        query.get("X-Amz-Date", ""),
        presigned=True,
        expires=int(expires),
    )


def request_time(amz_date: str) -> datetime:
    """``20130524T000000Z`` as an aware datetime; :class:`SignatureError` if malformed."""
    try:
        return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError("the request has no valid X-Amz-Date") from None


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    payload_hash: str,
    signed: Signed,
    secret: str,
    now: datetime,
) -> None:
    """Raise :class:`SignatureError` unless ``signed.signature`` is the request's signature.

    ``payload_hash``: the hex SHA-256 of the body, or what ``x-amz-content-sha256`` says
    (``UNSIGNED-PAYLOAD``, ``STREAMING-...``), or ``UNSIGNED-PAYLOAD`` for a presigned URL
    without one. ``now`` bounds the request's age (:data:`MAX_SKEW`, as AWS does).
    """
    when = request_time(signed.amz_date)
    if signed.expires is not None and now > when + timedelta(seconds=signed.expires):
        # Re-signed fresh, an expired URL would be valid again: refuse it as AWS would.
        raise SignatureError("the presigned URL has expired (X-Amz-Date + X-Amz-Expires)")
    if abs(now - when) > MAX_SKEW:
        raise SignatureError("the request's X-Amz-Date is more than 15 minutes from now")
    if signed.scope.date != signed.amz_date[:8]:
        raise SignatureError("the credential scope's date is not the request's date")
    canonical = "\n".join(
        (
            method,
            canonical_uri(raw_path, signed.scope.service),
            canonical_query(raw_query, drop=("X-Amz-Signature",) if signed.presigned else ()),
            canonical_headers(headers, signed.signed_headers),
            ";".join(signed.signed_headers),
            payload_hash,
        )
    )
    key = signing_key(secret, signed.scope.date, signed.scope.region, signed.scope.service)
    expected = _hmac_hex(key, string_to_sign(signed.amz_date, signed.scope, canonical))
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError("the signature does not match the request and the session's key")


def chunk_signature(key: bytes, amz_date: str, scope: Scope, previous: str, data: bytes) -> str:
    """The signature of one chunk of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body.

    String to sign: ``AWS4-HMAC-SHA256-PAYLOAD``, the date, the scope, the previous
    signature (the seed: the request's own), the hash of the empty string, the chunk's hash.
    """
    text = "\n".join(
        (
            "AWS4-HMAC-SHA256-PAYLOAD",
            amz_date,
            scope.text,
            previous,
            EMPTY_SHA256,
            hashlib.sha256(data).hexdigest(),
        )
    )
    return _hmac_hex(key, text)


def trailer_signature(
    key: bytes, amz_date: str, scope: Scope, previous: str, trailer: bytes
) -> str:
    """The signature of the trailing headers of a ``...-PAYLOAD-TRAILER`` body."""
    text = "\n".join(
        (
            "AWS4-HMAC-SHA256-TRAILER",
            amz_date,
            scope.text,
            previous,
            hashlib.sha256(trailer).hexdigest(),
        )
    )
    return _hmac_hex(key, text)


@dataclass(frozen=True)
class ChunkSigner:
    """One side of a chunk-signed body: its key, date, scope and seed signature."""

    key: bytes
    amz_date: str
    scope: Scope
    seed: str


_MAX_CHUNK_HEADER = 4096
# S3 accepts chunks of up to 5 GiB in principle; SDKs send 64 KiB to 8 MiB. One chunk is
# held at a time (its signature precedes it and depends on all of it); a larger one is refused.
MAX_CHUNK = 16 * 1024 * 1024


class ChunkResigner:
    """Checks each chunk's signature against ``incoming`` and signs it again for ``outgoing``.

    Feed the body as it arrives (:meth:`feed`); it returns what may be sent on (whole
    re-signed chunks; never more than one chunk is held). :meth:`close` checks that the body
    ended with its final zero-length chunk (and trailer). Raises :class:`SignatureError` for
    a chunk whose signature does not follow from the previous one, or a malformed body.
    """

    def __init__(self, incoming: ChunkSigner, outgoing: ChunkSigner, *, trailer: bool) -> None:
        self._in = incoming
        self._out = outgoing
        self._previous_in = incoming.seed
        self._previous_out = outgoing.seed
        self._buffer = bytearray()
        self._trailer = trailer
        self._done = False

    def feed(self, data: bytes) -> bytes:
        """Take the next bytes of the body; return the re-signed bytes ready to send."""
        self._buffer += data
        out = bytearray()
        while not self._done:
            step = self._step()
            if step is None:
                break
            out += step
        if self._done and self._buffer and not self._trailer:
            raise SignatureError("the chunked body goes on after its final chunk")
        return bytes(out)

    def close(self) -> None:
        """Raise :class:`SignatureError` unless the body ended exactly after its last chunk."""
        if not self._done or self._buffer:
            raise SignatureError("the chunked body ended before its final chunk")

    def _step(self) -> bytes | None:
        if self._done:
            return None
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_CHUNK_HEADER:
                raise SignatureError("a chunk header is malformed")
            return None
        header = bytes(self._buffer[:end]).decode("ascii", "replace")
        size_text, _, extension = header.partition(";")
        name, _, signature = extension.partition("=")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise SignatureError("a chunk header is malformed") from None
        if name != "chunk-signature" or not _HEX64.fullmatch(signature):
            raise SignatureError("a chunk has no chunk-signature")
        if size > MAX_CHUNK:
            raise SignatureError(f"a chunk is larger than {MAX_CHUNK} bytes")
        if size == 0 and self._trailer:
            return self._final_with_trailer(end, signature)
        total = end + 2 + size + 2
        if len(self._buffer) < total:
            return None
        data = bytes(self._buffer[end + 2 : end + 2 + size])
        if self._buffer[end + 2 + size : total] != b"\r\n":
            raise SignatureError("a chunk does not end with CRLF")
        del self._buffer[:total]
        new = self._sign(signature, data)
        if size == 0:
            self._done = True
        return f"{size:x};chunk-signature={new}\r\n".encode() + data + b"\r\n"

    def _sign(self, given: str, data: bytes) -> str:
        src, dst = self._in, self._out
        expected = chunk_signature(src.key, src.amz_date, src.scope, self._previous_in, data)
        if not hmac.compare_digest(expected, given):
            raise SignatureError("a chunk's signature does not match the session's key")
        self._previous_in = given
        new = chunk_signature(dst.key, dst.amz_date, dst.scope, self._previous_out, data)
        self._previous_out = new
        return new

    def _final_with_trailer(self, end: int, signature: str) -> bytes | None:
        # 0;chunk-signature=...\r\n, then trailing headers, x-amz-trailer-signature, \r\n\r\n
        stop = self._buffer.find(b"\r\n\r\n", end + 2)
        if stop < 0:
            if len(self._buffer) > _MAX_CHUNK_HEADER * 4:
                raise SignatureError("the chunked body's trailer is malformed")
            return None
        lines = bytes(self._buffer[end + 2 : stop]).split(b"\r\n")
        del self._buffer[: stop + 4]
        new = self._sign(signature, b"")
        trailer_lines = [line for line in lines if not line.startswith(b"x-amz-trailer-signature:")]
        given = [line for line in lines if line.startswith(b"x-amz-trailer-signature:")]
        if len(given) != 1:
            raise SignatureError("the chunked body's trailer has no x-amz-trailer-signature")
        canonical = b"".join(line + b"\n" for line in trailer_lines)
        src, dst = self._in, self._out
        expected = trailer_signature(src.key, src.amz_date, src.scope, self._previous_in, canonical)
        if not hmac.compare_digest(expected.encode(), given[0].split(b":", 1)[1].strip()):
            raise SignatureError("the trailer's signature does not match the session's key")
        resigned = trailer_signature(
            dst.key, dst.amz_date, dst.scope, self._previous_out, canonical
        )
        self._done = True
        body = b"".join(line + b"\r\n" for line in trailer_lines)
        return (
            f"0;chunk-signature={new}\r\n".encode()
            + body
            + f"x-amz-trailer-signature:{resigned}\r\n\r\n".encode()
        )

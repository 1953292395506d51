"""SigV4 as the recording endpoint checks it, and S3's signed chunks re-signed (pure).

Vectors: the Amazon S3 API Reference, "Signature Calculations for the Authorization Header:
Transferring Payload in Multiple Chunks" (its PUT example: seed signature and three chunk
signatures); and requests signed by botocore, an independent signer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iam_sudo.core import sigv4
from iam_sudo.core.sigv4 import ChunkResigner, ChunkSigner, Scope, SignatureError

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SCOPE = Scope("AKIAIOSFODNN7EXAMPLE", "20130524", "us-east-1", "s3")
DATE = "20130524T000000Z"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNKS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
EXAMPLE_HEADERS = [
    ("Host", "s3.amazonaws.com"),
    ("x-amz-date", DATE),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("x-amz-content-sha256", sigv4.STREAMING_SIGNED),
    ("Content-Encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("Content-Length", "66824"),
    (
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        f"x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}",
    ),
]


def example_body(signatures: tuple[str, ...] = CHUNKS) -> bytes:
    return (
        f"10000;chunk-signature={signatures[0]}\r\n".encode()
        + b"a" * 65536
        + b"\r\n"
        + f"400;chunk-signature={signatures[1]}\r\n".encode()
        + b"a" * 1024
        + b"\r\n"
        + f"0;chunk-signature={signatures[2]}\r\n\r\n".encode()
    )


def check(
    headers: list[tuple[str, str]],
    method: str,
    path: str,
    query: str,
    payload: str,
    secret: str = SECRET,
    now: datetime | None = None,
) -> None:
    lower = {k.lower(): v for k, v in headers}
    signed = sigv4.parse_signed(lower, query)
    sigv4.verify(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=headers,
        payload_hash=payload,
        signed=signed,
        secret=secret,
        now=now or sigv4.request_time(signed.amz_date),
    )


def test_the_s3_guide_example_seed_signature_checks() -> None:
    check(EXAMPLE_HEADERS, "PUT", "/examplebucket/chunkObject.txt", "", sigv4.STREAMING_SIGNED)


def test_the_s3_guide_example_chunk_signatures() -> None:
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3")
    previous = SEED
    for data, expected in zip((b"a" * 65536, b"a" * 1024, b""), CHUNKS, strict=True):
        previous = sigv4.chunk_signature(key, DATE, SCOPE, previous, data)
        assert previous == expected


def botocore_signed(service: str, url: str, body: bytes, headers: dict[str, str]) -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    signer = S3SigV4Auth if service == "s3" else SigV4Auth
    signer(Credentials("ASIAEXAMPLE", SECRET, "token"), service, "eu-west-1").add_auth(request)
    return request


def parts(request: AWSRequest) -> tuple[str, str, list[tuple[str, str]]]:
    path, _, query = request.url.split("://", 1)[1].partition("/")[2].partition("?")
    headers = [*request.headers.items(), ("Host", "127.0.0.1:8080")]
    return "/" + path, query, headers


@pytest.mark.parametrize(
    ("service", "url"),
    [
        ("sqs", "http://127.0.0.1:8080/"),
        ("execute-api", "http://127.0.0.1:8080/a%20b/c~d?b=2&a=x%2By&a=1&empty="),
        ("s3", "http://127.0.0.1:8080/bucket/key%20with%20space?uploads&x-id=Create"),
    ],
)
def test_a_request_botocore_signed_checks(service: str, url: str) -> None:
    body = b"Action=SendMessage&MessageBody=hi"
    request = botocore_signed(service, url, body, {"Content-Type": "text/plain"})
    path, query, headers = parts(request)
    import hashlib

    check(headers, "POST", path, query, hashlib.sha256(body).hexdigest())


def test_anything_changed_or_signed_with_another_secret_is_refused() -> None:
    import hashlib

    body = b"Action=SendMessage"
    request = botocore_signed("sqs", "http://127.0.0.1:8080/", body, {"Content-Type": "x"})
    path, query, headers = parts(request)
    payload = hashlib.sha256(body).hexdigest()
    with pytest.raises(SignatureError, match="does not match"):
        check(headers, "POST", path, query, payload, secret="another")
    with pytest.raises(SignatureError, match="does not match"):
        check(headers, "POST", path, query, hashlib.sha256(b"Action=Other").hexdigest())
    changed = [(k, "y" if k == "Content-Type" else v) for k, v in headers]
    with pytest.raises(SignatureError, match="does not match"):
        check(changed, "POST", path, query, payload)
    later = sigv4.request_time(dict(headers)["X-Amz-Date"]) + timedelta(minutes=16)
    with pytest.raises(SignatureError, match="15 minutes"):
        check(headers, "POST", path, query, payload, now=later)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "not signed with AWS SigV4"),
        ({"authorization": "AWS AKIA:c2lnbmF0dXJl"}, "not an AWS SigV4"),  # SigV2
        (
            {
                "authorization": "AWS4-ECDSA-P256-SHA256 Credential=A/x, SignedHeaders=host, "
                "Signature=ab"
            },
            "not an AWS SigV4",
        ),
    ],
)
def test_unsigned_and_other_signatures_are_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        sigv4.parse_signed(headers, "")


def resigner(trailer: bool = False) -> tuple[ChunkResigner, ChunkSigner]:
    incoming = ChunkSigner(
        sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3"), DATE, SCOPE, SEED
    )
    new_scope = Scope(SCOPE.access_key, "20260101", "us-east-1", "s3")
    outgoing = ChunkSigner(
        sigv4.signing_key(SECRET, "20260101", "us-east-1", "s3"),
        "20260101T000000Z",
        new_scope,
        "f" * 64,
    )
    return ChunkResigner(incoming, outgoing, trailer=trailer), outgoing


def test_chunks_are_checked_and_signed_again_in_any_pieces() -> None:
    chunker, outgoing = resigner()
    body = example_body()
    out = b"".join(chunker.feed(body[i : i + 1000]) for i in range(0, len(body), 1000))
    chunker.close()
    previous = outgoing.seed
    expected = []
    for data in (b"a" * 65536, b"a" * 1024, b""):
        previous = sigv4.chunk_signature(
            outgoing.key, outgoing.amz_date, outgoing.scope, previous, data
        )
        expected.append(previous)
    assert out == example_body(tuple(expected))
    assert len(out) == len(body)  # Content-Length and the decoded length stay right


def test_a_chunk_with_a_wrong_signature_is_refused() -> None:
    chunker, _ = resigner()
    with pytest.raises(SignatureError, match="chunk's signature"):
        chunker.feed(example_body((CHUNKS[1], CHUNKS[0], CHUNKS[2])))


def test_a_body_cut_short_is_refused() -> None:
    chunker, _ = resigner()
    chunker.feed(example_body()[:60000])
    with pytest.raises(SignatureError, match="ended before"):
        chunker.close()


def test_a_signed_trailer_is_checked_and_signed_again() -> None:
    chunker, outgoing = resigner(trailer=True)
    key = sigv4.signing_key(SECRET, "20130524", "us-east-1", "s3")
    first = sigv4.chunk_signature(key, DATE, SCOPE, SEED, b"hello")
    final = sigv4.chunk_signature(key, DATE, SCOPE, first, b"")
    trailer = b"x-amz-checksum-crc32:NhCmhg==\n"
    signature = sigv4.trailer_signature(key, DATE, SCOPE, final, trailer)
    body = (
        f"5;chunk-signature={first}\r\n".encode()
        + b"hello\r\n"
        + f"0;chunk-signature={final}\r\n".encode()
        + b"x-amz-checksum-crc32:NhCmhg==\r\n"
        + f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()
    )
    out = chunker.feed(body)
    chunker.close()
    new_first = sigv4.chunk_signature(
        outgoing.key, outgoing.amz_date, outgoing.scope, outgoing.seed, b"hello"
    )
    new_final = sigv4.chunk_signature(
        outgoing.key, outgoing.amz_date, outgoing.scope, new_first, b""
    )
    new_trailer = sigv4.trailer_signature(
        outgoing.key, outgoing.amz_date, outgoing.scope, new_final, trailer
    )
    assert out.endswith(f"x-amz-trailer-signature:{new_trailer}\r\n\r\n".encode())
    assert out.startswith(f"5;chunk-signature={new_first}\r\nhello\r\n".encode())
    assert len(out) == len(body)


def test_time_is_parsed_as_utc() -> None:
    assert sigv4.request_time(DATE) == datetime(2013, 5, 24, tzinfo=UTC)

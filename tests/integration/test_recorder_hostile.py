"""The recording endpoint against requests crafted to misuse it.

In process, no moto: a stand-in upstream (a plain HTTP server that keeps what it fully
received) behind a :class:`RecordingEndpoint`, and requests signed by hand with botocore's
SigV4 signers as the session's SDK would sign them, then altered.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from iam_sudo.aws.recorder import RecordingEndpoint
from iam_sudo.core.record import Run
from iam_sudo.settings.credentials import Credentials

SESSION = Credentials(
    "ASIAEXAMPLESESSION01",
    "session/secret+key/EXAMPLEKEY0123456789ab",
    "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN/+=",
    datetime.now(UTC) + timedelta(hours=1),
)


# AWS's validation errors quote the value they refused ("1 validation error detected:
# Value '...' at '...' failed to satisfy constraint"): a password, a secret string.
VALIDATION_ERROR = (
    b"<Error><Code>ValidationException</Code><Message>1 validation error detected: Value "
    b"'hunter2-Secret/Value' at 'secretString' failed to satisfy constraint: Member must "
    b"have length less than or equal to 10</Message></Error>"
)


class Upstream(BaseHTTPRequestHandler):
    """Keeps each request's body only if it arrived whole (as its Content-Length says)."""

    protocol_version = "HTTP/1.1"
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) == length:
            self.received.append((self.command, self.path, body))
        answer = VALIDATION_ERROR if self.path.endswith("/validation") else b""
        self.send_response(400 if answer else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_PUT = do_POST = _any


@pytest.fixture
def upstream() -> Iterator[str]:
    Upstream.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def endpoint(
    upstream: str, tmp_path: Path
) -> Iterator[tuple[RecordingEndpoint, asyncio.AbstractEventLoop]]:
    config = tmp_path / "config"
    config.write_text("")
    environ = {"AWS_CONFIG_FILE": str(config), "AWS_ENDPOINT_URL": upstream}
    endpoint = RecordingEndpoint(
        lambda: SESSION, Run("simulate", "local", None), None, environ=environ
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(endpoint.start())
    yield endpoint, loop
    loop.run_until_complete(endpoint.stop())
    loop.close()


def signed_s3(url: str, method: str, path: str, body: bytes, **query: str) -> Any:
    """A request signed with the session's key as botocore's S3 client signs it."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    target = url + path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    request = AWSRequest(method=method, url=target, data=body)
    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    boto = BotoCredentials(SESSION.access_key_id, SESSION.secret_access_key, SESSION.session_token)
    S3SigV4Auth(boto, "s3", "us-east-1").add_auth(request)
    return request


async def send(method: str, url: str, headers: dict[str, str], body: bytes) -> int:
    from aiohttp import ClientSession

    async with (
        ClientSession() as client,
        client.request(
            method, url, headers=headers, data=body, skip_auto_headers=("Content-Type",)
        ) as answer,
    ):
        await answer.read()
        return answer.status


def test_a_body_that_does_not_match_its_signed_hash_never_reaches_aws_whole(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop],
) -> None:
    recorder, loop = endpoint
    good = b"g" * 200_000
    request = signed_s3(recorder.url, "PUT", "/bucket/key", good)
    headers = dict(request.headers.items())
    evil = b"e" * len(good)  # same length, another content: the signature covers its hash
    status = loop.run_until_complete(send("PUT", request.url, headers, evil))
    assert status >= 400
    assert not [body for _, _, body in Upstream.received if body == evil]
    assert [r.reason for r in recorder.record.refused] == [
        "the body does not match its signed SHA-256"
    ]
    assert recorder.record.calls == ()  # refused, not "AWS unreachable"
    # the same request with its own body goes through: the stand-in is not the reason
    loop.run_until_complete(send("PUT", request.url, headers, good))
    assert [body for _, _, body in Upstream.received] == [good]


def presigned_s3(url: str, path: str, expires: int) -> str:
    """A presigned GET URL, as ``generate_presigned_url`` makes it with the session's key."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method="GET", url=url + path)
    boto = BotoCredentials(SESSION.access_key_id, SESSION.secret_access_key, SESSION.session_token)
    S3SigV4QueryAuth(boto, "s3", "us-east-1", expires=expires).add_auth(request)
    return str(request.url)


def test_a_presigned_url_is_refused_once_its_own_expiry_has_passed(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Authenticating Requests: Using Query Parameters": X-Amz-Expires is how long the URL
    # is valid, from X-Amz-Date. Re-signed fresh, an expired URL would live again.
    import iam_sudo.aws.recorder as recorder_module

    recorder, loop = endpoint
    url = presigned_s3(recorder.url, "/bucket/key", expires=60)
    assert loop.run_until_complete(send("GET", url, {}, b"")) == 200
    later = datetime.now(UTC) + timedelta(seconds=120)
    monkeypatch.setattr(recorder_module, "_now", lambda: later)
    assert loop.run_until_complete(send("GET", url, {}, b"")) == 403
    assert len(Upstream.received) == 1
    assert "expired" in recorder.record.refused[-1].reason


def test_no_secret_reaches_a_debug_log_or_the_record(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    recorder, loop = endpoint
    # signed here before the log is captured: botocore's own signer logs what it signs
    request = signed_s3(recorder.url, "PUT", "/bucket/key", b"data")
    url = presigned_s3(recorder.url, "/bucket/key", expires=60)
    caplog.set_level(logging.DEBUG)
    loop.run_until_complete(send("PUT", request.url, dict(request.headers.items()), b"data"))
    loop.run_until_complete(send("GET", url, {}, b""))
    signature = str(request.headers["Authorization"]).rpartition("Signature=")[2]
    written = recorder.record.dumps()
    for secret in (SESSION.secret_access_key, SESSION.session_token, signature):
        assert secret not in caplog.text
        assert secret not in written
    assert "X-Amz-Signature" not in written
    assert len(recorder.record.calls) == 2


def test_record_never_overwrites_a_file_that_is_not_a_record(tmp_path: Path) -> None:
    from iam_sudo.aws.recorder import record_path
    from iam_sudo.core.exceptions import RecordError

    script = tmp_path / "main.py"
    script.write_text("print('my work')\n")
    with pytest.raises(RecordError, match="not an iam-sudo record"):
        record_path(script)
    assert script.read_text() == "print('my work')\n"
    # a record (or an empty file, or none) is replaced as before
    old = tmp_path / "run.json"
    old.write_text(a_record_text())
    assert record_path(old) == old
    (tmp_path / "empty.json").write_text("")
    assert record_path(tmp_path / "empty.json") == tmp_path / "empty.json"
    assert record_path(tmp_path / "new.json") == tmp_path / "new.json"


def a_record_text() -> str:
    from iam_sudo.core.record import Record

    return Record(Run("simulate", "local", None)).dumps()


def test_an_unsigned_x_amz_header_is_refused_as_aws_refuses_it_not_signed_on_its_behalf(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop],
) -> None:
    # S3 API Reference, "Signature Calculations for the Authorization Header": every
    # x-amz-* header of the request must be signed. Re-signed whole, a header added to
    # the session's request by someone else would reach AWS signed.
    recorder, loop = endpoint
    request = signed_s3(recorder.url, "PUT", "/bucket/key", b"data")
    headers = {**dict(request.headers.items()), "x-amz-acl": "public-read"}
    assert loop.run_until_complete(send("PUT", request.url, headers, b"data")) == 403
    assert Upstream.received == []
    assert "x-amz-acl" in recorder.record.refused[-1].reason


def test_a_value_an_error_message_quotes_is_not_kept_in_the_record(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop],
) -> None:
    recorder, loop = endpoint
    request = signed_s3(recorder.url, "GET", "/bucket/validation", b"")
    assert (
        loop.run_until_complete(send("GET", request.url, dict(request.headers.items()), b"")) == 400
    )
    (call,) = recorder.record.calls
    assert call.error_code == "ValidationException"
    assert call.error_message is not None
    assert "at 'secretString' failed to satisfy constraint" in call.error_message
    assert "hunter2" not in recorder.record.dumps()


def test_a_password_in_the_users_endpoint_url_is_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = tmp_path / "config"
    config.write_text("")
    environ = {
        "AWS_CONFIG_FILE": str(config),
        "AWS_ENDPOINT_URL": f"http://admin:Pa55-word@127.0.0.1:{closed}",
    }
    recorder = RecordingEndpoint(
        lambda: SESSION, Run("simulate", "local", None), None, environ=environ
    )
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(recorder.start())
        request = signed_s3(recorder.url, "GET", "/bucket/key", b"")
        headers = dict(request.headers.items())
        assert loop.run_until_complete(send("GET", request.url, headers, b"")) == 502
    finally:
        loop.run_until_complete(recorder.stop())
        loop.close()
    assert recorder.record.refused
    assert "Pa55-word" not in recorder.record.dumps()
    assert "Pa55-word" not in caplog.text


@pytest.mark.parametrize("region", ["evil.example", "us-east-1.evil.example#", "nowhere"])
def test_a_region_of_no_partition_is_refused_in_one_line_not_forwarded(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop], region: str
) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    recorder, loop = endpoint
    # SQS, not S3: without an endpoint of the user's own it is forwarded by region
    recorder._upstreams = type(recorder._upstreams)({}, None)
    request = AWSRequest(
        method="POST",
        url=recorder.url + "/",
        data=b"Action=ListQueues&Version=2012-11-05",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    boto = BotoCredentials(SESSION.access_key_id, SESSION.secret_access_key, SESSION.session_token)
    SigV4Auth(boto, "sqs", region).add_auth(request)
    status = loop.run_until_complete(
        send("POST", request.url, dict(request.headers.items()), request.body)
    )
    assert status in (400, 403)
    assert "region" in recorder.record.refused[-1].reason
    assert Upstream.received == []


def test_a_malformed_request_from_another_process_is_one_line_not_a_traceback(
    endpoint: tuple[RecordingEndpoint, asyncio.AbstractEventLoop],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # aiohttp logs an unparsable request with its traceback at ERROR: with no logging
    # configured, Python prints it on the user's terminal. Any local process can send one.
    recorder, loop = endpoint
    port = recorder.url.rpartition(":")[2]

    async def garbage() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"GET @evil.example/?X-Amz-Signature=abc123def456 HTTP/1.1\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    assert loop.run_until_complete(garbage()).startswith(b"HTTP/1.0 400")
    assert "Traceback" not in caplog.text
    assert "abc123def456" not in caplog.text
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_the_record_written_is_the_newest_whoever_waited_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The periodic flush and the final write at stop() may race for the file's lock: the
    # one that writes last must write the newest record, or the file ends incomplete.
    import contextlib
    import json

    import iam_sudo.aws.recorder as recorder_module
    from iam_sudo.core.record import Refusal

    config = tmp_path / "config"
    config.write_text("")
    path = tmp_path / "run.json"
    recorder = RecordingEndpoint(
        lambda: SESSION,
        Run("simulate", "local", None),
        path,
        environ={"AWS_CONFIG_FILE": str(config)},
    )
    real = recorder_module.files.locked

    @contextlib.contextmanager
    def locked(target: Path) -> Iterator[None]:
        # while this writer waited for the lock, another call was recorded
        recorder._add(refusal=Refusal("t", "came in while the writer waited"))
        with real(target):
            yield

    monkeypatch.setattr(recorder_module.files, "locked", locked)
    recorder._write()
    written = json.loads(path.read_text())
    assert [r["Reason"] for r in written["Refused"]] == ["came in while the writer waited"]

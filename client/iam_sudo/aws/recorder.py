"""The recording endpoint: a loopback AWS endpoint that records every call and forwards it.

A command run with ``--record`` reaches AWS through this server: its environment names it
as ``AWS_ENDPOINT_URL`` (and as every ``AWS_ENDPOINT_URL_<SERVICE>`` the user had set, or
configured in the profile's ``services`` section, since those win over the global one), an
endpoint override that boto3, the AWS CLI, the JS SDK v3, Go v2 and Java v2 honour. No
certificate authority is needed: the SDK speaks plain HTTP to ``127.0.0.1``; an IP address
also makes every SDK address S3 path-style, as a local endpoint needs.

For each request the server:

1. refuses it (403, one line saying why) unless its ``Host`` is this server, and it is
   SigV4-signed with the session's own access key and token and a signature that checks
   (:mod:`iam_sudo.core.sigv4`): it must not become a way for other local processes to use
   the session;
2. identifies the operation from botocore's service model (:mod:`iam_sudo.aws.operations`)
   and the IAM actions and resources it needs (:mod:`iam_sudo.aws.catalogue`);
3. re-signs it with the session's credentials (botocore's SigV4 signer) for the endpoint it
   would have reached: the user's own ``AWS_ENDPOINT_URL[_<SERVICE>]`` or profile setting
   when there is one (a local AWS), else the service's regional endpoint in the region's
   partition; S3's chunk-signed uploads are re-signed chunk by chunk;
4. streams the body there and the answer back (an error answer, a few hundred bytes, is
   read to record AWS's code and message), and records the call.

Bodies stream both ways; a body whose hash the signature covers only through the body itself
(services other than S3, which send no ``x-amz-content-sha256``) is read whole first, since
the signature cannot be checked before: those are API documents, capped at
:data:`MAX_HELD_BODY`. S3's bodies (``UNSIGNED-PAYLOAD``, a signed hash, chunk-signed or
``aws-chunked`` with trailers) are never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..core import sigv4
from ..core.denials import parse as parse_denial
from ..core.record import Call, Record, Refusal, Run, message_text, outcome_of
from ..core.redact import protect_sdk_logs, scrub
from ..core.text import bounded
from ..settings import config, files
from ..settings.credentials import Credentials
from . import catalogue, operations

log = logging.getLogger("iam_sudo")

MAX_HELD_BODY = 64 * 1024 * 1024
MAX_ERROR_BODY = 256 * 1024
FLUSH_SECONDS = 2.0
# Not forwarded: they describe this hop, or are replaced by the re-signing.
_HOP = frozenset(
    {
        "host",
        "authorization",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "x-amz-date",
        "x-amz-security-token",
    }
)
_PRESIGN_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    }
)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Upstreams:
    """Where each service's requests would have gone, per the command's own settings.

    botocore's order (SDKs and Tools Reference Guide, "Service-specific endpoints"):
    ``AWS_ENDPOINT_URL_<SERVICE>``, the profile's ``services`` section, ``AWS_ENDPOINT_URL``,
    the profile's ``endpoint_url``; none of them if ``ignore_configured_endpoint_urls``.
    Else the service's endpoint for the region, in the region's partition.
    """

    service_urls: Mapping[str, str]
    global_url: str | None
    fips: bool = False
    dualstack: bool = False
    #: The command ignored the settings: AWS itself (they are still pointed at the recorder,
    #: since the command is told not to ignore them).
    ignored: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Upstreams:
        """Read ``environ`` and the AWS config file it names (ConfigurationError if unreadable)."""
        aws_config = config.read_config(environ)
        profile = aws_config.profile(config.profile_in_effect(environ))

        def flag(variable: str, key: str) -> bool:
            value = environ.get(variable, profile.get(key, ""))
            return value.strip().lower() == "true"

        urls: dict[str, str] = {}
        services = profile.get("services")
        if services:
            for header, section in aws_config.sections.items():
                if config.named_section(header, "services") != services:
                    continue
                for key, block in section.items():
                    for line in block.splitlines():
                        name, _, value = line.partition("=")
                        if name.strip() == "endpoint_url" and value.strip():
                            urls[key.strip().upper().replace("-", "_")] = value.strip()
        for variable, value in environ.items():
            if variable.startswith("AWS_ENDPOINT_URL_") and value:
                urls[variable.removeprefix("AWS_ENDPOINT_URL_")] = value
        global_url = environ.get("AWS_ENDPOINT_URL") or profile.get("endpoint_url") or None
        return cls(
            urls,
            global_url,
            flag("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint"),
            flag("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint"),
            flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "ignore_configured_endpoint_urls"),
        )

    def url(self, service_id: str, endpoint_prefix: str | None, region: str) -> str:
        """The base URL (scheme and host, maybe a path) for ``service_id`` in ``region``."""
        key = service_id.upper().replace(" ", "_").replace("-", "_")
        configured = None if self.ignored else (self.service_urls.get(key) or self.global_url)
        if configured:
            return configured.rstrip("/")
        endpoint = _resolver().construct_endpoint(
            endpoint_prefix or service_id.lower(),
            region,
            use_fips_endpoint=self.fips,
            use_dualstack_endpoint=self.dualstack,
        )
        if not endpoint or not endpoint.get("hostname"):
            partition = _resolver().get_partition_for_region(region)
            suffix = _resolver().get_partition_dns_suffix(partition)
            return f"https://{endpoint_prefix or service_id.lower()}.{region}.{suffix}"
        return f"https://{endpoint['hostname']}"

    def service_variables(self) -> list[str]:
        """The ``AWS_ENDPOINT_URL_<SERVICE>`` names that must point at the recorder too."""
        return [f"AWS_ENDPOINT_URL_{key}" for key in self.service_urls]


_RESOLVER: Any = None


def _resolver() -> Any:
    global _RESOLVER
    if _RESOLVER is None:
        from botocore.loaders import create_loader
        from botocore.regions import EndpointResolver

        _RESOLVER = EndpointResolver(create_loader().load_data("endpoints"))
    return _RESOLVER


def partition_of_region(region: str) -> str:
    """The partition (aws, aws-cn, aws-us-gov, ...) whose region pattern ``region`` fits."""
    try:
        return str(_resolver().get_partition_for_region(region))
    except Exception:  # botocore raises UnknownRegionError for a region of no partition
        return "aws"


class Refused(Exception):
    """A request the endpoint will not forward; ``reason`` is one line for the caller."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Resigner:
    """botocore's SigV4 signer with the payload hash we were given, not one it computes."""

    def __init__(self, credentials: Credentials, service: str, region: str) -> None:
        from botocore.auth import S3SigV4Auth, SigV4Auth
        from botocore.credentials import Credentials as BotoCredentials

        base = S3SigV4Auth if service == "s3" else SigV4Auth
        payload_hash: dict[str, str] = {}

        class Signer(base):  # type: ignore[valid-type, misc]
            def payload(self, request: Any) -> str:
                return payload_hash["value"]

            def _modify_request_before_signing(self, request: Any) -> None:
                super()._modify_request_before_signing(request)
                if service == "s3" or "X-Amz-Content-SHA256" in request.headers:
                    # botocore's headers keep duplicates: replace, never add a second one
                    del request.headers["X-Amz-Content-SHA256"]
                    request.headers["X-Amz-Content-SHA256"] = payload_hash["value"]

        boto = BotoCredentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        )
        self._signer = Signer(boto, service, region)
        self._payload = payload_hash

    def sign(self, method: str, url: str, headers: dict[str, str], payload_hash: str) -> Any:
        from botocore.awsrequest import AWSRequest

        self._payload["value"] = payload_hash
        request = AWSRequest(method=method, url=url, headers=headers)
        self._signer.add_auth(request)
        return request


class RecordingEndpoint:
    """The endpoint of one recorded run, on ``127.0.0.1`` and a free port.

    ``credentials`` returns the session's current credentials (the ECS endpoint renews
    them: every key the session has had is accepted until it expires); ``run`` describes
    the run; ``path``, when given, receives the record, atomically and 0600, every
    :data:`FLUSH_SECONDS` while calls come in and when :meth:`stop` is called;
    ``environ`` is the command's environment (see :class:`Upstreams`).
    Use :meth:`start` and :meth:`stop` on one event loop.
    """

    def __init__(
        self,
        credentials: Callable[[], Credentials],
        run: Run,
        path: Path | None,
        *,
        environ: Mapping[str, str],
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._current = credentials
        self._keys: dict[str, Credentials] = {}
        self._record = Record(replace(run, started=run.started or _iso(_now())))
        self._path = path
        self._upstreams = Upstreams.from_environment(environ)
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._dirty = False
        self._runner: Any = None
        self._session: Any = None
        self._flusher: asyncio.Task[None] | None = None
        self._port = 0
        self.requests = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what the command's SDK is pointed at."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def record(self) -> Record:
        """The record so far."""
        with self._lock:
            return self._record

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and serve; raises OSError if it cannot bind."""
        from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

        # The re-signing is botocore's signer, which logs the canonical request (the
        # session's token among its headers) at DEBUG: filtered here too, since a cache
        # hit or a library user may have created no AWS client that would have done it.
        protect_sdk_logs()
        app = web.Application(client_max_size=MAX_HELD_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, logger=_http_log())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server  # aiohttp keeps the bound socket there
        self._port = int(server.sockets[0].getsockname()[1])
        self._session = ClientSession(
            connector=TCPConnector(limit=64),
            auto_decompress=False,
            timeout=ClientTimeout(total=None, sock_connect=10, sock_read=300),
        )
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        self._write()

    async def stop(self, exit_status: int | None = None) -> Record:
        """Stop serving; write and return the complete record."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        with self._lock:
            self._record = self._record.finished(_iso(_now()), exit_status)
        self._write()
        return self.record

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with every endpoint setting an SDK reads pointing at this endpoint."""
        env = dict(base)
        for variable in [v for v in env if v.startswith("AWS_ENDPOINT_URL_")]:
            env[variable] = self.url
        for variable in self._upstreams.service_variables():
            env[variable] = self.url
        env["AWS_ENDPOINT_URL"] = self.url
        # The profile may say to ignore endpoint settings: the environment's word wins.
        env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false"
        return env

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            if self._dirty:
                await asyncio.get_running_loop().run_in_executor(None, self._write)

    def _write(self) -> None:
        if self._path is None:
            return
        # The snapshot is taken holding the file's lock: the periodic flush and the final
        # write at stop() may race for it, and the one that writes last must write the newest.
        with files.locked(self._path):
            with self._lock:
                text = self._record.dumps()
                self._dirty = False
            files.write_atomic(self._path, text)

    def _add(self, call: Call | None = None, refusal: Refusal | None = None) -> None:
        with self._lock:
            record = self._record
            if call is not None:
                record = replace(record, calls=(*record.calls, call))
            if refusal is not None:
                record = replace(record, refused=(*record.refused, refusal))
            self._record = record
            self._dirty = True

    # -- one request -----------------------------------------------------------------------

    def _credentials_for(self, access_key: str) -> Credentials:
        current = self._current()
        self._keys[current.access_key_id] = current
        found = self._keys.get(access_key)
        if found is None:
            raise Refused("the request is signed with a key that is not this session's")
        if found.expiration <= _now():
            raise Refused("the request is signed with this session's expired key")
        return found

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        self.requests += 1
        try:
            return await self._forward(request)
        except Refused as refused:
            self._add(refusal=Refusal(_iso(_now()), refused.reason))
            log.warning("recording endpoint refused a request: %s", refused.reason)
            return _refusal(web, refused, request.headers.get("x-amz-target"))

    async def _forward(self, request: Any) -> Any:
        from aiohttp import web

        if request.host not in (f"127.0.0.1:{self._port}", f"localhost:{self._port}"):
            raise Refused("the Host header does not name this endpoint")
        raw_path, _, raw_query = request.raw_path.partition("?")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        lower = {k.lower(): v for k, v in headers}
        try:
            signed = sigv4.parse_signed(lower, raw_query)
        except sigv4.SignatureError as error:
            raise Refused(str(error)) from None
        credentials = self._credentials_for(signed.scope.access_key)
        token = lower.get("x-amz-security-token")
        if signed.presigned:
            query = dict(_pairs(raw_query))
            token = query.get("X-Amz-Security-Token", token)
        if token is None or not hmac.compare_digest(
            token.encode(), credentials.session_token.encode()
        ):
            raise Refused("the request does not carry this session's token")
        declared = lower.get("x-amz-content-sha256")
        if signed.presigned and declared is None:
            declared = dict(_pairs(raw_query)).get("X-Amz-Content-Sha256", sigv4.UNSIGNED_PAYLOAD)
        held: bytes | None = None
        payload_hash = declared or ""
        if declared is None or (signed.scope.service != "s3" and not declared.startswith("STREAM")):
            # Services other than S3 send API documents: held, to check the signature when no
            # header carries the hash, and to read the operation and its resources.
            held = await _read_held(request)
            actual = hashlib.sha256(held).hexdigest()
            if declared is not None and _is_hex(declared) and declared != actual:
                raise Refused("the body does not match its signed SHA-256", 400)
            payload_hash = declared or actual
        try:
            sigv4.verify(
                method=request.method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=headers,
                payload_hash=payload_hash,
                signed=signed,
                secret=credentials.secret_access_key,
                now=_now(),
            )
        except sigv4.SignatureError as error:
            raise Refused(str(error)) from None
        unsigned = sorted(
            {k.lower() for k, _ in headers if k.lower().startswith("x-amz-")}
            - set(signed.signed_headers)
            # a presigned request's body hash header is dropped before forwarding
            - ({"x-amz-content-sha256"} if signed.presigned else set())
        )
        if unsigned:
            # AWS refuses an x-amz-* header the signature does not cover; the re-signing
            # would cover it, so it must be refused here.
            raise Refused(f"the header {bounded(unsigned[0], 60)} is not signed", 403)
        if payload_hash.startswith("STREAMING-AWS4-ECDSA"):
            raise Refused("SigV4a (ECDSA) chunk signing is not supported by the recorder", 400)

        scope = signed.scope
        identified = operations.identify(
            scope.service,
            method=request.method,
            path=raw_path,
            raw_query=raw_query,
            headers=lower,
            body=held,
        )
        service = identified.service if identified else scope.service
        service_id = identified.service_id if identified else scope.service
        prefix = operations.endpoint_prefix(service) if identified else None
        try:
            base = self._upstreams.url(service_id, prefix, scope.region)
        except Exception:  # botocore's UnknownRegionError: a region of no partition
            raise Refused(
                f"the signature's region {bounded(scope.region, 40)} is in no AWS partition", 400
            ) from None
        kept = [
            (k, v) for k, v in _pairs(raw_query) if k not in _PRESIGN_PARAMS or not signed.presigned
        ]
        forward_query = "&".join(
            f"{sigv4.uri_encode(k)}={sigv4.uri_encode(v)}" for k, v in sorted(kept)
        )
        upstream_url = base + raw_path + (f"?{forward_query}" if forward_query else "")
        if held is not None and service == "sqs":
            rewritten = _queue_urls_back(held, self.url, base)
            if rewritten != held:
                held, payload_hash = rewritten, hashlib.sha256(rewritten).hexdigest()
                headers = [
                    (k, str(len(held)) if k.lower() == "content-length" else v) for k, v in headers
                ]
        forward = {k: v for k, v in headers if k.lower() not in _HOP}
        if signed.presigned:
            forward.pop("X-Amz-Content-Sha256", None)
        resigner = _Resigner(credentials, scope.service, scope.region)
        signed_request = resigner.sign(request.method, upstream_url, forward, payload_hash)
        out_headers = dict(signed_request.headers.items())

        body: Any
        if held is not None:
            body = held
        elif request.can_read_body:
            body = self._stream_body(request, payload_hash, signed, credentials, out_headers, scope)
        else:
            body = None
        if body is not None and held is None and "content-length" not in lower:
            out_headers.pop("Content-Length", None)

        from yarl import URL

        url = URL(upstream_url, encoded=True)
        when = _now()
        try:
            async with self._session.request(
                request.method,
                url,
                headers=out_headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Content-Type", "Accept-Encoding"),
            ) as answer:
                return await self._answer(request, answer, identified, scope, when, web)
        except Refused:
            raise
        except sigv4.SignatureError as error:
            # A chunk or the body did not match its signature: AWS got an incomplete request.
            raise Refused(str(error), 400) from None
        except Exception as error:
            # aiohttp wraps what the body's generator raised: a body that broke its own
            # signature is the request's fault, not AWS's.
            cause = _signature_error(error)
            if cause is not None:
                raise Refused(str(cause), 400) from None
            self._record_call(
                identified,
                scope,
                0,
                "IamSudoUpstreamUnreachable",
                _shown_url(str(error)),
                _iso(when),
            )
            raise Refused(
                f"AWS could not be reached at {bounded(_shown_url(base))}: "
                f"{bounded(_shown_url(str(error)))}",
                502,
            ) from None

    async def _stream_body(
        self,
        request: Any,
        payload_hash: str,
        signed: sigv4.Signed,
        credentials: Credentials,
        out_headers: Mapping[str, str],
        scope: sigv4.Scope,
    ) -> AsyncIterator[bytes]:
        """The body, as it arrives: checked against its signed hash, or re-signed per chunk."""
        resigner: sigv4.ChunkResigner | None = None
        if payload_hash in (sigv4.STREAMING_SIGNED, sigv4.STREAMING_SIGNED_TRAILER):
            key = sigv4.signing_key(
                credentials.secret_access_key, scope.date, scope.region, scope.service
            )
            new_date = out_headers["X-Amz-Date"]
            new_scope = replace(scope, date=new_date[:8])
            new_key = sigv4.signing_key(
                credentials.secret_access_key, new_scope.date, scope.region, scope.service
            )
            new_seed = out_headers["Authorization"].rpartition("Signature=")[2]
            resigner = sigv4.ChunkResigner(
                sigv4.ChunkSigner(key, signed.amz_date, scope, signed.signature),
                sigv4.ChunkSigner(new_key, new_date, new_scope, new_seed),
                trailer=payload_hash == sigv4.STREAMING_SIGNED_TRAILER,
            )
        digest = hashlib.sha256() if _is_hex(payload_hash) else None
        # The last piece is held back until the whole body's hash is checked: raised
        # before it is sent, the error leaves AWS with an incomplete request, never a
        # complete body the signature does not cover.
        held = b""
        async for data in request.content.iter_any():
            if digest is not None:
                digest.update(data)
            if resigner is not None:
                data = resigner.feed(data)
            if data:
                if held:
                    yield held
                held = data
        if resigner is not None:
            resigner.close()
        if digest is not None and not hmac.compare_digest(digest.hexdigest(), payload_hash):
            raise sigv4.SignatureError("the body does not match its signed SHA-256")
        if held:
            yield held

    async def _answer(
        self,
        request: Any,
        answer: Any,
        identified: Any,
        scope: sigv4.Scope,
        when: datetime,
        web: Any,
    ) -> Any:
        headers = [(k, v) for k, v in answer.headers.items() if k.lower() not in _HOP]
        response = web.StreamResponse(status=answer.status, reason=answer.reason)
        for name, value in headers:
            response.headers.add(name, value)
        if answer.status >= 300 and request.method != "HEAD":
            data = await answer.content.read(MAX_ERROR_BODY)
            code, message = _error_of(data, answer.headers)
            self._record_call(identified, scope, answer.status, code, message, _iso(_now()))
            await response.prepare(request)
            await response.write(data)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        operation = identified.operation if identified else None
        if (
            answer.status < 300
            and identified
            and identified.service == "sqs"
            and operation in (_QUEUE_URL_ANSWERS)
        ):
            data = _queue_urls_here(await answer.content.read(MAX_ERROR_BODY), self.url)
            response.headers.popall("Content-Length", None)
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data)
            await response.write_eof()
            self._record_call(identified, scope, answer.status, None, None, _iso(_now()))
            return response
        if answer.status >= 300:
            code = answer.headers.get("x-amz-error-code") or answer.headers.get("x-amzn-ErrorType")
            self._record_call(identified, scope, answer.status, code, None, _iso(_now()))
        await response.prepare(request)
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        if answer.status < 300:
            self._record_call(identified, scope, answer.status, None, None, _iso(_now()))
        return response

    def _record_call(
        self,
        identified: Any,
        scope: sigv4.Scope,
        status: int,
        code: str | None,
        message: str | None,
        when: str,
    ) -> None:
        message = message_text(scrub(message)) if message else None
        outcome = outcome_of(status, code, message) if status else "error"
        service = identified.service if identified else scope.service
        operation = identified.operation if identified else None
        params = identified.params if identified else {}
        prefix = catalogue.iam_prefix(
            scope.service, operations.endpoint_prefix(service) if identified else None, service
        )
        needs = catalogue.needs(
            prefix,
            operation,
            params,
            partition=partition_of_region(scope.region),
            region=scope.region,
            account=self._record.run.account,
        )
        actions, source = needs.actions, "catalogue" if needs.known else "none"
        resources = needs.resources
        if outcome == "denied":
            denial = parse_denial(message)
            if denial.action:
                actions, source = (catalogue.canonical(denial.action),), "denial"
            if denial.resource and denial.resource.startswith("arn:"):
                resources = (denial.resource,)
        self._add(
            Call(
                time=when,
                service=service,
                region=scope.region,
                operation=operation,
                actions=tuple(actions),
                action_source=source,  # type: ignore[arg-type]
                resources=tuple(resources),
                outcome=outcome,
                status=status,
                error_code=code,
                error_message=message,
            )
        )


# SQS answers that hand out queue URLs. The JS SDK v3 sends a call to the host of its
# QueueUrl when that differs from its endpoint (@aws-sdk/middleware-sdk-sqs,
# useQueueUrlAsEndpoint): the command gets them pointing here, and AWS gets them back as
# its own.
_QUEUE_URL_ANSWERS = frozenset(
    {"CreateQueue", "GetQueueUrl", "ListQueues", "ListDeadLetterSourceQueues"}
)
_QUEUE_URL = re.compile(rb"https?://[^/\"<>\s]+(?=/\d{12}/)")


def _queue_urls_here(data: bytes, here: str) -> bytes:
    return _QUEUE_URL.sub(here.encode(), data)


def _queue_urls_back(data: bytes, here: str, upstream: str) -> bytes:
    from urllib.parse import quote, urlsplit

    parts = urlsplit(upstream)
    origin = f"{parts.scheme}://{parts.netloc}"
    for form in (here, here.replace("127.0.0.1", "localhost")):
        data = data.replace(form.encode(), origin.encode())
        data = data.replace(quote(form, safe="").encode(), quote(origin, safe="").encode())
    return data


class _OneLine(logging.Filter):
    """aiohttp's server errors as one line without a traceback: a malformed request from
    any local process would otherwise print one on the user's terminal (Python's last-
    resort handler), with the request line in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        reason = type(error).__name__ if error is not None else "an error"
        record.msg, record.args = (
            f"recording endpoint: a malformed request was refused, or a request failed ({reason})",
            None,
        )
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _http_log() -> logging.Logger:
    http = logging.getLogger("iam_sudo.recorder.http")
    if not any(isinstance(f, _OneLine) for f in http.filters):
        http.addFilter(_OneLine())
    return http


_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def _shown_url(text: str) -> str:
    """``text`` without the user and password of any URL in it (an endpoint URL may carry
    them)."""
    return _USERINFO.sub("", text)


def _signature_error(error: BaseException) -> sigv4.SignatureError | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, sigv4.SignatureError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _is_hex(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _pairs(raw_query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in raw_query.split("&") if raw_query else ():
        name, _, value = part.partition("=")
        pairs.append((unquote(name.replace("+", "%20")), unquote(value.replace("+", "%20"))))
    return pairs


async def _read_held(request: Any) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_HELD_BODY:
        raise Refused(
            f"a request body of {length} bytes without x-amz-content-sha256 is larger than the "
            f"recorder holds to check its signature ({MAX_HELD_BODY} bytes)",
            413,
        )
    data = bytearray()
    async for chunk in request.content.iter_any():
        data += chunk
        if len(data) > MAX_HELD_BODY:
            raise Refused("the request body is larger than the recorder holds", 413)
    return bytes(data)


def _error_of(data: bytes, headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """AWS's error code and message from an error answer, whatever the protocol."""
    import json
    import re

    code = headers.get("x-amzn-ErrorType") or headers.get("x-amz-error-code")
    message = headers.get("x-amz-error-message")
    text = data.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        code = code or document.get("__type") or document.get("code") or document.get("Code")
        message = message or document.get("message") or document.get("Message")
    else:
        found = re.search(r"<Code>([^<]*)</Code>", text)
        code = code or (found.group(1) if found else None)
        found = re.search(r"<Message>([^<]*)</Message>", text, re.DOTALL)
        if found and not message:
            import html

            message = html.unescape(found.group(1))
    if code:
        code = str(code).split(":")[0].rpartition("#")[2]
    return (str(code) if code else None), (str(message) if message else None)


def _refusal(web: Any, refused: Refused, target: str | None) -> Any:
    reason = f"iam-sudo recording endpoint: {refused.reason}"
    if target:
        return web.json_response(
            {"__type": "IamSudoRecorderRefused", "message": reason},
            status=refused.status,
            headers={"x-amzn-ErrorType": "IamSudoRecorderRefused"},
            content_type="application/x-amz-json-1.0",
        )
    from xml.sax.saxutils import escape

    body = (
        "<ErrorResponse><Error><Code>IamSudoRecorderRefused</Code>"
        f"<Message>{escape(reason)}</Message></Error></ErrorResponse>"
    )
    return web.Response(status=refused.status, text=body, content_type="text/xml")


class RecorderThread:
    """A :class:`RecordingEndpoint` on an event loop of its own thread, for the CLI, whose
    main thread waits for the command. ``with`` starts it; leaving stops it and writes the
    complete record. ``exit_status`` may be set before leaving."""

    def __init__(self, endpoint: RecordingEndpoint) -> None:
        self.endpoint = endpoint
        self.exit_status: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> RecordingEndpoint:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self.endpoint.start(), self._loop)
        try:
            future.result(timeout=30)
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise
        return self.endpoint

    def __exit__(self, *exc: object) -> None:
        future = asyncio.run_coroutine_threadsafe(self.endpoint.stop(self.exit_status), self._loop)
        try:
            future.result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


def record_path(path: str | os.PathLike[str]) -> Path:
    """Where a record goes; raise :class:`RecordError` for a path that cannot take one."""
    from ..core.exceptions import RecordError

    target = Path(path).expanduser()
    if target.is_dir():
        raise RecordError(f"--record {bounded(str(path))} is a directory: name a file")
    if target.is_symlink():
        raise RecordError(f"--record {bounded(str(path))} is a symlink: name a file")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise RecordError(f"--record {bounded(str(path))}: the folder {parent} does not exist")
    if target.exists() and (not target.is_file() or not _is_record(target)):
        # A mistyped --record (the script itself, a config file) would be replaced whole.
        raise RecordError(
            f"--record {bounded(str(path))} exists and is not an iam-sudo record: name a new "
            "file, or remove it first"
        )
    return target


def _is_record(path: Path) -> bool:
    """Empty, or begins as :meth:`Record.dumps` writes a record (RecordVersion first)."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
    except OSError:
        return False
    return not head.strip() or re.match(rb'\s*\{\s*"RecordVersion"\s*:', head) is not None


def session_identity(credentials: Credentials) -> tuple[str, str] | None:
    """(ARN, account) of the session, from STS GetCallerIdentity with its own keys, at the
    endpoint iam-sudo itself uses; None if STS cannot answer."""
    import botocore.session
    from botocore.config import Config

    try:
        client = botocore.session.Session().create_client(
            "sts",
            region_name=config.client_region("sts", config.region()),
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=10),
        )
        answer = client.get_caller_identity()
    except Exception as error:  # the record then lacks the account, nothing else
        log.warning("the session's identity is unknown (%s): ARNs may lack the account", error)
        return None
    return str(answer["Arn"]), str(answer["Account"])

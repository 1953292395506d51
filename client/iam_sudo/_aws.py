"""The edge where iam-sudo talks to AWS, and where botocore's errors become ours.

Two transports share one interface: :class:`AioTransport` (aiobotocore, for the CLI and
automation) and :class:`ThreadTransport` (the boto3 a Lambda runtime ships, run in threads,
so the function needs no compiled wheels). Both raise only :class:`IamSudoError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

from ._exceptions import (
    AccessDenied,
    AwsError,
    ConfigurationError,
    EndpointUnreachable,
    IamSudoError,
    NoCredentials,
    RemoteError,
    RoleNotFound,
)
from .caller import AUDIENCE_HEADER, IDENTITY_BODY, CallerProof
from .credentials import Credentials
from .redact import protect_sdk_logs, scrub

RetryMode = Literal["standard", "adaptive", "legacy"]
T = TypeVar("T")

_ACCESS_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
}
# Not denied: the caller's own credentials are out of date.
_EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


# A 429 with no body (a load balancer or proxy on the way, or AWS itself) is throttling:
# botocore retries a throttling *error code* only, and cannot parse an empty XML body, so
# the answer is given the code AWS would send (botocore.retries.standard's throttled codes).
_BARE_429 = "HTTP 429 without an AWS error"
_THROTTLED_CODE = "Throttling"


def _bare_429_is_throttling(
    operation_model: Any, response_dict: dict[str, Any], **kwargs: Any
) -> None:
    """botocore ``before-parse`` handler: a bodiless 429 becomes a throttling error."""
    if response_dict.get("status_code") != 429 or (response_dict.get("body") or b"").strip():
        return
    protocol = operation_model.service_model.protocol
    if protocol in ("json", "rest-json"):
        body = f'{{"__type": "{_THROTTLED_CODE}", "message": "{_BARE_429}"}}'
        response_dict["headers"]["x-amzn-ErrorType"] = _THROTTLED_CODE
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{_THROTTLED_CODE}</Code>"
            f"<Message>{_BARE_429}</Message></Error></ErrorResponse>"
        )
    response_dict["body"] = body.encode()


# What an endpoint that is not AWS, or a broken hop on the way, answers instead of AWS.
_NOT_AN_ANSWER = "answered with something that is not an AWS answer"
_CHECK_ENDPOINT = "check AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_{service} and any proxy on the way"


def _endpoint_hint(service: str) -> str:
    return _CHECK_ENDPOINT.format(service=service.upper())


@contextlib.contextmanager
def map_exceptions(service: str, operation: str, endpoint: str | None = None) -> Iterator[None]:
    """Translate botocore's exceptions raised by one AWS call into iam-sudo's.

    Every message is one line that names the call, the endpoint where known, and what to
    check. None repeats a body AWS (or an impostor) sent: it could hold a secret.
    """
    import json

    import botocore.exceptions as bce
    from botocore.parsers import ResponseParserError

    from .config import own_credentials_failure

    where = f"{service}:{operation}"
    at = f" {endpoint}" if endpoint else ""
    try:
        yield
    except IamSudoError:
        raise
    except bce.ProfileNotFound as error:
        raise NoCredentials(
            f"the AWS profile {error.kwargs.get('profile')!r} is not in your AWS config files; "
            "check AWS_PROFILE"
        ) from None
    except (bce.SSOError, bce.TokenRetrievalError) as error:
        raise NoCredentials(own_credentials_failure("sso", str(error))) from None
    except bce.CredentialRetrievalError as error:
        raise NoCredentials(
            own_credentials_failure("process", str(error.kwargs.get("error_msg", error)))
        ) from None
    except json.JSONDecodeError as error:
        # Only a credential_process's output is parsed as bare JSON on the way to AWS.
        raise NoCredentials(own_credentials_failure("process-output", str(error))) from None
    except RuntimeError as error:
        if "still expired" not in str(error):
            raise
        raise NoCredentials(
            own_credentials_failure("expired", "they are expired", os.environ)
        ) from None
    except bce.NoCredentialsError:
        raise NoCredentials(
            "no AWS credentials found; configure a profile, set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except (bce.ConnectTimeoutError, bce.ReadTimeoutError) as error:
        raise EndpointUnreachable(
            f"{where}: no answer from the {service} endpoint{at} in time "
            f"({type(error).__name__}); check your network and region, "
            f"{_endpoint_hint(service)}, or raise IAM_SUDO_CONNECT_TIMEOUT/IAM_SUDO_READ_TIMEOUT"
        ) from None
    except bce.EndpointConnectionError:
        raise EndpointUnreachable(
            f"cannot reach the {service} endpoint{at}; check your network and region, and "
            f"{_endpoint_hint(service)}"
        ) from None
    except bce.HTTPClientError:
        raise EndpointUnreachable(
            f"{where}: the connection to the {service} endpoint{at} broke before it answered; "
            f"check your network and {_endpoint_hint(service)}"
        ) from None
    except bce.ClientError as error:
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        message = " ".join(str(info.get("Message", "")).split())[:300] or code
        if code == _THROTTLED_CODE and message == _BARE_429:
            code = "429"  # retried as throttling, still throttled: say what came back
        if code.isdigit():
            # A bare HTTP status: no AWS error document came with it.
            hint = "AWS is throttling: wait and retry" if code == "429" else _endpoint_hint(service)
            raise AwsError(
                f"{where}: the {service} endpoint{at} answered HTTP {code} without an AWS "
                f"error; {hint}",
                code=code,
            ) from None
        if code == "ResourceNotFoundException" and service == "lambda":
            raise RemoteError(
                f"{message}; deploy iam-sudo with `pulumi up`, or name the function with "
                "--function-name or IAM_SUDO_FUNCTION",
                error_type=code,
            ) from None
        if code == "NoSuchEntity" and service == "iam" and "role" in operation:
            raise RoleNotFound(f"{where}: {message}") from None
        if code in _EXPIRED_CODES:
            raise NoCredentials(
                own_credentials_failure("expired", f"{where}: {code}: {message}"), code=code
            ) from None
        if code in _ACCESS_DENIED_CODES:
            raise AccessDenied(f"{where} denied: {message}", code=code) from None
        raise AwsError(f"{where} failed: {code}: {message}", code=code) from None
    except (ResponseParserError, KeyError, IndexError, TypeError, AttributeError):
        # botocore parses whatever came back; a page that is not AWS's fails in there.
        raise AwsError(
            f"{where}: the {service} endpoint{at} {_NOT_AN_ANSWER}; {_endpoint_hint(service)}"
        ) from None
    except bce.BotoCoreError as error:
        detail = " ".join(scrub(str(error)).split())[:200]
        raise AwsError(f"{where} failed: {detail}; {_endpoint_hint(service)}") from None
    except ValueError as error:
        # botocore checks settings such as AWS_ENDPOINT_URL and AWS_MAX_ATTEMPTS with ValueError.
        raise ConfigurationError(
            f"invalid AWS setting: {' '.join(str(error).split())[:200]}; check AWS_ENDPOINT_URL, "
            "AWS_REGION, AWS_MAX_ATTEMPTS, AWS_CREDENTIAL_EXPIRATION and your AWS config file"
        ) from None


@contextlib.contextmanager
def reading_answer(service: str, operation: str) -> Iterator[None]:
    """Turn a missing or mistyped field in an AWS answer into one line, not a traceback."""
    try:
        yield
    except IamSudoError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise AwsError(
            f"{service}:{operation}: the {service} endpoint {_NOT_AN_ANSWER} (a field iam-sudo "
            f"needs is missing or malformed); {_endpoint_hint(service)}"
        ) from None


@dataclass(frozen=True)
class Timeouts:
    """How long to wait for AWS, so that a black-holed endpoint fails in seconds, not minutes.

    With botocore's standard retries (3 attempts) the defaults give up after about
    3 x (5 + 8) s at worst. Invoking the function waits longer: it may run for up to its
    own 30 s timeout. ``IAM_SUDO_CONNECT_TIMEOUT`` and ``IAM_SUDO_READ_TIMEOUT`` (seconds)
    override them, for slow links.
    """

    connect: float = 5.0
    read: float = 8.0
    function_read: float = 40.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Timeouts:
        environ = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for field_name, variable in (
            ("connect", "IAM_SUDO_CONNECT_TIMEOUT"),
            ("read", "IAM_SUDO_READ_TIMEOUT"),
        ):
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not 0 < value <= 3600:
                raise ConfigurationError(
                    f"{variable}={text[:40]!r} is not a number of seconds between 0 and 3600"
                )
            values[field_name] = value
        timeouts = cls(**values)
        if "read" in values:
            timeouts = replace(timeouts, function_read=max(timeouts.function_read, values["read"]))
        return timeouts

    def read_for(self, service: str) -> float:
        return self.function_read if service == "lambda" else self.read


class Transport(Protocol):
    """Makes AWS API calls; raises only :class:`IamSudoError`."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Call ``operation`` (snake_case, as botocore names it) of ``service``."""
        ...

    async def identity_proof(self, audience: str) -> CallerProof:
        """A signed, unsent sts:GetCallerIdentity for this transport's STS endpoint."""
        ...

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        """Send a proof to this transport's own STS endpoint; (HTTP status, body)."""
        ...

    async def sts_endpoint(self) -> str:
        """The STS endpoint as boto3 resolves it here (AWS_ENDPOINT_URL_STS honoured)."""
        ...

    async def scope(self, service: str) -> tuple[str, str]:
        """(partition, region) of this transport's ``service`` client; no request is sent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _sign(client: Any, credentials: Any, audience: str) -> CallerProof:
    """Sign GetCallerIdentity for ``client``'s endpoint and region with ``credentials``."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = client.meta.endpoint_url.rstrip("/") + "/"
    request = AWSRequest(
        method="POST",
        url=url,
        data=IDENTITY_BODY,
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            AUDIENCE_HEADER: audience,
        },
    )
    SigV4Auth(credentials, "sts", client.meta.region_name).add_auth(request)
    return CallerProof("POST", url, dict(request.headers.items()), IDENTITY_BODY)


def _post(endpoint: str, proof: CallerProof, timeout: float) -> tuple[int, bytes]:
    """POST the proof to ``endpoint`` (our own STS), following no redirect and no proxy.

    The URL is ours, never the event's: :func:`check_proof` has already required them equal.
    """
    import urllib.error
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigurationError(f"the sts endpoint {endpoint} is not an http(s) URL")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    headers = {
        k: v for k, v in proof.headers.items() if k.lower() not in ("host", "content-length")
    }
    url = endpoint.rstrip("/") + "/"
    request = urllib.request.Request(url, proof.body.encode(), headers, method="POST")  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as reply:
            return int(reply.status), reply.read(65536)
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(65536)
    except (OSError, ValueError) as error:
        raise EndpointUnreachable(
            f"cannot reach the sts endpoint {endpoint} to verify the caller "
            f"({type(error).__name__}); {_endpoint_hint('sts')}"
        ) from None


def _client_config(
    service: str, retry_mode: RetryMode, max_pool_connections: int, timeouts: Timeouts
) -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": retry_mode},
        max_pool_connections=max_pool_connections,
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read_for(service),
        user_agent_appid="iam-sudo",
    )


def _keys(credentials: Credentials | None) -> dict[str, str]:
    """boto3's keyword arguments for static credentials; none for the default chain."""
    if credentials is None:
        return {}
    return {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
    }


class AioTransport:
    """aiobotocore clients, one per service, created on first use and closed on exit."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        retry_mode: RetryMode = "standard",
        max_pool_connections: int = 20,
        timeouts: Timeouts | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self._credentials = credentials
        self._profile = profile
        self._region = region
        self._retry_mode = retry_mode
        self._max_pool_connections = max_pool_connections
        self._timeouts = timeouts
        self._stack = AsyncExitStack()
        self._clients: dict[str, asyncio.Task[Any]] = {}
        self._session: Any = None

    async def __aenter__(self) -> Self:
        import aioboto3

        from .config import region

        # botocore alone would not read AWS_REGION: the region is resolved as the AWS CLI does.
        region_name = self._region or region(profile=self._profile)
        with map_exceptions("aws", "session"):
            self._session = aioboto3.Session(
                profile_name=self._profile, region_name=region_name, **_keys(self._credentials)
            )
        self._timeouts = self._timeouts or Timeouts.from_env()
        protect_sdk_logs()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def with_credentials(self, credentials: Credentials) -> AioTransport:
        """A transport like this one that signs with ``credentials`` (another account's role)."""
        return AioTransport(
            region=self._region,
            retry_mode=self._retry_mode,
            max_pool_connections=self._max_pool_connections,
            timeouts=self._timeouts,
            credentials=credentials,
        )

    async def _open(self, service: str) -> Any:
        from .config import client_region

        region = client_region(service, self._session.region_name, self._profile)
        assert self._timeouts is not None
        config = _client_config(
            service, self._retry_mode, self._max_pool_connections, self._timeouts
        )
        client = await self._stack.enter_async_context(
            self._session.client(service, region_name=region, config=config)
        )
        client.meta.events.register("before-parse", _bare_429_is_throttling)
        protect_sdk_logs()  # the loggers of the modules the client just imported
        return client

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        client = await self._client(service)
        with map_exceptions(service, operation, client.meta.endpoint_url):
            result: dict[str, Any] = await getattr(client, operation)(**params)
            # Streaming bodies (lambda:Invoke's Payload) are read here, while the client is open.
            for key, value in result.items():
                if hasattr(value, "read"):
                    result[key] = await value.read()
            return result

    async def _client(self, service: str) -> Any:
        with map_exceptions(service, "client"):
            if self._session is None:
                raise RuntimeError("use the transport inside `async with`")
            if service not in self._clients:
                self._clients[service] = asyncio.ensure_future(self._open(service))
            return await self._clients[service]

    async def identity_proof(self, audience: str) -> CallerProof:
        client = await self._client("sts")
        with map_exceptions("sts", "sign"):
            credentials = await self._session._session.get_credentials()
            if credentials is None:
                raise NoCredentials(
                    "no AWS credentials found; configure a profile, set AWS_PROFILE or "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                )
            return _sign(client, await credentials.get_frozen_credentials(), audience)

    async def sts_endpoint(self) -> str:
        return str((await self._client("sts")).meta.endpoint_url)

    async def scope(self, service: str) -> tuple[str, str]:
        meta = (await self._client(service)).meta
        return str(meta.partition), str(meta.region_name)

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        client = await self._client("sts")
        assert self._timeouts is not None
        return await asyncio.to_thread(
            _post, client.meta.endpoint_url, proof, self._timeouts.read_for("sts")
        )


class _DaemonThreads(Executor):
    """Runs each call in a daemon thread, at most ``limit`` at a time.

    ThreadPoolExecutor's workers are joined when the interpreter exits: a request still in
    flight that nobody waits for any more (a roles listing stopped because GetRole found
    the role) would hold up the CLI's exit until AWS answered it.
    """

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:
                    future.set_exception(error)

        threading.Thread(target=run, name="iam-sudo", daemon=True).start()
        return future


class ThreadTransport:
    """boto3 clients called in worker threads: the pure-Python transport for Lambda.

    Its clients outlive each ``async with``, so that a warm Lambda container reuses them
    and their connections; create one per container, not per request.
    """

    def __init__(
        self,
        *,
        retry_mode: RetryMode = "standard",
        max_pool_connections: int = 20,
        timeouts: Timeouts | None = None,
        credentials: Credentials | None = None,
    ):
        self._credentials = credentials
        self._retry_mode = retry_mode
        self._max_pool_connections = max_pool_connections
        self._timeouts = timeouts or Timeouts.from_env()
        self._clients: dict[str, Any] = {}
        # A client that could not be built (its credential source failed) fails the same
        # way for the rest of the `async with`: concurrent calls do not each run the source.
        self._failures: dict[str, Exception] = {}
        # asyncio's default executor has cpu_count + 4 threads: on Lambda's one or two
        # vCPUs, nine policy documents would be fetched in two waves instead of one.
        self._threads = _DaemonThreads(max_pool_connections)

    async def __aenter__(self) -> Self:
        self._failures.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _client(self, service: str) -> Any:
        if service in self._failures:
            raise self._failures[service]
        try:
            return self._build_client(service)
        except Exception as error:
            self._failures[service] = error
            raise

    def _build_client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            from .config import client_region, region

            region_name = client_region(service, region())
            config = _client_config(
                service, self._retry_mode, self._max_pool_connections, self._timeouts
            )
            client = boto3.client(
                service, region_name=region_name, config=config, **_keys(self._credentials)
            )
            client.meta.events.register("before-parse", _bare_429_is_throttling)
            self._clients[service] = client
            protect_sdk_logs()
        return self._clients[service]

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        with map_exceptions(service, operation):
            # Clients are built on the loop's thread: boto3's client creation is not thread-safe.
            client = self._client(service)
        with map_exceptions(service, operation, client.meta.endpoint_url):
            method = functools.partial(getattr(client, operation), **params)
            loop = asyncio.get_running_loop()
            result: dict[str, Any] = await loop.run_in_executor(self._threads, method)
            for key, value in result.items():
                if hasattr(value, "read"):
                    result[key] = await loop.run_in_executor(self._threads, value.read)
            return result

    def with_credentials(self, credentials: Credentials) -> ThreadTransport:
        """A transport like this one that signs with ``credentials`` (another account's role)."""
        return ThreadTransport(
            retry_mode=self._retry_mode,
            max_pool_connections=self._max_pool_connections,
            timeouts=self._timeouts,
            credentials=credentials,
        )

    async def identity_proof(self, audience: str) -> CallerProof:
        with map_exceptions("sts", "sign"):
            import boto3

            client = self._client("sts")
            credentials = boto3.session.Session(**_keys(self._credentials)).get_credentials()
            if credentials is None:
                raise NoCredentials(
                    "no AWS credentials found; configure a profile, set AWS_PROFILE or "
                    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                )
            return _sign(client, credentials.get_frozen_credentials(), audience)

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        with map_exceptions("sts", "verify"):
            endpoint = self._client("sts").meta.endpoint_url
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads, _post, endpoint, proof, self._timeouts.read_for("sts")
        )

    async def sts_endpoint(self) -> str:
        with map_exceptions("sts", "client"):
            return str(self._client("sts").meta.endpoint_url)

    async def scope(self, service: str) -> tuple[str, str]:
        with map_exceptions(service, "client"):
            meta = self._client(service).meta
            return str(meta.partition), str(meta.region_name)

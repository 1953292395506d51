"""The two transports: botocore clients that raise only :class:`IamSudoError`.

:class:`AioTransport` (aiobotocore, for the CLI and automation) and
:class:`ThreadTransport` (the boto3 a Lambda runtime ships, run in threads, so the function
needs no compiled wheels) share :class:`iam_sudo.aws.errors.Transport`. Each signs with the
credentials it is given (one transport per account), else with the AWS credential chain.
"""

from __future__ import annotations

import asyncio
import functools
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Self

from ..core.exceptions import ConfigurationError, EndpointUnreachable, NoCredentials
from ..core.redact import protect_sdk_logs
from .caller import AUDIENCE_HEADER, IDENTITY_BODY, CallerProof
from .errors import (
    _NO_CREDENTIALS,
    RetryMode,
    Timeouts,
    _bare_429_is_throttling,
    _endpoint_hint,
    map_exceptions,
    register_no_blind_resend,
)
from .tasks import DaemonThreads

if TYPE_CHECKING:
    from ..settings.credentials import Credentials


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
    # The signer's region, not the client's: the global endpoint (region aws-global, or
    # sts_regional_endpoints = legacy) is signed for us-east-1 whatever the client's region.
    region = getattr(client._request_signer, "region_name", None) or client.meta.region_name
    SigV4Auth(credentials, "sts", region).add_auth(request)
    return CallerProof("POST", url, dict(request.headers.items()), IDENTITY_BODY)


def _post(endpoint: str, proof: CallerProof, timeout: float) -> tuple[int, bytes]:
    """POST the proof to ``endpoint`` (an STS endpoint), following no redirect and no proxy.

    ``endpoint`` is one :func:`check_proof` accepted (and returned as the proof's URL):
    the function's own, or a genuine STS endpoint of its partition, never any other host.
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


def _session_keys(credentials: Credentials | None) -> dict[str, str]:
    """boto3 Session arguments that sign with ``credentials`` (none: the usual chain)."""
    if credentials is None:
        return {}
    return {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
    }


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


class AioTransport:
    """aiobotocore clients, one per service, created on first use and closed on exit.

    They sign with ``credentials`` when given (e.g. a session in another account: one
    transport per account), else with what the AWS credential chain finds for ``profile``.
    """

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
        if credentials is not None and profile is not None:
            raise ValueError("give a profile or credentials, not both")
        self._keys = _session_keys(credentials)
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

        from ..settings.config import region

        # botocore alone would not read AWS_REGION: the region is resolved as the AWS CLI does.
        region_name = self._region or region(profile=self._profile)
        with map_exceptions("aws", "session"):
            self._session = aioboto3.Session(
                profile_name=self._profile, region_name=region_name, **self._keys
            )
        self._timeouts = self._timeouts or Timeouts.from_env()
        protect_sdk_logs()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    def with_credentials(self, credentials: Credentials) -> AioTransport:
        """A transport like this one that signs with ``credentials`` (another account's role).

        Same region (the one this transport resolved, once entered), retries and timeouts.
        """
        region = self._session.region_name if self._session is not None else self._region
        return AioTransport(
            region=region,
            retry_mode=self._retry_mode,
            max_pool_connections=self._max_pool_connections,
            timeouts=self._timeouts,
            credentials=credentials,
        )

    async def _open(self, service: str) -> Any:
        from ..settings.config import client_region

        region = client_region(service, self._session.region_name, self._profile)
        assert self._timeouts is not None
        config = _client_config(
            service, self._retry_mode, self._max_pool_connections, self._timeouts
        )
        client = await self._stack.enter_async_context(
            self._session.client(service, region_name=region, config=config)
        )
        client.meta.events.register("before-parse", _bare_429_is_throttling)
        register_no_blind_resend(client)
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
                raise NoCredentials(_NO_CREDENTIALS)
            return _sign(client, await credentials.get_frozen_credentials(), audience)

    async def sts_endpoint(self) -> str:
        return str((await self._client("sts")).meta.endpoint_url)

    async def scope(self, service: str) -> tuple[str, str]:
        meta = (await self._client(service)).meta
        return str(meta.partition), str(meta.region_name)

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        assert self._timeouts is not None
        return await asyncio.to_thread(_post, proof.url, proof, self._timeouts.read_for("sts"))


class ThreadTransport:
    """boto3 clients called in worker threads: the pure-Python transport for Lambda.

    Its clients outlive each ``async with``, so that a warm Lambda container reuses them
    and their connections; create one per container, not per request. They sign with
    ``credentials`` when given (one transport per account), else with the credential chain.
    """

    def __init__(
        self,
        *,
        retry_mode: RetryMode = "standard",
        max_pool_connections: int = 20,
        timeouts: Timeouts | None = None,
        credentials: Credentials | None = None,
    ):
        self._keys = _session_keys(credentials)
        self._session: Any = None
        self._retry_mode = retry_mode
        self._max_pool_connections = max_pool_connections
        self._timeouts = timeouts or Timeouts.from_env()
        self._clients: dict[str, Any] = {}
        # A client that could not be built (its credential source failed) fails the same
        # way for the rest of the `async with`: concurrent calls do not each run the source.
        self._failures: dict[str, Exception] = {}
        # asyncio's default executor has cpu_count + 4 threads: on Lambda's one or two
        # vCPUs, nine policy documents would be fetched in two waves instead of one.
        self._threads = DaemonThreads(max_pool_connections)

    async def __aenter__(self) -> Self:
        self._failures.clear()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def with_credentials(self, credentials: Credentials) -> ThreadTransport:
        """A transport like this one that signs with ``credentials`` (another account's role)."""
        return ThreadTransport(
            retry_mode=self._retry_mode,
            max_pool_connections=self._max_pool_connections,
            timeouts=self._timeouts,
            credentials=credentials,
        )

    def _boto3_session(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.session.Session(**self._keys)
        return self._session

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
            from ..settings.config import client_region, region

            region_name = client_region(service, region())
            config = _client_config(
                service, self._retry_mode, self._max_pool_connections, self._timeouts
            )
            client = self._boto3_session().client(service, region_name=region_name, config=config)
            client.meta.events.register("before-parse", _bare_429_is_throttling)
            register_no_blind_resend(client)
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

    async def identity_proof(self, audience: str) -> CallerProof:
        with map_exceptions("sts", "sign"):
            client = self._client("sts")
            credentials = self._boto3_session().get_credentials()
            if credentials is None:
                raise NoCredentials(_NO_CREDENTIALS)
            return _sign(client, credentials.get_frozen_credentials(), audience)

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads, _post, proof.url, proof, self._timeouts.read_for("sts")
        )

    async def sts_endpoint(self) -> str:
        with map_exceptions("sts", "client"):
            return str(self._client("sts").meta.endpoint_url)

    async def scope(self, service: str) -> tuple[str, str]:
        with map_exceptions(service, "client"):
            meta = self._client(service).meta
            return str(meta.partition), str(meta.region_name)

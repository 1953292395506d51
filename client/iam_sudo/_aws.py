"""The edge where iam-sudo talks to AWS, and where botocore's errors become ours.

Two transports share one interface: :class:`AioTransport` (aiobotocore, for the CLI and
automation) and :class:`ThreadTransport` (the boto3 a Lambda runtime ships, run in threads,
so the function needs no compiled wheels). Both raise only :class:`IamSudoError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal, Protocol, Self

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

RetryMode = Literal["standard", "adaptive", "legacy"]

_ACCESS_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "ExpiredToken",
    "SignatureDoesNotMatch",
}


@contextlib.contextmanager
def map_exceptions(service: str, operation: str) -> Iterator[None]:
    """Translate botocore's exceptions raised by one AWS call into iam-sudo's."""
    import botocore.exceptions as bce

    try:
        yield
    except IamSudoError:
        raise
    except bce.ProfileNotFound as error:
        raise NoCredentials(
            f"the AWS profile {error.kwargs.get('profile')!r} is not in your AWS config files; "
            "check AWS_PROFILE"
        ) from None
    except bce.NoCredentialsError:
        raise NoCredentials(
            "no AWS credentials found; configure a profile, set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ) from None
    except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError) as error:
        endpoint = getattr(error, "kwargs", {}).get("endpoint_url", "")
        raise EndpointUnreachable(
            f"cannot reach the {service} endpoint {endpoint or ''}".rstrip()
            + "; check your network, region and AWS_ENDPOINT_URL"
        ) from None
    except bce.ClientError as error:
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        message = str(info.get("Message", "")).strip() or code
        where = f"{service}:{operation}"
        if code == "ResourceNotFoundException" and service == "lambda":
            raise RemoteError(
                f"{message}; deploy iam-sudo with `pulumi up`, or name the function with "
                "--function-name or IAM_SUDO_FUNCTION",
                error_type=code,
            ) from None
        if code == "NoSuchEntity" and service == "iam":
            raise RoleNotFound(f"{where}: {message}") from None
        if code in _ACCESS_DENIED_CODES:
            raise AccessDenied(f"{where} denied: {message}", code=code) from None
        raise AwsError(f"{where} failed: {code}: {message}", code=code) from None
    except bce.BotoCoreError as error:
        raise AwsError(f"{service}:{operation} failed: {error}") from None
    except ValueError as error:
        # botocore checks settings such as AWS_ENDPOINT_URL and AWS_MAX_ATTEMPTS with ValueError.
        raise ConfigurationError(
            f"invalid AWS setting: {error}; check AWS_ENDPOINT_URL, AWS_REGION, "
            "AWS_MAX_ATTEMPTS and your AWS config file"
        ) from None


class Transport(Protocol):
    """Makes AWS API calls; raises only :class:`IamSudoError`."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Call ``operation`` (snake_case, as botocore names it) of ``service``."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _client_config(retry_mode: RetryMode, max_pool_connections: int) -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": retry_mode},
        max_pool_connections=max_pool_connections,
        user_agent_appid="iam-sudo",
    )


class AioTransport:
    """aiobotocore clients, one per service, created on first use and closed on exit."""

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        retry_mode: RetryMode = "standard",
        max_pool_connections: int = 20,
    ) -> None:
        self._profile = profile
        self._region = region
        self._config = (retry_mode, max_pool_connections)
        self._stack = AsyncExitStack()
        self._clients: dict[str, asyncio.Task[Any]] = {}
        self._session: Any = None

    async def __aenter__(self) -> Self:
        import aioboto3

        with map_exceptions("aws", "session"):
            self._session = aioboto3.Session(profile_name=self._profile, region_name=self._region)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _open(self, service: str) -> Any:
        # STS and IAM are global: without a region, botocore would refuse to build a client.
        region = self._session.region_name or "us-east-1"
        return await self._stack.enter_async_context(
            self._session.client(service, region_name=region, config=_client_config(*self._config))
        )

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        with map_exceptions(service, operation):
            if self._session is None:
                raise RuntimeError("use the transport inside `async with`")
            if service not in self._clients:
                self._clients[service] = asyncio.ensure_future(self._open(service))
            client = await self._clients[service]
            result: dict[str, Any] = await getattr(client, operation)(**params)
            # Streaming bodies (lambda:Invoke's Payload) are read here, while the client is open.
            for key, value in result.items():
                if hasattr(value, "read"):
                    result[key] = await value.read()
            return result


class ThreadTransport:
    """boto3 clients called in worker threads: the pure-Python transport for Lambda.

    Its clients outlive each ``async with``, so that a warm Lambda container reuses them
    and their connections; create one per container, not per request.
    """

    def __init__(self, *, retry_mode: RetryMode = "standard", max_pool_connections: int = 20):
        self._config = (retry_mode, max_pool_connections)
        self._clients: dict[str, Any] = {}
        # asyncio's default executor has cpu_count + 4 threads: on Lambda's one or two
        # vCPUs, nine policy documents would be fetched in two waves instead of one.
        self._threads = ThreadPoolExecutor(max_pool_connections, thread_name_prefix="iam-sudo")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            region = boto3.session.Session().region_name or "us-east-1"
            self._clients[service] = boto3.client(
                service, region_name=region, config=_client_config(*self._config)
            )
        return self._clients[service]

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        with map_exceptions(service, operation):
            # Clients are built on the loop's thread: boto3's client creation is not thread-safe.
            method = functools.partial(getattr(self._client(service), operation), **params)
            loop = asyncio.get_running_loop()
            result: dict[str, Any] = await loop.run_in_executor(self._threads, method)
            for key, value in result.items():
                if hasattr(value, "read"):
                    result[key] = await loop.run_in_executor(self._threads, value.read)
            return result

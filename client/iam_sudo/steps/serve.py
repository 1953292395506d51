"""One credentials server for many services: the ECS container protocol, IMDSv2, task metadata.

Every service has its own route (``/v2/credentials/<service>``) and its own secret; a
secret opens only its own route (compared in constant time). A service that asked for
it also gets an IMDSv2 endpoint on a port of its own (IMDS has no place for a secret:
whoever reaches that port gets that service's role; docs/serve.md).

The server is plain asyncio: one small HTTP/1.1 request per connection (``Connection:
close``), answered from the role's :class:`Provider`. It is safe by default: it answers
only the ``Host`` values its clients use (a web page cannot reach it by DNS rebinding),
refuses other methods and paths, reads at most :data:`MAX_HEAD_BYTES` of a request within
:data:`READ_TIMEOUT` seconds, holds at most :data:`MAX_CONNECTIONS` connections, never
serves credentials past their expiration and never logs a secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..aws.refreshing import Clock, RefreshingCredentials, RefreshStatus, system_clock
from ..core.compose import (
    CREDENTIALS_ROUTE,
    METADATA_V3,
    METADATA_V4,
    Reach,
    ServiceSpec,
    bind_exposure,
    check_unique,
    env_file,
    override,
)
from ..core.compose import reach as compose_reach
from ..core.exceptions import ConfigurationError, IamSudoError
from ..settings import files as _files
from ..settings.cache import secure_directory
from ..settings.credentials import Credentials

log = logging.getLogger("iam_sudo")

MAX_CONNECTIONS = 64
MAX_PER_PEER = MAX_CONNECTIONS // 2
MAX_HEAD_BYTES = 16 * 1024
READ_TIMEOUT = 5.0
# IMDSv2's token TTL range (EC2 User Guide, "Use IMDSv2": 1 second to 6 hours).
IMDS_MIN_TTL, IMDS_MAX_TTL = 1, 21600
IMDS_MAX_TOKENS = 1024
_MAX_DIGITS = 12
_MAX_PORT = 65535
IMDS_TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path, not a secret)
IMDS_CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials/"
# Linux's IP_FREEBIND (linux/in.h), absent from Python's socket module before 3.12: it
# lets the server listen on ECS's link-local address before docker creates the bridge.
_IP_FREEBIND = 15


class Provider(Protocol):
    """A role's credentials (a :class:`RefreshingCredentials`): ``await get()`` is
    valid credentials, or raises with a reason."""

    async def get(self) -> Credentials: ...


class Unavailable(Exception):
    """A role's credentials cannot be served now; the message is for the service's SDK."""


def _wire_time(moment: datetime) -> str:
    # RFC 3339 in UTC without fractions: botocore's IMDS fetcher parses exactly this form.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ServiceRoute:
    """A service as the server sees it: its secret, its role's provider, its counters."""

    name: str
    secret: str = field(repr=False)
    provider: Provider
    role_label: str
    asks: int = 0
    last_ask: datetime | None = None
    refused: int = 0


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(status: int, body: Mapping[str, Any], **headers: str) -> _Reply:
    return _Reply(status, json.dumps(body).encode(), headers=dict(headers))


def _error(status: int, code: str, message: str, **headers: str) -> _Reply:
    return _json(status, {"Code": code, "Message": message}, **headers)


class _Bounds:
    """Connections held at once: at most :data:`MAX_CONNECTIONS`, and at most
    :data:`MAX_PER_PEER` of them from one address, so that one container (each has its
    own address on the bridge) holding connections open cannot starve the others."""

    def __init__(self) -> None:
        self.total = 0
        self.peers: dict[str, int] = {}

    def admit(self, peer: str) -> bool:
        """Count a new connection from ``peer`` in, or False if it is one too many."""
        if self.total >= MAX_CONNECTIONS or self.peers.get(peer, 0) >= MAX_PER_PEER:
            return False
        self.total += 1
        self.peers[peer] = self.peers.get(peer, 0) + 1
        return True

    def release(self, peer: str) -> None:
        """Count an admitted connection out."""
        self.total -= 1
        self.peers[peer] -= 1
        if not self.peers[peer]:
            del self.peers[peer]


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return str(address[0]) if isinstance(address, tuple) and address else "?"


class _Listener:
    """One listening socket with its own Host allow-list and request handler."""

    def __init__(
        self,
        address: str,
        port: int,
        hosts: Callable[[int], frozenset[str]],
        handle: Callable[[_Request], Awaitable[_Reply]],
        bounds: _Bounds,
        role: str = "",
    ) -> None:
        self.address, self.requested_port = address, port
        self.name = f"{address} port {port}" + (f" ({role})" if role else "")
        self.port = 0
        self._hosts = hosts
        self._handle = handle
        self._bounds = bounds
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if sys.platform == "linux" and family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
            sock.bind((self.address, self.requested_port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            # Which of the ports (credentials, or a service's IMDS) could not be had.
            raise OSError(error.errno, error.strerror, self.name) from None
        self._server = await asyncio.start_server(self._connection, sock=sock, limit=MAX_HEAD_BYTES)
        self.port = int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Python 3.11's wait_closed does not end open connections: cancel them.
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        peer = _peer(writer)
        try:
            if not self._bounds.admit(peer):
                # Bounded: a flood of connections gets closed, not queued.
                return
            try:
                try:
                    reply = await self._answer(reader)
                except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                    raise
                except Exception as error:  # a fault of ours: one line, never a traceback
                    # Only the type: a message could quote the request, and a secret in it.
                    log.warning("serve: a request could not be answered (%s)", type(error).__name__)
                    reply = _error(500, "InternalError", "the request could not be answered")
                await self._write(writer, reply)
            finally:
                self._bounds.release(peer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # The server is stopping (see stop): this connection ends unanswered.
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> _Reply:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except asyncio.LimitOverrunError:
            return _error(431, "RequestTooLarge", "request head too large")
        except TimeoutError:
            return _error(408, "RequestTimeout", "request not received in time")
        request = _parse(head)
        if request is None:
            return _error(400, "BadRequest", "malformed request")
        if "transfer-encoding" in request.headers or _length(request) != 0:
            return _error(400, "BadRequest", "requests to this server have no body")
        host = request.headers.get("host", "")
        if host.lower() not in self._hosts(self.port):
            # DNS rebinding: a web page's requests carry its own host name.
            return _error(403, "InvalidHost", "this Host is not served here")
        return await self._handle(request)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, reply: _Reply) -> None:
        lines = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in reply.headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)
        await asyncio.wait_for(writer.drain(), READ_TIMEOUT)


def _parse(head: bytes) -> _Request | None:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover (latin-1 decodes every byte)
        return None
    request_line, *header_lines = text[:-4].split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or name != line.split(":", 1)[0].lower():
            return None  # no whitespace before the colon (RFC 9112, 5.1)
        if name in headers and name in ("host", "authorization", "content-length"):
            return None
        headers[name] = value.strip()
    path = target.split("?", 1)[0]
    return _Request(method, path, headers)


def _number(text: str) -> int | None:
    """A header's decimal number, or None: ASCII digits only, and few of them (``isdigit``
    alone takes "²", which int() refuses, and int() refuses 4300 digits or more)."""
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        return None
    return int(text)


def _length(request: _Request) -> int:
    value = _number(request.headers.get("content-length", "0"))
    return -1 if value is None else value


class CredentialsServer:
    """The server: routes per service on one port, and an IMDSv2 port per service asking.

    ``routes`` maps a service name to its :class:`ServiceRoute`; ``hosts`` gives the
    allowed ``Host`` values of the credentials port once its port is known (see
    :meth:`compose.Reach.host_headers`); ``imds`` maps a service to the (address, port)
    of its IMDSv2 endpoint (port 0: any free port) and ``imds_hosts`` its Host values.
    ``metadata`` is what the minimal task metadata says (``region``, ``account``).
    Use it inside ``async with``.
    """

    def __init__(
        self,
        routes: Mapping[str, ServiceRoute],
        *,
        address: str,
        port: int,
        hosts: Callable[[int], frozenset[str]],
        imds: Mapping[str, tuple[str, int]] | None = None,
        imds_hosts: Callable[[str, int], frozenset[str]] | None = None,
        metadata: Mapping[str, str] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = dict(routes)
        self._now = now
        self._clock = clock
        self._metadata = dict(metadata or {})
        bounds = _Bounds()
        self._main = _Listener(address, port, hosts, self._credentials_request, bounds)
        self._imds: dict[str, _Listener] = {}
        self._imds_tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()
        allowed = imds_hosts or (lambda name, port: frozenset({f"127.0.0.1:{port}"}))
        for service, (imds_address, imds_port) in (imds or {}).items():

            def hosts_of(port: int, name: str = service) -> frozenset[str]:
                return allowed(name, port)

            async def handle(request: _Request, name: str = service) -> _Reply:
                return await self._imds_request(name, request)

            self._imds[service] = _Listener(
                imds_address, imds_port, hosts_of, handle, bounds, f"IMDS of {service}"
            )

    @property
    def port(self) -> int:
        """The credentials port (known once started)."""
        return self._main.port

    def imds_port(self, service: str) -> int:
        """The IMDSv2 port of ``service`` (known once started)."""
        return self._imds[service].port

    async def __aenter__(self) -> CredentialsServer:
        started: list[_Listener] = []
        try:
            for listener in (self._main, *self._imds.values()):
                await listener.start()
                started.append(listener)
        except BaseException:
            for listener in started:
                await listener.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for listener in (self._main, *self._imds.values()):
            await listener.stop()

    # -- the ECS container credentials protocol, and task metadata ---------------------

    async def _credentials_request(self, request: _Request) -> _Reply:
        path = request.path
        if path.startswith(CREDENTIALS_ROUTE):
            if request.method != "GET":
                return _error(405, "MethodNotAllowed", "only GET", Allow="GET")
            return await self._credentials_for(
                path[len(CREDENTIALS_ROUTE) :], request.headers.get("authorization")
            )
        for prefix in (METADATA_V4, METADATA_V3):
            if path.startswith(prefix):
                if request.method != "GET":
                    return _error(405, "MethodNotAllowed", "only GET", Allow="GET")
                return self._task_metadata(path[len(prefix) :])
        return _error(404, "NotFound", "no such route")

    def _route(self, name: str, given: str | None) -> ServiceRoute | None:
        route = self.routes.get(name)
        expected = route.secret if route else secrets.token_urlsafe(32)
        # Constant time, and as long for an unknown service as for a known one.
        matches = hmac.compare_digest((given or "").encode(), expected.encode())
        if route is None or given is None or not matches:
            if route is not None:
                route.refused += 1
            return None
        return route

    async def _credentials_for(self, name: str, token: str | None) -> _Reply:
        route = self._route(name, token)
        if route is None:
            # The same answer for an unknown service and a wrong secret: nothing to probe.
            return _error(401, "Unauthorized", "missing or wrong authorization token")
        try:
            credentials = await self._serve(route)
        except Unavailable as error:
            return _error(503, "CredentialsUnavailable", str(error))
        body = {
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "Token": credentials.session_token,
            "Expiration": _wire_time(credentials.expiration),
        }
        return _json(200, body)

    async def _serve(self, route: ServiceRoute) -> Credentials:
        route.asks += 1
        route.last_ask = self._now()
        try:
            credentials = await route.provider.get()
        except Unavailable:
            raise
        except Exception as error:  # the provider's reason, without a traceback
            raise Unavailable(f"iam-sudo serve: {route.role_label}: {error}") from None
        if credentials.expiration <= self._now():
            # Whatever the provider did, expired credentials are never served.
            raise Unavailable(f"iam-sudo serve: {route.role_label}: credentials expired")
        return credentials

    def _task_metadata(self, rest: str) -> _Reply:
        name, _, tail = rest.partition("/")
        if name not in self.routes or tail not in ("", "task"):
            return _error(404, "NotFound", "no such route")
        region = self._metadata.get("region", "")
        account = self._metadata.get("account", "")
        container = {
            "DockerId": name,
            "Name": name,
            "DockerName": name,
            "Labels": {"com.amazonaws.ecs.container-name": name},
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Type": "NORMAL",
        }
        if not tail:
            return _json(200, container)
        task = {
            "Cluster": "iam-sudo",
            "TaskARN": f"arn:aws:ecs:{region}:{account}:task/iam-sudo/{name}",
            "Family": name,
            "Revision": "1",
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "LaunchType": "EC2",
            "AvailabilityZone": f"{region}a" if region else "",
            "Containers": [container],
        }
        return _json(200, task)

    # -- IMDSv2 ---------------------------------------------------------------------

    def _imds_role_name(self, service: str) -> str:
        return f"iam-sudo-{service}"

    async def _imds_request(self, service: str, request: _Request) -> _Reply:
        if request.path == IMDS_TOKEN_PATH:
            if request.method != "PUT":
                return _error(405, "MethodNotAllowed", "only PUT", Allow="PUT")
            return self._imds_token(service, request.headers)
        if request.method != "GET":
            return _error(405, "MethodNotAllowed", "only GET", Allow="GET")
        if not self._imds_token_valid(service, request.headers.get("x-aws-ec2-metadata-token")):
            # IMDSv1 (no token) is refused, as on an instance that requires IMDSv2.
            return _Reply(401, b"", content_type="text/plain")
        role = self._imds_role_name(service)
        if request.path == IMDS_CREDENTIALS_PATH:
            return _Reply(200, role.encode(), content_type="text/plain")
        if request.path.rstrip("/") != IMDS_CREDENTIALS_PATH + role:
            return _Reply(404, b"", content_type="text/plain")
        try:
            credentials = await self._serve(self.routes[service])
        except Unavailable as error:
            return _error(503, "CredentialsUnavailable", str(error))
        body = {
            "Code": "Success",
            "LastUpdated": _wire_time(self._now()),
            "Type": "AWS-HMAC",
            "AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "Token": credentials.session_token,
            "Expiration": _wire_time(credentials.expiration),
        }
        return _json(200, body)

    def _imds_token(self, service: str, headers: Mapping[str, str]) -> _Reply:
        if "x-forwarded-for" in headers:
            # EC2 refuses token requests that went through a proxy (EC2 User Guide, IMDSv2).
            return _Reply(403, b"", content_type="text/plain")
        ttl = _number(headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")) or 0
        if not IMDS_MIN_TTL <= ttl <= IMDS_MAX_TTL:
            return _Reply(400, b"", content_type="text/plain")
        token = secrets.token_urlsafe(32)
        self._imds_tokens[token] = (service, self._clock() + ttl)
        while len(self._imds_tokens) > IMDS_MAX_TOKENS:
            self._imds_tokens.popitem(last=False)
        return _Reply(
            200,
            token.encode(),
            content_type="text/plain",
            headers={"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": str(ttl)},
        )

    def _imds_token_valid(self, service: str, token: str | None) -> bool:
        if not token:
            return False
        found = self._imds_tokens.get(token)
        if found is None:
            return False
        owner, expires = found
        if self._clock() >= expires:
            self._imds_tokens.pop(token, None)
            return False
        # Tokens come from the dictionary: a match is of a whole key, not a timing probe.
        return owner == service


# -- a stack of services: roles, server and the files each service gets ------------------

Fetch = Callable[[], Awaitable[Credentials]]
_HEADER = "# iam-sudo serve"
# How settings.cache.secure_directory's refusal begins (the rest names what it found).
_CACHE_REFUSAL = "refusing the credential cache: "


class ServeError(IamSudoError):
    """``serve`` cannot start: a role cannot be fetched, a file cannot be written."""


@dataclass(frozen=True)
class ServiceStatus:
    """A status view's row: a service, its role, who asked, the role's refresh state."""

    service: str
    role: str
    asks: int
    last_ask: datetime | None
    refused: int
    refresh: RefreshStatus


@dataclass
class _Written:
    files: list[Path] = field(default_factory=list)


class Stack:
    """Serve ``specs``: a holder per role, the server, and each service's files.

    ``fetch_for(spec)`` makes the fetch of a service's role (services with equal
    :attr:`ServiceSpec.role_key` share one holder, so one refresh serves them all).
    ``setup`` and ``address``/``port`` say how services reach the server (see
    :func:`compose.reach`). Each service gets a token file in its own directory under
    ``env_dir/.iam-sudo/`` and an env file ``env_dir/iam-sudo.<service>.env``; with
    ``compose_services`` (the compose file's services) an override is written to
    ``override_path``. Every file is removed on exit; the token directories stay (empty),
    because running containers have them bind-mounted: a restarted ``serve`` writes its
    new token where they look. ``clock`` is injected by tests.

    Raises :class:`ServeError` on entry when a role cannot be fetched or a file written.
    """

    def __init__(
        self,
        specs: list[ServiceSpec],
        fetch_for: Callable[[ServiceSpec], Fetch],
        *,
        labels: Mapping[str, str] | None = None,
        setup: str,
        address: str,
        port: int,
        env_dir: Path,
        region: str | None,
        account: str | None = None,
        compose_services: Mapping[str, Any] | None = None,
        override_path: Path | None = None,
        clock: Clock = system_clock,
    ) -> None:
        check_unique(specs)
        self.specs = list(specs)
        self._labels = dict(labels or {})
        self._fetch_for = fetch_for
        self._setup, self._address, self._port = setup, address, port
        self.env_dir = env_dir
        self.state_dir = env_dir / ".iam-sudo"
        self._region, self._account = region, account
        self._compose_services = compose_services
        self.override_path = override_path
        self._clock = clock
        self.holders: dict[tuple[Any, ...], RefreshingCredentials] = {}
        self.routes: dict[str, ServiceRoute] = {}
        self.server: CredentialsServer | None = None
        self.reach: Reach | None = None
        self.warnings: list[str] = []
        self.env_files: dict[str, Path] = {}
        self._written = _Written()
        self._created: list[Path] = []  # directories it made, in the order it made them
        self._exits = contextlib.ExitStack()

    def label(self, spec: ServiceSpec) -> str:
        """How the banner, the status view and errors name the service's role."""
        return self._labels.get(spec.name) or spec.describe()

    async def __aenter__(self) -> Stack:
        self._check_mounts()
        try:
            self._lock()
            await self._warm()
            await self._start()
            self._write_files()
        except BaseException:
            await self.__aexit__(None, None, None)
            # Nothing was served: leave no trace, not even the directories it made (a
            # started serve keeps its token directories, which containers have mounted).
            for directory in reversed(self._created):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.remove_files()
        if self.server is not None:
            await self.server.__aexit__(None, None, None)
            self.server = None
        self._exits.close()

    def _lock(self) -> None:
        self._secure_directory(self.state_dir)
        # Dotted: a service's token directory, beside it, is named for the service, and a
        # service name starts with a letter or digit (a service "serve.lock" is valid).
        lock = self.state_dir / ".serve"
        try:
            self._exits.enter_context(_files.locked(lock, wait_seconds=0))
        except TimeoutError as error:
            raise ServeError(
                f"another iam-sudo serve uses {self.env_dir} ({error.strerror}); "
                "stop it or give another --env-dir"
            ) from None
        except OSError as error:  # a read-only file system, a symlink at the lock (ELOOP)
            raise ServeError(
                f"cannot lock {lock.with_name(lock.name + '.lock')}: "
                f"{error.strerror or error}; give another --env-dir"
            ) from None
        self._exits.callback(_remove, lock.with_name(lock.name + ".lock"))

    def _check_mounts(self) -> None:
        """Refuse a compose file one of whose services bind-mounts a directory holding
        another service's token (``volumes: [".:/app"]`` beside the default env dir): its
        container, as root, would read that token and take that service's role."""
        if self._compose_services is None or self.override_path is None:
            return
        base = self.override_path.parent  # the compose file's directory
        tokens = {spec.name: _real(self.state_dir / spec.name) for spec in self.specs}
        for name, service in self._compose_services.items():
            for source in _bind_sources(service, base):
                for owner, token_dir in tokens.items():
                    if owner == name or not _overlap(source, token_dir):
                        continue
                    raise ServeError(
                        f"service {name} mounts {source}, which holds the token of service "
                        f"{owner}: its container could take {owner}'s role; give --env-dir a "
                        "directory that no service mounts"
                    )

    def _secure_directory(self, directory: Path) -> None:
        """Create ``directory`` 0700 after checking it and those above it (the cache's
        rules: owned by you, not writable by group or others), never through a symlink."""
        if directory.is_symlink():
            raise ServeError(
                f"{directory} is a symlink: serve keeps the services' tokens only in a "
                "directory of its own; remove it or give another --env-dir"
            )
        missing, each = [], directory
        while not each.exists() and not each.is_symlink() and each != each.parent:
            missing.append(each)
            each = each.parent
        try:
            secure_directory(directory)
            self._created += reversed(missing)
        except ConfigurationError as error:
            # Its message advises on the credential cache (IAM_SUDO_CACHE_DIR, --no-cache):
            # keep what it found, "DIR is writable by group or others (mode 775)".
            found = str(error).removeprefix(_CACHE_REFUSAL).partition("; ")[0]
            raise ServeError(
                f"refusing to keep the services' tokens under {self.env_dir}: {found}; "
                "make it yours and not writable by group or others (chmod go-w), or give "
                "--env-dir a directory of your own"
            ) from None

    async def _warm(self) -> None:
        """Fetch every role once, now: prompts (MFA) happen here, on the host, and a role
        that cannot be had stops the start with its reason, once (a holder would also log
        the failure as a failed renewal)."""
        fetches: dict[tuple[Any, ...], Fetch] = {}
        for spec in self.specs:
            fetches.setdefault(spec.role_key, self._fetch_for(spec))
        keys = list(fetches)
        results = await asyncio.gather(*(fetches[key]() for key in keys), return_exceptions=True)
        failed = []
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failed.append((key, result))
                continue
            holder = RefreshingCredentials(
                _primed(result, fetches[key]), clock=self._clock, serve_while_refreshing=True
            )
            try:
                await holder.get()  # takes what was just fetched: its lease starts now
            except Exception as error:  # too short to hold (core.refresh.MIN_LIFETIME)
                failed.append((key, error))
            self.holders[key] = holder
        if failed:
            # Services failing for one reason (the function is not deployed, your own
            # session expired) are named together: the reason is said once.
            reasons: dict[str, list[str]] = {}
            for key, reason in failed:
                names = reasons.setdefault(str(reason), [])
                names += [s.name for s in self.specs if s.role_key == key]
            raise ServeError(
                "cannot serve "
                + "; ".join(f"{', '.join(names)}: {text}" for text, names in reasons.items())
            )

    async def _start(self) -> None:
        imds_base = self._port + 1 if self._port else 0
        imds = {
            spec.name: (self._address, imds_base + i if imds_base else 0)
            for i, spec in enumerate(s for s in self.specs if s.imds)
        }
        if any(port > _MAX_PORT for _, port in imds.values()):
            raise ServeError(
                f"--port {self._port} leaves no room for the {len(imds)} IMDS ports that "
                f"follow it (up to {_MAX_PORT}): give a lower --port"
            )
        for spec in self.specs:
            self.routes[spec.name] = ServiceRoute(
                spec.name,
                secrets.token_urlsafe(32),
                self.holders[spec.role_key],
                self.label(spec),
            )

        def hosts(port: int) -> frozenset[str]:
            return compose_reach(self._setup, self._address, port, {}).host_headers()

        def imds_hosts(service: str, port: int) -> frozenset[str]:
            host = compose_reach(self._setup, self._address, 0, {}).imds_host
            return frozenset({f"{host}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"})

        metadata = {"region": self._region or "", "account": self._account or ""}
        server = CredentialsServer(
            self.routes,
            address=self._address,
            port=self._port,
            hosts=hosts,
            imds=imds,
            imds_hosts=imds_hosts,
            metadata=metadata,
            now=lambda: datetime.fromtimestamp(self._clock().wall, UTC),
        )
        try:
            await server.__aenter__()
        except OSError as error:
            where = error.filename or f"{self._address} port {self._port}"
            raise ServeError(
                f"cannot listen on {where}: {error.strerror}; give another --port or --bind"
            ) from None
        self.server = server
        self.reach = compose_reach(
            self._setup,
            self._address,
            server.port,
            {name: server.imds_port(name) for name in imds},
        )

    def _write_files(self) -> None:
        assert self.reach is not None
        env_files: dict[str, str] = {}
        token_dirs: dict[str, str] = {}
        contents: dict[Path, str] = {}
        for spec in self.specs:
            token_dir = self.state_dir / spec.name
            token_file = token_dir / "token"
            env_path = self.env_dir / f"iam-sudo.{spec.name}.env"
            try:
                text = env_file(spec, self.reach, str(token_file), self._region)
            except IamSudoError as error:
                raise ServeError(str(error)) from None
            contents[env_path] = text
            self.env_files[spec.name] = env_path
            env_files[spec.name], token_dirs[spec.name] = str(env_path), str(token_dir)
        exposure = bind_exposure(self._address)
        self.warnings = [exposure] if exposure else []
        if self._compose_services is not None and self.override_path is not None:
            document, warnings = override(
                self.specs, self._compose_services, self.reach, env_files, token_dirs
            )
            self.warnings += warnings
            import yaml

            contents[self.override_path] = (
                f"{_HEADER}: a compose override; use it after your compose file, as in "
                f"docker compose -f COMPOSE_FILE -f {self.override_path.name} up; it is "
                "removed when serve stops\n" + yaml.safe_dump(document, sort_keys=False)
            )
        for path in contents:
            _check_ours(path)
        for spec in self.specs:
            token_dir = self.state_dir / spec.name
            self._secure_directory(token_dir)
            # No newline: botocore refuses a token with one ("not a legal header value").
            self._write(token_dir / "token", self.routes[spec.name].secret)
        for path, text in contents.items():
            self._write(path, text)

    def _write(self, path: Path, text: str) -> None:
        try:
            _files.write_atomic(path, text)
        except OSError as error:
            raise ServeError(f"cannot write {path}: {error.strerror or error}") from None
        self._written.files.append(path)

    def written(self) -> list[Path]:
        """The files written so far (removed on exit)."""
        return list(self._written.files)

    def remove_files(self) -> None:
        """Remove every file written (idempotent; also from a signal's cleanup)."""
        while self._written.files:
            _remove(self._written.files.pop())

    def status(self) -> list[ServiceStatus]:
        """One row per service (no secret in it)."""
        return [
            ServiceStatus(
                spec.name,
                self.label(spec),
                self.routes[spec.name].asks if spec.name in self.routes else 0,
                self.routes[spec.name].last_ask if spec.name in self.routes else None,
                self.routes[spec.name].refused if spec.name in self.routes else 0,
                self.holders[spec.role_key].status(),
            )
            for spec in self.specs
        ]


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _overlap(one: Path, other: Path) -> bool:
    return one == other or one in other.parents or other in one.parents


def _bind_sources(service: object, base: Path) -> list[Path]:
    """The host paths a compose service bind-mounts (``volumes`` in the short syntax,
    ``SRC:DST[:MODE]`` with SRC a path, or the long one, ``type: bind``), absolute."""
    volumes = service.get("volumes") if isinstance(service, Mapping) else None
    sources = []
    for volume in volumes if isinstance(volumes, list) else []:
        if isinstance(volume, str) and ":" in volume:
            source = volume.split(":", 1)[0]
        elif isinstance(volume, Mapping) and volume.get("type") == "bind":
            source = str(volume.get("source", ""))
        else:
            continue  # an anonymous volume
        if source.startswith((".", "/", "~")):  # else a named volume
            sources.append(_real(base / os.path.expanduser(source)))
    return sources


def _primed(value: Credentials, fetch: Fetch) -> Fetch:
    """``fetch``, whose first call returns ``value`` (fetched already) without fetching."""
    pending = [value]

    async def primed() -> Credentials:
        return pending.pop() if pending else await fetch()

    return primed


def _check_ours(path: Path) -> None:
    """Refuse to replace a file iam-sudo did not write, or to write through a symlink."""
    if path.is_symlink():
        raise ServeError(f"{path} is a symlink: remove it or choose another --env-dir")
    if not path.exists():
        return
    # Only its first bytes, and only of a regular file: a directory or undecodable bytes
    # would raise, and opening a FIFO would wait for a writer forever.
    head = b""
    if path.is_file():
        try:
            with open(path, "rb") as file:
                head = file.read(len(_HEADER))
        except OSError as error:
            raise ServeError(f"cannot read {path}: {error.strerror or error}") from None
    if head != _HEADER.encode():
        raise ServeError(f"{path} exists and was not written by iam-sudo serve: move it")


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

"""An ECS container credentials endpoint on loopback, for long-running commands.

Static keys in a command's environment die with the session (remote simulations last an
hour). Instead the command gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and
``AWS_CONTAINER_AUTHORIZATION_TOKEN``, the ECS container credentials protocol every AWS
SDK speaks: it asks this server for credentials, with the token, and asks again inside
its own window before they expire. The server renews them by the refresh rule of
:mod:`iam_sudo.core.refresh` (once per window, however often it is asked), and never
answers with expired ones. Requests without the token get 401. The server lives
exactly as long as the command.

The SDKs' default chains look elsewhere before the container endpoint: environment keys,
web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), the profile's role_arn, SSO,
credentials file and credential_process, boto's own files. All of them are hidden from the
command: it gets a config file of its own (0600, in a 0700 directory that lives as long as
the server) holding only the endpoint settings of the profile in effect (region,
endpoints, retries; see :data:`iam_sudo.settings.config.ENDPOINT_SETTINGS`), and empty credentials
files.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..aws.refreshing import RefreshingCredentials
from ..core.exceptions import CredentialsExpired, IamSudoError
from ..core.refresh import Clock, system_clock
from ..settings import config
from ..settings import files as _files
from ..settings.credentials import Credentials
from . import command

# How long a request waits for credentials being renewed (only when nothing valid is
# held: a machine waking from suspend); longer than any SDK waits for this endpoint.
ANSWER_TIMEOUT = timedelta(seconds=60)
# Settings that would make an SDK prefer other credentials over the endpoint, or another
# endpoint or token over ours (botocore's ContainerProvider reads RELATIVE_URI before
# FULL_URI, and a token file before the token), besides command.CREDENTIAL_VARIABLES.
_HIDDEN = (
    *command.CREDENTIAL_VARIABLES,
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CREDENTIAL_FILE",  # botocore's OriginalEC2Provider
    "BOTO_CONFIG",  # botocore's BotoProvider
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_SDK_LOAD_CONFIG",
)


class CredentialsServer:
    """Serves credentials to a command, renewed with ``fetch`` by the refresh rule.

    ``credentials`` are held from the start; each request is answered from a
    :class:`~iam_sudo.aws.refreshing.RefreshingCredentials` running in the server's own
    event loop: one fetch per refresh window however often the command's SDKs ask
    (botocore re-asks at every call inside its 15-minute window), shared by concurrent
    requests, never expired credentials. Without ``fetch`` (an MFA session cannot be
    renewed unattended) it serves them until they expire, then answers 503. ``clock``:
    see :mod:`iam_sudo.core.refresh` (tests move it).
    """

    def __init__(
        self,
        credentials: Credentials,
        fetch: Callable[[], Coroutine[Any, Any, Credentials]] | None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.credentials = RefreshingCredentials(
            fetch,
            initial=credentials,
            clock=clock or system_clock,
            # An SDK gives the endpoint 1-2 s: what is held is still valid then.
            serve_while_refreshing=True,
        )
        self._token = secrets.token_urlsafe(32)
        self._loop = asyncio.new_event_loop()
        self._counting = threading.Lock()
        self.requests = 0
        self._settings: Path | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._loop.run_forever, daemon=True),
        ]

    @property
    def refreshes(self) -> int:
        """How many times the credentials were renewed."""
        return self.credentials.fetches

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def env(self, base: Mapping[str, str], region: str | None = None) -> dict[str, str]:
        """``base`` with the endpoint as the only credentials an SDK will find.

        The profile in effect in ``base`` gives its endpoint settings, ``region`` the
        region. Use it inside ``with``. Raises :class:`ConfigurationError` if the AWS
        config file cannot be read.
        """
        if self._settings is None:
            raise RuntimeError("use the server inside `with`")
        config_path = self._settings / "config"
        empty = self._settings / "credentials"
        with _files.locked(config_path):
            _files.write_atomic(config_path, config.endpoint_settings(base, region))
            _files.write_atomic(empty, "")
        env = {k: v for k, v in base.items() if k not in _HIDDEN}
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = self.url
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self._token
        env["AWS_CONFIG_FILE"] = str(config_path)
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
        env["BOTO_CONFIG"] = str(empty)
        return command.with_region(env, region)

    def __enter__(self) -> CredentialsServer:
        self._settings = Path(tempfile.mkdtemp(prefix="iam-sudo-ecs-"))  # 0700
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._threads[1].join(timeout=5)
        if not self._loop.is_running():
            # A renewal in flight: nobody will ask for it any more; let it end cancelled
            # rather than be reported as destroyed while pending.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                gathered = asyncio.gather(*pending, return_exceptions=True)
                self._loop.run_until_complete(gathered)
            self._loop.close()
        if self._settings is not None:
            shutil.rmtree(self._settings, ignore_errors=True)

    def settle(self) -> None:
        """Wait until no renewal is in flight (a status view, tests, the end of a run)."""
        future = asyncio.run_coroutine_threadsafe(self.credentials.settle(), self._loop)
        future.result(timeout=ANSWER_TIMEOUT.total_seconds())

    def current(self) -> Credentials:
        """What a request gets now (renewing if due); raises what the renewal raised."""
        future = asyncio.run_coroutine_threadsafe(self.credentials.get(), self._loop)
        try:
            return future.result(timeout=ANSWER_TIMEOUT.total_seconds())
        except TimeoutError:
            future.cancel()  # the renewal itself goes on, shared, for the next request
            raise CredentialsExpired(
                "the credentials expired and their renewal takes longer than "
                f"{ANSWER_TIMEOUT.total_seconds():g} s; ask again"
            ) from None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), server._token.encode()):
                    self._send(401, {"message": "missing or wrong authorization token"})
                    return
                with server._counting:
                    server.requests += 1
                try:
                    credentials = server.current()
                except IamSudoError as error:
                    # The SDK reports it; the message names no secret.
                    self._send(503, {"code": type(error).__name__, "message": str(error)})
                    return
                except Exception as error:  # an SDK's own, unmapped: its type only
                    message = f"renewing the credentials failed ({type(error).__name__})"
                    self._send(503, {"code": "RenewalFailed", "message": message})
                    return
                self._send(
                    200,
                    {
                        "AccessKeyId": credentials.access_key_id,
                        "SecretAccessKey": credentials.secret_access_key,
                        "Token": credentials.session_token,
                        "Expiration": credentials.expiration.astimezone(UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                    },
                )

        return Handler

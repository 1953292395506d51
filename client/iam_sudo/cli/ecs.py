"""An ECS container credentials endpoint on loopback, for long-running commands.

Static keys in a command's environment die with the session (remote simulations last an
hour). Instead the command gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and
``AWS_CONTAINER_AUTHORIZATION_TOKEN``, the ECS container credentials protocol every AWS
SDK speaks: it asks this server for credentials, with the token, and asks again before
they expire; the server has fresh ones ready by then. Requests without the token get 401.
The server lives exactly as long as the command.

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
import logging
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..settings import config
from ..settings import files as _files
from ..settings.credentials import Credentials
from . import command

log = logging.getLogger("iam_sudo")

# The SDKs refresh container credentials 15 minutes before they expire (botocore's
# advisory window); fresh ones are fetched a little before that.
REFRESH_BEFORE = timedelta(minutes=20)
RETRY_AFTER = timedelta(seconds=30)
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
    """Serves the latest credentials; refreshes them with ``fetch`` in its own thread.

    Without ``fetch`` (an MFA session cannot be renewed unattended) it serves them until
    they expire.
    """

    def __init__(
        self,
        credentials: Credentials,
        fetch: Callable[[], Coroutine[Any, Any, Credentials]] | None,
        *,
        refresh_before: timedelta = REFRESH_BEFORE,
    ) -> None:
        self._credentials = credentials
        self._fetch = fetch
        self._refresh_before = refresh_before
        self._token = secrets.token_urlsafe(32)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.refreshes = 0
        self._settings: Path | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._refresh_loop, daemon=True),
        ]

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
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        if self._settings is not None:
            shutil.rmtree(self._settings, ignore_errors=True)

    def current(self) -> Credentials:
        with self._lock:
            return self._credentials

    def _refresh_loop(self) -> None:
        if self._fetch is None:
            return
        while not self._stopped.is_set():
            due = self.current().expiration - self._refresh_before - datetime.now(UTC)
            if self._stopped.wait(max(due.total_seconds(), 0)):
                return
            try:
                fresh = asyncio.run(self._fetch())
            except Exception as error:  # keep serving what is still valid, and retry
                log.warning("refreshing the credentials failed: %s", error)
                self._stopped.wait(RETRY_AFTER.total_seconds())
                continue
            with self._lock:
                self._credentials = fresh
                self.refreshes += 1
            log.info("credentials refreshed, valid until %s", fresh.expiration.isoformat())

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
                credentials = server.current()
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

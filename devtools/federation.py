"""A loopback stand-in for AWS's console federation endpoint (``/federation``).

* ``Action=getSigninToken&Session=<JSON>[&SessionDuration=N]`` checks the session it is given
  the only way AWS could: it calls the local AWS's ``sts:GetCallerIdentity`` *with those
  credentials* (run it against devtools.enforced, so that a wrong secret is refused), then
  answers ``{"SigninToken": ...}``; a session STS refuses gets 400, as AWS answers.
* ``Action=login&Issuer=...&Destination=...&SigninToken=...`` answers 302 to the destination
  and records who signed in (the identity STS named), with the SessionDuration asked for.

Everything asked is recorded in :attr:`Federation.token_requests` (without the secret) and
:attr:`Federation.sign_ins`. ``fault`` makes getSigninToken answer garbage (``"garbage"``)
or a bare 500 (``"500"``) instead.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from devtools import localaws

TOKEN_LIFETIME = 900.0  # "valid for 15 minutes" (IAM User Guide)


@dataclass(frozen=True)
class TokenRequest:
    """One getSigninToken request: whose session (per STS), and the SessionDuration sent."""

    arn: str | None
    session_duration: str | None
    params: tuple[str, ...]


@dataclass(frozen=True)
class SignIn:
    """One console sign-in: the identity STS named, where to, and the token's duration."""

    arn: str
    destination: str
    issuer: str
    session_duration: str | None


@dataclass
class Federation:
    aws_url: str
    server: Any = None
    fault: str | None = None
    # AWS takes SessionDuration only for a role assumed with long-term keys (IAM User
    # Guide): True refuses every request with one, as AWS does for an MFA session's.
    refuse_session_duration: bool = False
    token_requests: list[TokenRequest] = field(default_factory=list)
    sign_ins: list[SignIn] = field(default_factory=list)
    tokens: dict[str, tuple[str, str | None, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/federation"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def caller(self, session: dict[str, Any]) -> str | None:
        """The ARN STS names for the session's credentials, or None if it refuses them."""
        import boto3
        import botocore.exceptions

        sts = boto3.client(
            "sts",
            endpoint_url=self.aws_url,
            region_name=localaws.REGION,
            aws_access_key_id=session["sessionId"],
            aws_secret_access_key=session["sessionKey"],
            aws_session_token=session["sessionToken"],
        )
        try:
            return str(sts.get_caller_identity()["Arn"])
        except botocore.exceptions.ClientError:
            return None


def start(aws_url: str) -> Federation:
    """Serve /federation on loopback, checking sessions against the AWS at ``aws_url``."""
    federation = Federation(aws_url)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines hold credentials and tokens

        def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path != "/federation":
                self.answer(404, b"")
                return
            params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
            action = params.get("Action")
            if action == "getSigninToken":
                self.get_signin_token(params)
            elif action == "login":
                self.login(params)
            else:
                self.answer(400, b"Unknown action")

        def get_signin_token(self, params: dict[str, str]) -> None:
            duration = params.get("SessionDuration")
            try:
                session = json.loads(params["Session"])
                if not all(
                    isinstance(session.get(k), str)
                    for k in ("sessionId", "sessionKey", "sessionToken")
                ):
                    raise TypeError
            except (KeyError, ValueError, TypeError):
                self.answer(400, b"Invalid credentials parameter")
                return
            arn = federation.caller(session)
            with federation.lock:
                federation.token_requests.append(TokenRequest(arn, duration, tuple(sorted(params))))
            if federation.fault == "garbage":
                self.answer(200, b"<html>Welcome to nginx!</html>", {"Content-Type": "text/html"})
                return
            if federation.fault == "500":
                self.answer(500, b"")
                return
            if duration is not None and (
                federation.refuse_session_duration
                or not duration.isdigit()
                or not 900 <= int(duration) <= 43200
            ):
                self.answer(400, b"Invalid credentials parameter")
                return
            if arn is None:
                self.answer(400, b"Invalid credentials parameter")
                return
            token = secrets.token_urlsafe(48)
            with federation.lock:
                federation.tokens[token] = (arn, duration, time.monotonic() + TOKEN_LIFETIME)
            body = json.dumps({"SigninToken": token}).encode()
            self.answer(200, body, {"Content-Type": "application/json"})

        def login(self, params: dict[str, str]) -> None:
            with federation.lock:
                arn, duration, expiry = federation.tokens.get(
                    params.get("SigninToken", ""), ("", None, 0.0)
                )
            destination = params.get("Destination", "")
            if not arn or time.monotonic() > expiry or not destination.startswith("https://"):
                self.answer(400, b"Invalid sign-in token or destination")
                return
            with federation.lock:
                federation.sign_ins.append(
                    SignIn(arn, destination, params.get("Issuer", ""), duration)
                )
            self.answer(302, b"", {"Location": destination})

    federation.server = localaws.LoopbackServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=federation.server.serve_forever, daemon=True).start()
    return federation

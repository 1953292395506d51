"""Signing in to the AWS console with a session's credentials, through AWS's federation endpoint.

A simulated session's credentials are ordinary AssumeRole credentials, and the federation
endpoint turns any such credentials into a console sign-in (IAM User Guide, "Enable custom
identity broker access to the AWS console"):

1. ``GET https://<sign-in host>/federation?Action=getSigninToken&Session=<session JSON>``
   (and ``SessionDuration`` where allowed) answers ``{"SigninToken": "..."}``;
2. ``https://<sign-in host>/federation?Action=login&Issuer=...&Destination=...&SigninToken=...``
   signs the browser in and sends it to the destination. It is valid for 15 minutes.

The sign-in token and the login URL are bearer secrets for those 15 minutes: nothing here
logs them, puts them in an exception's message, or in the argv of a process it starts
(:func:`open_in_browser` hands the browser a private file's path, not the URL).

Everything but :func:`signin_token`, :func:`console_login_url` (which asks for a token) and
:func:`open_in_browser` is pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..core.exceptions import (
    AccessDenied,
    AwsError,
    CommandError,
    ConfigurationError,
    EndpointUnreachable,
    InvalidRequest,
)
from ..core.partitions import NAME_PATTERN, Partition, partition_of_region
from ..settings.credentials import Credentials
from .errors import Timeouts

log = logging.getLogger("iam_sudo")
# Replaces https://<partition's sign-in host>/federation (tests, a regional sign-in host).
FEDERATION_ENDPOINT_VARIABLE = "IAM_SUDO_FEDERATION_ENDPOINT"
ISSUER = "iam-sudo"
# SessionDuration's range (IAM User Guide, "Enable custom identity broker access to the
# AWS console": "from 900 seconds (15 minutes) to 43200 seconds (12 hours)").
MIN_SESSION_DURATION = 900
MAX_SESSION_DURATION = 43200
# How long the browser has to load the sign-in page before iam-sudo gives up on it.
BROWSER_WAIT_SECONDS = 120.0
# A sign-in token answer is a few hundred bytes; anything far larger is not one.
_MAX_ANSWER = 65536

_REGION = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}")
_SERVICE = re.compile(r"[a-z0-9][a-z0-9-]*")
_IAM_USER = re.compile(rf"arn:{NAME_PATTERN}:iam::\d{{12}}:user/.+")


def federation_url(partition: Partition) -> str:
    """The federation endpoint of ``partition``'s global sign-in host."""
    return f"https://{partition.signin_host}/federation"


def partition_of(region: str) -> Partition:
    """The partition of ``region`` (``us-gov-west-1`` -> aws-us-gov, ``cn-north-1`` -> aws-cn).

    Raises :class:`ConfigurationError` for a malformed region, or one of an isolated
    partition, whose console iam-sudo cannot know (see :mod:`..core.partitions`).
    """
    if not _REGION.fullmatch(region):
        raise ConfigurationError(
            f"{region[:40]!r} is not an AWS region name (like eu-west-1); check --region "
            "or AWS_REGION"
        )
    partition = partition_of_region(region)
    if not partition.signin_host or not partition.console_host:
        raise ConfigurationError(
            f"region {region} is in an isolated AWS partition, whose console iam-sudo does "
            f"not know; set {FEDERATION_ENDPOINT_VARIABLE} and pass --destination as a full URL"
        )
    return partition


def check_session_partition(region: str, session_partition: str, source: str) -> None:
    """Raise :class:`ConfigurationError` if a session of ``session_partition`` (``aws``,
    ``aws-us-gov``, ...; ``source`` says how it is known) would sign in to the console of
    ``region`` of another partition.

    Credentials are valid only in the partition whose STS issued them (IAM User Guide,
    "AWS partitions"): the other partition's sign-in host would refuse them, after they had
    been sent there.
    """
    wanted = partition_of(region).name
    if wanted != session_partition:
        raise ConfigurationError(
            f"the console region {region} is in partition {wanted}, but the session's "
            f"credentials are of partition {session_partition} ({source}): give --region a "
            f"region of {session_partition}, or get the session in {wanted}"
        )


def federation_endpoint(partition: Partition, environ: Mapping[str, str]) -> str:
    """The federation endpoint's URL: the partition's, or ``IAM_SUDO_FEDERATION_ENDPOINT``.

    Credentials travel to it: a plain-http override is accepted only on loopback.
    """
    override = environ.get(FEDERATION_ENDPOINT_VARIABLE, "").strip()
    if not override:
        return federation_url(partition)
    parts = urllib.parse.urlsplit(override)
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "is not an http(s) URL"
    elif parts.query or parts.fragment or parts.username or parts.password:
        problem = "may not have a query, a fragment or a user name"
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        problem = "is plain http to a host other than loopback: credentials would travel in clear"
    if problem:
        raise ConfigurationError(
            f"{FEDERATION_ENDPOINT_VARIABLE}={override[:80]!r} {problem}; give the "
            "federation endpoint's URL, e.g. https://eu-west-1.signin.aws.amazon.com/federation"
        )
    return override


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def destination_url(destination: str | None, region: str, partition: Partition) -> str:
    """The console page to land on, as a full URL of ``partition``'s console.

    ``destination`` is a service (``s3`` -> ``https://console.aws.amazon.com/s3/home?region=R``),
    a console path (``ecs/v2/clusters``, ``cloudwatch/home#logsV2:``; ``region=R`` is added
    to its query unless it has one), a full ``https://`` URL of the partition's console
    (kept as is), or None for the console home. Raises :class:`InvalidRequest` otherwise.
    """
    console = f"https://{partition.console_host}"
    region_query = urllib.parse.urlencode({"region": region})
    if not destination:
        return f"{console}/console/home?{region_query}"
    if any(ord(c) <= 0x20 or ord(c) >= 0x7F or c == "\\" for c in destination):
        raise InvalidRequest(
            "--destination may not hold spaces, control or non-ASCII characters: "
            "give a service (s3), a console path (ecs/v2/clusters) or a console URL"
        )
    if "://" in destination:
        parts = urllib.parse.urlsplit(destination)
        host = (parts.hostname or "").lower()
        on_console = host == partition.console_host or host.endswith(f".{partition.console_host}")
        if parts.scheme != "https" or not on_console or parts.username or parts.password:
            raise InvalidRequest(
                f"--destination {destination[:100]} is not an https URL of the "
                f"{partition.name} console ({partition.console_host}); give a service, a "
                "console path, or a URL of that console (--region picks the partition)"
            )
        return destination
    path, _, fragment = destination.lstrip("/").partition("#")
    path, _, query = path.partition("?")
    service = path.split("/", 1)[0]
    if not _SERVICE.fullmatch(service):
        raise InvalidRequest(
            f"--destination {destination[:100]} does not start with a console service name "
            "(like s3 or ecs/v2/clusters)"
        )
    if "/" not in path.rstrip("/"):
        path = f"{service}/home"
    queries = urllib.parse.parse_qs(query, keep_blank_values=True)
    if "region" not in queries:
        query = f"{query}&{region_query}" if query else region_query
    return f"{console}/{path}?{query}" + (f"#{fragment}" if fragment else "")


def session_json(credentials: Credentials) -> str:
    """The ``Session`` parameter of getSigninToken: the credentials as the endpoint names them."""
    return json.dumps(
        {
            "sessionId": credentials.access_key_id,
            "sessionKey": credentials.secret_access_key,
            "sessionToken": credentials.session_token,
        }
    )


def is_direct_session(caller_arn: str | None) -> bool:
    """Whether AssumeRole was called by an IAM user (``arn:aws:iam::<account>:user/...``).

    Only such a session may ask for a console ``SessionDuration``: the IAM User Guide
    ("Enable custom identity broker access to the AWS console") says the federation call
    fails otherwise, and peers saw it refuse role-chained sessions (aws-vault #77: "400
    Invalid credentials parameter"). Anything else, or an unknown caller, is not: without
    SessionDuration the console session still ends with the credentials.
    """
    return caller_arn is not None and _IAM_USER.fullmatch(caller_arn) is not None


def session_duration(direct: bool, duration_seconds: int) -> int | None:
    """The ``SessionDuration`` to send: ``duration_seconds`` for a direct session, else None.

    Raises :class:`InvalidRequest` for a direct session outside 900-43,200 s.
    """
    if not direct:
        return None
    if not MIN_SESSION_DURATION <= duration_seconds <= MAX_SESSION_DURATION:
        raise InvalidRequest(
            f"a console session lasts {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION} "
            f"seconds, not {duration_seconds}; change --duration"
        )
    return duration_seconds


def signin_token_url(endpoint: str, credentials: Credentials, duration: int | None) -> str:
    """The getSigninToken request's URL (a secret: it holds the credentials)."""
    params = {"Action": "getSigninToken"}
    if duration is not None:
        params["SessionDuration"] = str(duration)
    params["Session"] = session_json(credentials)
    return f"{endpoint}?{urllib.parse.urlencode(params)}"


def read_signin_token(status: int, body: bytes, endpoint: str) -> str:
    """The ``SigninToken`` of a getSigninToken answer; one-line :class:`AwsError` otherwise.

    No message repeats the body: an impostor's answer could echo the credentials.
    """
    if status in (400, 401, 403):
        raise AccessDenied(
            f"the federation endpoint {endpoint} refused the session's credentials (HTTP "
            f"{status}); they may have expired: get new ones and try again",
            code=str(status),
        )
    if status != 200:
        raise AwsError(
            f"the federation endpoint {endpoint} answered HTTP {status}; try again later, or "
            f"check {FEDERATION_ENDPOINT_VARIABLE} and any proxy on the way",
            code=str(status),
        )
    try:
        token = json.loads(body)["SigninToken"]
        if not isinstance(token, str) or not token or not token.isprintable():
            raise TypeError("SigninToken")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise AwsError(
            f"the federation endpoint {endpoint} answered with something that is not a "
            f"sign-in token; check {FEDERATION_ENDPOINT_VARIABLE} and any proxy on the way"
        ) from None
    return token


def login_url(endpoint: str, token: str, destination: str, issuer: str = ISSUER) -> str:
    """The console sign-in URL (a bearer secret for 15 minutes)."""
    query = urllib.parse.urlencode(
        {"Action": "login", "Issuer": issuer, "Destination": destination, "SigninToken": token}
    )
    return f"{endpoint}?{query}"


def _get(url: str, endpoint: str, timeouts: Timeouts) -> tuple[int, bytes]:
    """GET ``url``; (status, body). Follows no redirect: a redirect is no sign-in token."""
    import http.client
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    handlers: list[urllib.request.BaseHandler] = [NoRedirect()]
    if _is_loopback(urllib.parse.urlsplit(endpoint).hostname or ""):
        # A proxy cannot reach this machine's loopback, and plain http to it would show
        # the proxy the credentials; the environment's proxies serve every other endpoint.
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    # One timeout covers connecting and each read; the longer of the two, so neither is cut.
    timeout = max(timeouts.connect, timeouts.read)
    try:
        with opener.open(url, timeout=timeout) as reply:
            return int(reply.status), reply.read(_MAX_ANSWER)
    except urllib.error.HTTPError as error:
        return int(error.code), b""
    except TimeoutError:
        raise EndpointUnreachable(
            f"no answer from the federation endpoint {endpoint} in time; check your "
            f"network and any proxy, or raise IAM_SUDO_CONNECT_TIMEOUT/IAM_SUDO_READ_TIMEOUT"
        ) from None
    except (OSError, ValueError, http.client.HTTPException) as error:
        # Not the exception's text: it may quote the URL, which holds the credentials.
        # A reply that is not HTTP at all (BadStatusLine) is an HTTPException, no OSError.
        raise EndpointUnreachable(
            f"cannot reach the federation endpoint {endpoint}, or it answered with something "
            f"that is not HTTP ({type(error).__name__}); check your network, any proxy, and "
            f"{FEDERATION_ENDPOINT_VARIABLE}"
        ) from None


async def signin_token(
    endpoint: str,
    credentials: Credentials,
    duration: int | None,
    timeouts: Timeouts | None = None,
) -> str:
    """Exchange ``credentials`` for a console sign-in token at ``endpoint``.

    ``duration`` is ``SessionDuration`` (see :func:`session_duration`; None sends none).
    Waits at most the project's :class:`Timeouts`. Raises :class:`AccessDenied` when the
    endpoint refuses the credentials, :class:`EndpointUnreachable` when it cannot be
    reached, :class:`AwsError` for any other answer; no message holds a secret.
    """
    timeouts = timeouts or Timeouts.from_env()
    url = signin_token_url(endpoint, credentials, duration)
    status, body = await asyncio.to_thread(_get, url, endpoint, timeouts)
    return read_signin_token(status, body, endpoint)


async def console_login_url(
    credentials: Credentials,
    *,
    region: str,
    destination: str | None = None,
    duration: int | None = None,
    environ: Mapping[str, str] | None = None,
    timeouts: Timeouts | None = None,
) -> str:
    """The sign-in URL of the console of ``region``'s partition for ``credentials``.

    Checks the region and destination before anything is sent (see
    :func:`partition_of`, :func:`destination_url`, :func:`federation_endpoint`). When the
    endpoint refuses a request with ``duration``, asks once more without SessionDuration.
    Raises what :func:`signin_token` raises.
    """
    environ = os.environ if environ is None else environ
    partition = partition_of(region)
    target = destination_url(destination, region, partition)
    endpoint = federation_endpoint(partition, environ)
    try:
        token = await signin_token(endpoint, credentials, duration, timeouts)
    except AccessDenied:
        if duration is None:
            raise
        # An IAM user's MFA session (GetSessionToken) has the user's ARN too, but AWS takes
        # SessionDuration only when long-term keys assumed the role: ask once more without.
        log.info("the federation endpoint refused SessionDuration: asking without it")
        token = await signin_token(endpoint, credentials, None, timeouts)
    return login_url(endpoint, token, target)


def _page(url: str) -> str:
    quoted = html.escape(url, quote=True)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta http-equiv="refresh" content="0;url={quoted}">'
        "<title>iam-sudo: signing in to the AWS console</title></head>"
        f'<body><a href="{quoted}">Sign in to the AWS console</a></body></html>\n'
    )


# Variables a browser never needs and must not keep: AWS credentials and settings (the
# user's own keys, an SSO or container token), iam-sudo's and boto's. A browser, or the
# browser process it hands the page to, may run for days after iam-sudo has ended.
_NOT_FOR_THE_BROWSER = ("AWS_", "IAM_SUDO_", "BOTO_")
# Run with `python -I` (no PYTHON* variables, no user site): the stdlib's webbrowser only.
_LAUNCHER = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1]) else 1)"


def browser_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what a browser must not inherit: every ``AWS_*``,
    ``IAM_SUDO_*`` and ``BOTO_*`` variable (names compared without case, as Windows does).

    Everything else stays: a browser needs the display, the desktop session, the locale,
    the user's proxies and ``BROWSER``, and a list of those would miss some.
    """
    return {
        name: value
        for name, value in environ.items()
        if not name.upper().startswith(_NOT_FOR_THE_BROWSER)
    }


def open_with_clean_environment(page_url: str) -> bool:
    """:func:`webbrowser.open` ``page_url`` from a process with :func:`browser_environment`.

    webbrowser starts the browser with this process's environment and has no way to give
    it another, so a small ``python -I`` process with the clean environment runs it.
    Whether a browser started (as :func:`webbrowser.open` says); waits as it does, for a
    ``BROWSER`` command to end. ``page_url`` is no secret (see :func:`open_in_browser`).
    """
    import subprocess

    launched = subprocess.run(
        [sys.executable, "-I", "-c", _LAUNCHER, page_url],
        env=browser_environment(os.environ),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return launched.returncode == 0


async def open_in_browser(
    url: str,
    *,
    wait: float = BROWSER_WAIT_SECONDS,
    opener: Callable[[str], bool] | None = None,
) -> None:
    """Open ``url`` in the user's browser without putting it in any process's argv.

    A browser is started with a file's path as its argument, and a process list shows that
    argument to every user of the machine. So the browser gets ``file://`` of a private
    page (a 0600 file in a 0700 directory) that redirects it to a one-time loopback address;
    only that address, answered once and only by this process, sends it on to ``url``.
    Neither the file nor any argv holds ``url``, and the page is of no use once the browser
    has loaded it. Returns once the browser has (the file is then removed); raises
    :class:`CommandError` when no browser starts or none loads the page within ``wait``
    seconds, and (exit status 128 + the signal's number) on SIGTERM or SIGHUP. The wait is
    an await: Ctrl-C (the event loop's first SIGINT cancels the task) ends it at once. The
    page and its directory are removed however it ends. ``opener`` defaults to
    :func:`open_with_clean_environment` (:func:`webbrowser.open`, which honours
    ``BROWSER``, in a process without iam-sudo's AWS settings and credentials).
    """
    if opener is None:
        opener = open_with_clean_environment
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    nonce = f"/{secrets.token_urlsafe(32)}"
    served, failed = threading.Event(), threading.Event()

    def wake() -> None:
        # From the server's or the launcher's thread; the loop may be gone by then.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(woken.set)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line holds the nonce

        def do_GET(self) -> None:
            if served.is_set() or not secrets.compare_digest(self.path, nonce):
                self.send_error(404)
                return
            served.set()
            wake()
            self.send_response(303)
            self.send_header("Location", url)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Length", "0")
            self.end_headers()

    def launch(page_url: str) -> None:
        # In a thread of its own: webbrowser waits for a BROWSER command to exit, and a
        # browser started by it may run until its window is closed.
        try:
            started = opener(page_url)
        except Exception:  # webbrowser raises its own Error, or OSError from Popen
            started = False
        if not started:
            failed.set()
            wake()

    stopped_by: list[int] = []
    task = asyncio.current_task()

    def stop(signum: int) -> None:
        stopped_by.append(signum)
        if task is not None:
            task.cancel()

    # SIGTERM and SIGHUP (a closed terminal) would end the process without the clean-up
    # below; SIGINT is the event loop's own (its first one cancels this task).
    handled: list[int] = []
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is None:
            continue
        try:
            loop.add_signal_handler(signum, stop, int(signum))
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or not supported here: the default applies

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="iam-sudo-browser", daemon=True).start()
    directory = Path(tempfile.mkdtemp(prefix="iam-sudo-console-"))  # 0700
    page = directory / "signin.html"
    try:
        fd = os.open(
            page, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(_page(f"http://127.0.0.1:{server.server_address[1]}{nonce}"))
        threading.Thread(target=launch, args=(page.as_uri(),), daemon=True).start()
        if sys.stderr.isatty():
            print(
                "iam-sudo: waiting for your browser to open the console (Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            )
        try:
            await asyncio.wait_for(woken.wait(), wait)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            if not stopped_by:
                raise
            name = signal.Signals(stopped_by[0]).name
            raise CommandError(
                f"stopped by {name} while waiting for the browser", 128 + stopped_by[0]
            ) from None
        if served.is_set():
            return
        if failed.is_set():
            raise CommandError(
                "no web browser could be started; set BROWSER, or use --url to print the "
                "sign-in URL (a secret for 15 minutes) and open it yourself",
                1,
            )
        raise CommandError(
            f"the browser did not load the sign-in page within {wait:.0f} s; use --url "
            "to print the sign-in URL and open it yourself",
            1,
        )
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        shutil.rmtree(directory, ignore_errors=True)
        server.shutdown()
        server.server_close()


def check_request(region: str, destination: str | None, environ: Mapping[str, str]) -> None:
    """Everything of a sign-in request that can be wrong before any request is made.

    Raises :class:`ConfigurationError` or :class:`InvalidRequest` as the checks below do.
    """
    partition = partition_of(region)
    destination_url(destination, region, partition)
    federation_endpoint(partition, environ)


async def sign_in(
    credentials: Credentials,
    *,
    region: str,
    destination: str | None,
    duration: int | None,
    print_url: bool,
) -> None:
    """Sign in to the console of ``region`` with ``credentials``: open it, or print the URL.

    ``duration`` is the console session's (None: it ends with the credentials). The URL
    is a secret for 15 minutes: printed only when asked, on stdout.
    """
    log.info(
        "signing in to the %s console in %s (%s)",
        partition_of(region).name,
        region,
        f"console session of {duration} s"
        if duration
        else "the console session ends with the credentials",
    )
    url = await console_login_url(
        credentials, region=region, destination=destination, duration=duration
    )
    if print_url:
        print(url, flush=True)
        return
    # Awaited on the event loop: Ctrl-C while it waits for the browser ends it at once.
    await open_in_browser(url)
    print(
        f"iam-sudo: opened the AWS console in your browser, until "
        f"{credentials.expiration.isoformat()}",
        file=sys.stderr,
    )

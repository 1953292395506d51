"""A local AWS for tests, the demo and the benchmark: moto's server behind a recording proxy.

The proxy forwards every request to moto, optionally after a fixed delay (to stand in for
real round-trip times), and records what was sent: service, action, parameters, and when
each request started and ended, so callers can count requests, duplicates and how many
sequential rounds a job took.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.05)


@dataclass
class Request:
    service: str
    action: str
    params: dict[str, str]
    access_key: str
    start: float
    end: float = 0.0

    def key(self) -> tuple[str, str, str]:
        return (self.service, self.action, json.dumps(self.params, sort_keys=True))


@dataclass
class Recorder:
    requests: list[Request] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.max_in_flight = 0

    def actions(self, service: str | None = None) -> list[str]:
        return [r.action for r in self.requests if service is None or r.service == service]

    def sent(self, action: str) -> list[dict[str, str]]:
        return [r.params for r in self.requests if r.action == action]

    def duplicates(self) -> int:
        return sum(n - 1 for n in Counter(r.key() for r in self.requests).values())

    def max_concurrent(self, service: str) -> int:
        """The most requests to ``service`` that were in flight at one moment."""
        events = sorted(
            (time, step)
            for r in self.requests
            if r.service == service
            for time, step in ((r.start, 1), (r.end, -1))
        )
        most = current = 0
        for _, step in events:
            current += step
            most = max(most, current)
        return most

    def rounds(self) -> int:
        """The longest chain of requests each of which started after the previous ended."""
        depth: list[int] = []
        ordered = sorted(self.requests, key=lambda r: r.start)
        for i, request in enumerate(ordered):
            before = [depth[j] for j in range(i) if ordered[j].end <= request.start]
            depth.append(1 + max(before, default=0))
        return max(depth, default=0)


def _parse(handler: BaseHTTPRequestHandler, body: bytes, start: float) -> Request:
    match = _CREDENTIAL.search(handler.headers.get("Authorization", ""))
    access_key, service = match.groups() if match else ("", "unknown")
    content_type = handler.headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in content_type:
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        return Request(service, params.pop("Action", "?"), params, access_key, start)
    action = handler.headers.get("X-Amz-Target", "").rpartition(".")[2]
    return Request(service, action or f"{handler.command} {handler.path}", {}, access_key, start)


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops concurrent connects, and each dropped SYN
    # costs the client a 1 s retransmission: far more than any delay measured here.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeouts, injected resets) is expected here, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# What a broken network or a wrong endpoint answers instead of AWS (see start_proxy).
FAULTS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "html": (200, {"Content-Type": "text/html"}, b"<html><body>Welcome to nginx!</body></html>"),
    "garbage": (200, {"Content-Type": "text/xml"}, b"\x00\xffnot xml at all <<<"),
    "empty-xml": (200, {"Content-Type": "text/xml"}, b"<Response></Response>"),
    "assume-role-without-credentials": (
        200,
        {"Content-Type": "text/xml"},
        b"<AssumeRoleResponse><AssumeRoleResult></AssumeRoleResult></AssumeRoleResponse>",
    ),
    "policy-not-visible": (
        400,
        {"Content-Type": "text/xml"},
        b"<ErrorResponse><Error><Type>Sender</Type><Code>MalformedPolicyDocument</Code>"
        b"<Message>Policy arn does not exist</Message></Error></ErrorResponse>",
    ),
    "access-denied": (
        403,
        {"Content-Type": "text/xml"},
        b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        b"<Message>not authorized to perform: sts:SetSourceIdentity</Message></Error>"
        b"</ErrorResponse>",
    ),
    "invalid-client-token": (
        403,
        {"Content-Type": "text/xml"},
        b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
        b"<Message>The security token included in the request is invalid.</Message></Error>"
        b"</ErrorResponse>",
    ),
    "bare-429": (429, {}, b""),
    "bare-500": (500, {}, b""),
}


def start_proxy(
    upstream: str,
    recorder: Recorder,
    delay: float = 0.0,
    faults: dict[str, str] | None = None,
) -> ThreadingHTTPServer:
    """A loopback proxy to ``upstream`` that records and optionally delays every request.

    ``faults`` maps an action (or ``"*"``) to what the proxy does instead of forwarding:
    a canned answer of :data:`FAULTS`, ``"reset"`` (close the connection unanswered),
    ``"blackhole"`` (read the request, never answer) or ``"lost"`` (forward it, so that AWS
    carries it out, then close the connection without its answer). ``"fault*N"`` does it N
    times, then forwards. The mapping is read per request.
    """
    target = urllib.parse.urlsplit(upstream)
    faults = {} if faults is None else faults

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without it, headers and body in separate segments meet the client's delayed
        # ACK: 40 ms per request, which would dwarf the delay being measured.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            entry = _parse(self, body, time.monotonic())
            with recorder.lock:
                recorder.in_flight += 1
                recorder.max_in_flight = max(recorder.max_in_flight, recorder.in_flight)
            fault = faults.get(entry.action, faults.get("*"))
            if fault is not None and "*" in fault:
                kind, _, left = fault.partition("*")
                key = entry.action if entry.action in faults else "*"
                faults[key] = f"{kind}*{int(left) - 1}" if int(left) > 1 else "forward"
                fault = kind
            if fault == "forward":
                fault = None
            lost = fault == "lost"
            if fault is not None and not lost:
                self._fault(fault, entry)
                return
            try:
                if delay:
                    time.sleep(delay)
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                # The Host header goes on as it came: it is signed, and moto checks signatures.
                conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                reply = conn.getresponse()
                data = reply.read()
                conn.close()
            finally:
                entry.end = time.monotonic()
                with recorder.lock:
                    recorder.in_flight -= 1
                    recorder.requests.append(entry)
            if lost:
                self._reset()
                return
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _fault(self, fault: str, entry: Request) -> None:
            entry.end = time.monotonic()
            with recorder.lock:
                recorder.in_flight -= 1
                recorder.requests.append(entry)
            if fault == "reset":
                self._reset()
                return
            if fault == "blackhole":
                time.sleep(3600)  # the daemon thread dies with the server
                return
            status, headers, body = FAULTS[fault]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _reset(self) -> None:
            self.close_connection = True
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

    server = LoopbackServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class LocalAws:
    """A running moto server and the recording proxy in front of it."""

    moto_url: str
    url: str
    recorder: Recorder
    process: subprocess.Popen[bytes]
    proxy: ThreadingHTTPServer

    def env(self) -> dict[str, str]:
        """Environment that points any AWS SDK or CLI at the local AWS through the proxy."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop(self) -> None:
        self.proxy.shutdown()
        self.process.terminate()
        self.process.wait(timeout=10)


def start(delay: float = 0.0, log: Path | None = None) -> LocalAws:
    """Start moto's server (AWS managed policies loaded) and a proxy in front of it."""
    port = free_port()
    env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    moto_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{moto_url}/moto-api/")
    except TimeoutError:
        process.kill()
        raise
    recorder = Recorder()
    proxy = start_proxy(moto_url, recorder, delay)
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    return LocalAws(moto_url, url, recorder, process, proxy)


@contextlib.contextmanager
def running(delay: float = 0.0) -> Iterator[LocalAws]:
    aws = start(delay)
    try:
        yield aws
    finally:
        aws.stop()


def client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for a local endpoint, with the local region and made-up credentials."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="local",
    )


def trust_policy(*principals: tuple[str, str | list[str]]) -> dict[str, Any]:
    """A trust policy with one Allow statement per (type, id or ids)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {type_: ids}, "Action": "sts:AssumeRole"}
            for type_, ids in principals
        ],
    }


def create_role(
    iam: Any,
    name: str,
    *,
    trust: dict[str, Any] | None = None,
    inline: dict[str, dict[str, Any]] | None = None,
    managed: list[str] = (),  # type: ignore[assignment]
    **extra: Any,
) -> str:
    """Create a role with inline and attached managed policies; return its ARN."""
    trust = trust or trust_policy(("Service", "ecs-tasks.amazonaws.com"))
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **extra)[
        "Role"
    ]["Arn"]
    for policy_name, document in (inline or {}).items():
        iam.put_role_policy(
            RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
        )
    for policy_arn in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return arn


def allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


def too_large_inline(marker: str, count: int = 20) -> dict[str, dict[str, Any]]:
    """Inline policies too large for STS's 2,048 characters even compacted (~4.5 KB).

    ``marker`` makes their statements, and so their content-addressed policies, unique.
    """
    return {
        f"p{i}": allow(f"s3:Get{marker}{i}", f"arn:aws:s3:::{marker * 200}{i}")
        for i in range(count)
    }


def guard(partition: str = "aws", account: str = ACCOUNT_ID) -> dict[str, dict[str, Any]]:
    """The inline policy every base role carries: the Deny on rewriting the account's
    packed policies (core/duties.py), as ``create_role``'s ``inline``."""
    from iam_sudo.core.duties import GUARD_POLICY_NAME, packed_policies_arn, packed_policy_guard

    return {GUARD_POLICY_NAME: packed_policy_guard(packed_policies_arn(partition, account))}


def create_base_role(iam: Any, name: str = "IAMSudoUser", partition: str = "aws") -> str:
    """The powerful role simulations assume, trusted by the (local) account; ``partition``
    is that of ``iam``'s region (moto keeps each partition's IAM apart). It carries the
    Deny on rewriting packed policies that every base role must (core/duties.py), as the
    Pulumi program's do."""
    return create_role(
        iam,
        name,
        trust=trust_policy(("AWS", f"arn:{partition}:iam::{ACCOUNT_ID}:root")),
        inline=guard(partition),
        managed=[f"arn:{partition}:iam::aws:policy/PowerUserAccess"],
    )


# The account `python -m devtools.localaws --demo` (`make local-aws`) serves: the roles the
# README's first examples name, and the function they reach with --remote (the default).
README_STACK = "my-stack"
README_ROLES = ("Deployer",)


def _exports(env: dict[str, str], shell: str) -> str:
    """The lines that point a shell at the local AWS, and at nothing of the user's."""
    from iam_sudo.cli.formats import shell_lines
    from iam_sudo.settings.credentials import SDK_VARIABLES

    changes: dict[str, str | None] = dict.fromkeys(SDK_VARIABLES)
    changes.update(env)
    return shell_lines(shell, changes)


def serve_demo(shell: str = "env") -> None:
    """Run the demo's local AWS until Ctrl-C (or SIGTERM), for trying iam-sudo by hand.

    moto's server with the demo account (the README's roles: my-stack-TaskRole-..., a
    CodeBuild role, Deployer, the IAMSudoUser base role), and the function the Pulumi
    program deploys (under Pulumi's mocks) served on loopback, so that --remote works as
    --local does. AWS files go to a private temporary directory, removed on exit: trying
    `--profile` or `configure` touches nothing of yours. Prints the lines to paste into
    another shell (``shell``: a format of ``iam-sudo --format``), then a line "ready".
    """
    import shutil
    import signal
    import tempfile

    from devtools import demo, pulumi_program

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            signal.signal(signum, lambda *_: stop.set())
    home = Path(tempfile.mkdtemp(prefix="iam-sudo-local-aws-"))  # 0700
    aws = start()
    stand_in = None
    try:
        demo.seed(aws, README_STACK)
        iam = client("iam", aws.moto_url)
        for name in README_ROLES:
            create_role(
                iam,
                name,
                trust=trust_policy(("AWS", f"arn:aws:iam::{ACCOUNT_ID}:root")),
                managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            )
        program = pulumi_program.run({"policy": demo.ECS_ONLY_POLICY}, home / "pulumi")
        stand_in, endpoints = demo.serve_function(aws, program)
        (home / "aws").mkdir(mode=0o700)
        env = {
            **aws.env(),
            **endpoints,
            "AWS_CONFIG_FILE": str(home / "aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws" / "credentials"),
        }
        print(
            f"iam-sudo's local AWS (moto) at {aws.url}, account {ACCOUNT_ID}: roles "
            f"{README_STACK}-TaskRole-9AO01PCC7I0T, {README_STACK}-BuildRole-1QW2E3R4, "
            f"{', '.join(README_ROLES)} and IAMSudoUser; the iam-sudo function at "
            f"{stand_in.url}, its sudo policy allowing ECS task roles.\n"
            "In another shell, run these lines, then the README's examples "
            "(Ctrl-C here stops it all):\n",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.write(_exports(env, shell))
        sys.stdout.flush()
        print("\nready", file=sys.stderr, flush=True)
        while not stop.wait(1.0):
            if aws.process.poll() is not None:
                print("moto's server ended", file=sys.stderr)
                raise SystemExit(1)
    finally:
        if stand_in is not None:
            stand_in.stop()
        aws.stop()
        shutil.rmtree(home, ignore_errors=True)
    print("iam-sudo's local AWS stopped", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """``python -m devtools.localaws --demo [--shell FORMAT]``: see :func:`serve_demo`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m devtools.localaws",
        description="Run the demo's local AWS until Ctrl-C and print the lines to export.",
    )
    parser.add_argument("--demo", action="store_true", required=True, help="the demo account")
    parser.add_argument(
        "--shell",
        default="env",
        choices=["env", "fish", "powershell", "windows-cmd"],
        help="the shell to print the lines for [default: env, for sh/bash/zsh]",
    )
    arguments = parser.parse_args(argv)
    serve_demo(arguments.shell)


if __name__ == "__main__":
    main()

"""A loopback stand-in for AWS Lambda's Invoke API that runs the iam-sudo handler.

moto runs Lambda code only in Docker; this serves
``POST /2015-03-31/functions/{name}/invocations`` the way Lambda does (``X-Amz-Function-Error``
on a function error, ``ResourceNotFoundException`` for an unknown function) and runs each
function in its own worker process, a warm "container" started on the first invocation,
with only the function's archive, boto3 and the standard library importable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from devtools.localaws import LoopbackServer, free_port

WORKER = Path(__file__).with_name("lambda_worker.py")
# What the Lambda Python runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")


def runtime_boto_dir(destination: Path) -> Path:
    """A directory holding only boto3 and its dependencies, as the Lambda runtime has them."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = destination / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return destination


def extract(archive: Path, destination: Path) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(destination)
    return destination


@dataclass
class Function:
    name: str
    code_dir: Path
    env: dict[str, str]
    account: str = "123456789012"
    region: str = "us-east-1"
    process: subprocess.Popen[str] | None = None
    import_ms: float | None = None
    logs: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _start(self, boto_dir: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER), str(self.code_dir), str(boto_dir)],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline() or "{}")
        if not ready.get("ready"):
            process.kill()
            raise RuntimeError(f"function {self.name} failed to start")
        self.import_ms = ready["import_ms"]
        return process

    @property
    def arn(self) -> str:
        from iam_sudo.core.partitions import partition_of_region

        partition = partition_of_region(self.region).name
        return f"arn:{partition}:lambda:{self.region}:{self.account}:function:{self.name}"

    def invoke(self, event: Any, boto_dir: Path, invoked_arn: str | None = None) -> dict[str, Any]:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = self._start(boto_dir)
            assert self.process.stdin is not None
            assert self.process.stdout is not None
            request = {
                "event": event,
                "request_id": str(uuid.uuid4()),
                "invoked_function_arn": invoked_arn or self.arn,
            }
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply: dict[str, Any] = json.loads(self.process.stdout.readline())
            self.logs.extend(reply.pop("logs", []))
            return reply

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class LambdaStandIn:
    """Serves Lambda's Invoke API on loopback; reach it with ``AWS_ENDPOINT_URL_LAMBDA``."""

    def __init__(self) -> None:
        self.functions: dict[str, Function] = {}
        self.invocations: list[tuple[str, Any]] = []
        self._temp = tempfile.TemporaryDirectory(prefix="lambda-stand-in-")
        self.boto_dir = runtime_boto_dir(Path(self._temp.name) / "runtime")
        self.server = LoopbackServer(("127.0.0.1", free_port()), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_function(
        self,
        name: str,
        archive: Path,
        env: dict[str, str],
        *,
        account: str = "123456789012",
        region: str | None = None,
    ) -> Function:
        """Deploy ``archive`` (a zip) as function ``name`` with exactly ``env`` (plus PATH).

        The function lives in ``account`` and ``region`` (default: the env's AWS_REGION,
        else us-east-1); one stand-in serves one account and region per name.
        """
        region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        code_dir = extract(archive, Path(self._temp.name) / "functions" / name)
        # As Lambda sets them: the function's own name and region.
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            **env,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        function = Function(name, code_dir, full_env, account, region)
        self.functions[name] = function
        return function

    def stop(self) -> None:
        self.server.shutdown()
        for function in self.functions.values():
            function.stop()
        self._temp.cleanup()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it, headers and body in separate segments meet the client's delayed
            # ACK: 40 ms per request, which would dwarf the delay being measured.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, kind: str, message: str) -> None:
                self._send(status, {"Type": "User", "message": message}, {"x-amzn-ErrorType": kind})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("?")[0].strip("/").split("/")
                if (
                    len(parts) != 4
                    or parts[:2] != ["2015-03-31", "functions"]
                    or parts[3] != "invocations"
                ):
                    self._error(404, "UnknownOperationException", f"unknown path {self.path}")
                    return
                target = unquote(parts[2])
                name, _, qualifier = target.rsplit(":function:", 1)[-1].partition(":")
                query = parse_qs(self.path.partition("?")[2])
                qualifier = qualifier or query.get("Qualifier", [""])[0]
                function = stand_in.functions.get(name)
                if function is not None and ":function:" in target:
                    # An ARN (full or partial) names the account, and a full one the region:
                    # Lambda finds no function of that name there.
                    scope = target.rsplit(":function:", 1)[0].split(":")
                    if scope[-1] != function.account or (
                        len(scope) > 1 and scope[-2] != function.region
                    ):
                        function = None
                if function is None:
                    self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
                    return
                if (
                    self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                    != "RequestResponse"
                ):
                    self._error(400, "InvalidParameterValueException", "only RequestResponse here")
                    return
                try:
                    event = json.loads(body or b"{}")
                except ValueError:
                    self._error(400, "InvalidRequestContentException", "payload is not JSON")
                    return
                stand_in.invocations.append((name, event))
                # As Lambda's context gives it: the ARN invoked, with its qualifier if any.
                invoked = function.arn + (f":{qualifier}" if qualifier else "")
                reply = function.invoke(event, stand_in.boto_dir, invoked)
                headers = {"X-Amz-Executed-Version": "$LATEST"}
                if "error" in reply:
                    self._send(
                        200, reply["error"], {**headers, "X-Amz-Function-Error": "Unhandled"}
                    )
                else:
                    self._send(200, reply["result"], headers)

        return Handler

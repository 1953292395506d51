"""serve's HTTP server on its own: routes, secrets, Host, methods, IMDSv2, bounds.

The roles here are fixed credentials (no AWS): what is checked is what the server
answers to whom. The SDKs' own fetchers run against it in tests/integration/test_serve.py too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from iam_sudo.core.compose import reach
from iam_sudo.settings.credentials import Credentials
from iam_sudo.steps import serve as serve_module
from iam_sudo.steps.serve import CredentialsServer, ServiceRoute


class Fixed:
    """A role that always has the same credentials (or fails with ``error``)."""

    def __init__(self, key: str, minutes: float = 60, error: Exception | None = None) -> None:
        expiration = datetime.now(UTC) + timedelta(minutes=minutes)
        self.credentials = Credentials(key, f"secret-{key}", f"token-{key}", expiration)
        self.error = error
        self.asked = 0

    async def get(self) -> Credentials:
        self.asked += 1
        if self.error is not None:
            raise self.error
        return self.credentials


async def send(
    port: int, method: str, path: str, headers: dict[str, str] | None = None, raw: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request as bytes on the wire (any Host, any method); (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items() if v)]
    writer.write(raw or ("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(), 30)
    except ConnectionResetError:
        data = b""
    writer.close()
    if not data:
        return 0, {}, b""
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split(" ")[1]), {k.lower(): v for k, v in fields.items()}, body


ROLES = {"api": Fixed("API"), "worker": Fixed("WORKER")}


@pytest.fixture
async def server() -> AsyncIterator[CredentialsServer]:
    routes = {
        name: ServiceRoute(name, f"secret-of-{name}-" + "x" * 32, role, f"role of {name}")
        for name, role in {**ROLES, "broken": Fixed("B", error=RuntimeError("STS said no"))}.items()
    }

    def hosts(port: int) -> frozenset[str]:
        return reach("host", "127.0.0.1", port, {}).host_headers()

    async with CredentialsServer(
        routes,
        address="127.0.0.1",
        port=0,
        hosts=hosts,
        imds={"api": ("127.0.0.1", 0), "worker": ("127.0.0.1", 0)},
        metadata={"region": "eu-west-1", "account": "123456789012"},
    ) as running:
        yield running


def secret(server: CredentialsServer, name: str) -> str:
    return server.routes[name].secret


async def test_each_service_gets_its_own_role_with_its_own_secret(
    server: CredentialsServer,
) -> None:
    for name, key in (("api", "API"), ("worker", "WORKER")):
        status, headers, body = await send(
            server.port, "GET", f"/v2/credentials/{name}", {"Authorization": secret(server, name)}
        )
        assert status == 200
        served = json.loads(body)
        assert served["AccessKeyId"] == key
        assert set(served) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
        assert served["Expiration"].endswith("Z")
        assert headers["cache-control"] == "no-store"


async def test_a_services_secret_is_refused_on_another_services_route(
    server: CredentialsServer,
) -> None:
    api_secret = secret(server, "api")
    status, _, body = await send(
        server.port, "GET", "/v2/credentials/worker", {"Authorization": api_secret}
    )
    assert status == 401
    assert b"WORKER" not in body
    assert server.routes["worker"].refused == 1
    # An unknown service answers exactly as a wrong secret: nothing to probe names with.
    unknown = await send(server.port, "GET", "/v2/credentials/nobody", {"Authorization": "x"})
    missing = await send(server.port, "GET", "/v2/credentials/api")
    assert unknown[0] == missing[0] == 401
    assert unknown[2] == missing[2]


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "127.0.0.1:1", "attacker.test", "", "169.254.169.254"]
)
async def test_a_wrong_host_is_refused_before_anything_else(
    server: CredentialsServer, host: str
) -> None:
    """A web page reaching the server by DNS rebinding sends its own host name."""
    status, _, body = await send(
        server.port,
        "GET",
        "/v2/credentials/api",
        {"Host": host.format(port=server.port), "Authorization": secret(server, "api")},
    )
    assert status == 403 if host else status in (403, 400)
    assert b"API" not in body
    assert server.routes["api"].asks == 0  # the role was not even asked


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_are_refused(server: CredentialsServer, method: str) -> None:
    status, headers, _ = await send(
        server.port, method, "/v2/credentials/api", {"Authorization": secret(server, "api")}
    )
    assert status == 405
    assert headers["allow"] == "GET"


@pytest.mark.parametrize("path", ["/", "/creds", "/v1/credentials/api", "/latest/api/token"])
async def test_other_paths_are_not_found(server: CredentialsServer, path: str) -> None:
    status, _, _ = await send(server.port, "GET", path, {"Authorization": secret(server, "api")})
    assert status == 404


async def test_a_request_with_a_body_or_garbage_is_refused(server: CredentialsServer) -> None:
    status, _, _ = await send(
        server.port, "GET", "/v2/credentials/api", {"Content-Length": "5"}, b""
    )
    assert status == 400
    assert (await send(server.port, "GET", "/", raw=b"NONSENSE\r\n\r\n"))[0] == 400
    big = b"GET / HTTP/1.1\r\nX: " + b"a" * (serve_module.MAX_HEAD_BYTES + 10) + b"\r\n\r\n"
    assert (await send(server.port, "GET", "/", raw=big))[0] == 431


async def test_a_role_that_fails_gives_its_service_a_clear_error_and_not_the_others(
    server: CredentialsServer,
) -> None:
    status, _, body = await send(
        server.port, "GET", "/v2/credentials/broken", {"Authorization": secret(server, "broken")}
    )
    assert status == 503
    message = json.loads(body)["Message"]
    assert "role of broken" in message
    assert "STS said no" in message
    ok = await send(
        server.port, "GET", "/v2/credentials/api", {"Authorization": secret(server, "api")}
    )
    assert ok[0] == 200


async def test_expired_credentials_are_never_served() -> None:
    old = Fixed("OLD", minutes=-1)
    route = ServiceRoute("old", "s" * 43, old, "old role")
    async with CredentialsServer(
        {"old": route},
        address="127.0.0.1",
        port=0,
        hosts=lambda port: frozenset({f"127.0.0.1:{port}"}),
    ) as running:
        status, _, body = await send(
            running.port, "GET", "/v2/credentials/old", {"Authorization": "s" * 43}
        )
    assert status == 503
    assert b"OLD" not in body
    assert b"expired" in body


async def test_task_metadata_v3_and_v4_name_the_service(server: CredentialsServer) -> None:
    for version in ("v3", "v4"):
        status, _, body = await send(server.port, "GET", f"/{version}/api")
        assert status == 200
        assert json.loads(body)["Name"] == "api"
        status, _, body = await send(server.port, "GET", f"/{version}/api/task")
        task = json.loads(body)
        assert task["TaskARN"] == "arn:aws:ecs:eu-west-1:123456789012:task/iam-sudo/api"
        assert "SecretAccessKey" not in body.decode()
    assert (await send(server.port, "GET", "/v4/nobody"))[0] == 404


# -- IMDSv2 (EC2 User Guide, "Use the Instance Metadata Service to access instance
#    metadata": a PUT for a token with a TTL of 1 to 21600 seconds, then GETs with it) --


async def imds_token(port: int, ttl: str = "21600", **extra: str) -> tuple[int, bytes]:
    status, _, body = await send(
        port,
        "PUT",
        "/latest/api/token",
        {"X-aws-ec2-metadata-token-ttl-seconds": ttl, **extra},
    )
    return status, body


async def test_imds_v2_serves_the_services_role_with_a_token(server: CredentialsServer) -> None:
    port = server.imds_port("api")
    status, token = await imds_token(port)
    assert status == 200
    headers = {"X-aws-ec2-metadata-token": token.decode()}
    listing = "/latest/meta-data/iam/security-credentials/"
    status, _, name = await send(port, "GET", listing, headers)
    assert (status, name) == (200, b"iam-sudo-api")
    status, _, body = await send(port, "GET", f"{listing}{name.decode()}", headers)
    served = json.loads(body)
    assert (served["Code"], served["AccessKeyId"]) == ("Success", "API")


@pytest.mark.parametrize("ttl", ["0", "21601", "-5", "abc", ""])
async def test_imds_refuses_a_token_ttl_out_of_range(server: CredentialsServer, ttl: str) -> None:
    assert (await imds_token(server.imds_port("api"), ttl))[0] == 400


async def test_imds_refuses_a_token_request_that_went_through_a_proxy(
    server: CredentialsServer,
) -> None:
    status, _ = await imds_token(server.imds_port("api"), **{"X-Forwarded-For": "10.0.0.1"})
    assert status == 403


async def test_imds_v1_and_another_services_token_are_refused(server: CredentialsServer) -> None:
    api, worker = server.imds_port("api"), server.imds_port("worker")
    path = "/latest/meta-data/iam/security-credentials/iam-sudo-worker"
    assert (await send(worker, "GET", path))[0] == 401  # IMDSv1: no token
    _, api_token = await imds_token(api)
    status, _, body = await send(
        worker, "GET", path, {"X-aws-ec2-metadata-token": api_token.decode()}
    )
    assert status == 401
    assert b"WORKER" not in body
    assert (await send(api, "GET", "/latest/api/token"))[0] == 405


async def test_connections_beyond_the_bound_are_closed_unanswered(
    server: CredentialsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[Any] = []
    for _ in range(serve_module.MAX_CONNECTIONS):
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\n")  # and never the rest
        held.append(writer)
    await asyncio.sleep(0.2)  # let the server accept them all
    status, _, _ = await send(server.port, "GET", "/v3/api")
    assert status == 0  # closed without an answer
    for writer in held:
        writer.close()
    for _ in range(100):
        if (await send(server.port, "GET", "/v3/api"))[0] == 200:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the server did not recover once the connections closed")


# -- the SDKs' own fetchers against the server (botocore 1.40, the JS SDK v3) ------------


async def test_botocores_container_fetcher_gets_the_services_role(
    server: CredentialsServer,
) -> None:
    from botocore.utils import ContainerMetadataFetcher

    url = f"http://127.0.0.1:{server.port}/v2/credentials/api"
    headers = {"Authorization": secret(server, "api")}
    served = await asyncio.to_thread(ContainerMetadataFetcher().retrieve_full_uri, url, headers)
    assert served["AccessKeyId"] == "API"


async def test_botocore_rereads_the_token_file_at_each_refresh(tmp_path: Path) -> None:
    """A restarted serve writes a new token where the container looks; the SDK's next
    refresh reads it (botocore's ContainerProvider reads the file in each fetch)."""
    from botocore.credentials import ContainerProvider

    short = Fixed("SHORT", minutes=5)  # inside botocore's 10-minute mandatory window
    route = ServiceRoute("api", "first-secret", short, "api role")
    token_file = tmp_path / "token"
    token_file.write_text("first-secret")
    async with CredentialsServer(
        {"api": route},
        address="127.0.0.1",
        port=0,
        hosts=lambda port: frozenset({f"127.0.0.1:{port}"}),
    ) as running:
        environ = {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": (
                f"http://127.0.0.1:{running.port}/v2/credentials/api"
            ),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
        credentials = await asyncio.to_thread(ContainerProvider(environ).load)
        route.secret = "second-secret"
        token_file.write_text("second-secret")
        frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
    assert frozen.access_key == "SHORT"
    assert short.asked == 2  # the refresh asked again, with the new token


async def test_botocore_refuses_a_token_file_ending_in_a_newline(tmp_path: Path) -> None:
    """Why serve writes the token without one (botocore's _validate_auth_token)."""
    from botocore.credentials import ContainerProvider

    token_file = tmp_path / "token"
    token_file.write_text("secret\n")
    environ = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/x",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    with pytest.raises(ValueError, match="not a legal header value"):
        ContainerProvider(environ).load()


async def test_botocores_instance_metadata_fetcher_gets_the_services_role(
    server: CredentialsServer,
) -> None:
    from botocore.utils import InstanceMetadataFetcher

    fetcher = InstanceMetadataFetcher(
        timeout=5,
        num_attempts=1,
        base_url=f"http://127.0.0.1:{server.imds_port('worker')}/",
        env={},
        config={"ec2_metadata_v1_disabled": True},
    )
    served = await asyncio.to_thread(fetcher.retrieve_iam_role_credentials)
    assert served["access_key"] == "WORKER"
    assert served["role_name"] == "iam-sudo-worker"


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://127.0.0.1:9911/v2/credentials/api", True),
        ("http://localhost:9911/v2/credentials/api", True),
        ("http://169.254.170.2:9911/v2/credentials/api", True),
        ("http://169.254.170.2/v2/credentials/api", True),
        ("http://host.docker.internal:9911/v2/credentials/api", False),
        ("http://172.17.0.1:9911/v2/credentials/api", False),
        # botocore checks the host whatever the scheme: https does not help it.
        ("https://host.docker.internal:9911/v2/credentials/api", False),
    ],
)
def test_botocores_allowed_hosts_for_a_full_uri(url: str, accepted: bool) -> None:
    """Which endpoints a set-up may write (docs/serve.md, "Network set-ups")."""
    from botocore.utils import ContainerMetadataFetcher

    fetcher = ContainerMetadataFetcher()
    if accepted:
        fetcher._validate_allowed_url(url)
    else:
        with pytest.raises(ValueError, match="Unsupported host"):
            fetcher._validate_allowed_url(url)


JS_FETCH = """\
const { fromHttp, fromInstanceMetadata } = require("@aws-sdk/credential-providers");
const which = process.argv[2];
const provider = which === "imds" ? fromInstanceMetadata({ timeout: 5000 }) : fromHttp({});
provider()
  .then((c) => console.log(which + " " + c.accessKeyId))
  .catch((e) => console.log(which + " failed " + e.message.split("\\n")[0]));
"""


async def run_node(script: Path, which: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        which,
        env={"PATH": os.environ["PATH"], "HOME": str(script.parent), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return out.decode().strip() or err.decode()


async def test_the_js_sdks_fetchers_get_the_services_roles(
    server: CredentialsServer, node_sdk: Path, tmp_path: Path
) -> None:
    script = node_sdk / "serve_fetch.js"
    script.write_text(JS_FETCH)
    token_file = tmp_path / "token"
    token_file.write_text(secret(server, "api"))
    http = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{server.port}/v2/credentials/api",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    imds = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{server.imds_port('worker')}"}
    assert await run_node(script, "http", http) == "http API"
    assert await run_node(script, "imds", imds) == "imds WORKER"
    refused = {**http, "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://host.docker.internal:1/x"}
    assert (await run_node(script, "http", refused)).startswith("http failed URL not accepted")


@pytest.mark.skipif(sys.platform != "linux", reason="IP_FREEBIND is Linux's")
async def test_it_listens_on_ecs_address_before_docker_gives_it_to_a_bridge() -> None:
    """The link-local set-up starts serve before `docker compose up` creates the network
    whose gateway is 169.254.170.2 (docs/serve.md); this machine has no such address."""
    route = ServiceRoute("api", "s" * 43, Fixed("A"), "api role")
    async with CredentialsServer(
        {"api": route},
        address="169.254.170.2",
        port=0,
        hosts=lambda port: reach("link-local", "169.254.170.2", port, {}).host_headers(),
    ) as running:
        assert running.port > 0


@pytest.fixture
async def loop_errors() -> list[dict[str, Any]]:
    """What reaches the event loop's exception handler (asyncio prints it as a traceback
    on serve's terminal): nothing a client sends may get there."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


# "²" is a digit to str.isdigit() (and a latin-1 byte), not to int(); int() refuses 4300
# digits or more. Neither is a number of bytes or seconds.
CRAFTED_NUMBERS = [b"\xb2", b"9" * 5000]


@pytest.mark.parametrize("number", CRAFTED_NUMBERS)
async def test_a_crafted_content_length_is_a_bad_request_not_a_traceback(
    server: CredentialsServer, loop_errors: list[dict[str, Any]], number: bytes
) -> None:
    head = f"GET /v2/credentials/api HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
    status, _, _ = await send(
        server.port, "GET", "/", raw=head + b"Content-Length: " + number + b"\r\n\r\n"
    )
    assert status == 400
    assert loop_errors == []


@pytest.mark.parametrize("number", CRAFTED_NUMBERS)
async def test_a_crafted_imds_token_ttl_is_a_bad_request_not_a_traceback(
    server: CredentialsServer, loop_errors: list[dict[str, Any]], number: bytes
) -> None:
    port = server.imds_port("api")
    head = f"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    ttl = b"X-aws-ec2-metadata-token-ttl-seconds: " + number + b"\r\n\r\n"
    status, _, body = await send(port, "PUT", "/", raw=head + ttl)
    assert status == 400
    assert body == b""
    assert loop_errors == []


async def test_a_fault_while_answering_is_a_500_and_one_log_line_without_the_request(
    server: CredentialsServer,
    loop_errors: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(rest: str) -> Any:
        raise KeyError(f"a message quoting {rest} and {secret(server, 'api')}")

    monkeypatch.setattr(server, "_task_metadata", broken)
    status, _, body = await send(server.port, "GET", "/v4/api")
    assert status == 500
    assert json.loads(body)["Code"] == "InternalError"
    assert loop_errors == []
    [record] = [r for r in caplog.records if r.name == "iam_sudo"]
    assert record.getMessage() == "serve: a request could not be answered (KeyError)"


async def test_one_peer_holding_connections_open_does_not_starve_the_others(
    server: CredentialsServer,
) -> None:
    """A container (its own address on the bridge) that opens connections and never
    finishes a request: other containers are still answered. 127.0.0.2 stands for it."""
    held: list[Any] = []
    for _ in range(serve_module.MAX_CONNECTIONS):
        _, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=("127.0.0.2", 0)
        )
        writer.write(b"GET / HTTP/1.1\r\n")  # and never the rest
        held.append(writer)
    await asyncio.sleep(0.2)  # let the server accept them all
    try:
        status, _, _ = await send(server.port, "GET", "/v3/api")
        assert status == 200
    finally:
        for writer in held:
            writer.close()

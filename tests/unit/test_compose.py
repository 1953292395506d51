"""serve's compose shape: x-iam-sudo, --service, the env file and the override (pure)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from iam_sudo.core.compose import (
    IMDS_MIN_DURATION,
    ServiceSpec,
    bind_exposure,
    check_imds_bind,
    check_setup_bind,
    check_unique,
    env_file,
    override,
    parse_compose,
    parse_service_option,
    reach,
    setup_of_bind,
)
from iam_sudo.core.exceptions import RequestError

COMPOSE = """
services:
  api:    { image: my/api,    x-iam-sudo: { role: ApiTaskRole } }
  worker: { image: my/worker, x-iam-sudo: { role: WorkerTaskRole, principal: "Service:ecs-tasks.amazonaws.com" } }
  admin:  { image: my/admin,  x-iam-sudo: { assume: "arn:aws:iam::123456789012:role/Admin" } }
  db:     { image: postgres }
"""  # noqa: E501 (the README's example, as users write it)


def test_the_readme_example_gives_two_simulated_services_and_one_assumed() -> None:
    specs, services = parse_compose(yaml.safe_load(COMPOSE), "compose.yml")
    assert [(s.name, s.kind, s.role) for s in specs] == [
        ("api", "simulate", "ApiTaskRole"),
        ("worker", "simulate", "WorkerTaskRole"),
        ("admin", "assume", "arn:aws:iam::123456789012:role/Admin"),
    ]
    assert dict(specs[1].options) == {"principal": "Service:ecs-tasks.amazonaws.com"}
    assert set(services) == {"api", "worker", "admin", "db"}


def test_simulate_options_are_passed_by_their_python_names() -> None:
    specs, _ = parse_compose(
        {
            "services": {
                "w": {
                    "x-iam-sudo": {
                        "role": "R",
                        "base-role": "Base",
                        "account": "210987654321",
                        "exact": True,
                        "duration": 1800,
                        "imds": True,
                    }
                }
            }
        },
        "f",
    )
    [spec] = specs
    assert dict(spec.options) == {
        "base_role": "Base",
        "account": "210987654321",
        "exact": True,
        "duration_seconds": 1800,
    }
    assert spec.imds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"role": "A", "assume": "B"}, "either role (simulate) or assume"),
        ({"principal": "Service:x"}, "either role (simulate) or assume"),
        ({"role": "A", "external-id": "x"}, "unknown key 'external-id'"),
        ({"assume": "A", "principal": "Service:x"}, "unknown key 'principal'"),
        ({"role": "A", "principal": "nocolon"}, "expected TYPE:ID"),
        ({"role": "A", "account": 12345}, "not a 12-digit account id"),
        ({"role": "A", "duration": 60}, "outside STS's 900-43200 s"),
        ({"role": "A", "duration": "1h"}, "duration must be a number"),
        ({"role": "A", "exact": "yes"}, "exact must be true or false"),
        ({"role": " A"}, "non-empty name or ARN"),
        (["A"], "a role name or a mapping"),
        ({"role": "A", "imds": True, "duration": 900}, f"at least {IMDS_MIN_DURATION} s"),
    ],
)
def test_a_wrong_extension_names_the_service_and_what_is_wrong(value: Any, message: str) -> None:
    with pytest.raises(RequestError, match="service api") as caught:
        parse_compose({"services": {"api": {"x-iam-sudo": value}}}, "f")
    assert message in str(caught.value)


def test_a_compose_file_without_any_extension_is_refused() -> None:
    with pytest.raises(RequestError, match="no service has an x-iam-sudo key"):
        parse_compose({"services": {"db": {"image": "postgres"}}}, "f")
    with pytest.raises(RequestError, match="not a compose file"):
        parse_compose(["services"], "f")


def test_service_options_simulate_or_assume() -> None:
    assert parse_service_option("api=ApiTaskRole") == ServiceSpec("api", "simulate", "ApiTaskRole")
    assert parse_service_option("a=assume:arn:aws:iam::1:role/X") == ServiceSpec(
        "a", "assume", "arn:aws:iam::1:role/X"
    )
    for bad in ("api", "api=", "../x=Role", "a b=Role"):
        with pytest.raises(RequestError, match="--service"):
            parse_service_option(bad)
    with pytest.raises(RequestError, match="given twice"):
        check_unique([parse_service_option("a=R"), parse_service_option("a=S")])


def test_services_whose_names_differ_only_in_case_are_refused() -> None:
    """Their token directories and env files are one on a case-insensitive file system
    (macOS, Windows): one would be served the other's role."""
    with pytest.raises(RequestError, match="services api and API differ only in case"):
        check_unique([parse_service_option("api=R"), parse_service_option("API=assume:Admin")])
    check_unique([parse_service_option("api=R"), parse_service_option("api2=R")])


def test_services_with_the_same_role_and_options_share_its_credentials() -> None:
    one, two, three = (parse_service_option(t) for t in ("a=R", "b=R", "c=assume:R"))
    assert one.role_key == two.role_key != three.role_key


def lines(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_the_env_file_names_the_endpoint_the_token_file_and_the_region() -> None:
    spec = ServiceSpec("api", "simulate", "ApiTaskRole", imds=True)
    where = reach("link-local", "169.254.170.2", 9911, {"api": 9912})
    values = lines(env_file(spec, where, "/p/.iam-sudo/api/token", "eu-west-1"))
    assert values == {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2:9911/v2/credentials/api",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/p/.iam-sudo/api/token",
        "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2:9911/v4/api",
        "ECS_CONTAINER_METADATA_URI": "http://169.254.170.2:9911/v3/api",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://169.254.170.2:9912/",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }


def test_the_env_file_refuses_a_path_docker_would_not_read_literally() -> None:
    spec = ServiceSpec("api", "simulate", "R")
    with pytest.raises(RequestError, match="--env-dir"):
        env_file(spec, reach("host", "127.0.0.1", 1, {}), "/my project/token", None)


def test_through_the_sidecar_services_use_ecs_address_on_port_80_and_imds_the_host() -> None:
    where = reach("sidecar", "127.0.0.1", 40000, {"api": 40001})
    assert where.credentials_url("api") == "http://169.254.170.2/v2/credentials/api"
    assert where.imds_url("api") == "http://host.docker.internal:40001/"
    assert "169.254.170.2" in where.host_headers()


def test_the_host_allow_list_holds_only_what_clients_send() -> None:
    hosts = reach("host", "127.0.0.1", 5000, {}).host_headers()
    assert "127.0.0.1:5000" in hosts
    assert "localhost:5000" in hosts
    assert not {"127.0.0.1", "evil.example:5000", "127.0.0.1:5001"} & hosts


def test_an_explicit_bind_implies_its_setup() -> None:
    assert setup_of_bind("127.0.0.1", "linux") == "host"
    assert setup_of_bind("169.254.170.2", "darwin") == "link-local"
    # Every interface includes loopback, where the services' URLs point: host processes.
    for everywhere in EVERY_INTERFACE:
        assert setup_of_bind(everywhere, "linux") == "host"
    assert setup_of_bind("10.1.2.3", "linux") == "custom"


@pytest.mark.parametrize(
    ("setup", "address"),
    [("link-local", "127.0.0.1"), ("host", "169.254.170.2"), ("sidecar", "10.1.2.3")],
)
def test_a_setup_and_a_bind_that_do_not_go_together_are_refused(setup: str, address: str) -> None:
    """The services' URLs would point where the server does not listen."""
    with pytest.raises(RequestError, match=f"--setup {setup}"):
        check_setup_bind(setup, address)


def test_link_local_on_every_interface_still_points_containers_at_ecs_address() -> None:
    for everywhere in EVERY_INTERFACE:
        check_setup_bind("link-local", everywhere)
        where = reach("link-local", everywhere, 9911, {})
        assert where.credentials_url("api") == "http://169.254.170.2:9911/v2/credentials/api"


def compose_override(setup: str, services: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    specs = [parse_service_option(f"{name}=R") for name in ("api", "worker")]
    where = reach(setup, "127.0.0.1" if setup != "link-local" else "169.254.170.2", 9911, {})
    return override(
        specs,
        services,
        where,
        {"api": "/p/iam-sudo.api.env", "worker": "/p/iam-sudo.worker.env"},
        {"api": "/p/.iam-sudo/api", "worker": "/p/.iam-sudo/worker"},
    )


def test_link_local_joins_the_iam_sudo_network_and_keeps_the_services_own_networks() -> None:
    document, warnings = compose_override(
        "link-local", {"api": {"image": "a"}, "worker": {"networks": ["back"]}}
    )
    api, worker = document["services"]["api"], document["services"]["worker"]
    assert api["networks"] == {"default": {}, "iam-sudo": {}}  # the default is kept
    assert worker["networks"] == {"back": {}, "iam-sudo": {}}
    assert api["env_file"] == ["/p/iam-sudo.api.env"]
    # The token's directory, not the file: a restarted serve replaces the file.
    assert api["volumes"] == ["/p/.iam-sudo/api:/p/.iam-sudo/api:ro"]
    [config] = document["networks"]["iam-sudo"]["ipam"]["config"]
    assert config == {"subnet": "169.254.170.0/24", "gateway": "169.254.170.2"}
    assert warnings == []


def test_a_service_mounts_only_its_own_token_directory() -> None:
    document, _ = compose_override("link-local", {})
    assert all("worker" not in v for v in document["services"]["api"]["volumes"])


def test_the_sidecar_forwards_ecs_address_to_the_host() -> None:
    document, _ = compose_override("sidecar", {})
    sidecar = document["services"]["iam-sudo-endpoint"]
    assert sidecar["networks"] == {"iam-sudo": {"ipv4_address": "169.254.170.2"}}
    assert sidecar["command"][-1] == "TCP:host.docker.internal:9911"
    assert document["services"]["api"]["depends_on"] == ["iam-sudo-endpoint"]


def test_loopback_warns_about_services_not_on_the_host_network() -> None:
    document, warnings = compose_override(
        "host", {"api": {"network_mode": "host"}, "worker": {"image": "w"}}
    )
    assert "networks" not in document["services"]["api"]
    assert len(warnings) == 1
    assert "worker" in warnings[0]


def test_services_loopback_does_not_reach_are_named_in_one_warning() -> None:
    _, warnings = compose_override("host", {"api": {"image": "a"}, "worker": {"image": "w"}})
    assert len(warnings) == 1
    assert warnings[0].startswith("services api, worker: with the server on loopback only")


EVERY_INTERFACE = ("0.0.0.0", "::")  # noqa: S104 (what is checked)


@pytest.mark.parametrize("address", [*EVERY_INTERFACE, "10.1.2.3", "172.17.0.1", "myhost.lan"])
def test_a_bind_beyond_this_machine_is_warned_about(address: str) -> None:
    warning = bind_exposure(address)
    assert warning is not None
    assert "any machine that can reach it may connect" in warning
    if address in EVERY_INTERFACE:
        assert "every interface" in warning


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_and_ecs_address_are_not_warned_about(address: str) -> None:
    assert bind_exposure(address) is None
    assert bind_exposure("169.254.170.2") is None


def test_imds_on_every_interface_is_refused() -> None:
    """IMDS has no secret: on 0.0.0.0 every machine of every network would get the role."""
    api = ServiceSpec("api", "simulate", "R", imds=True)
    for address in EVERY_INTERFACE:
        with pytest.raises(RequestError, match=f"--bind {address} with imds \\(api\\)"):
            check_imds_bind([api, ServiceSpec("db", "simulate", "D")], address)
    check_imds_bind([api], "127.0.0.1")
    check_imds_bind([ServiceSpec("db", "simulate", "D")], EVERY_INTERFACE[0])

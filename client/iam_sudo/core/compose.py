"""What ``iam-sudo serve`` serves, and what each service gets: pure parsing and rendering.

A service is named in a compose file (its ``x-iam-sudo`` key) or on the command line
(``--service NAME=ROLE``). Each gets a role to simulate or assume, and how it reaches the
server: an ECS container credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with
a token file) and, if asked, an IMDSv2 endpoint of its own. This module turns those into
the env file (docker's ``--env-file`` format) and the compose override file; it reads and
writes nothing itself.

The ``x-iam-sudo`` shape (docs/serve.md)::

    x-iam-sudo: { role: ApiTaskRole }                      # simulate (local or remote)
    x-iam-sudo:
      role: WorkerTaskRole
      principal: Service:ecs-tasks.amazonaws.com           # simulate's options, by name
      base-role: IAMSudoUser
      account: "210987654321"
      exact: true
      duration: 3600                                       # --local only
      imds: true                                           # also an IMDSv2 endpoint
    x-iam-sudo: { assume: arn:aws:iam::123456789012:role/Admin, external-id: x }
    x-iam-sudo: ApiTaskRole                                # short for { role: ApiTaskRole }
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .arn import is_account_id
from .defaults import DEFAULT_PORT as DEFAULT_PORT
from .defaults import SETUPS as SETUPS
from .exceptions import RequestError
from .principal import Principal

# docker compose's own rule for service names (compose-spec: "[a-zA-Z0-9._-]+"); the
# name also becomes a URL path segment and a file name, so nothing else is accepted.
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
_SIMULATE_KEYS = {"role", "principal", "base-role", "account", "exact", "duration", "imds"}
_ASSUME_KEYS = {"assume", "external-id", "session-name", "duration", "imds"}
# STS AssumeRole's DurationSeconds range (STS API reference, AssumeRole).
MIN_DURATION, MAX_DURATION = 900, 43200
# What docker's --env-file and compose's env_file both read literally: no quotes,
# whitespace, comment marks or interpolation.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:\-\[\]@+=,%~]*")

# Where the ECS credentials endpoint answers (routes are per service).
CREDENTIALS_ROUTE = "/v2/credentials/"
METADATA_V3, METADATA_V4 = "/v3/", "/v4/"
# ECS's own address for the container credentials endpoint: both botocore's allowed
# hosts and the JS SDK's checkUrl accept it over plain http.
ECS_LINK_LOCAL = "169.254.170.2"
LINK_LOCAL_SUBNET = "169.254.170.0/24"
NETWORK = "iam-sudo"
SIDECAR = "iam-sudo-endpoint"
SIDECAR_IMAGE = "alpine/socat"
DESKTOP_HOST = "host.docker.internal"


@dataclass(frozen=True)
class ServiceSpec:
    """One service: its name, the role it gets and how.

    ``kind`` is ``simulate`` (``role`` is a part of the role's name, as simulate's
    --role-name) or ``assume`` (a name or ARN). ``options`` are the fetch's keyword
    arguments (``principal``, ``base_role``, ``account``, ``exact``, ``duration_seconds``,
    ``external_id``, ``session_name``); ``imds`` asks for an IMDSv2 endpoint too.
    """

    name: str
    kind: str
    role: str
    options: tuple[tuple[str, Any], ...] = ()
    imds: bool = False

    @property
    def role_key(self) -> tuple[Any, ...]:
        """What identifies the role's credentials: services with equal keys share them."""
        return (self.kind, self.role, self.options)

    def describe(self) -> str:
        """One line for the start banner, e.g. ``simulate TaskRole (principal ...)``."""
        extra = ", ".join(f"{key.replace('_', '-')} {value}" for key, value in self.options)
        return f"{self.kind} {self.role}" + (f" ({extra})" if extra else "")


def check_service_name(name: str, where: str) -> str:
    """``name`` if it is a compose service name usable in a path and a file name."""
    if not _SERVICE_NAME.fullmatch(name):
        raise RequestError(
            f"{where}: invalid service name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def parse_service_option(text: str) -> ServiceSpec:
    """``--service NAME=ROLE`` (simulate ROLE) or ``NAME=assume:ROLE`` (assume ROLE)."""
    name, sep, role = text.partition("=")
    if not sep or not role.strip():
        raise RequestError(
            f"--service {text!r}: expected NAME=ROLE or NAME=assume:ROLE, e.g. api=ApiTaskRole"
        )
    check_service_name(name, "--service")
    kind, colon, rest = role.partition(":")
    if colon and kind == "assume":
        return ServiceSpec(name, "assume", _role_text(rest, f"--service {name}"))
    return ServiceSpec(name, "simulate", _role_text(role, f"--service {name}"))


def _role_text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise RequestError(f"{where}: the role must be a non-empty name or ARN")
    return value


def parse_extension(name: str, value: object) -> ServiceSpec:
    """The :class:`ServiceSpec` of compose service ``name`` from its ``x-iam-sudo`` value.

    Raises :class:`RequestError` naming the service and the key that is wrong.
    """
    where = f"service {name}: x-iam-sudo"
    check_service_name(name, f"service {name}")
    if isinstance(value, str):
        value = {"role": value}
    if not isinstance(value, Mapping):
        raise RequestError(f"{where} must be a role name or a mapping with role or assume")
    if ("role" in value) == ("assume" in value):
        raise RequestError(f"{where}: give either role (simulate) or assume, not both or none")
    kind = "simulate" if "role" in value else "assume"
    allowed = _SIMULATE_KEYS if kind == "simulate" else _ASSUME_KEYS
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise RequestError(
            f"{where}: unknown key {unknown[0]!r} with {'role' if kind == 'simulate' else kind}"
            f" (allowed: {', '.join(sorted(allowed))})"
        )
    role = _role_text(value["role" if kind == "simulate" else "assume"], where)
    options: list[tuple[str, Any]] = []
    for key in sorted(value):
        item = value[key]
        if key in ("role", "assume", "imds"):
            continue
        if key == "exact":
            if not isinstance(item, bool):
                raise RequestError(f"{where}: exact must be true or false")
            if item:
                options.append(("exact", True))
        elif key == "duration":
            if isinstance(item, bool) or not isinstance(item, int):
                raise RequestError(f"{where}: duration must be a number of seconds")
            if not MIN_DURATION <= item <= MAX_DURATION:
                raise RequestError(
                    f"{where}: duration {item} is outside STS's {MIN_DURATION}-{MAX_DURATION} s"
                )
            options.append(("duration_seconds", item))
        else:
            if not isinstance(item, str | int) or isinstance(item, bool) or not str(item).strip():
                raise RequestError(f"{where}: {key} must be a non-empty string")
            options.append((key.replace("-", "_"), _checked(key, str(item), where)))
    imds = value.get("imds", False)
    if not isinstance(imds, bool):
        raise RequestError(f"{where}: imds must be true or false")
    spec = ServiceSpec(name, kind, role, tuple(options), imds)
    check_imds_duration(spec)
    return spec


def _checked(key: str, value: str, where: str) -> str:
    if key == "principal":
        try:
            Principal.parse(value)
        except RequestError as error:
            raise RequestError(f"{where}: {error}") from None
    if key == "account" and not is_account_id(value):
        raise RequestError(f"{where}: account {value!r} is not a 12-digit account id (quote it)")
    return value


# botocore's IMDS fetcher stretches credentials that expire within its refresh window
# (15 minutes) plus 2-10 minutes of jitter (botocore/utils.py,
# InstanceMetadataFetcher._evaluate_expiration); it then renews 15 minutes before the
# stretched expiry, up to 10 minutes after it was given them. Served credentials must
# therefore keep 10 minutes to live, which the refresh rule's margin (half a session up
# to 20 minutes) gives only to sessions of 20 minutes or more.
IMDS_MIN_DURATION = 1200


def check_imds_duration(spec: ServiceSpec) -> None:
    """Refuse an IMDSv2 endpoint for sessions shorter than :data:`IMDS_MIN_DURATION`."""
    duration = dict(spec.options).get("duration_seconds")
    if spec.imds and duration is not None and duration < IMDS_MIN_DURATION:
        raise RequestError(
            f"service {spec.name}: imds needs a duration of at least {IMDS_MIN_DURATION} s "
            "(botocore stretches IMDS credentials about to expire past their expiry); "
            "use a longer duration or the container endpoint alone"
        )


def parse_compose(document: object, source: str) -> tuple[list[ServiceSpec], dict[str, Any]]:
    """The services of a parsed compose file that have ``x-iam-sudo``, and all services.

    Raises :class:`RequestError` if ``document`` has no ``services`` mapping or none of
    them has ``x-iam-sudo``.
    """
    services = document.get("services") if isinstance(document, Mapping) else None
    if not isinstance(services, Mapping):
        raise RequestError(f"{source}: not a compose file (no services mapping)")
    specs = [
        parse_extension(str(name), service["x-iam-sudo"])
        for name, service in services.items()
        if isinstance(service, Mapping) and "x-iam-sudo" in service
    ]
    if not specs:
        raise RequestError(f"{source}: no service has an x-iam-sudo key; see docs/serve.md")
    return specs, dict(services)


def check_unique(specs: Sequence[ServiceSpec]) -> None:
    """Each service once (a compose file and --service may both name it), and no two
    names differing only in case: each names a token directory and an env file, one and
    the same on macOS's and Windows' case-insensitive file systems (one service would get
    the other's secret and route)."""
    seen: dict[str, str] = {}
    for spec in specs:
        other = seen.get(spec.name.casefold())
        if other == spec.name:
            raise RequestError(f"service {spec.name} is given twice")
        if other is not None:
            raise RequestError(
                f"services {other} and {spec.name} differ only in case: their files would be "
                "one on a case-insensitive file system; rename one"
            )
        seen[spec.name.casefold()] = spec.name


@dataclass(frozen=True)
class Reach:
    """How services reach the server: the host in their URLs and the compose set-up.

    ``mode``: ``link-local`` (a compose network whose gateway, on the host, is ECS's
    address; Linux), ``sidecar`` (a forwarder container at ECS's address, to the host;
    Docker Desktop), ``loopback`` (host processes, or ``network_mode: host``) or
    ``custom`` (an address given with --bind; the override sets up no network).
    ``port`` is where the containers connect for credentials (80 through the sidecar).
    """

    mode: str
    host: str
    port: int
    server_port: int
    imds_host: str
    imds_ports: Mapping[str, int] = field(default_factory=dict)

    def base_url(self) -> str:
        """``http://HOST[:PORT]`` as the services write it."""
        return f"http://{self.host}" + ("" if self.port == 80 else f":{self.port}")

    def credentials_url(self, service: str) -> str:
        """The service's ``AWS_CONTAINER_CREDENTIALS_FULL_URI``."""
        return f"{self.base_url()}{CREDENTIALS_ROUTE}{service}"

    def imds_url(self, service: str) -> str | None:
        """The service's ``AWS_EC2_METADATA_SERVICE_ENDPOINT``, or None without IMDS."""
        port = self.imds_ports.get(service)
        return None if port is None else f"http://{self.imds_host}:{port}/"

    def host_headers(self) -> frozenset[str]:
        """The ``Host`` values a legitimate client sends to the credentials port."""
        hosts = {f"{self.host}:{self.port}", f"127.0.0.1:{self.server_port}"}
        hosts |= {f"localhost:{self.server_port}", f"[::1]:{self.server_port}"}
        if self.port == 80:
            hosts.add(self.host)
        return frozenset(hosts)


def env_file(spec: ServiceSpec, reach: Reach, token_file: str, region: str | None) -> str:
    """The service's environment in docker's ``--env-file`` format (``KEY=VALUE`` lines).

    The token is a file (``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``): botocore and the JS
    SDK read it before ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` and re-read it at every
    refresh. Raises :class:`RequestError` for a value docker or compose would not read
    literally (a path with spaces, quotes, ``#`` or ``$``).
    """
    values = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": reach.credentials_url(spec.name),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token_file,
        # Task metadata, for libraries that read it (ECS sets both in every container).
        "ECS_CONTAINER_METADATA_URI_V4": f"{reach.base_url()}{METADATA_V4}{spec.name}",
        "ECS_CONTAINER_METADATA_URI": f"{reach.base_url()}{METADATA_V3}{spec.name}",
    }
    imds = reach.imds_url(spec.name)
    if imds:
        values["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds
    if region:
        values["AWS_REGION"] = values["AWS_DEFAULT_REGION"] = region
    for key, value in values.items():
        if not _PLAIN_VALUE.fullmatch(value):
            raise RequestError(
                f"{key}={value!r} cannot be written to an env file literally: choose an "
                "--env-dir whose path has no spaces, quotes, '#' or '$'"
            )
    lines = [f"# iam-sudo serve: credentials of service {spec.name} ({spec.describe()})"]
    return "\n".join([*lines, *(f"{key}={value}" for key, value in values.items())]) + "\n"


def override(
    specs: Sequence[ServiceSpec],
    services: Mapping[str, Any],
    reach: Reach,
    env_files: Mapping[str, str],
    token_dirs: Mapping[str, str],
) -> tuple[dict[str, Any], list[str]]:
    """The compose override document, and warnings about services it cannot set up.

    Each service gets its env file and its own token directory, mounted read-only at the
    same path (a directory, not the file: the file is replaced atomically when ``serve``
    restarts, and a bind-mounted file would keep showing the old one). ``link-local`` and
    ``sidecar`` attach each service to the ``iam-sudo`` network besides its own networks.
    """
    warnings: list[str] = []
    off_host: list[str] = []  # services a loopback or custom address does not reach
    out: dict[str, Any] = {}
    for spec in specs:
        base = services.get(spec.name)
        base = base if isinstance(base, Mapping) else {}
        entry: dict[str, Any] = {
            "env_file": [env_files[spec.name]],
            "volumes": [f"{token_dirs[spec.name]}:{token_dirs[spec.name]}:ro"],
        }
        if reach.mode in ("custom", "loopback"):
            if reach.mode == "custom" or base.get("network_mode") != "host":
                off_host.append(spec.name)
        elif "network_mode" in base:
            warnings.append(
                f"service {spec.name}: has network_mode {base['network_mode']}; it cannot "
                f"join the {NETWORK} network, so it will not reach {reach.host}"
            )
        else:
            networks = base.get("networks") or ["default"]
            # Listed again: an override's networks replace the implicit default network.
            joined: dict[str, Any] = {str(name): {} for name in networks}
            joined[NETWORK] = {}
            entry["networks"] = joined
            if reach.mode == "sidecar":
                entry["depends_on"] = [SIDECAR]
        out[spec.name] = entry
    if off_host:  # one line for every service with the same reason, not one each
        named = f"service{'s' if len(off_host) > 1 else ''} {', '.join(off_host)}"
        warnings.append(
            f"{named}: SDKs accept a plain-http container endpoint only on loopback or "
            f"ECS's addresses, not {reach.host} (docs/serve.md)"
            if reach.mode == "custom"
            else f"{named}: with the server on loopback only host processes and services "
            "with network_mode: host reach the server (docs/serve.md)"
        )
    document: dict[str, Any] = {"services": out}
    if reach.mode in ("link-local", "sidecar"):
        ipam: dict[str, Any] = {"subnet": LINK_LOCAL_SUBNET}
        if reach.mode == "link-local":
            # The bridge's gateway is the host's own address on it: the server listens there.
            ipam["gateway"] = ECS_LINK_LOCAL
        else:
            ipam["gateway"] = "169.254.170.1"
        document["networks"] = {NETWORK: {"ipam": {"config": [ipam]}}}
        if reach.mode == "sidecar":
            target = f"{DESKTOP_HOST}:{reach.server_port}"
            out[SIDECAR] = {
                "image": SIDECAR_IMAGE,
                "command": ["-d", "TCP-LISTEN:80,fork,reuseaddr", f"TCP:{target}"],
                "networks": {NETWORK: {"ipv4_address": ECS_LINK_LOCAL}},
                "restart": "unless-stopped",
            }
    return document, warnings


def default_setup(platform: str) -> str:
    """How containers reach the server by default: Docker Desktop (macOS, Windows) runs
    them in a VM where the host has no link-local address, so a sidecar forwards."""
    return "sidecar" if platform in ("darwin", "win32") else "link-local"


def bind_address(setup: str) -> str:
    """Where the server listens for ``setup`` when --bind is not given."""
    return ECS_LINK_LOCAL if setup == "link-local" else "127.0.0.1"


def setup_of_bind(address: str, platform: str) -> str:
    """The set-up an explicit --bind implies: loopback (or every interface, loopback
    included, where services' URLs point) serves host processes."""
    ip = _ip(address)
    if address == "localhost" or (ip is not None and (ip.is_loopback or ip.is_unspecified)):
        return "host"
    if address == ECS_LINK_LOCAL:
        return "link-local"
    return "custom"


def check_setup_bind(setup: str, address: str) -> None:
    """Refuse a --setup and --bind that do not go together: the services' URLs would
    point where the server does not listen. link-local listens at ECS's address (or on
    every interface); host and sidecar on loopback (Docker Desktop forwards
    host.docker.internal there), or every interface. Raises :class:`RequestError`."""
    ip = _ip(address)
    everywhere = ip is not None and ip.is_unspecified
    loopback = address == "localhost" or (ip is not None and ip.is_loopback)
    if setup == "link-local" and not (address == ECS_LINK_LOCAL or everywhere):
        raise RequestError(
            f"--setup link-local serves containers at {ECS_LINK_LOCAL}, where --bind "
            f"{address} does not listen: leave --bind out, or choose --setup host"
        )
    if setup in ("host", "sidecar") and not (loopback or everywhere):
        raise RequestError(
            f"--setup {setup} needs the server on loopback, not --bind {address}: "
            "leave --setup out to serve that address as it is"
        )


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None  # a host name


def bind_exposure(address: str) -> str | None:
    """A warning when listening on ``address`` lets more than this machine's processes
    and its containers connect (every interface, or a routable address), else None."""
    ip = _ip(address)
    if address == "localhost" or (ip is not None and ip.is_loopback) or address == ECS_LINK_LOCAL:
        return None
    where = "every interface" if ip is not None and ip.is_unspecified else address
    return (
        f"listening on {where}: any machine that can reach it may connect (each service's "
        "route still needs its secret; task metadata does not); bind 127.0.0.1 or "
        f"{ECS_LINK_LOCAL} unless other machines must connect"
    )


def check_imds_bind(specs: Sequence[ServiceSpec], address: str) -> None:
    """Refuse IMDS on every interface: it has no secret, so every machine of every network
    this one is on would get the service's role. Raises :class:`RequestError`."""
    ip = _ip(address)
    imds = [spec.name for spec in specs if spec.imds]
    if imds and ip is not None and ip.is_unspecified:
        raise RequestError(
            f"--bind {address} with imds ({', '.join(imds)}): an IMDS endpoint has no secret, "
            "so any machine on your networks would get the role; bind a narrower address "
            "or drop imds"
        )


def reach(setup: str, address: str, server_port: int, imds_ports: Mapping[str, int]) -> Reach:
    """The :class:`Reach` of a running server (its ports known)."""
    if setup == "sidecar":
        return Reach("sidecar", ECS_LINK_LOCAL, 80, server_port, DESKTOP_HOST, imds_ports)
    ip = _ip(address)
    everywhere = ip is not None and ip.is_unspecified
    host = "127.0.0.1" if address == "localhost" or everywhere else address
    if setup == "link-local":
        host = ECS_LINK_LOCAL  # it listens there, or on every interface (check_setup_bind)
    if ":" in host:
        host = f"[{host}]"
    mode = {"host": "loopback", "link-local": "link-local"}.get(setup, "custom")
    return Reach(mode, host, server_port, server_port, host, imds_ports)

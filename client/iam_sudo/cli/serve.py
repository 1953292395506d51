"""``iam-sudo serve``: one credentials server for a whole local stack, all day.

Parsing, the start banner, the status view and the signals; the server and the files
are :mod:`iam_sudo.serve`'s, the compose shape :mod:`iam_sudo.compose`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ..core.compose import DEFAULT_PORT, SETUPS
from ..core.exceptions import IamSudoError
from . import options

if TYPE_CHECKING:
    from ..client import IamSudo
    from ..core.compose import ServiceSpec
    from ..steps.serve import Fetch, ServiceStatus, Stack

log = logging.getLogger("iam_sudo")


# Compose files are a few kilobytes; PyYAML (pure Python) takes minutes and gigabytes
# over a 200 MB one.
MAX_COMPOSE_BYTES = 4 * 1024 * 1024


def _load_compose(path: Path) -> object:
    """The compose file's YAML, or :class:`click.BadParameter` in one line: unreadable,
    not UTF-8, larger than :data:`MAX_COMPOSE_BYTES`, not YAML, nested too deeply for
    the parser, or a key given twice in a mapping (YAML keeps the last silently, docker
    compose refuses the file: a service or its role could be replaced unseen)."""
    import yaml

    def refuse(message: str) -> click.BadParameter:
        return click.BadParameter(message, param_hint="--compose")

    try:
        with open(path, "rb") as file:
            data = file.read(MAX_COMPOSE_BYTES + 1)
    except OSError as error:
        raise refuse(f"cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_COMPOSE_BYTES:
        raise refuse(f"{path} is larger than {MAX_COMPOSE_BYTES // 1024 // 1024} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refuse(f"{path} is not UTF-8 text (byte {error.start})") from None

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *defaults": explicit keys override merged ones
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # unhashable: the base class reports it
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {str(key)[:80]!r}", key_node.start_mark
                    )
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise refuse(f"{path}{where}: {problem}") from None
    except RecursionError:
        raise refuse(f"{path} is nested too deeply") from None


def _specs(compose_file: Path | None, services: tuple[str, ...]) -> tuple[list[Any], Any]:
    from ..core.compose import check_unique, parse_compose, parse_service_option

    specs: list[ServiceSpec] = []
    compose_services = None
    if compose_file is not None:
        document = _load_compose(compose_file)
        specs, compose_services = parse_compose(document, str(compose_file))
    specs += [parse_service_option(text) for text in services]
    if not specs:
        raise click.UsageError("give --compose FILE or --service NAME=ROLE")
    check_unique(specs)
    return specs, compose_services


def _fetcher(sudo: IamSudo, remote: bool, function_name: str) -> Any:
    """The fetch of each service's role, all through one long-lived client: the user's
    own credentials are resolved once (an MFA prompt at start) and renewed by botocore."""

    def fetch_for(spec: ServiceSpec) -> Fetch:
        options = dict(spec.options)

        async def fetch() -> Any:
            if spec.kind == "assume":
                return await sudo.assume(spec.role, **options)
            if remote:
                return await sudo.simulate_remote(spec.role, function_name=function_name, **options)
            return await sudo.simulate(spec.role, **options)

        return fetch

    return fetch_for


def _check_prompts(interactive: bool) -> str | None:
    """Would getting your own credentials ask for input (an MFA code)? Not without a
    terminal (settings.unattended); on one, the prompt is here, at start and when
    botocore renews that session, never in a container. A line for the banner, or None.
    """
    from ..settings.unattended import check_unattended, prompt_problem

    if not interactive:
        try:
            check_unattended("to iam-sudo serve without a terminal")
        except IamSudoError as error:
            raise click.UsageError(str(error)) from None
        return None
    problem = prompt_problem()
    return f"{problem}: it is asked for here, on this terminal" if problem else None


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%H:%M:%S") if moment else "-"


def _status_lines(rows: list[ServiceStatus]) -> list[str]:
    lines = []
    for row in rows:
        asked = f"asked {row.asks}x, last {_when(row.last_ask)}" if row.asks else "not asked yet"
        refused = f", {row.refused} refused" if row.refused else ""
        error = f", FAILING: {row.refresh.last_error}" if row.refresh.last_error else ""
        lines.append(
            f"{row.service}: {asked}{refused}; {row.role} refreshed "
            f"{_when(row.refresh.refreshed_at)}, expires {_when(row.refresh.expires_at)}{error}"
        )
    return lines


def live_status(terminal: bool, prompt_line: str | None) -> bool:
    """Whether the status view is a live line: on a terminal, unless your own credentials
    may ask for an MFA code there (``prompt_line``, from :func:`_check_prompts`). botocore
    asks when it renews that session, in a worker thread, while the live line is redrawn
    every second with "erase line": the prompt would vanish as it is asked."""
    return terminal and prompt_line is None


class StatusView:
    """What the host's terminal shows: a live line on a terminal, plain lines otherwise
    (on a change: a service's first ask, a refresh, a failure). A role that fails to
    refresh is always reported on its own line, naming its services."""

    def __init__(self, stack: Stack, live: bool) -> None:
        self._stack = stack
        self._live = live
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._failures: dict[str, int] = {}

    def tick(self) -> None:
        """Show what changed since the last tick."""
        rows = self._stack.status()
        for row in rows:
            if row.refresh.failures > self._failures.get(row.service, 0):
                click.echo(
                    ("\r\033[2K" if self._live else "")
                    + f"iam-sudo serve: {row.service}: refreshing {row.role} failed: "
                    f"{row.refresh.last_error}; it is retried, and the service gets an error "
                    "once what it holds expires",
                    err=True,
                )
            self._failures[row.service] = row.refresh.failures
        if self._live:
            summary = " | ".join(
                f"{row.service} {row.asks}x exp {_when(row.refresh.expires_at)}"
                + (" FAILING" if row.refresh.last_error else "")
                for row in rows
            )
            stamp = datetime.now(UTC).astimezone().strftime("%H:%M:%S")
            line = f"{stamp} {summary}"
            # One terminal line: "\r" and "erase line" redraw only the line the cursor is
            # on, so a line that wrapped would leave its first rows behind at every tick.
            width = shutil.get_terminal_size().columns - 1
            if len(line) > width:
                line = line[: max(width - 3, 0)] + "..."
            click.echo(f"\r\033[2K{line}", nl=False, err=True)
            return
        for row, line in zip(rows, _status_lines(rows), strict=True):
            key = (row.asks > 0, row.refresh.refreshed_at, row.refresh.last_error)
            if self._shown.get(row.service) != key:
                self._shown[row.service] = key
                click.echo(f"iam-sudo serve: {line}", err=True)

    async def run(self, period: float = 1.0) -> None:
        """Tick every ``period`` seconds until cancelled."""
        while True:
            self.tick()
            await asyncio.sleep(period)


def _banner(stack: Stack, remote: bool, prompt_line: str | None, compose: Path | None) -> None:
    assert stack.reach is not None
    how = {
        "link-local": "containers on the iam-sudo network, at ECS's address",
        "sidecar": "containers through the iam-sudo-endpoint sidecar (Docker Desktop)",
        "loopback": "host processes (and network_mode: host)",
        "custom": "the address given with --bind",
    }[stack.reach.mode]
    click.echo(f"iam-sudo serve: serving {how}", err=True)
    for spec in stack.specs:
        mode = "" if spec.kind == "assume" else (" --remote" if remote else " --local")
        imds = stack.reach.imds_url(spec.name)
        click.echo(
            f"  {spec.name}: {stack.label(spec)}{mode} at {stack.reach.credentials_url(spec.name)}"
            + (f" and IMDSv2 {imds}" if imds else "")
            + f"; env file {stack.env_files[spec.name]}",
            err=True,
        )
    for warning in stack.warnings:
        click.echo(f"iam-sudo serve: warning: {warning}", err=True)
    if prompt_line:
        click.echo(f"iam-sudo serve: {prompt_line}", err=True)
    if stack.override_path is not None and compose is not None:
        click.echo(
            f"iam-sudo serve: compose override {stack.override_path}: run\n"
            f"  docker compose -f {compose} -f {stack.override_path} up",
            err=True,
        )
    click.echo("iam-sudo serve: Ctrl-C stops serving and removes these files", err=True)


def command() -> click.Command:
    """The ``serve`` command."""

    @click.command("serve")
    @click.option(
        "--compose",
        "compose_file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="A compose file whose services have an x-iam-sudo key (docs/serve.md).",
    )
    @click.option(
        "--service",
        "services",
        multiple=True,
        metavar="NAME=ROLE",
        help="A service and the role it simulates (NAME=assume:ROLE assumes it); repeatable.",
    )
    @click.option(
        "--remote/--local",
        default=True,
        show_default=True,
        help="Simulate in the iam-sudo Lambda function, or with your own credentials.",
    )
    @options.function_name
    @click.option(
        "--setup",
        type=click.Choice(SETUPS),
        help=(
            "How containers reach the server [default: link-local on Linux, sidecar on "
            "Docker Desktop; host with --bind 127.0.0.1]."
        ),
    )
    @click.option(
        "--bind",
        metavar="ADDRESS",
        help="Where to listen [default: 169.254.170.2 for link-local, else 127.0.0.1].",
    )
    @click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=DEFAULT_PORT,
        show_default=True,
        help="The credentials port (0: any free port); IMDSv2 ports follow it.",
    )
    @click.option(
        "--env-dir",
        type=click.Path(file_okay=False, path_type=Path),
        metavar="DIR",
        help="Where the env files go [default: beside the compose file, else here].",
    )
    @click.option(
        "--imds",
        is_flag=True,
        help="Give every service an IMDSv2 endpoint too (for tools that know only that).",
    )
    async def serve(
        compose_file: Path | None,
        services: tuple[str, ...],
        remote: bool,
        function_name: str,
        setup: str | None,
        bind: str | None,
        port: int,
        env_dir: Path | None,
        imds: bool,
    ) -> None:
        """Serve each service of a local stack its own (simulated) role, all day.

        \b
        Examples:
          iam-sudo serve --compose docker-compose.yml
          docker compose -f docker-compose.yml -f docker-compose.iam-sudo.yml up
          iam-sudo serve --local --bind 127.0.0.1 --service api=ApiTaskRole
          env -i PATH="$PATH" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \\
            $(grep -v '^#' iam-sudo.api.env) python app.py
        """
        from dataclasses import replace

        from ..core.compose import (
            bind_address,
            check_imds_bind,
            check_imds_duration,
            check_setup_bind,
            default_setup,
            setup_of_bind,
        )
        from ..settings.config import region
        from ..steps.serve import Stack
        from .sources import client

        try:
            specs, compose_services = _specs(compose_file, services)
            if imds:
                specs = [replace(spec, imds=True) for spec in specs]
                for spec in specs:
                    check_imds_duration(spec)
        except IamSudoError as error:
            raise click.UsageError(str(error)) from None
        if remote and any(
            "duration_seconds" in dict(s.options) for s in specs if s.kind == "simulate"
        ):
            raise click.UsageError("duration goes with --local; --remote credentials last 1 hour")
        if setup is None:
            setup = setup_of_bind(bind, sys.platform) if bind else default_setup(sys.platform)
        address = bind or bind_address(setup)
        try:
            check_setup_bind(setup, address)
            check_imds_bind(specs, address)
        except IamSudoError as error:
            raise click.UsageError(str(error)) from None
        prompt_line = _check_prompts(sys.stdin.isatty())
        if env_dir is None:
            env_dir = compose_file.parent if compose_file else Path.cwd()
        override_path = None
        if compose_file is not None:
            override_path = compose_file.with_name(f"{compose_file.stem}.iam-sudo.yml")
        async with client() as sudo:
            account = None
            with contextlib.suppress(IamSudoError):
                account = (await sudo.identity()).arn.split(":")[4]
            stack = Stack(
                specs,
                _fetcher(sudo, remote, function_name),
                setup=setup,
                address=address,
                port=port,
                env_dir=env_dir.absolute(),
                region=region(),
                account=account,
                compose_services=compose_services,
                override_path=override_path.absolute() if override_path else None,
            )
            await _run(stack, remote, prompt_line, compose_file)

    return serve


async def _run(stack: Stack, remote: bool, prompt_line: str | None, compose: Path | None) -> None:
    """Serve until SIGINT or SIGTERM (or SIGHUP); the files go in every case."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        signals.append(signal.SIGHUP)
    for each in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(each, stop.set)
    try:
        async with stack:
            _banner(stack, remote, prompt_line, compose)
            live = live_status(sys.stderr.isatty(), prompt_line)
            view = asyncio.create_task(StatusView(stack, live).run())
            try:
                await stop.wait()
            finally:
                view.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await view
        click.echo("\niam-sudo serve: stopped; its files are removed", err=True)
    finally:
        for each in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(each)

"""``--record FILE`` and ``iam-sudo report FILE``: the command line of recording.

``--record`` runs the command with its AWS calls going through a recording endpoint
(:mod:`iam_sudo.aws.recorder`) and writes the record (:mod:`iam_sudo.core.record`);
``report`` reads one and prints what it says (:mod:`iam_sudo.core.report`).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncclick as click

if TYPE_CHECKING:
    from ..core.record import Mode, Run
    from ..settings.credentials import Credentials

log = logging.getLogger("iam_sudo")

record_option = click.option(
    "--record",
    "record_file",
    metavar="FILE",
    help=(
        "Record every AWS call the command makes (service, operation, IAM actions, "
        "resources, outcome) to FILE, for `iam-sudo report FILE`."
    ),
)


def check_record(record_file: str | None, cmd: Sequence[str], dry_run: bool = False) -> Path | None:
    """The record's path, or None; UsageError if --record has no command to record."""
    if record_file is None:
        return None
    if not cmd or dry_run:
        raise click.UsageError("--record records a command's AWS calls: give a command to run")
    from ..aws.recorder import record_path

    path = record_path(record_file)
    # The endpoint's modules (aiohttp: about half a second) load while AWS is asked for
    # the credentials, not after.
    threading.Thread(target=_preload, daemon=True).start()
    return path


def _preload() -> None:
    import importlib

    for module in ("aiohttp", "yarl", "botocore.auth", "botocore.regions"):
        importlib.import_module(module)


@dataclass
class Recording:
    """Where the record goes and what the run is; :meth:`run` runs the command recorded."""

    path: Path
    run_info: Run
    #: Fills the run in once the credentials are known (the session planned, the account).
    complete_run: Callable[[Run, Credentials], Run] | None = None

    def run(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        credentials: Callable[[], Credentials],
    ) -> int:
        """Run ``command`` with ``env``, its AWS calls recorded; its exit status."""
        from ..aws.recorder import RecorderThread, RecordingEndpoint
        from .command import run

        info = self.run_info
        if self.complete_run is not None:
            info = self.complete_run(info, credentials())
        endpoint = RecordingEndpoint(credentials, info, self.path, environ=env)
        recorder = RecorderThread(endpoint)
        with recorder as started:
            log.info("recording the command's AWS calls at %s to %s", started.url, self.path)
            status = run(command, started.env(env))
            recorder.exit_status = status
        record = endpoint.record
        denied = sum(1 for call in record.calls if call.outcome == "denied")
        print(
            f"iam-sudo: recorded {len(record.calls)} AWS calls ({denied} denied) to {self.path}; "
            f"see `iam-sudo report {self.path}`",
            file=sys.stderr,
        )
        return status


def run_info(command: str, mode: Mode, target_role: str, base_role: str | None = None) -> Run:
    """The run as the command line knows it before the credentials are fetched."""
    from ..core.record import Run

    return Run(command, mode, target_role, base_role)


def with_identity(run: Run, credentials: Credentials) -> Run:
    """``run`` with the session's ARN and account, asked of STS with the session's keys
    (GetCallerIdentity needs no permission); unchanged if STS cannot be reached."""
    from ..aws.recorder import session_identity

    found = session_identity(credentials)
    if found is None:
        return run
    arn, account = found
    return replace(run, session_arn=arn, account=run.account or account)


def simulated(sessions: list[Any]) -> Callable[[Run, Credentials], Run]:
    """Fills a local simulation's run in from the session it planned (the last one)."""
    from ..core.record import simulated_run

    def complete(run: Run, credentials: Credentials) -> Run:
        if not sessions:
            return with_identity(run, credentials)
        return simulated_run(sessions[-1])

    return complete


@click.command(short_help="Report a --record run: used, denied and why, unused.")
@click.argument("record_file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document, for scripts.")
@click.option(
    "--policy",
    "as_policy",
    is_flag=True,
    help=(
        "Print the policy that would grant exactly the calls denied because the role "
        "lacks them; what it does not cover is said on stderr."
    ),
)
async def report(record_file: str, as_json: bool, as_policy: bool) -> None:
    """Report a run recorded with --record: actions used, denied (with causes), and
    granted but never used.

    \b
    Example:
      iam-sudo simulate --role-name TaskRole --record run.json -- pytest
      iam-sudo report run.json
      iam-sudo report run.json --policy > fix.json
    """
    from ..core import report as reporting
    from ..core.exceptions import RecordError
    from ..core.record import loads

    if as_json and as_policy:
        raise click.UsageError("give --json or --policy, not both")
    path = _expand(record_file)
    try:
        text = _read(path)
    except (OSError, UnicodeDecodeError) as error:
        raise RecordError(f"cannot read the record {path}: {error}") from None
    if text is None:
        raise RecordError(f"there is no record {path}: record a run with --record {path}")
    built = reporting.build(loads(text, f"the record {path}"))
    if not built.complete:
        click.echo(
            f"iam-sudo: the record {path} is incomplete: the run was stopped before it ended",
            err=True,
        )
    if as_policy:
        from ..aws.catalogue import action_resource_types

        document, notes = reporting.fix_policy(built, action_resource_types)
        click.echo(json.dumps(document, indent=2))
        for note in notes:
            click.echo(f"iam-sudo: {note}", err=True)
        if not document["Statement"]:
            # Valid JSON for scripts, but no policy IAM (or --add-policy) accepts: say so.
            click.echo(
                "iam-sudo: no call was denied for lack of the role's permissions: the policy "
                "has no statement, nothing to add",
                err=True,
            )
        return
    if as_json:
        click.echo(json.dumps(built.to_json(), indent=2))
        return
    click.echo(reporting.table(built), nl=False)


def _expand(record_file: str) -> Path:
    return Path(record_file).expanduser()


def _read(path: Path) -> str | None:
    """The record's text (None if there is no such file); a few KB, read at once."""
    from ..core.exceptions import RecordError
    from ..core.record import MAX_RECORD_BYTES
    from ..settings import files

    if not path.exists():
        return None
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        raise RecordError(
            f"the record {path} is {size} bytes, larger than any run writes "
            f"({MAX_RECORD_BYTES} bytes): is it a record?"
        )
    return files.read_text(path)

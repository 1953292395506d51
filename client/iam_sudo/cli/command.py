"""Running the user's command with the credentials, as a shell runs a foreground job.

The command's environment holds the new credentials and nothing that an SDK would read as
belonging to them but that came from elsewhere (a stale expiration, the legacy token
name, another account's id, the profile iam-sudo itself used), plus the region iam-sudo
resolved, since the profile that may have provided it is removed.
"""

from __future__ import annotations

import errno
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

from ..core.exceptions import CommandError

# The command's environment is built by credentials.environment; these names stay here too.
from ..settings.credentials import CREDENTIAL_VARIABLES as CREDENTIAL_VARIABLES
from ..settings.credentials import environment as environment
from ..settings.credentials import with_region as with_region

# Signals a terminal sends to the whole foreground process group: the command gets them
# itself, so iam-sudo only stays out of the way.
_IGNORED = (signal.SIGINT, signal.SIGQUIT)
# Signals sent to iam-sudo alone (kill, a supervisor, a closed terminal): passed on, so
# that the command never outlives iam-sudo holding the credentials.
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128+N for death by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


def _stand_aside(signum: int, frame: FrameType | None) -> None:
    """While the command runs, a terminal's SIGINT/SIGQUIT are the command's business."""


def run(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command`` with ``env`` until it ends; return its exit status.

    Raises :class:`CommandError` with 127 when it is not found and 126 when it cannot
    be executed (not executable, a script without a ``#!`` line, ...).
    """
    name = command[0]
    started: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if not started:
            pending.append(signum)  # arrived while the command was starting
        elif started[0].poll() is None:
            started[0].send_signal(signum)

    # In place before the command starts, so that no signal finds iam-sudo undefended.
    # A handler, not SIG_IGN: exec resets handled signals to their default, but keeps
    # ignored ones ignored, and the command must start as it would from the shell (where
    # they are ignored only if they were ignored for iam-sudo too, as under nohup).
    previous = {
        sig: signal.signal(
            sig, signal.SIG_IGN if signal.getsignal(sig) == signal.SIG_IGN else _stand_aside
        )
        for sig in _IGNORED
    }
    previous.update({sig: signal.signal(sig, forward) for sig in _FORWARDED})
    try:
        try:
            started.append(subprocess.Popen(list(command), env=dict(env)))
        except FileNotFoundError:
            raise CommandError(f"command not found: {name}", 127) from None
        except PermissionError:
            raise CommandError(f"command not executable: {name}", 126) from None
        except OSError as error:
            hint = "; a script needs a #! line" if error.errno == errno.ENOEXEC else ""
            message = f"cannot run {name}: {error.strerror or error}{hint}"
            raise CommandError(message, 126) from None
        for signum in pending:
            started[0].send_signal(signum)
        return exit_status(started[0].wait())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

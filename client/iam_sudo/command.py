"""Running the user's command with the credentials, as a shell runs a foreground job."""

from __future__ import annotations

import errno
import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

from ._exceptions import CommandError

# Signals a terminal sends to the whole foreground process group: the command gets them
# itself, so iam-sudo only stays out of the way.
_IGNORED = (signal.SIGINT, signal.SIGQUIT)
# Signals sent to iam-sudo alone (kill, a supervisor, a closed terminal): passed on, so
# that the command never outlives iam-sudo holding the credentials.
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128+N for death by signal N."""
    return returncode if returncode >= 0 else 128 - returncode


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
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _IGNORED}
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

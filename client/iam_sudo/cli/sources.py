"""The ways the CLI gets credentials, one fetcher each: assume, simulate --local, --remote.

Like botocore's credential providers: each returns a coroutine function that makes a
fresh client and gets fresh credentials, so that the same fetcher serves the first
answer, the credential cache and the ECS endpoint's renewals.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..core.defaults import DEFAULT_FUNCTION_NAME

if TYPE_CHECKING:
    from ..client import IamSudo
    from ..core.simulated import SimulatedSession
    from ..settings.credentials import Credentials

log = logging.getLogger("iam_sudo")
Fetch = Callable[[], Coroutine[Any, Any, "Credentials"]]


def client() -> IamSudo:
    """The CLI's client: botocore in threads, not aiobotocore.

    A command makes a handful of requests once; importing aiobotocore and aiohttp would
    cost it more start-up time than their event loop saves (see README, Performance).
    """
    from ..aws.transports import ThreadTransport
    from ..client import IamSudo

    if os.environ.get("IAM_SUDO_CLI_TRANSPORT") == "aio":
        return IamSudo()
    return IamSudo(transport=ThreadTransport())


def assumed(role: str, *, callers: list[str] | None = None, **options: Any) -> Fetch:
    """Credentials of the real role ``role`` (see :meth:`IamSudo.assume` for ``options``).

    ``callers``, when given, gets the ARN of who asks (from STS) appended.
    """

    async def fetch() -> Credentials:
        async with client() as sudo:
            credentials = await sudo.assume(role, **options)
            if callers is not None:
                callers.append((await sudo.identity()).arn)
            return credentials

    return fetch


def remote(role_name: str, **options: Any) -> Fetch:
    """Credentials of the role simulated by the iam-sudo function (``options``: see
    :meth:`IamSudo.simulate_remote`)."""

    async def fetch() -> Credentials:
        async with client() as sudo:
            name = options.get("function_name", DEFAULT_FUNCTION_NAME)
            log.info("invoking the function %s to simulate %s", name, role_name)
            return await sudo.simulate_remote(role_name, **options)

    return fetch


async def plan_local(role_name: str, **options: Any) -> SimulatedSession:
    """The session ``simulate --local`` would assume, with its full report (``--dry-run``).

    ``options`` are :meth:`IamSudo.plan`'s.
    """
    async with client() as sudo:
        session = await sudo.plan(role_name, full_report=True, **options)
    log.info("%s", session.summary())
    return session


def local(
    role_name: str,
    *,
    callers: list[str] | None = None,
    sessions: list[SimulatedSession] | None = None,
    **options: Any,
) -> Fetch:
    """Credentials of the role simulated with your own credentials (``options``: plan's).

    ``sessions``, when given, gets each session planned appended (``--record`` keeps what
    was sent and declared).

    With ``--verbose`` the session's summary and fidelity report are logged (the report
    is then complete: it costs the requests an exact name would save).
    """

    async def fetch() -> Credentials:
        async with client() as sudo:
            verbose = log.isEnabledFor(logging.INFO)
            session = await sudo.plan(role_name, full_report=verbose, **options)
            log.info("%s", session.summary())
            for finding in session.fidelity:
                log.info("not reproduced: %s", finding)
            if callers is not None:
                callers.append((await sudo.identity()).arn)  # known already: no request
            if sessions is not None:
                sessions.append(session)
            return await sudo.assume_session(session)

    return fetch

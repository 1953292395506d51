"""Saying so when iam-sudo is slow, on a terminal: one line on stderr, never on stdout.

IAM's consistency retries (up to ~15 s), an endpoint that does not answer, or a cold
function can keep a user waiting; silence then looks like a hang. Scripts and SDKs (stderr
not a terminal) get nothing: their output stays exactly what it was.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TextIO, TypeVar

T = TypeVar("T")

SLOW_AFTER_SECONDS = 2.0


async def notice_if_slow(
    work: Awaitable[T],
    what: str,
    *,
    after: float = SLOW_AFTER_SECONDS,
    stream: TextIO | None = None,
) -> T:
    """Await ``work``; if it takes more than ``after`` seconds, say once that it is ``what``.

    Only when ``stream`` (default: stderr) is a terminal.
    """
    out = sys.stderr if stream is None else stream
    if not out.isatty():
        return await work

    def say() -> None:
        out.write(f"iam-sudo: still {what} (more than {after:g} s)...\n")
        out.flush()

    timer = asyncio.get_running_loop().call_later(after, say)
    try:
        return await work
    finally:
        timer.cancel()

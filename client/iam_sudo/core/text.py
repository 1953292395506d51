"""How messages show values they do not control: bounded, and lists cut short."""

from __future__ import annotations

from collections.abc import Sequence

MAX_SHOWN_CHARS = 80
MAX_NAMES_SHOWN = 10


def bounded(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr(text)``, cut to ``limit`` characters of the text and marked ``...`` if cut.

    A name or value from a request or a document may be of any size: a message stays
    one short line.
    """
    return repr(text if len(text) <= limit else text[:limit] + "...")


def names_and_more(names: Sequence[str], limit: int = MAX_NAMES_SHOWN) -> str:
    """``"A, B and 3 more"``: at most ``limit`` names, then how many were left out."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")

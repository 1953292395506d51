"""IamReader: one reader per account, each bound to its own transport and credentials."""

from __future__ import annotations

import pytest

from iam_sudo import AioTransport, IamReader, ThreadTransport


def test_a_transport_takes_a_profile_or_credentials_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        AioTransport(profile="p", credentials=object())  # type: ignore[arg-type]


def test_a_reader_refuses_a_concurrency_limit_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        IamReader(ThreadTransport(), max_concurrency=0)

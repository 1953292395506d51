"""IamReader: one reader per account, each bound to its own transport and credentials."""

from __future__ import annotations

import asyncio

import pytest

from devtools import localaws
from iam_sudo import AioTransport, IamReader, IamSudo, ThreadTransport

BASE_ARN = "arn:aws:iam::123456789012:role/IAMSudoUser"


@pytest.mark.parametrize("transport_type", [AioTransport, ThreadTransport])
async def test_readers_bound_to_given_credentials_each_ask_as_their_own(
    aws_env: dict[str, str], local_aws: localaws.LocalAws, transport_type: type
) -> None:
    async with IamSudo() as sudo:
        me = (await sudo.identity()).arn
        session = await sudo.assume(BASE_ARN, session_name="second-account")
    local_aws.recorder.clear()
    async with (
        IamReader(transport_type()) as own,
        IamReader(transport_type(credentials=session)) as other,
    ):
        mine, theirs = await asyncio.gather(own.identity(), other.identity())
    assert mine.arn == me
    assert theirs.arn.endswith(":assumed-role/IAMSudoUser/second-account")
    keys = {request.access_key for request in local_aws.recorder.requests}
    assert keys == {aws_env["AWS_ACCESS_KEY_ID"], session.access_key_id}, "each signs as its own"

"""sts:AssumeRole as iam-sudo sends it: the credentials, and the waits IAM's consistency needs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ..core.exceptions import AwsError, InvalidRequest
from ..core.roles import role_name_of
from ..core.session import (
    DEFAULT_DURATION_SECONDS,
    SessionRequest,
    check_assume_options,
    session_name,
)
from ..settings.credentials import Credentials
from .errors import assume_role_refusals
from .iam_reader import IamReader

log = logging.getLogger("iam_sudo")

# How long to wait for STS to see just-created policies: about 15 s in all.
CONSISTENCY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
# What STS answers while a policy ARN it was given is not yet visible to it.
NOT_YET_VISIBLE_CODES = {"MalformedPolicyDocument", "InvalidParameterValue", "NoSuchEntity"}


@dataclass(frozen=True)
class RoleOptions:
    """How to assume a real role; checked on creation (:class:`InvalidRequest` if wrong).

    ``session_name`` defaults to ``iam-sudo-<role>``; ``external_id`` is what the role's
    trust may require; ``mfa_serial`` and ``token_code`` authenticate with MFA.
    """

    duration_seconds: int = DEFAULT_DURATION_SECONDS
    session_name: str | None = None
    external_id: str | None = None
    mfa_serial: str | None = None
    token_code: str | None = None

    def __post_init__(self) -> None:
        check_assume_options(
            mfa_serial=self.mfa_serial,
            token_code=self.token_code,
            external_id=self.external_id,
            session_name=self.session_name,
        )
        if self.mfa_serial is not None and self.token_code is None:
            raise InvalidRequest("an MFA device needs its current token code")

    def request(self, role_arn: str) -> SessionRequest:
        """The AssumeRole request for the role ``role_arn``."""
        return SessionRequest(
            role_arn=role_arn,
            session_name=self.session_name or session_name(role_name_of(role_arn)),
            duration_seconds=self.duration_seconds,
            external_id=self.external_id,
            serial_number=self.mfa_serial,
            token_code=self.token_code,
        )


def _credentials(reply: dict[str, Any]) -> Credentials:
    credentials = Credentials.from_sts(reply["Credentials"])
    size = reply.get("PackedPolicySize")
    if size is not None:
        log.info("STS packed the session policies and tags to %s%% of its limit", size)
    return credentials


async def assume_role(
    reader: IamReader, request: SessionRequest, *, policies_just_created: bool = False
) -> Credentials:
    """Send ``request`` to STS through ``reader``'s transport; the session's credentials.

    Policies created just now may not be visible to STS at once (IAM is eventually
    consistent, IAM User Guide "Changes that I make are not always immediately
    visible"): with ``policies_just_created``, AssumeRole is retried on that failure
    after each of :data:`CONSISTENCY_DELAYS`. Refusals are explained as
    :func:`_aws.assume_role_refusals` says.
    """
    delays = list(CONSISTENCY_DELAYS) if policies_just_created else []
    refusals = assume_role_refusals(
        source_identity=request.source_identity is not None,
        tags=len(request.tags),
        policy_arns=len(request.policy_arns),
        plaintext_chars=request.plaintext_chars,
    )
    with refusals:
        while True:
            try:
                return await reader.call("sts", "assume_role", _credentials, **request.to_params())
            except AwsError as error:
                if not delays or error.code not in NOT_YET_VISIBLE_CODES:
                    raise
                delay = delays.pop(0)
                log.info(
                    "STS does not see the new session policies yet (%s; IAM is eventually "
                    "consistent): retrying in %.1f s",
                    error.code,
                    delay,
                )
                await asyncio.sleep(delay)

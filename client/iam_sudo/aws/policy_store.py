"""The content-addressed policies iam-sudo keeps under the IAM path ``/iam-sudo/``.

A session too large for STS's limits sends part of its statements as managed policies
named for the hash of their document (see :mod:`iam_sudo.core.fitting`). The store creates
each at most once, checks that one found under that name still holds that document,
lists the ones iam-sudo made, and deletes the ones no role needs any more.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.exceptions import AwsError, PackedPolicyConflict
from ..core.fitting import POLICY_NAME_PREFIX, POLICY_PATH, PackedPolicy
from .errors import reading_answer
from .iam_reader import IamReader
from .tasks import task_group

log = logging.getLogger("iam_sudo")
# A policy younger than this may be about to be passed by ARN by a concurrent simulation.
PRUNE_MIN_AGE = timedelta(minutes=15)
_DESCRIPTION = "iam-sudo session policy statements (content-addressed); re-created when needed"


class PolicyStore:
    """iam-sudo's policies in the account one :class:`IamReader` reads."""

    def __init__(self, reader: IamReader) -> None:
        self._reader = reader

    async def ensure(self, packed: PackedPolicy) -> bool:
        """Create ``packed`` unless it exists with exactly its document; True if created.

        The name is the document's hash, so an existing policy of that name is reused,
        after checking that its default version is still the document iam-sudo wrote;
        :class:`PackedPolicyConflict` if it is not.
        """
        wanted = json.loads(packed.document)
        iam = self._reader.iam

        def read(reply: dict[str, Any]) -> Any:
            return reply["PolicyVersion"]["Document"], reply["PolicyVersion"]["IsDefaultVersion"]

        async def existing() -> Any:
            try:
                return await iam("get_policy_version", read, PolicyArn=packed.arn, VersionId="v1")
            except AwsError as error:
                if error.code == "NoSuchEntity":
                    return None
                raise

        found = await existing()
        created = False
        if found is None:
            try:
                await iam(
                    "create_policy",
                    lambda reply: reply["Policy"]["Arn"],
                    PolicyName=packed.name,
                    Path=POLICY_PATH,
                    PolicyDocument=packed.document,
                    Description=_DESCRIPTION,
                )
                created = True
                log.info("created the session policy %s", packed.arn)
            except AwsError as error:
                if error.code != "EntityAlreadyExists":
                    raise
                found = await existing()  # created meanwhile by another simulation
        if not created and (found is None or found != (wanted, True)):
            raise PackedPolicyConflict(
                f"{packed.arn} does not hold the document iam-sudo created it with (or has "
                "another default version); delete it (iam-sudo prune) and try again"
            )
        return created

    async def ensure_all(self, packed: tuple[PackedPolicy, ...]) -> bool:
        """:meth:`ensure` each policy at once; True if any was created just now."""
        async with task_group() as group:
            results = [group.create_task(self.ensure(p)) for p in packed]
        return any(task.result() for task in results)

    async def ours(self, min_age: timedelta = PRUNE_MIN_AGE) -> list[str]:
        """The content-addressed policies iam-sudo created in this account, that prune may delete.

        Never one attached to anything (``AttachmentCount`` > 0: iam-sudo never attaches its
        own, so someone else relies on it), nor one created less than ``min_age`` (default
        :data:`PRUNE_MIN_AGE`) ago (a simulation may be about to pass it by ARN), nor one
        whose count or creation date the answer does not give (unknown: kept).
        """
        now = datetime.now(UTC)
        arns: list[str] = []
        async for page in self._reader.pages(
            "list_policies", "Policies", Scope="Local", PathPrefix=POLICY_PATH
        ):
            with reading_answer("iam", "list_policies"):
                for p in page:
                    if p.get("Path") != POLICY_PATH or not str(p["PolicyName"]).startswith(
                        POLICY_NAME_PREFIX
                    ):
                        continue
                    attached, created = p.get("AttachmentCount"), p.get("CreateDate")
                    if (
                        isinstance(attached, int)
                        and attached == 0
                        and isinstance(created, datetime)
                        and created.tzinfo is not None
                        and now - created >= min_age
                    ):
                        arns.append(str(p["Arn"]))
                    else:
                        log.info("kept %s: attached, recent or of unknown age", p["Arn"])
        return arns

    async def delete(self, arns: list[str]) -> None:
        """Delete the policies ``arns``, one after the other.

        A policy already gone counts as deleted: botocore sends DeletePolicy again after a
        lost answer (an idempotent call, retried as such), and the second one finds nothing.
        """
        for arn in arns:
            try:
                await self._reader.iam("delete_policy", lambda reply: None, PolicyArn=arn)
            except AwsError as error:
                if error.code != "NoSuchEntity":
                    raise
            log.info("deleted %s", arn)

"""The iam-sudo Lambda function: simulates a role with the function's own permissions.

Deployed as ``handler.handler``. It imports only the standard library, the boto3 that the
Lambda runtime ships, and the pure-Python packages in its archive (iam_sudo, yaml).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from typing import Any

from iam_sudo import (
    ConfigurationError,
    IamSudo,
    IamSudoError,
    InexactSimulation,
    RequestError,
    SimulateRequest,
    SudoPolicy,
    SudoPolicyDenied,
    ThreadTransport,
    Unauthenticated,
)
from iam_sudo.aws.caller import own_audience
from iam_sudo.core.arn import account_of, is_account_id
from iam_sudo.core.roles import check_role_reference
from iam_sudo.steps.remote import EVENT_FIELDS, RolesRequest, describe_roles, split_event
from iam_sudo.steps.spokes import AccountReaders, reader_role_name, spoke_accounts

MAX_LOGGED_CHARS = 512
# One log line per event, whatever the event: the audit trail must never fail to be written,
# nor be made huge by the caller.
MAX_LOG_LINE_CHARS = 4096
MAX_LOGGED_KEYS = 10


class InternalError(Exception):
    """An unexpected failure; details stay in the function's log."""


def _base_role_accounts(base_role: str) -> list[str]:
    """Where base roles may be: IAM_SUDO_BASE_ROLE_ACCOUNTS, else the base role's account.

    A glob such as ``arn:aws:iam::*:role/IAMSudoUser`` must not reach a stranger's account
    that happens to trust this function.
    """
    listed = os.environ.get("IAM_SUDO_BASE_ROLE_ACCOUNTS", "").strip()
    accounts = [a.strip() for a in listed.split(",") if a.strip()]
    if listed and not all(is_account_id(a) for a in accounts):
        raise ConfigurationError(
            "IAM_SUDO_BASE_ROLE_ACCOUNTS must be comma-separated 12-digit account ids"
        )
    if accounts:
        return accounts
    if base_role.startswith("arn:"):
        return [account_of(base_role)]
    raise ConfigurationError(
        "IAM_SUDO_BASE_ROLE is a bare name and IAM_SUDO_BASE_ROLE_ACCOUNTS is not set: "
        "the function cannot tell which account base roles must be in"
    )


@functools.cache
def _configuration() -> tuple[SudoPolicy, str]:
    """The sudo policy and base role, parsed once per container (a failure is not cached)."""
    text = os.environ.get("IAM_SUDO_POLICY", "").strip()
    if not text:
        raise ConfigurationError(
            "IAM_SUDO_POLICY is not set: the function refuses to serve without a sudo policy"
        )
    base_role = os.environ.get("IAM_SUDO_BASE_ROLE", "").strip()
    if not base_role:
        raise ConfigurationError(
            "IAM_SUDO_BASE_ROLE is not set: the function refuses to serve without a base role"
        )
    check_role_reference(base_role)
    # Base roles live in the deploying account (and those configured) and in each spoke.
    accounts = [*_base_role_accounts(base_role), *(spoke_accounts() or ())]
    policy = SudoPolicy.from_yaml(text).scoped_to_accounts(accounts)
    # Never a base role, whatever the globs: this function's own execution role (Lambda
    # sets AWS_LAMBDA_FUNCTION_NAME, "Defined runtime environment variables") and the
    # reader it reads spokes through (core/duties.py).
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    return policy.reserving(reader_role=reader_role_name(), function_names=(function,)), base_role


@functools.cache
def _transport() -> ThreadTransport:
    # One per container: a warm invocation reuses the boto3 clients and their connections.
    return ThreadTransport()


@functools.cache
def _readers() -> AccountReaders:
    # One per container: a warm invocation reuses the spokes' reader sessions (until near
    # expiry) and their clients. Only the spokes the deployment lists are reached.
    transport = _transport()
    return AccountReaders(transport, transport.with_credentials, spokes=spoke_accounts() or ())


async def _simulate(event: Any, record: dict[str, Any], context: Any = None) -> dict[str, Any]:
    policy, base_role = _configuration()
    # Proofs name one deployment: this function's unqualified ARN, as Lambda gives it.
    audience = own_audience(getattr(context, "invoked_function_arn", None))
    async with IamSudo(
        policy=policy, base_role=base_role, transport=_transport(), readers=_readers()
    ) as sudo:
        # Who asks, first and from STS alone; nothing else of the event is read before.
        proof, rest = split_event(event) if isinstance(event, dict) else (None, {})
        caller = await sudo.verify_caller(proof, audience=audience)
        record["caller"] = caller
        if rest.get("action") == "roles":
            listed = RolesRequest.from_event(rest)
            if listed.account or listed.all_accounts:
                record["account"] = listed.account or "all"
            if listed.all_accounts:
                found, errors = await sudo.visible_roles_everywhere(
                    principal=listed.principal, caller=caller
                )
                record["listed_roles"] = len(found)
                record["unreadable_accounts"] = sorted(errors)
                return {"roles": describe_roles(found), "errors": errors}
            visible = await sudo.visible_roles(
                principal=listed.principal, caller=caller, account=listed.account
            )
            record["listed_roles"] = len(visible)
            return {"roles": describe_roles(visible)}
        request = SimulateRequest.from_event(rest)
        if request.account is not None:
            record["account"] = request.account
        session = await sudo.plan(
            request.role_name,
            principal=request.principal,
            base_role=request.base_role,
            caller=caller,
            exact=request.exact,
            account=request.account,
            drafts=request.drafts,
        )
        if request.drafts:
            record["added_policies"] = [draft.name for draft in request.drafts]
        record["resolved_role"] = session.role.arn
        record["base_role"] = session.base_role_arn
        record["source_identity"] = session.request.source_identity
        credentials = await sudo.assume_session(session)
    return credentials.to_dict()


def _summary(value: Any) -> str | None:
    """A caller's value as a bounded string: strings cut, anything else by its type's name.

    Never ``str()`` or ``repr()`` of the value itself: a huge int cannot be converted, a
    deep list overflows the stack, and either could fill the log.
    """
    if value is None or isinstance(value, str):
        return None if value is None else value[:MAX_LOGGED_CHARS]
    return f"<{type(value).__name__}>"


def _field(event: Any, key: str) -> str | None:
    return _summary(event.get(key)) if isinstance(event, dict) else None


def _unknown_keys(event: Any) -> list[str] | None:
    if not isinstance(event, dict):
        return None if event is None else [f"<event is {type(event).__name__}>"]
    keys = [key for key in event if key not in EVENT_FIELDS]
    if not keys:
        return None
    shown = [k[:64] if isinstance(k, str) else f"<{type(k).__name__}>" for k in keys]
    return shown[:MAX_LOGGED_KEYS] + (
        [f"<{len(keys) - MAX_LOGGED_KEYS} more>"] * (len(keys) > MAX_LOGGED_KEYS)
    )


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[: MAX_LOGGED_CHARS * 2]


def _log(record: dict[str, Any]) -> None:
    line = json.dumps(record, sort_keys=True, default=_summary)
    if len(line) > MAX_LOG_LINE_CHARS:
        # Only strings are long here (at most ten of them, and a bounded key list):
        # cut to 200 characters each, the line fits.
        cut = {k: v[:200] if isinstance(v, str) else v for k, v in record.items()}
        line = json.dumps({**cut, "truncated": True}, sort_keys=True, default=_summary)
    print(line, file=sys.stdout, flush=True)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Simulate ``event["role_name"]`` and return its credentials, or raise an iam-sudo error.

    The event is ``{"proof": {...}, "role_name": str, "principal": "TYPE:ID"?,
    "base_role": str?, "exact": bool?}``; ``proof`` (see :mod:`iam_sudo.aws.caller`) is
    checked before anything else, and never logged. With ``exact``, a simulation that
    would grant less than the role is refused (``InexactSimulation``, one line each).
    """
    started = time.monotonic()
    record: dict[str, Any] = {
        "request_id": getattr(context, "aws_request_id", None),
        "requested_role": _field(event, "role_name"),
        "principal": _field(event, "principal"),
        "requested_base_role": _field(event, "base_role"),
    }
    if isinstance(event, dict) and event.get("exact") is True:
        record["exact"] = True
    unknown = _unknown_keys(event)
    if unknown:
        record["unknown_fields"] = unknown
    error: Exception | None = None
    try:
        reply = asyncio.run(_simulate(event, record, context))
        record["decision"] = "allow"
        return reply
    except SudoPolicyDenied as failure:
        record.update(decision="deny", resolved_role=failure.role_arn)
        record.update(base_role=failure.base_role_arn, error=_describe(failure))
        error = failure
    except Unauthenticated as failure:
        record.update(decision="unauthenticated", error=_describe(failure))
        error = failure
    except IamSudoError as failure:
        decision = "invalid" if isinstance(failure, RequestError) else "error"
        decision = "inexact" if isinstance(failure, InexactSimulation) else decision
        record.update(decision=decision, error=_describe(failure))
        error = failure
    except Exception as failure:  # nothing unexpected may leave with its internals
        record.update(decision="error", error=f"internal: {_describe(failure)}")
        error = InternalError(
            f"internal error in the iam-sudo function; see its log for request "
            f"{record['request_id']}"
        )
    finally:
        record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        _log(record)
    # Raised here, outside the handling above, so the error carries no chained internals.
    raise error.with_traceback(None)

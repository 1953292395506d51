"""The request the client sends to the iam-sudo function, and its strict validation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..aws.caller import CallerProof, deployment_audience, needs_caller_account
from ..core.defaults import DEFAULT_FUNCTION_NAME as DEFAULT_FUNCTION_NAME
from ..core.drafts import Draft, drafts_from_event
from ..core.exceptions import InvalidRequest, RemoteError
from ..core.principal import Principal
from ..core.roles import check_role_reference
from ..core.text import bounded
from ..settings.credentials import Credentials
from .spokes import check_account

if TYPE_CHECKING:
    from ..aws.iam_reader import IamReader

MAX_FIELD_CHARS = 512
_FIELDS = ("role_name", "principal", "base_role", "account")
_FLAGS = ("exact",)
#: The draft policies added to the role (``--add-policy``), as iam_sudo.core.drafts checks them.
ADD_POLICIES = "add_policies"
_ROLES_FIELDS = ("action", "principal", "account", "all_accounts")
PROOF_FIELD = "proof"
#: Every field an event may hold, whatever it asks.
EVENT_FIELDS = (*_FIELDS, *_FLAGS, ADD_POLICIES, PROOF_FIELD, "action", "all_accounts")
_CREDENTIAL_KEYS = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")


def _refuse_unknown(event: Mapping[Any, Any], fields: tuple[str, ...]) -> None:
    unknown = [key for key in event if key not in fields]
    if unknown:
        # Bounded: the field name is the caller's, and may be anything in any size.
        name = bounded(unknown[0], 40) if isinstance(unknown[0], str) else "a non-string key"
        raise InvalidRequest(f"unknown field {name} in the request; expected {', '.join(fields)}")


def invocation_payload(event: Mapping[str, Any], proof: CallerProof) -> bytes:
    """The Lambda payload: the request's event and the caller proof that says who asks."""
    return json.dumps({**event, PROOF_FIELD: proof.to_event()}).encode()


def split_event(event: Mapping[str, Any]) -> tuple[object, dict[str, Any]]:
    """The caller proof of an event, and the rest of it (the request)."""
    return event.get(PROOF_FIELD), {k: v for k, v in event.items() if k != PROOF_FIELD}


@dataclass(frozen=True)
class SimulateRequest:
    """What the function is asked to simulate.

    ``{"role_name", "principal"?, "base_role"?, "account"?, "exact"?: bool,
    "add_policies"?: [{"name", "document"}]}``; ``account`` (12 digits) is another
    account of the Organization, reached through its spoke; ``add_policies`` are draft
    policies added to the role's own (:mod:`iam_sudo.core.drafts`).
    """

    role_name: str
    principal: Principal | None = None
    base_role: str | None = None
    exact: bool = False
    account: str | None = None
    drafts: tuple[Draft, ...] = ()

    def to_event(self) -> dict[str, Any]:
        """The Lambda event; optional fields are left out rather than sent empty."""
        event: dict[str, Any] = {"role_name": self.role_name}
        if self.exact:
            event["exact"] = True
        if self.principal is not None:
            event["principal"] = str(self.principal)
        if self.base_role is not None:
            event["base_role"] = self.base_role
        if self.account is not None:
            event["account"] = self.account
        if self.drafts:
            event[ADD_POLICIES] = [draft.to_event() for draft in self.drafts]
        return event

    @classmethod
    def from_event(cls, event: object) -> SimulateRequest:
        """Validate an event; raise :class:`InvalidRequest` saying exactly what is wrong."""
        if not isinstance(event, Mapping):
            raise InvalidRequest(f"the request must be a JSON object, got {type(event).__name__}")
        _refuse_unknown(event, (*_FIELDS, *_FLAGS, ADD_POLICIES))
        exact = event.get("exact", False)
        if not isinstance(exact, bool):
            raise InvalidRequest(f"exact must be true or false, got {type(exact).__name__}")
        if "role_name" not in event:
            raise InvalidRequest("the request has no role_name")
        for key in _FIELDS:
            if key not in event:
                continue
            value = event[key]
            if not isinstance(value, str):
                raise InvalidRequest(f"{key} must be a string, got {type(value).__name__}")
            if not value.strip():
                raise InvalidRequest(f"{key} must not be empty")
            if len(value) > MAX_FIELD_CHARS:
                raise InvalidRequest(f"{key} is longer than {MAX_FIELD_CHARS} characters")
        check_role_reference(event["role_name"])
        principal = event.get("principal")
        return cls(
            role_name=event["role_name"],
            principal=Principal.parse(principal) if principal is not None else None,
            base_role=event.get("base_role"),
            exact=exact,
            account=_account(event.get("account")),
            drafts=drafts_from_event(event[ADD_POLICIES]) if ADD_POLICIES in event else (),
        )


def _account(value: object) -> str | None:
    """A request's ``account``: None, or 12 digits (InvalidRequest otherwise)."""
    return None if value is None else check_account(value)


_UNAUTHENTICATED_HINT = (
    "; check that --function-name (IAM_SUDO_FUNCTION) and your region (AWS_REGION or your "
    "profile's) name the deployment you mean: the proof is signed for that function and "
    "your region's STS"
)


def _reply(payload: bytes, function_error: str | None) -> Any:
    """The function's JSON reply, or its error as :class:`RemoteError`."""
    try:
        reply: Any = json.loads(payload or b"null")
    except ValueError:
        reply = None
    if function_error:
        if isinstance(reply, Mapping) and isinstance(reply.get("errorMessage"), str):
            error_type = reply.get("errorType")
            message = reply["errorMessage"]
            if error_type == "Unauthenticated":
                # The function says only that it refused (it tells a caller nothing more);
                # the likeliest cause on this side is a proof for another deployment.
                message = f"{message}{_UNAUTHENTICATED_HINT}"
            raise RemoteError(message, error_type if isinstance(error_type, str) else None)
        raise RemoteError(f"the iam-sudo function failed ({function_error}) without a message")
    return reply


def parse_reply(payload: bytes, function_error: str | None) -> Credentials:
    """The credentials in the function's reply, or the function's error as :class:`RemoteError`."""
    reply = _reply(payload, function_error)
    if not isinstance(reply, Mapping) or not all(
        isinstance(reply.get(key), str) for key in _CREDENTIAL_KEYS
    ):
        raise RemoteError("the iam-sudo function replied without credentials")
    return Credentials.from_sts(reply)


@dataclass(frozen=True)
class RolesRequest:
    """A request for the roles the caller may simulate.

    ``{"action": "roles", "principal"?, "account"?, "all_accounts"?: true}``.
    """

    principal: Principal | None = None
    account: str | None = None
    all_accounts: bool = False

    def to_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"action": "roles"}
        if self.principal is not None:
            event["principal"] = str(self.principal)
        if self.account is not None:
            event["account"] = self.account
        if self.all_accounts:
            event["all_accounts"] = True
        return event

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RolesRequest:
        _refuse_unknown(event, _ROLES_FIELDS)
        all_accounts = event.get("all_accounts", False)
        if not isinstance(all_accounts, bool):
            raise InvalidRequest("all_accounts must be true or false")
        account = _account(event.get("account"))
        if all_accounts and account is not None:
            raise InvalidRequest("give account or all_accounts, not both")
        principal = event.get("principal")
        if principal is not None and (
            not isinstance(principal, str) or len(principal) > MAX_FIELD_CHARS
        ):
            raise InvalidRequest("principal must be a string of at most 512 characters")
        return cls(
            Principal.parse(principal) if principal is not None else None, account, all_accounts
        )


def parse_roles_reply(payload: bytes, function_error: str | None) -> list[dict[str, Any]]:
    """The roles in the function's reply, or its error as :class:`RemoteError`.

    With ``all_accounts``, each account the function could not read is one more entry
    ``{"account": "123456789012", "error": "one line"}`` after the roles.
    """
    reply = _reply(payload, function_error)
    errors = reply.get("errors", {}) if isinstance(reply, Mapping) else None
    if not isinstance(errors, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in errors.items()
    ):
        raise RemoteError("the iam-sudo function replied with malformed account errors")
    roles = reply.get("roles") if isinstance(reply, Mapping) else None
    if not isinstance(roles, list) or not all(
        isinstance(r, Mapping)
        and isinstance(r.get("name"), str)
        and isinstance(r.get("arn"), str)
        and isinstance(r.get("principals"), list)
        for r in roles
    ):
        raise RemoteError("the iam-sudo function replied without a list of roles")
    failed = [{"account": a, "error": e} for a, e in sorted(errors.items())]
    return [dict(r) for r in roles] + failed


def describe_roles(roles: Any) -> list[dict[str, Any]]:
    """Roles as the function answers and ``iam-sudo roles --json`` prints them."""
    return [
        {"name": r.name, "arn": r.arn, "principals": [str(p) for p in r.principals]}
        for r in sorted(roles, key=lambda r: r.name)
    ]


async def audience(reader: IamReader, function_name: str) -> str:
    """The audience of a proof for ``function_name``: the function's unqualified ARN.

    A full or partial ARN needs no request (a partial one is in the Lambda client's
    region and partition); a bare name is invoked in the caller's own account, which
    costs one sts:GetCallerIdentity (no permission needed; cached by the reader).
    Not lambda:GetFunction: another request, and a permission callers may lack.
    """
    partition, region = await reader.transport.scope("lambda")
    account = (await reader.identity()).account if needs_caller_account(function_name) else None
    return deployment_audience(function_name, partition=partition, region=region, account=account)


async def invoke(
    reader: IamReader, function_name: str, event: Mapping[str, Any]
) -> tuple[bytes, str | None]:
    """Invoke the function with ``event`` and a caller proof; (payload, function error).

    The proof says who asks, signed with the reader's transport's own credentials, for
    this function only (:func:`audience`).
    """
    transport = reader.transport
    proof = await transport.identity_proof(await audience(reader, function_name))
    reply = await transport.call(
        "lambda",
        "invoke",
        FunctionName=function_name,
        InvocationType="RequestResponse",
        Payload=invocation_payload(event, proof),
    )
    return reply.get("Payload", b""), reply.get("FunctionError")

"""moto authorizes with the reference evaluator, and denies with AWS's words and shapes.

Installed by :func:`devtools.enforced.start` (see its docstring for what is and is not
covered). Three parts:

* :func:`remember_session`: the session policies (``Policy``, ``PolicyArns``) an AssumeRole
  was given, keyed by the access key it issued; moto keeps none of them.
* :func:`check`: replaces moto's ``IAMRequestBase.check_action_permitted``: the caller's
  identity-based policies, its entity's permissions boundary, the session's policies and
  (S3) the bucket policy go to :func:`devtools.iam_reference.decide`.
* the denial, rendered as each service renders it, so that an SDK surfaces code and
  message: S3's REST-XML ``AccessDenied`` (403), a JSON service's ``AccessDeniedException``
  (DynamoDB: 400; SQS: 403 with ``x-amzn-query-error: AccessDenied;Sender``, which
  botocore reads for the code of an awsQueryCompatible service), a query service's
  ``ErrorResponse`` (STS, IAM: ``AccessDenied``; SNS: ``AuthorizationError``, its modelled
  error, 403).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from devtools import iam_reference
from devtools.iam_reference import Decision, Principal, Request


@dataclass(frozen=True)
class SessionPolicies:
    """What an AssumeRole was given as session policies: the inline ``Policy`` (JSON text,
    or None) and the ``PolicyArns`` (managed policies, resolved at each request)."""

    inline: str | None
    arns: tuple[str, ...]


_SESSIONS: dict[str, SessionPolicies] = {}
_LOCK = threading.Lock()
# The IAM action of the S3 request this thread authorizes (moto passes the operation's name,
# which differs from the action for multipart uploads, ListBuckets and HeadBucket).
_S3_ACTION = threading.local()
# moto's S3 action table, where its name is not IAM's ("Actions, resources, and condition
# keys for Amazon S3": HeadBucket needs s3:ListBucket).
_S3_ACTIONS = {"HeadBucket": "ListBucket"}


def remember_session(access_key_id: str, inline: str | None, arns: list[str]) -> None:
    """Record the session policies of the session issued ``access_key_id`` (none: nothing)."""
    if inline is None and not arns:
        return
    with _LOCK:
        _SESSIONS[access_key_id] = SessionPolicies(inline, tuple(arns))


def forget_sessions() -> None:
    """Forget every session (moto was reset: its access keys are gone)."""
    with _LOCK:
        _SESSIONS.clear()


class Denial(Exception):
    """A request the evaluator denied: ``message`` in AWS's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the request's parts ------------------------------------------------------------------


def _document(policy: Any) -> Any:
    """The document of what moto's ``collect_policies`` returns: a managed policy (its
    default version), an inline document's text, or a mapping holding one."""
    from moto.iam.models import Policy

    if isinstance(policy, Policy):
        return next(v.document for v in policy.versions if v.is_default)
    if isinstance(policy, dict):
        return policy["policy_document"]
    return policy


def _managed(backend: Any, arn: str) -> list[Any]:
    """The statements of a managed policy's default version; none if there is no such
    policy (nothing allows: fail closed)."""
    try:
        return iam_reference.statements(_document(backend.get_policy(arn)))
    except Exception:  # moto raises its own NotFound types, per backend
        return []


def _principal_and_policies(access_key: Any) -> tuple[Principal, list[Any], list[Any] | None]:
    """The caller, its identity-based statements and its permissions boundary's (or None)."""
    backend = access_key.backend
    identity = [
        s for p in access_key.collect_policies() for s in iam_reference.statements(_document(p))
    ]
    if hasattr(access_key, "_owner_role_name"):
        entity = backend.get_role(access_key._owner_role_name)
    else:
        entity = backend.get_user(access_key._owner_user_name)
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    boundary = _managed(backend, boundary_arn) if boundary_arn else None
    return Principal(access_key.arn, entity.arn, access_key.account_id), identity, boundary


def _session(access_key: Any) -> list[Any] | None:
    with _LOCK:
        remembered = _SESSIONS.get(access_key._access_key_id)
    if remembered is None:
        return None
    found = iam_reference.statements(remembered.inline) if remembered.inline else []
    for arn in remembered.arns:
        found += _managed(access_key.backend, arn)
    return found


def _bucket_policy(account: str, resource: str) -> list[Any] | None:
    """The statements of the policy of the bucket an S3 resource ARN names, if it has one."""
    from moto.s3.models import s3_backends

    bucket_name = resource.split(":::", 1)[-1].split("/", 1)[0]
    bucket = s3_backends[account]["aws"].buckets.get(bucket_name)
    policy = getattr(bucket, "policy", None)
    return (
        iam_reference.statements(policy.decode() if isinstance(policy, bytes) else policy)
        if policy
        else None
    )


def _context(access_key: Any, principal: Principal, region: str) -> dict[str, list[str]]:
    """The global condition keys moto's request lets us know ("AWS global condition context
    keys"); keys not set here are absent from the request context."""
    now = time.time()
    context = {
        "aws:principalarn": [principal.entity_arn],
        "aws:principalaccount": [principal.account],
        "aws:requestedregion": [region],
        "aws:currenttime": [datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(now))],
        # The local endpoint stands in for AWS's HTTPS endpoints.
        "aws:securetransport": ["true"],
    }
    if hasattr(access_key, "_owner_role_name"):
        context["aws:principaltype"] = ["AssumedRole"]
        role = access_key.backend.get_role(access_key._owner_role_name)
        context["aws:userid"] = [f"{role.id}:{access_key._session_name}"]
        for key, value in (getattr(role, "tags", None) or {}).items():
            context[f"aws:principaltag/{key.lower()}"] = [value["Value"]]
    else:
        context["aws:principaltype"] = ["User"]
        context["aws:username"] = [access_key._owner_user_name]
    return context


# --- the message --------------------------------------------------------------------------


def _action_as_named(action: str) -> str:
    """The action as the service writes it in its messages: SQS lowercases it
    ("sqs:sendmessage", as SQS answers), SNS writes its prefix in capitals ("SNS:Publish",
    "Troubleshoot access denied error messages", last example)."""
    service, _, name = action.partition(":")
    if service == "sqs":
        return action.lower()
    if service == "sns":
        return f"SNS:{name}"
    return action


def _resource_as_named(service: str, action: str, resource: str) -> str | None:
    """The resource as the service names it; None when the request names none.

    S3 quotes the ARN; IAM names a role or user by kind and name ("on resource: role R"),
    except where the role is passed (iam:PassRole names the ARN)."""
    if resource in ("*", "arn:aws:s3:::*"):
        return None
    if service == "s3":
        return f'"{resource}"'
    if service == "iam" and action != "iam:PassRole":
        kind = re.fullmatch(r"arn:[^:]+:iam::\d{12}:(role|user)/(?:.*/)?([^/]+)", resource)
        if kind:
            return f"{kind.group(1)} {kind.group(2)}"
    return resource


def message(
    principal_arn: str, service: str, action: str, resource: str, decision: Decision
) -> str:
    """AWS's access-denied message ("Troubleshoot access denied error messages": "User:
    user is not authorized to perform: action on resource: resource because context")."""
    named = _action_as_named(action)
    on = _resource_as_named(service, action, resource)
    where = f" on resource: {on}" if on else ""
    who = f"User: {principal_arn} is not authorized to perform: {named}{where}"
    return f"{who} {decision.reason(named)}"


# --- the check that replaces moto's ------------------------------------------------------


def check(self: Any, resource: str) -> None:
    """moto's ``IAMRequestBase.check_action_permitted(resource)``, by the reference
    evaluator. Raises :class:`Denial`. sts:GetCallerIdentity is always allowed ("no
    permissions are required to perform this operation", STS API reference)."""
    if self._action == "sts:GetCallerIdentity":
        return
    if self._service == "s3" and getattr(_S3_ACTION, "name", None):
        self._action = f"s3:{_S3_ACTION.name}"
    access_key = self._access_key
    principal, identity, boundary = _principal_and_policies(access_key)
    resource_policy = _bucket_policy(principal.account, resource) if self._service == "s3" else None
    request = Request(self._action, resource, _context(access_key, principal, self._region))
    decision = iam_reference.decide(
        request,
        principal,
        identity=identity,
        session=_session(access_key),
        boundary=boundary,
        resource=resource_policy,
    )
    if not decision.allowed:
        raise Denial(message(principal.arn, self._service, self._action, resource, decision))
    if self._is_assuming_role_operation(resource) and not self._check_role_trust_relationship(
        resource
    ):
        # The role's trust policy refuses: STS names no policy type for it.
        who = f"User: {principal.arn} is not authorized to perform: {self._action}"
        raise Denial(f"{who} on resource: {resource}")


# --- the denial, in each service's shape ------------------------------------------------


def _is_json(response: Any) -> bool:
    return bool(response.headers.get("X-Amz-Target")) or "amz-json" in response.headers.get(
        "Content-Type", ""
    )


def render(response: Any, denial: Denial) -> Exception:
    """The HTTP error moto sends for a denial to a non-S3 service (see the module docstring).

    Headers are set on ``response.response_headers``, which moto's ``call_action`` sends
    with the error."""
    from moto.core.exceptions import _RESTError

    service = response.service_name
    error = _RESTError("AccessDenied", denial.message)
    if _is_json(response):
        error.code = 400 if service == "dynamodb" else 403
        error.description = json.dumps(
            {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": denial.message}
        )
        response.response_headers["Content-Type"] = "application/x-amz-json-1.0"
        if service == "sqs":
            response.response_headers["x-amzn-query-error"] = "AccessDenied;Sender"
        return error
    code = "AuthorizationError" if service == "sns" else "AccessDenied"
    error.code = 403
    error.description = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{escape(denial.message)}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
    response.response_headers["Content-Type"] = "text/xml"
    return error


def s3_error(denial: Denial) -> Exception:
    """S3's REST-XML ``AccessDenied`` (403) with the evaluator's message ("Error responses",
    Amazon S3 API reference: ``Error`` with ``Code``, ``Message``, ``RequestId``, ``HostId``).

    An HTTP error, not moto's S3ClientError: moto serializes that through the operation's
    model, which leaves the body out for some operations (DeleteObject)."""
    from moto.core.exceptions import _RESTError

    error = _RESTError("AccessDenied", denial.message)
    error.code = 403
    error.description = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        f"<Message>{escape(denial.message)}</Message>"
        "<RequestId>0000000000000000</RequestId><HostId>local</HostId></Error>"
    )
    error.content_type = "application/xml"
    return error


# --- resources moto does not determine ----------------------------------------------------


def _params(response: Any) -> dict[str, Any]:
    """A request's parameters: a JSON body's members, or a query request's parameters."""
    body = response.body
    if isinstance(body, bytes | str) and body:
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if isinstance(body, dict) and body:
        return body
    return {k: v[0] for k, v in (response.querystring or {}).items() if v}


def resource_of(response: Any) -> str:
    """The ARN a DynamoDB, SNS or SQS request acts on where moto says ``*`` (the resource
    types of the Service Authorization Reference: table, topic, queue); ``*`` otherwise."""
    service, account, region = response.service_name, response.current_account, response.region
    params = _params(response)
    partition = "aws"
    if service == "dynamodb":
        table = params.get("TableName")
        if isinstance(table, str) and table:
            return (
                table
                if table.startswith("arn:")
                else f"arn:{partition}:dynamodb:{region}:{account}:table/{table}"
            )
    if service == "sns":
        arn = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
        if arn:
            return str(arn)
        if params.get("Name") and params.get("Action") == "CreateTopic":
            return f"arn:{partition}:sns:{region}:{account}:{params['Name']}"
    if service == "sqs" and params.get("QueueName"):
        return f"arn:{partition}:sqs:{region}:{account}:{params['QueueName']}"
    return "*"


def install() -> None:
    """Teach moto (in this process) to authorize with the reference evaluator; idempotent."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam import access_control

    if getattr(access_control.IAMRequestBase, "_iam_sudo_evaluator", False):
        return
    access_control.IAMRequestBase.check_action_permitted = check  # type: ignore[method-assign]
    normal = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    s3 = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action

    def authorize_normal(self: Any, resource: str = "*") -> None:
        if resource == "*" and self.service_name in ("dynamodb", "sns", "sqs"):
            resource = resource_of(self)
        try:
            normal(self, resource)
        except Denial as denial:
            raise render(self, denial) from None

    def authorize_s3(
        self: Any, bucket_name: str | None = None, key_name: str | None = None
    ) -> None:
        action = self.data.get("Action")
        _S3_ACTION.name = _S3_ACTIONS.get(action, action) if isinstance(action, str) else None
        try:
            s3(self, bucket_name, key_name)
        except Denial as denial:
            raise s3_error(denial) from None
        finally:
            _S3_ACTION.name = None

    # moto answers an empty 403 to any object request a bucket policy denies, whoever the
    # policy names, before authorizing: the bucket policy is the evaluator's (it names the
    # principal, and the denial has AWS's message); moto keeps its Allow for anonymous reads.
    from moto.s3.models import FakeBucket

    permission = FakeBucket.get_permission

    def bucket_permission(self: Any, action: str, resource: str) -> Any:
        found = permission(self, action, resource)
        return (
            access_control.PermissionResult.NEUTRAL
            if found == access_control.PermissionResult.DENIED
            else found
        )

    FakeBucket.get_permission = bucket_permission  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize_normal  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = authorize_s3  # type: ignore[method-assign]
    access_control.IAMRequestBase._iam_sudo_evaluator = True  # type: ignore[attr-defined]

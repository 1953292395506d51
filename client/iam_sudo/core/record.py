"""The record of a run: what iam-sudo sent and declared, and every AWS call made under it.

Pure: building, serialising and reading back the JSON document that ``--record FILE``
writes (its shape is documented in docs/record.md). Metadata only: per call the service,
operation, IAM actions, resource ARNs and outcome with AWS's error code and message, never a
body, a parameter value that is not a resource name, a key, a token or a signature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from .arn import parse as parse_arn
from .exceptions import RecordError
from .text import bounded

if TYPE_CHECKING:
    from .simulated import SimulatedSession

RECORD_VERSION = 1
Outcome = Literal["allowed", "denied", "error"]
OUTCOMES: tuple[Outcome, ...] = ("allowed", "denied", "error")
ActionSource = Literal["catalogue", "denial", "none"]
Mode = Literal["local", "remote", "assume", "library"]
# Longer messages are cut: a denial's is a few hundred characters.
MAX_MESSAGE_CHARS = 2000
#: ``report`` reads no larger record: about half a million calls, more than a run records
#: (the recorder rewrites the whole file every 2 seconds).
MAX_RECORD_BYTES = 256 * 1024 * 1024

# Error codes that mean "not authorized", whatever the HTTP status (DynamoDB answers 400).
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "Forbidden",
        "ForbiddenException",
        "NotAuthorized",
        "AccessDeniedFault",
    }
)
# A 403 with one of these is about the credentials or the signature, not about permissions.
_AUTHENTICATION_CODES = frozenset(
    {
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestTimeTooSkewed",
        "InvalidToken",
        "MissingAuthenticationToken",
        "IncompleteSignature",
        "UnrecognizedClientException",
        "IamSudoRecorderRefused",
    }
)


def outcome_of(status: int, code: str | None, message: str | None) -> Outcome:
    """A call's outcome from its HTTP status and AWS's error code.

    ``denied``: an access-denied code, or a 403 that is not about the signature or keys
    (S3 answers a HEAD with a bare 403); ``error``: any other failure; else ``allowed``.
    """
    if status < 300:
        return "allowed"
    if code in DENIED_CODES or (message and "is not authorized to perform" in message):
        return "denied"
    if status == 403 and code not in _AUTHENTICATION_CODES:
        return "denied"
    return "error"


@dataclass(frozen=True)
class Call:
    """One AWS call. ``time``: ISO 8601 UTC when it was answered; ``service``: botocore's
    name; ``operation``: None when no model operation fits; ``actions``: the IAM actions it
    needs (empty: unknown), ``action_source`` says from where; ``resources``: ARNs named
    by the request or by AWS's denial; ``status``: HTTP status (0: AWS unreachable)."""

    time: str
    service: str
    region: str
    operation: str | None
    actions: tuple[str, ...]
    action_source: ActionSource
    resources: tuple[str, ...]
    outcome: Outcome
    status: int
    error_code: str | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "Time": self.time,
            "Service": self.service,
            "Region": self.region,
            "Operation": self.operation,
            "Actions": list(self.actions),
            "ActionSource": self.action_source,
            "Resources": list(self.resources),
            "Outcome": self.outcome,
            "Status": self.status,
            "ErrorCode": self.error_code,
            "ErrorMessage": self.error_message,
        }

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Call:
        """Raise KeyError, TypeError or ValueError for an entry not of the record's shape."""
        outcome = item["Outcome"]
        source = item["ActionSource"]
        if outcome not in OUTCOMES or source not in ("catalogue", "denial", "none"):
            raise ValueError("unknown outcome or action source")
        return cls(
            time=_str(item["Time"]),
            service=_str(item["Service"]),
            region=_str(item["Region"]),
            operation=_opt_str(item["Operation"]),
            actions=_strs(item["Actions"]),
            action_source=source,
            resources=_strs(item["Resources"]),
            outcome=outcome,
            status=_int(item["Status"]),
            error_code=_opt_str(item.get("ErrorCode")),
            error_message=_opt_str(item.get("ErrorMessage")),
        )


@dataclass(frozen=True)
class SentStatement:
    """One statement of a session policy iam-sudo sent: the role's ``policy`` it came from
    (inline name or managed ARN), its 1-based ``number`` there, and the statement as sent."""

    policy: str
    number: int
    statement: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"Policy": self.policy, "Number": self.number, "Statement": dict(self.statement)}


@dataclass(frozen=True)
class Run:
    """What the run was: the ``command`` (simulate, assume, library), the ``mode``, the
    target role and base role (ARNs when known), the session's account, the session
    policies sent (None: none known, as for a real role or --remote) and the fidelity
    findings declared (:meth:`iam_sudo.core.fidelity.Finding.to_json`)."""

    command: str
    mode: Mode
    target_role: str | None
    base_role: str | None = None
    account: str | None = None
    session_arn: str | None = None
    session_policies: tuple[SentStatement, ...] | None = None
    findings: tuple[Mapping[str, Any], ...] = ()
    started: str | None = None
    ended: str | None = None
    exit_status: int | None = None
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "Command": self.command,
            "Mode": self.mode,
            "TargetRole": self.target_role,
            "BaseRole": self.base_role,
            "Account": self.account,
            "SessionArn": self.session_arn,
            "SessionPolicies": None
            if self.session_policies is None
            else [s.to_json() for s in self.session_policies],
            "Findings": [dict(f) for f in self.findings],
            "Started": self.started,
            "Ended": self.ended,
            "ExitStatus": self.exit_status,
            "Complete": self.complete,
        }

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Run:
        """Raise KeyError, TypeError or ValueError for an entry not of the record's shape."""
        policies = item["SessionPolicies"]
        sent = None
        if policies is not None:
            if not isinstance(policies, list):
                raise TypeError("SessionPolicies")
            sent = tuple(
                SentStatement(_str(p["Policy"]), _int(p["Number"]), _statement(p["Statement"]))
                for p in policies
            )
        findings = item["Findings"]
        if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
            raise TypeError("Findings")
        for finding in findings:
            # The report matches a denial's action against these: a string here would be
            # read as its characters, and "*" covers every action.
            if "Actions" in finding and finding["Actions"] is not None:
                _strs(finding["Actions"])
        mode = item["Mode"]
        if mode not in ("local", "remote", "assume", "library"):
            raise ValueError("Mode")
        exit_status = item.get("ExitStatus")
        return cls(
            command=_str(item["Command"]),
            mode=mode,
            target_role=_opt_str(item["TargetRole"]),
            base_role=_opt_str(item.get("BaseRole")),
            account=_opt_str(item.get("Account")),
            session_arn=_opt_str(item.get("SessionArn")),
            session_policies=sent,
            findings=tuple(findings),
            started=_opt_str(item.get("Started")),
            ended=_opt_str(item.get("Ended")),
            exit_status=None if exit_status is None else _int(exit_status),
            complete=bool(item.get("Complete", False)),
        )


@dataclass(frozen=True)
class Refusal:
    """A request the recording endpoint refused (not signed by the session): when, why."""

    time: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"Time": self.time, "Reason": self.reason}


@dataclass(frozen=True)
class Record:
    """A whole record: the run, its calls in the order they were answered, the refusals."""

    run: Run
    calls: tuple[Call, ...] = ()
    refused: tuple[Refusal, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "RecordVersion": RECORD_VERSION,
            "Run": self.run.to_json(),
            "Calls": [c.to_json() for c in self.calls],
            "Refused": [r.to_json() for r in self.refused],
        }

    def dumps(self) -> str:
        """The record file's text (JSON, indented, ending with a newline)."""
        return json.dumps(self.to_json(), indent=2) + "\n"

    def finished(self, ended: str, exit_status: int | None) -> Record:
        """This record with its run marked complete."""
        run = replace(self.run, ended=ended, exit_status=exit_status, complete=True)
        return replace(self, run=run)


def loads(text: str, source: str = "the record") -> Record:
    """Read a record file's text; raise :class:`RecordError` (one line) if it is not one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise RecordError(
            f"{source} is not a readable iam-sudo record (damaged or truncated JSON: "
            f"{error.msg} at line {error.lineno}); record the run again"
        ) from None
    except RecursionError:
        # json's decoder recurses per nesting level: a hostile file nests deeper than the stack.
        raise RecordError(
            f"{source} is not an iam-sudo record (JSON nested too deeply); record the run again"
        ) from None
    if not isinstance(document, dict) or "RecordVersion" not in document:
        raise RecordError(f"{source} is not an iam-sudo record (no RecordVersion)")
    if document["RecordVersion"] != RECORD_VERSION:
        raise RecordError(
            f"{source} is an iam-sudo record of version {bounded(str(document['RecordVersion']))};"
            f" this iam-sudo reads version {RECORD_VERSION}"
        )
    try:
        calls = document["Calls"]
        refused = document.get("Refused", [])
        if not isinstance(calls, list) or not isinstance(refused, list):
            raise TypeError("Calls")
        return Record(
            run=Run.from_json(document["Run"]),
            calls=tuple(Call.from_json(c) for c in calls),
            refused=tuple(Refusal(_str(r["Time"]), _str(r["Reason"])) for r in refused),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RecordError(
            f"{source} is a damaged iam-sudo record ({type(error).__name__}: "
            f"{bounded(str(error))}); record the run again"
        ) from None


# AWS's validation errors quote the value they refused: "Value 'x' at 'secretString' failed
# to satisfy constraint" (Smithy's validation message); the value may be a password.
_REFUSED_VALUE = re.compile(
    r"""(\bValue\s+)(?:'.*?'|".*?"|\[.*?\]|\{.*?\})(?=\s+at\s+['"])""", re.IGNORECASE
)
VALUE_REDACTED = "<value not kept>"


def message_text(message: str | None) -> str | None:
    """An error message as it is kept: whitespace collapsed, a value AWS quotes as refused
    left out, at most MAX_MESSAGE_CHARS."""
    if not message:
        return None
    text = " ".join(message.split())
    text = _REFUSED_VALUE.sub(lambda match: f"{match.group(1)}{VALUE_REDACTED}", text)
    return text[:MAX_MESSAGE_CHARS]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(_str(v) for v in value)


def _statement(value: Any) -> dict[str, Any]:
    """A statement sent, whose actions and resources are a string or a list of strings
    (what the report matches calls against)."""
    statement = _dict(value)
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        if key in statement and not isinstance(statement[key], str):
            _strs(statement[key])
    return statement


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def simulated_run(session: SimulatedSession, *, command: str = "simulate") -> Run:
    """The run of a simulation planned locally: the roles, the account, the statements
    sent as session policies and the fidelity findings (each with its one-line form)."""
    base = parse_arn(session.base_role_arn)
    account = base.account if base else None
    session_arn = None
    if base:
        # The session's ARN, as STS names it: no request needed to know it.
        name = base.resource.rpartition("/")[2]
        session_arn = (
            f"arn:{base.partition}:sts::{base.account}:assumed-role/{name}/"
            f"{session.request.session_name}"
        )
    return Run(
        command=command,
        mode="local" if command == "simulate" else "library",
        target_role=session.role.arn,
        base_role=session.base_role_arn,
        account=account or None,
        session_arn=session_arn,
        session_policies=tuple(
            SentStatement(s.policy, s.number, dict(s.statement)) for s in session.plan.statements
        ),
        findings=tuple({**f.to_json(), "Line": f.line} for f in session.findings),
    )

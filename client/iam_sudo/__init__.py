"""iam-sudo: credentials of real and simulated IAM roles.

The public API::

    from iam_sudo import IamSudo

    async with IamSudo() as sudo:
        session = await sudo.plan("TaskRole", principal="Service:ecs-tasks.amazonaws.com")
        credentials = await sudo.assume_session(session)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.exceptions import (
    AccessDenied,
    AccountUnreachable,
    AmbiguousRole,
    AwsError,
    CommandError,
    ConfigurationError,
    CredentialsExpired,
    CredentialsFileError,
    EndpointUnreachable,
    IamSudoError,
    InexactSimulation,
    InvalidPrincipal,
    InvalidRequest,
    InvalidSudoPolicy,
    NoCredentials,
    PackedPolicyConflict,
    RecordError,
    RemoteError,
    RequestError,
    RoleError,
    RoleNotFound,
    SessionLimitExceeded,
    SudoPolicyDenied,
    SudoPolicyError,
    Unauthenticated,
    UnsafeBaseRole,
    UnsupportedRole,
)

# Names resolve on first use, so that `iam-sudo --help` does not pay for asyncio, botocore
# and the rest: start-up time is part of the CLI's interface.
_LAZY = {
    "AioTransport": "aws.transports",
    "ThreadTransport": "aws.transports",
    "Timeouts": "aws.errors",
    "Transport": "aws.errors",
    "DEFAULT_BASE_ROLE": "client",
    "IamSudo": "client",
    "IamReader": "aws.iam_reader",
    "Identity": "aws.iam_reader",
    "SimulatedSession": "core.simulated",
    "Credentials": "settings.credentials",
    "RefreshingCredentials": "aws.refreshing",
    "Finding": "core.fidelity",
    "shared_credentials_file": "settings.credentials",
    "write_profile": "settings.credentials",
    "SudoPolicy": "core.sudo_policy",
    "Principal": "core.principal",
    "DEFAULT_FUNCTION_NAME": "steps.remote",
    "SimulateRequest": "steps.remote",
    "Role": "core.roles",
    "resolve_role": "core.roles",
    "SessionPlan": "core.session",
    "SessionRequest": "core.session",
    "plan_session": "core.session",
    "RecordingEndpoint": "aws.recorder",
    "Record": "core.record",
    "Call": "core.record",
    "Run": "core.record",
    "load_record": "core.record",
    "Report": "core.report",
    "build_report": "core.report",
}
# Names that differ from the module's own.
_RENAMED = {"load_record": "loads", "build_report": "build"}

if TYPE_CHECKING:
    from .aws.errors import Timeouts, Transport
    from .aws.iam_reader import IamReader, Identity
    from .aws.recorder import RecordingEndpoint
    from .aws.refreshing import RefreshingCredentials
    from .aws.transports import AioTransport, ThreadTransport
    from .client import DEFAULT_BASE_ROLE, IamSudo
    from .core.fidelity import Finding
    from .core.principal import Principal
    from .core.record import Call, Record, Run
    from .core.record import loads as load_record
    from .core.report import Report
    from .core.report import build as build_report
    from .core.roles import Role, resolve_role
    from .core.session import SessionPlan, SessionRequest, plan_session
    from .core.simulated import SimulatedSession
    from .core.sudo_policy import SudoPolicy
    from .settings.credentials import Credentials, shared_credentials_file, write_profile
    from .steps.remote import DEFAULT_FUNCTION_NAME, SimulateRequest


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'iam_sudo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_BASE_ROLE",
    "DEFAULT_FUNCTION_NAME",
    "AccessDenied",
    "AccountUnreachable",
    "AioTransport",
    "AmbiguousRole",
    "AwsError",
    "Call",
    "CommandError",
    "ConfigurationError",
    "Credentials",
    "CredentialsExpired",
    "CredentialsFileError",
    "EndpointUnreachable",
    "Finding",
    "IamReader",
    "IamSudo",
    "IamSudoError",
    "Identity",
    "InexactSimulation",
    "InvalidPrincipal",
    "InvalidRequest",
    "InvalidSudoPolicy",
    "NoCredentials",
    "PackedPolicyConflict",
    "Principal",
    "Record",
    "RecordError",
    "RecordingEndpoint",
    "RefreshingCredentials",
    "RemoteError",
    "Report",
    "RequestError",
    "Role",
    "RoleError",
    "RoleNotFound",
    "Run",
    "SessionLimitExceeded",
    "SessionPlan",
    "SessionRequest",
    "SimulateRequest",
    "SimulatedSession",
    "SudoPolicy",
    "SudoPolicyDenied",
    "SudoPolicyError",
    "ThreadTransport",
    "Timeouts",
    "Transport",
    "Unauthenticated",
    "UnsafeBaseRole",
    "UnsupportedRole",
    "build_report",
    "load_record",
    "plan_session",
    "resolve_role",
    "shared_credentials_file",
    "write_profile",
]

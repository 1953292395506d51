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

from ._exceptions import (
    AccessDenied,
    AccountUnreachable,
    AmbiguousRole,
    AwsError,
    CommandError,
    ConfigurationError,
    CredentialsFileError,
    EndpointUnreachable,
    IamSudoError,
    InexactSimulation,
    InvalidPrincipal,
    InvalidRequest,
    InvalidSudoPolicy,
    NoCredentials,
    PackedPolicyConflict,
    RemoteError,
    RequestError,
    RoleError,
    RoleNotFound,
    SessionLimitExceeded,
    SudoPolicyDenied,
    SudoPolicyError,
    Unauthenticated,
    UnsupportedRole,
)

# Names resolve on first use, so that `iam-sudo --help` does not pay for asyncio, botocore
# and the rest: start-up time is part of the CLI's interface.
_LAZY = {
    "AioTransport": "_transports",
    "ThreadTransport": "_transports",
    "Timeouts": "_aws",
    "Transport": "_aws",
    "DEFAULT_BASE_ROLE": "client",
    "IamSudo": "client",
    "IamReader": "iam",
    "Identity": "iam",
    "SimulatedSession": "simulated",
    "Credentials": "credentials",
    "Finding": "fidelity",
    "shared_credentials_file": "credentials",
    "write_profile": "credentials",
    "SudoPolicy": "policy",
    "Principal": "principal",
    "DEFAULT_FUNCTION_NAME": "remote",
    "SimulateRequest": "remote",
    "Role": "roles",
    "resolve_role": "roles",
    "SessionPlan": "session",
    "SessionRequest": "session",
    "plan_session": "session",
}

if TYPE_CHECKING:
    from ._aws import Timeouts, Transport
    from ._transports import AioTransport, ThreadTransport
    from .client import DEFAULT_BASE_ROLE, IamSudo
    from .credentials import Credentials, shared_credentials_file, write_profile
    from .fidelity import Finding
    from .iam import IamReader, Identity
    from .policy import SudoPolicy
    from .principal import Principal
    from .remote import DEFAULT_FUNCTION_NAME, SimulateRequest
    from .roles import Role, resolve_role
    from .session import SessionPlan, SessionRequest, plan_session
    from .simulated import SimulatedSession


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'iam_sudo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
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
    "CommandError",
    "ConfigurationError",
    "Credentials",
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
    "RemoteError",
    "RequestError",
    "Role",
    "RoleError",
    "RoleNotFound",
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
    "UnsupportedRole",
    "plan_session",
    "resolve_role",
    "shared_credentials_file",
    "write_profile",
]

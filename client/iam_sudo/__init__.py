"""iam-sudo: credentials of real and simulated IAM roles.

The public API::

    from iam_sudo import IamSudo

    async with IamSudo() as sudo:
        session = await sudo.session("TaskRole", principal="Service:ecs-tasks.amazonaws.com")
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
    "AioTransport": "_aws",
    "ThreadTransport": "_aws",
    "Timeouts": "_aws",
    "Transport": "_aws",
    "DEFAULT_BASE_ROLE": "client",
    "IamSudo": "client",
    "Identity": "client",
    "SimulatedSession": "client",
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
    "build_session": "session",
    "plan_session": "session",
}

if TYPE_CHECKING:
    from ._aws import AioTransport, ThreadTransport, Timeouts, Transport
    from .client import DEFAULT_BASE_ROLE, IamSudo, Identity, SimulatedSession
    from .credentials import Credentials, shared_credentials_file, write_profile
    from .fidelity import Finding
    from .policy import SudoPolicy
    from .principal import Principal
    from .remote import DEFAULT_FUNCTION_NAME, SimulateRequest
    from .roles import Role, resolve_role
    from .session import SessionPlan, SessionRequest, build_session, plan_session


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
    "build_session",
    "plan_session",
    "resolve_role",
    "shared_credentials_file",
    "write_profile",
]

"""iam-sudo: credentials of real and simulated IAM roles.

The public API::

    from iam_sudo import IamSudo

    async with IamSudo() as sudo:
        session = await sudo.session("TaskRole", principal="Service:ecs-tasks.amazonaws.com")
        credentials = await sudo.assume_session(session)
"""

from ._aws import AioTransport, ThreadTransport, Transport
from ._exceptions import (
    AccessDenied,
    AmbiguousRole,
    AwsError,
    CredentialsFileError,
    EndpointUnreachable,
    IamSudoError,
    InvalidPrincipal,
    InvalidRequest,
    InvalidSudoPolicy,
    NoCredentials,
    RemoteError,
    RequestError,
    RoleError,
    RoleNotFound,
    SessionLimitExceeded,
    SudoPolicyDenied,
    SudoPolicyError,
    UnsupportedRole,
)
from .client import DEFAULT_BASE_ROLE, IamSudo, Identity, SimulatedSession
from .credentials import Credentials, shared_credentials_file, write_profile
from .policy import SudoPolicy
from .principal import Principal
from .remote import DEFAULT_FUNCTION_NAME, SimulateRequest
from .roles import Role, resolve_role
from .session import SessionRequest, build_session

__all__ = [
    "DEFAULT_BASE_ROLE",
    "DEFAULT_FUNCTION_NAME",
    "AccessDenied",
    "AioTransport",
    "AmbiguousRole",
    "AwsError",
    "Credentials",
    "CredentialsFileError",
    "EndpointUnreachable",
    "IamSudo",
    "IamSudoError",
    "Identity",
    "InvalidPrincipal",
    "InvalidRequest",
    "InvalidSudoPolicy",
    "NoCredentials",
    "Principal",
    "RemoteError",
    "RequestError",
    "Role",
    "RoleError",
    "RoleNotFound",
    "SessionLimitExceeded",
    "SessionRequest",
    "SimulateRequest",
    "SimulatedSession",
    "SudoPolicy",
    "SudoPolicyDenied",
    "SudoPolicyError",
    "ThreadTransport",
    "Transport",
    "UnsupportedRole",
    "build_session",
    "resolve_role",
    "shared_credentials_file",
    "write_profile",
]

"""Every failure iam-sudo reports, under one base class.

The hierarchy, like httpx's, groups failures by what the caller can do about them:

    IamSudoError
    ├── RequestError            the request itself is wrong: fix the input
    │   ├── InvalidPrincipal
    │   └── InvalidRequest
    ├── RoleError               the target role cannot be used
    │   ├── RoleNotFound
    │   ├── AmbiguousRole
    │   └── UnsupportedRole
    ├── Unauthenticated         the function could not verify who is asking
    ├── SudoPolicyError         the sudo policy is involved
    │   ├── InvalidSudoPolicy
    │   └── SudoPolicyDenied
    ├── SessionLimitExceeded    STS would reject the session policies
    ├── InexactSimulation       --exact, and the session would grant less than the role
    ├── PackedPolicyConflict    an /iam-sudo/ policy does not hold what iam-sudo wrote
    ├── ConfigurationError      the environment's settings are invalid or missing
    ├── AwsError                AWS said no, or could not be reached
    │   ├── NoCredentials
    │   ├── EndpointUnreachable
    │   └── AccessDenied
    ├── RemoteError             the iam-sudo function failed
    ├── CredentialsFileError    the shared credentials file cannot be written
    ├── CredentialsExpired      held credentials expired and cannot be renewed now
    └── CommandError            the command to run with the credentials cannot be started

Each message is one line that says what is wrong and what to do.
"""

from __future__ import annotations


class IamSudoError(Exception):
    """Base class of every error iam-sudo raises on purpose."""


class RequestError(IamSudoError):
    """The request is malformed; nothing was sent to AWS because of it."""


class InvalidPrincipal(RequestError):
    """A principal is not of the form TYPE:ID."""


class InvalidRequest(RequestError):
    """A request to the iam-sudo function is malformed."""


class RoleError(IamSudoError):
    """The target role cannot be resolved or simulated."""


class RoleNotFound(RoleError):
    """No role matches the requested name (and principal)."""


class AmbiguousRole(RoleError):
    """Several roles match the requested name; a more specific name is needed."""

    def __init__(self, message: str, candidates: list[str]) -> None:
        super().__init__(message)
        self.candidates = candidates


class UnsupportedRole(RoleError):
    """The role has a feature a session policy cannot reproduce, e.g. a permissions boundary."""


class Unauthenticated(IamSudoError):
    """The caller's identity proof is missing, malformed, expired, forged or not for us."""


class SudoPolicyError(IamSudoError):
    """The sudo policy is malformed or forbids the request."""


class InvalidSudoPolicy(SudoPolicyError):
    """The sudo policy document is not valid YAML of the expected shape."""


class SudoPolicyDenied(SudoPolicyError):
    """The sudo policy does not allow this role, principal or base role."""

    def __init__(self, message: str, role_arn: str | None, base_role_arn: str | None) -> None:
        super().__init__(message)
        self.role_arn = role_arn
        self.base_role_arn = base_role_arn


class UnsafeBaseRole(SudoPolicyDenied):
    """The base role serves another duty of iam-sudo's, or lacks the Deny that keeps packed
    policies as written: never a base role, whatever the sudo policy's globs
    (:mod:`iam_sudo.core.duties`)."""


class SessionLimitExceeded(IamSudoError):
    """The role's policies exceed what STS accepts as session policies."""


class InexactSimulation(IamSudoError):
    """An exact simulation was asked for, and the session would grant less than the role.

    ``lines`` holds one line per narrowing (see :mod:`iam_sudo.core.fidelity`, kind
    ``narrower``); the message is the first line of a count and every line after it.
    """

    def __init__(self, role: str, lines: list[str]) -> None:
        count = f"{len(lines)} narrowing" + ("s" if len(lines) != 1 else "")
        super().__init__(
            f"role {role} cannot be simulated exactly ({count}; drop --exact to simulate "
            "it narrower, or use a base role that can grant it):\n" + "\n".join(lines)
        )
        self.lines = lines


class PackedPolicyConflict(IamSudoError):
    """A content-addressed /iam-sudo/ policy exists with another document: never used."""


class ConfigurationError(IamSudoError):
    """Settings are invalid or missing: an AWS SDK setting, or the function's environment."""


class AwsError(IamSudoError):
    """AWS rejected a request or could not be reached."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class NoCredentials(AwsError):
    """No AWS credentials were found in the standard places."""


class EndpointUnreachable(AwsError):
    """An AWS endpoint could not be reached."""


class AccessDenied(AwsError):
    """AWS denied a request for lack of permissions."""


class AccountUnreachable(AccessDenied):
    """Another account cannot be reached: not a spoke, or its reader role refuses the caller."""


class RemoteError(IamSudoError):
    """The iam-sudo function returned an error; its message is shown as is."""

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type


class CredentialsFileError(IamSudoError):
    """The shared credentials file cannot be read or written."""


class CredentialsExpired(IamSudoError):
    """Credentials cannot be served: they expired (or arrived too near their expiry) and
    could not be renewed (see :mod:`iam_sudo.core.refresh`)."""


class CommandError(IamSudoError):
    """The command could not be started; ``exit_code`` is what a shell would return."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class RecordError(IamSudoError):
    """A record of a run cannot be written there, or read back (damaged, truncated, of
    another format or version); the message says which and what to do."""

"""The edge where iam-sudo talks to AWS: where botocore's errors become ours.

Every AWS error code that means something to iam-sudo is translated here, once:
:func:`map_exceptions` for every call, and the operation-specific refusals
(:func:`assume_role_refusals`, :func:`role_arn_refusals`). :class:`Transport` is the
interface of the two transports in :mod:`iam_sudo.aws.transports`; :class:`Timeouts` bounds
their waits. Everything here raises only :class:`IamSudoError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeVar

from ..core.exceptions import (
    AccessDenied,
    AccountUnreachable,
    AwsError,
    ConfigurationError,
    EndpointUnreachable,
    IamSudoError,
    NoCredentials,
    RemoteError,
    RoleNotFound,
    SessionLimitExceeded,
)
from ..core.redact import scrub
from .caller import CallerProof

if TYPE_CHECKING:
    pass

RetryMode = Literal["standard", "adaptive", "legacy"]
T = TypeVar("T")

_ACCESS_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
}
# Not denied either: AWS does not know the caller's keys (deactivated, deleted, mistyped,
# of another partition) or the secret does not match them. iam-sudo's own credentials
# failed; only fixing them helps.
_INVALID_KEY_CODES = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
}
# Not denied: the caller's own credentials are out of date.
_EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}


# A 429 with no body (a load balancer or proxy on the way, or AWS itself) is throttling:
# botocore retries a throttling *error code* only, and cannot parse an empty XML body, so
# the answer is given the code AWS would send (botocore.retries.standard's throttled codes).
_BARE_429 = "HTTP 429 without an AWS error"
_THROTTLED_CODE = "Throttling"


def _bare_429_is_throttling(
    operation_model: Any, response_dict: dict[str, Any], **kwargs: Any
) -> None:
    """botocore ``before-parse`` handler: a bodiless 429 becomes a throttling error."""
    if response_dict.get("status_code") != 429 or (response_dict.get("body") or b"").strip():
        return
    protocol = operation_model.service_model.protocol
    if protocol in ("json", "rest-json"):
        body = f'{{"__type": "{_THROTTLED_CODE}", "message": "{_BARE_429}"}}'
        response_dict["headers"]["x-amzn-ErrorType"] = _THROTTLED_CODE
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{_THROTTLED_CODE}</Code>"
            f"<Message>{_BARE_429}</Message></Error></ErrorResponse>"
        )
    response_dict["body"] = body.encode()


# Calls that create something each time they reach AWS, so that sending one again after its
# answer was lost makes a second one: sts:AssumeRole (a session, and a CloudTrail event in
# the caller's SourceIdentity) and lambda:Invoke (a whole simulation in the function: a
# session, packed policies, a decision in its log). botocore's retries re-send a request
# whose answer timed out, whose connection broke after it was sent, or that got a 5xx (AWS
# SDKs and Tools Reference Guide, "Retry behavior": transient errors): 2 or 3 sessions for
# one request. These two are re-sent only when AWS surely did nothing: the connection was
# never made, or AWS refused it as throttling.
NOT_RESENT_WHEN_MAYBE_DONE = {"sts": ("AssumeRole",), "lambda": ("Invoke",)}


class AnswerLost(Exception):
    """A call of :data:`NOT_RESENT_WHEN_MAYBE_DONE` may have taken effect, but its answer
    did not arrive (``what``): it is not sent again."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _no_blind_resend(
    response: Any, caught_exception: Exception | None, operation: Any, attempts: int, **_: Any
) -> None:
    """botocore ``needs-retry.<service>.<operation>`` handler, called before the retry
    handler (handlers of the more specific event run first): lets it decide only for
    requests AWS surely did not carry out, raises :class:`AnswerLost` for the others."""
    import botocore.exceptions as bce
    from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

    if caught_exception is not None:
        if isinstance(caught_exception, bce.EndpointConnectionError | bce.ConnectTimeoutError):
            return  # not connected: nothing was sent
        raise AnswerLost(type(caught_exception).__name__)
    http, parsed = response
    if http.status_code < 500:
        return  # AWS answered: done, refused, or throttled before doing anything
    context = RetryContext(
        attempt_number=attempts,
        operation_model=operation,
        parsed_response=parsed,
        http_response=http,
    )
    if ThrottledRetryableChecker().is_retryable(context):
        return
    raise AnswerLost(f"HTTP {http.status_code}")


def register_no_blind_resend(client: Any) -> None:
    """Register :func:`_no_blind_resend` on ``client`` for its calls that create something."""
    service = client.meta.service_model.service_id.hyphenize()
    for operation in NOT_RESENT_WHEN_MAYBE_DONE.get(service, ()):
        client.meta.events.register(f"needs-retry.{service}.{operation}", _no_blind_resend)


# What an endpoint that is not AWS, or a broken hop on the way, answers instead of AWS.
_NOT_AN_ANSWER = "answered with something that is not an AWS answer"
_CHECK_ENDPOINT = "check AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_{service} and any proxy on the way"


_NO_CREDENTIALS = (
    "no AWS credentials found; configure a profile, set AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
)


def _endpoint_hint(service: str) -> str:
    return _CHECK_ENDPOINT.format(service=service.upper())


@contextlib.contextmanager
def map_exceptions(service: str, operation: str, endpoint: str | None = None) -> Iterator[None]:
    """Translate botocore's exceptions raised by one AWS call into iam-sudo's.

    Every message is one line that names the call, the endpoint where known, and what to
    check. None repeats a body AWS (or an impostor) sent: it could hold a secret.
    """
    import json

    import botocore.exceptions as bce
    from botocore.parsers import ResponseParserError

    from ..settings.config import invalid_region_message, own_credentials_failure

    where = f"{service}:{operation}"
    at = f" {endpoint}" if endpoint else ""
    try:
        yield
    except IamSudoError:
        raise
    except AnswerLost as error:
        made = "a session" if service == "sts" else "a simulation (a session, a log entry)"
        raise EndpointUnreachable(
            f"{where}: the answer of the {service} endpoint{at} was lost ({error.what}); AWS "
            f"may have made {made} already, so iam-sudo does not send it again: run the "
            "command again"
        ) from None
    except bce.ProfileNotFound as error:
        from ..settings.config import profile_in_effect

        missing = str(error.kwargs.get("profile"))
        if missing != profile_in_effect():
            # Named by another profile (a source_profile), not by AWS_PROFILE.
            raise NoCredentials(
                f"the AWS profile {missing!r} is not in your AWS config files; fix the "
                f"source_profile that names it (in the chain of profile {profile_in_effect()})"
            ) from None
        raise NoCredentials(
            f"the AWS profile {missing!r} is not in your AWS config files; check AWS_PROFILE"
        ) from None
    except (bce.SSOError, bce.TokenRetrievalError) as error:
        raise NoCredentials(own_credentials_failure("sso", str(error))) from None
    except bce.CredentialRetrievalError as error:
        detail = str(error.kwargs.get("error_msg", error))
        inner = _inner_iam_sudo_error(detail)
        if inner is not None:
            # The process was an iam-sudo: its own one line says what is wrong and what to
            # do, better than any wrapping of it (which would also cut it short).
            raise NoCredentials(inner) from None
        raise NoCredentials(own_credentials_failure("process", detail)) from None
    except json.JSONDecodeError as error:
        # Only a credential_process's output is parsed as bare JSON on the way to AWS.
        raise NoCredentials(own_credentials_failure("process-output", str(error))) from None
    except RuntimeError as error:
        if "still expired" not in str(error):
            raise
        raise NoCredentials(
            own_credentials_failure("expired", "they are expired", os.environ)
        ) from None
    except (bce.InvalidConfigError, bce.PartialCredentialsError) as error:
        # How iam-sudo's own profile is written (a source_profile naming no profile, a key
        # without its secret): not the endpoint's fault.
        raise NoCredentials(own_credentials_failure("config", str(error))) from None
    except bce.NoCredentialsError:
        raise NoCredentials(_NO_CREDENTIALS) from None
    except (bce.ConnectTimeoutError, bce.ReadTimeoutError) as error:
        raise EndpointUnreachable(
            f"{where}: no answer from the {service} endpoint{at} in time "
            f"({type(error).__name__}); check your network and region, "
            f"{_endpoint_hint(service)}, or raise IAM_SUDO_CONNECT_TIMEOUT/IAM_SUDO_READ_TIMEOUT"
        ) from None
    except bce.EndpointConnectionError:
        raise EndpointUnreachable(
            f"cannot reach the {service} endpoint{at}; check your network and region, and "
            f"{_endpoint_hint(service)}"
        ) from None
    except bce.HTTPClientError:
        raise EndpointUnreachable(
            f"{where}: the connection to the {service} endpoint{at} broke before it answered; "
            f"check your network and {_endpoint_hint(service)}"
        ) from None
    except bce.ClientError as error:
        info = error.response.get("Error", {})
        code = str(info.get("Code", "Unknown"))
        message = " ".join(str(info.get("Message", "")).split())[:300] or code
        if code == _THROTTLED_CODE and message == _BARE_429:
            code = "429"  # retried as throttling, still throttled: say what came back
        if code.isdigit():
            # A bare HTTP status: no AWS error document came with it.
            hint = "AWS is throttling: wait and retry" if code == "429" else _endpoint_hint(service)
            raise AwsError(
                f"{where}: the {service} endpoint{at} answered HTTP {code} without an AWS "
                f"error; {hint}",
                code=code,
            ) from None
        if code == "ResourceNotFoundException" and service == "lambda":
            raise RemoteError(
                f"{message}; deploy iam-sudo with `pulumi up`, name the function with "
                "--function-name or IAM_SUDO_FUNCTION, or use --local to simulate with your "
                "own credentials (no function needed)",
                error_type=code,
            ) from None
        if code == "NoSuchEntity" and service == "iam" and "role" in operation:
            raise RoleNotFound(f"{where}: {message}") from None
        if code in _EXPIRED_CODES:
            raise NoCredentials(
                own_credentials_failure("expired", f"{where}: {code}: {message}"), code=code
            ) from None
        if code in _INVALID_KEY_CODES:
            raise NoCredentials(
                own_credentials_failure("invalid", f"{where}: {code}: {message}"), code=code
            ) from None
        if code in _ACCESS_DENIED_CODES:
            raise AccessDenied(f"{where} denied: {message}", code=code) from None
        raise AwsError(f"{where} failed: {code}: {message}", code=code) from None
    except (ResponseParserError, KeyError, IndexError, TypeError, AttributeError):
        # botocore parses whatever came back; a page that is not AWS's fails in there.
        raise AwsError(
            f"{where}: the {service} endpoint{at} {_NOT_AN_ANSWER}; {_endpoint_hint(service)}"
        ) from None
    except bce.InvalidRegionError as error:
        raise ConfigurationError(
            invalid_region_message(str(error.kwargs.get("region_name", "")))
        ) from None
    except bce.BotoCoreError as error:
        detail = " ".join(scrub(str(error)).split())[:200]
        raise AwsError(f"{where} failed: {detail}; {_endpoint_hint(service)}") from None
    except ValueError as error:
        garbled = _garbled_expiration(os.environ)
        if garbled is not None:
            raise ConfigurationError(
                f"AWS_CREDENTIAL_EXPIRATION is {garbled}, not a time AWS SDKs can read, beside "
                "AWS_ACCESS_KEY_ID: unset it (it may be left from other keys) or set your "
                "keys' expiry as ISO 8601 (2026-01-31T20:00:00Z)"
            ) from None
        # botocore checks settings such as AWS_ENDPOINT_URL and AWS_MAX_ATTEMPTS with ValueError.
        raise ConfigurationError(
            f"invalid AWS setting: {' '.join(str(error).split())[:200]}; check AWS_ENDPOINT_URL, "
            "AWS_REGION, AWS_MAX_ATTEMPTS, AWS_CREDENTIAL_EXPIRATION and your AWS config file"
        ) from None


_IAM_SUDO_ERROR = "iam-sudo: error: "


def _inner_iam_sudo_error(detail: str) -> str | None:
    """The innermost iam-sudo's error line in a credential_process failure, or None."""
    if _IAM_SUDO_ERROR not in detail:
        return None
    lines = detail.rsplit(_IAM_SUDO_ERROR, 1)[1].strip().splitlines()
    return " ".join(scrub(lines[0]).split())[:1000] or None if lines else None


def _garbled_expiration(environ: Mapping[str, str]) -> str | None:
    """The environment's AWS_CREDENTIAL_EXPIRATION (shortened, quoted) if botocore cannot
    parse it beside environment keys (its EnvProvider reads it with dateutil), else None."""
    value = environ.get("AWS_CREDENTIAL_EXPIRATION")
    if not value or "AWS_ACCESS_KEY_ID" not in environ:
        return None
    from dateutil.parser import parse  # type: ignore[import-untyped]

    try:
        parse(value)
    except (ValueError, OverflowError):
        from ..core.text import bounded

        return bounded(value)
    return None


@contextlib.contextmanager
def assume_role_refusals(
    *, source_identity: bool, tags: int, policy_arns: int, plaintext_chars: int
) -> Iterator[None]:
    """What sts:AssumeRole's refusals of a simulated session mean, and what to do.

    ``source_identity`` (a SourceIdentity was sent), ``tags`` (session tags sent),
    ``policy_arns`` and ``plaintext_chars`` describe the request: the hint names them.
    AccessDenied of a request that sets SourceIdentity or tags is most often the base
    role's trust policy lacking sts:SetSourceIdentity / sts:TagSession (IAM User Guide,
    "Passing session tags in AWS STS" and "Monitor and control actions taken with assumed
    roles"); PackedPolicyTooLarge is STS's packed limit, which iam-sudo cannot predict.
    """
    try:
        yield
    except AwsError as error:
        if error.code in ("AccessDenied", "AccessDeniedException") and (source_identity or tags):
            raise AccessDenied(
                f"{error}; to pass the caller as SourceIdentity and the role's tags, "
                f"the base role's trust policy must allow sts:SetSourceIdentity and "
                f"sts:TagSession for you (or use --no-source-identity / "
                f"--no-session-tags)",
                code=error.code,
            ) from None
        if error.code == "PackedPolicyTooLarge":
            raise SessionLimitExceeded(
                f"STS refused the session as too large once packed "
                f"(PackedPolicyTooLarge): sent {policy_arns} policy ARNs, "
                f"{plaintext_chars} plaintext characters and "
                f"{tags} session tags; try --no-session-tags"
            ) from None
        raise


@contextlib.contextmanager
def spoke_base_role_refusals(base_role_arn: str, account: str, who: str) -> Iterator[None]:
    """sts:AssumeRole of a spoke's base role refused: the spoke is missing or outdated.

    STS answers AccessDenied alike for a role that does not exist and one whose trust
    policy does not allow ``who`` (IAM User Guide, "Troubleshooting IAM roles").
    """
    try:
        yield
    except AccessDenied as error:
        raise AccountUnreachable(
            f"cannot assume {base_role_arn} in account {account}: it does not exist or does "
            f"not trust {who} for sts:AssumeRole, sts:SetSourceIdentity and sts:TagSession; "
            "redeploy the account's spoke (`pulumi up` in the hub)",
            code=error.code,
        ) from None


@contextlib.contextmanager
def role_arn_refusals(role_name: str) -> Iterator[None]:
    """iam:GetRole refused while learning a role's ARN: say what else works."""
    try:
        yield
    except AccessDenied as error:
        raise AccessDenied(
            f"{error}; iam-sudo needs iam:GetRole to learn role {role_name}'s ARN "
            "(with its path): give the role's ARN instead",
            code=error.code,
        ) from None


@contextlib.contextmanager
def base_role_refusals(base_role: str) -> Iterator[None]:
    """The base role is not there: name it as the base role, and where it was chosen."""
    try:
        yield
    except RoleNotFound:
        if os.environ.get("IAM_SUDO_BASE_ROLE") == base_role:
            chosen = "set by IAM_SUDO_BASE_ROLE"
        elif base_role == "IAMSudoUser":
            chosen = "the default"
        else:
            chosen = "given with --base-role"
        raise RoleNotFound(
            f"the base role {base_role} ({chosen}) does not exist in this account: name an "
            "existing base role with --base-role or IAM_SUDO_BASE_ROLE, or deploy "
            "iam-sudo's (IAMSudoUser) with `pulumi up`"
        ) from None


@contextlib.contextmanager
def exact_name_refusals(role_name: str) -> Iterator[None]:
    """A role to *assume* is named exactly: say so when the name is not a role's."""
    try:
        yield
    except RoleNotFound:
        raise RoleNotFound(
            f"there is no role named exactly {role_name}: assume takes a role's exact name "
            "or its ARN (simulate takes a part of a name); `iam-sudo roles --local` lists "
            "the roles"
        ) from None


@contextlib.contextmanager
def reading_answer(service: str, operation: str) -> Iterator[None]:
    """Turn a missing or mistyped field in an AWS answer into one line, not a traceback."""
    try:
        yield
    except IamSudoError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise AwsError(
            f"{service}:{operation}: the {service} endpoint {_NOT_AN_ANSWER} (a field iam-sudo "
            f"needs is missing or malformed); {_endpoint_hint(service)}"
        ) from None


@dataclass(frozen=True)
class Timeouts:
    """How long to wait for AWS, so that a black-holed endpoint fails in seconds, not minutes.

    With botocore's standard retries (3 attempts) the defaults give up after about
    3 x (5 + 8) s at worst. Invoking the function waits longer: it may run for up to its
    own 30 s timeout. ``IAM_SUDO_CONNECT_TIMEOUT`` and ``IAM_SUDO_READ_TIMEOUT`` (seconds)
    override them, for slow links.
    """

    connect: float = 5.0
    read: float = 8.0
    function_read: float = 40.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Timeouts:
        environ = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for field_name, variable in (
            ("connect", "IAM_SUDO_CONNECT_TIMEOUT"),
            ("read", "IAM_SUDO_READ_TIMEOUT"),
        ):
            text = environ.get(variable, "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not 0 < value <= 3600:
                raise ConfigurationError(
                    f"{variable}={text[:40]!r} is not a number of seconds between 0 and 3600"
                )
            values[field_name] = value
        timeouts = cls(**values)
        if "read" in values:
            timeouts = replace(timeouts, function_read=max(timeouts.function_read, values["read"]))
        return timeouts

    def read_for(self, service: str) -> float:
        return self.function_read if service == "lambda" else self.read


class Transport(Protocol):
    """Makes AWS API calls; raises only :class:`IamSudoError`."""

    async def call(self, service: str, operation: str, /, **params: Any) -> dict[str, Any]:
        """Call ``operation`` (snake_case, as botocore names it) of ``service``."""
        ...

    async def identity_proof(self, audience: str) -> CallerProof:
        """A signed, unsent sts:GetCallerIdentity for this transport's STS endpoint."""
        ...

    async def send_proof(self, proof: CallerProof) -> tuple[int, bytes]:
        """Send a proof :func:`check_proof` returned to its STS URL; (HTTP status, body)."""
        ...

    async def sts_endpoint(self) -> str:
        """The STS endpoint as boto3 resolves it here (AWS_ENDPOINT_URL_STS honoured)."""
        ...

    async def scope(self, service: str) -> tuple[str, str]:
        """(partition, region) of this transport's ``service`` client; no request is sent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

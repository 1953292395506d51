"""Keeping secrets out of logs, at every level.

botocore logs whole request and response bodies at DEBUG: an AssumeRole answer's secret
key and session token, the caller's own session token in the signed headers. A library
user's ``logging.basicConfig(level=logging.DEBUG)``, or Lambda's ApplicationLogLevel=DEBUG,
would write them out. :func:`protect_sdk_logs` puts a filter on the SDK's loggers that
blanks those messages' data entirely and scrubs credential-shaped values from any other
message, so that no secret is logged whatever the logging configuration.
"""

from __future__ import annotations

import logging
import re

REDACTED = "<redacted by iam-sudo>"

# Messages whose arguments are request or response data: dropped whole, since no pattern
# can promise to find every secret in an arbitrary body.
_DATA_MESSAGES = (
    "Response body",
    "Response headers",
    "Making request for",
    "Sending http request",
    "CanonicalRequest",
    "StringToSign",
    "String to sign",
    "Signature",
    "HTTP request",
    "Request body",
    "Response data",
)
# The names of secrets, not secrets.
_SECRET_NAMES = "|".join(
    (
        "SecretAccessKey",
        "SessionToken",
        "Token",
        "secret_access_key",
        "session_token",
        "security_token",
        "aws_secret_access_key",
        "aws_session_token",
        "x-amz-security-token",
        "Authorization",
        "X-Amz-Signature",
        "Signature",
        "Password",
        "secret",
    )
)
_SECRETS = re.compile(
    # <Name>value</Name>
    rf"(<(?:{_SECRET_NAMES})>)[^<]*(</)"
    # "Name": "value", 'Name': 'value', Name=value, Name: value (a header line)
    rf"|((?:[\"']?)\b(?:{_SECRET_NAMES})(?:[\"']?)\s*[:=]\s*[\"']?)([^\"'\s,;&}}<]+)",
    re.IGNORECASE,
)
# A word of prose after a secret's name ("SSO Token: Token for x does not exist", "Session
# token: expired") is vocabulary, not a secret: AWS's keys, tokens and signatures are long
# strings with digits, mixed case or symbols.
_PROSE_WORD = re.compile(r"[A-Za-z]?[a-z]{0,30}[.:]?")
_PREFIXES = ("botocore", "aiobotocore", "boto3", "aioboto3", "s3transfer", "urllib3", "aiohttp")
# Named up front, so that the filter is in place before the module that logs is imported.
_KNOWN = (
    "botocore.parsers",
    "botocore.endpoint",
    "botocore.auth",
    "botocore.hooks",
    "botocore.retryhandler",
    "botocore.httpsession",
    "botocore.credentials",
    "aiobotocore.endpoint",
    "aiobotocore.client",
    "aiobotocore.hooks",
    "aiobotocore.httpsession",
    "aiobotocore.credentials",
    "urllib3.connectionpool",
)


def scrub(text: str) -> str:
    """``text`` with credential-shaped values replaced by a marker."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"{match.group(1)}{REDACTED}{match.group(2)}"
        if _PROSE_WORD.fullmatch(match.group(4)):
            return match.group(0)
        return f"{match.group(3)}{REDACTED}"

    return _SECRETS.sub(replace, text)


class SecretFilter(logging.Filter):
    """Rewrites a record so that it carries no secret; never drops the record itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.lstrip().startswith(_DATA_MESSAGES):
            head = record.msg.split("%", 1)[0].rstrip(": \n")
            record.msg, record.args = f"{head}: {REDACTED}", None
        else:
            try:
                message = record.getMessage()
            except Exception:  # a malformed record is the SDK's business, not a leak
                return True
            record.msg, record.args = scrub(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_FILTER = SecretFilter()


def protect_sdk_logs() -> None:
    """Put the secret filter on every AWS SDK and HTTP logger that exists now.

    Logger filters do not apply to child loggers, so each is filtered by name; call this
    again after importing more of the SDK (the transports do, when they create clients).
    """
    names = {
        name for name in logging.Logger.manager.loggerDict if name.split(".", 1)[0] in _PREFIXES
    }
    for name in {*names, *_KNOWN, *_PREFIXES}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

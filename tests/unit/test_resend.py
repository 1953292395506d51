"""Which requests botocore may send again: a call that creates something is re-sent only
when AWS surely did nothing (the counted runs: tests/integration/test_resend.py)."""

import botocore.exceptions as bce
import pytest

from iam_sudo.aws.errors import AnswerLost, _no_blind_resend


class _Http:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def _decide(status: int | None = None, code: str = "", error: Exception | None = None) -> None:
    from botocore.session import get_session

    model = get_session().get_service_model("sts").operation_model("AssumeRole")
    response = None if status is None else (_Http(status), {"Error": {"Code": code}})
    _no_blind_resend(response=response, caught_exception=error, operation=model, attempts=1)


@pytest.mark.parametrize(
    "error",
    [
        bce.ReadTimeoutError(endpoint_url="https://sts.amazonaws.com"),
        bce.ConnectionClosedError(endpoint_url="https://sts.amazonaws.com"),
        bce.SSLError(endpoint_url="https://sts.amazonaws.com", error="eof"),
    ],
)
def test_a_request_that_may_have_been_carried_out_is_never_re_sent(error: Exception) -> None:
    with pytest.raises(AnswerLost):
        _decide(error=error)
    with pytest.raises(AnswerLost):
        _decide(500, "InternalFailure")
    with pytest.raises(AnswerLost):
        _decide(503, "ServiceUnavailable")


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (None, "", bce.EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")),
        (None, "", bce.ConnectTimeoutError(endpoint_url="https://sts.amazonaws.com")),
        (400, "Throttling", None),  # STS's throttling answer
        (429, "TooManyRequestsException", None),  # Lambda's
        (502, "EC2ThrottledException", None),  # Lambda's, before the function runs
        (200, "", None),
        (403, "AccessDenied", None),
    ],
)
def test_the_retry_handler_decides_what_surely_was_not_carried_out(
    status: int | None, code: str, error: Exception | None
) -> None:
    assert _decide(status, code, error) is None

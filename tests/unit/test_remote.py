import json

import pytest

from iam_sudo import InvalidPrincipal, InvalidRequest, Principal, RemoteError, SimulateRequest
from iam_sudo.steps.remote import parse_reply

CREDENTIALS = {
    "AccessKeyId": "ASIA1",
    "SecretAccessKey": "secret",
    "SessionToken": "token",
    "Expiration": "2026-11-24T19:00:00+00:00",
}


def test_the_event_carries_only_the_fields_given() -> None:
    assert SimulateRequest("TaskRole").to_event() == {"role_name": "TaskRole"}
    request = SimulateRequest("TaskRole", Principal("Service", "ecs-tasks.amazonaws.com"), "Base")
    event = request.to_event()
    assert event == {
        "role_name": "TaskRole",
        "principal": "Service:ecs-tasks.amazonaws.com",
        "base_role": "Base",
    }
    assert SimulateRequest.from_event(event) == request


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "must be a JSON object, got list"),
        ("TaskRole", "must be a JSON object, got str"),
        (None, "must be a JSON object, got NoneType"),
        ({}, "no role_name"),
        ({"role_name": "x", "extra": 1}, "unknown field 'extra'"),
        ({"role_name": 5}, "role_name must be a string, got int"),
        ({"role_name": "x", "principal": ["a"]}, "principal must be a string"),
        ({"role_name": ""}, "role_name must not be empty"),
        ({"role_name": "x", "base_role": "  "}, "base_role must not be empty"),
        ({"role_name": "x" * 513}, "role_name is longer than 512"),
    ],
)
def test_malformed_events_are_refused_saying_what_is_wrong(event: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        SimulateRequest.from_event(event)


def test_a_bad_principal_is_refused() -> None:
    with pytest.raises(InvalidPrincipal):
        SimulateRequest.from_event({"role_name": "x", "principal": "nocolon"})


def test_512_characters_are_accepted() -> None:
    arn = "arn:aws:iam::123456789012:role/" + "p/" * 220 + "x" * 41
    assert len(arn) == 512
    assert SimulateRequest.from_event({"role_name": "x", "base_role": arn}).base_role == arn


@pytest.mark.parametrize("name", ["x" * 65, "Task Role", "Tâche", "a\u2028b"])
def test_a_role_name_iam_could_not_hold_is_refused_in_a_bounded_line(name: str) -> None:
    with pytest.raises(InvalidRequest, match="is not a valid IAM role name") as caught:
        SimulateRequest.from_event({"role_name": name})
    assert len(str(caught.value)) < 200


def test_a_reply_with_credentials_parses() -> None:
    credentials = parse_reply(json.dumps(CREDENTIALS).encode(), None)
    assert credentials.access_key_id == "ASIA1"
    assert credentials.expiration.isoformat() == "2026-11-24T19:00:00+00:00"


def test_a_function_error_carries_the_functions_message_and_type() -> None:
    payload = json.dumps({"errorMessage": "no role matches", "errorType": "RoleNotFound"}).encode()
    with pytest.raises(RemoteError, match=r"^no role matches$") as caught:
        parse_reply(payload, "Unhandled")
    assert caught.value.error_type == "RoleNotFound"


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (b"not json", "Unhandled", "failed \\(Unhandled\\) without a message"),
        (b'{"AccessKeyId": "x"}', None, "replied without credentials"),
        (b"", None, "replied without credentials"),
    ],
)
def test_replies_without_credentials_are_errors(
    payload: bytes, error: str | None, message: str
) -> None:
    with pytest.raises(RemoteError, match=message):
        parse_reply(payload, error)


def test_an_unauthenticated_answer_keeps_the_functions_words_and_says_what_to_check() -> None:
    answer = {"errorMessage": "the caller's identity proof was refused"}
    payload = json.dumps({**answer, "errorType": "Unauthenticated"}).encode()
    with pytest.raises(RemoteError) as caught:
        parse_reply(payload, "Unhandled")
    message = str(caught.value)
    assert message.startswith("the caller's identity proof was refused; ")
    assert "--function-name" in message
    assert "region" in message
    assert "\n" not in message
    assert caught.value.error_type == "Unauthenticated"

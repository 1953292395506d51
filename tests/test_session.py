import json

import pytest

from iam_sudo import SessionLimitExceeded, build_session
from iam_sudo.session import DENY_ALL, merge_inline_policies, session_name

BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"


def allow(*actions: str, sid: str | None = None) -> dict[str, object]:
    statement: dict[str, object] = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    if sid:
        statement["Sid"] = sid
    return {"Version": "2012-10-17", "Statement": [statement]}


def build(arns: list[str], inline: dict[str, dict[str, object]]):  # type: ignore[no-untyped-def]
    return build_session(
        role_name="app-TaskRole",
        base_role_arn=BASE,
        attached_policy_arns=arns,
        inline_policies=inline,
    )


def test_the_session_carries_every_managed_arn_and_every_inline_statement() -> None:
    request = build(
        ["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::123456789012:policy/mine"],
        {
            "b": allow("sqs:SendMessage"),
            "a": {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}},
        },
    )
    params = request.to_params()
    assert params["RoleArn"] == BASE
    assert params["PolicyArns"] == [
        {"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
        {"arn": "arn:aws:iam::123456789012:policy/mine"},
    ]
    assert json.loads(params["Policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"},
        ],
    }
    assert " " not in params["Policy"], "the inline session policy is compact JSON"


def test_sids_are_dropped_and_identical_statements_sent_once() -> None:
    merged = merge_inline_policies({"a": allow("s3:*", sid="Same"), "b": allow("s3:*", sid="Same")})
    assert merged == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}],
    }


def test_policy_variables_keep_their_meaning_from_older_policy_versions() -> None:
    resource = "arn:aws:s3:::home/${aws:username}/*"
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}
    merged = merge_inline_policies(
        {
            "current": {"Version": "2012-10-17", "Statement": [statement]},
            "old": {"Version": "2008-10-17", "Statement": [statement]},
            "unversioned": {"Statement": [{**statement, "Action": "s3:PutObject"}]},
        }
    )
    assert merged is not None
    assert [s["Resource"] for s in merged["Statement"]] == [
        resource,
        "arn:aws:s3:::home/${$}{aws:username}/*",
        "arn:aws:s3:::home/${$}{aws:username}/*",
    ]


def test_managed_policies_only_send_no_inline_policy() -> None:
    request = build(["arn:aws:iam::aws:policy/ReadOnlyAccess"], {})
    assert request.policy is None
    assert "Policy" not in request.to_params()


def test_a_role_without_policies_gets_a_deny_all_session_not_the_base_roles_rights() -> None:
    request = build([], {"empty": {"Version": "2012-10-17", "Statement": []}})
    assert request.policy is not None
    assert json.loads(request.policy) == DENY_ALL
    assert "PolicyArns" not in request.to_params()


def test_ten_managed_policies_are_accepted_and_eleven_refused_naming_them() -> None:
    arns = [f"arn:aws:iam::123456789012:policy/p{i}" for i in range(11)]
    assert len(build(arns[:10], {}).policy_arns) == 10
    with pytest.raises(
        SessionLimitExceeded, match=r"11 managed policies, 1 over STS's limit of 10.*p10"
    ):
        build(arns, {})


def test_an_inline_policy_of_2048_characters_is_accepted_and_one_more_is_refused() -> None:
    def sized(length: int) -> dict[str, dict[str, object]]:
        base = len(json.dumps(merge_inline_policies({"x": allow("s3:")}), separators=(",", ":")))
        return {"x": allow("s3:" + "a" * (length - base))}

    assert len(build([], sized(2048)).policy or "") == 2048
    with pytest.raises(SessionLimitExceeded) as caught:
        build([], sized(2049))
    message = str(caught.value)
    assert "2049-character session policy, 1 over STS's limit of 2048" in message
    assert "x (" in message
    assert "\n" not in message


def test_session_names_keep_to_the_sts_charset_and_64_characters() -> None:
    assert (
        session_name("my-stack-TaskRole-9AO01PCC7I0T") == "iam-sudo-my-stack-TaskRole-9AO01PCC7I0T"
    )
    long = session_name("R" * 64)
    assert len(long) == 64
    assert long.startswith("iam-sudo-RRR")
    assert session_name("a b/c") == "iam-sudo-a-b-c"

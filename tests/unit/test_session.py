import json

from iam_sudo.core.conditions import Target
from iam_sudo.core.session import (
    DENY_ALL,
    SessionRequest,
    plan_session,
    session_name,
    session_tags,
)

BASE = "arn:aws:iam::123456789012:role/IAMSudoUser"
ROLE = Target("arn:aws:iam::123456789012:role/app-TaskRole")


def allow(*actions: str, sid: str | None = None) -> dict[str, object]:
    statement: dict[str, object] = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    if sid:
        statement["Sid"] = sid
    return {"Version": "2012-10-17", "Statement": [statement]}


def build(arns: list[str], inline: dict[str, dict[str, object]]) -> SessionRequest:
    """The request of a role that fits without creating any policy."""
    plan = plan_session(
        role_name="app-TaskRole",
        base_role_arn=BASE,
        attached_policy_arns=arns,
        inline_policies=inline,
        managed_documents={arn: allow("s3:GetObject") for arn in arns},
        target=ROLE,
    )
    assert plan.packed == ()
    return plan.request


def sent_statements(inline: dict[str, dict[str, object]]) -> list[dict[str, object]]:
    policy = build([], inline).policy
    assert policy is not None
    statements: list[dict[str, object]] = json.loads(policy)["Statement"]
    return statements


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
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sqs:SendMessage"], "Resource": "*"}],
    }
    assert " " not in params["Policy"], "the inline session policy is compact JSON"


def test_sids_are_dropped_and_identical_statements_sent_once() -> None:
    sent = sent_statements({"a": allow("s3:*", sid="Same"), "b": allow("s3:*", sid="Same")})
    assert sent == [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]


def test_policy_variables_keep_their_meaning_from_older_policy_versions() -> None:
    # A request key keeps its value in the session ("same" class); ${aws:username} would
    # never match for a role and its Allow would be left out (IAM User Guide, policy
    # variables with no value).
    resource = "arn:aws:s3:::home/${aws:RequestedRegion}/*"
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}
    sent = sent_statements(
        {
            "current": {"Version": "2012-10-17", "Statement": [statement]},
            "old": {"Version": "2008-10-17", "Statement": [statement]},
            "unversioned": {"Statement": [{**statement, "Action": "s3:PutObject"}]},
        }
    )
    literal = "arn:aws:s3:::home/${$}{aws:RequestedRegion}/*"
    by_resource = {str(s["Resource"]): s["Action"] for s in sent}
    assert by_resource == {resource: "s3:GetObject", literal: ["s3:GetObject", "s3:PutObject"]}


def test_managed_policies_only_send_no_inline_policy() -> None:
    request = build(["arn:aws:iam::aws:policy/ReadOnlyAccess"], {})
    assert request.policy is None
    assert "Policy" not in request.to_params()


def test_a_role_without_policies_gets_a_deny_all_session_not_the_base_roles_rights() -> None:
    request = build([], {"empty": {"Version": "2012-10-17", "Statement": []}})
    assert request.policy is not None
    assert json.loads(request.policy) == DENY_ALL
    assert "PolicyArns" not in request.to_params()


def test_eleven_managed_policies_are_packed() -> None:
    arns = [f"arn:aws:iam::123456789012:policy/p{i}" for i in range(11)]
    assert len(build(arns[:10], {}).policy_arns) == 10
    documents = {arn: allow(f"s3:Get{i}") for i, arn in enumerate(arns)}
    plan = plan_session(
        role_name="app-TaskRole",
        base_role_arn=BASE,
        attached_policy_arns=arns,
        inline_policies={},
        managed_documents=documents,
        target=ROLE,
    )
    # The smallest managed policy now travels inline: ten ARNs, nothing to create.
    assert len(plan.request.policy_arns) == 10
    assert plan.packed == ()
    assert len(plan.inlined_managed) == 1
    assert plan.request.plaintext_chars <= 2048


def test_2048_plaintext_characters_go_as_they_are_and_one_more_gets_packed() -> None:
    def sized(length: int) -> dict[str, dict[str, object]]:
        base = len(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:", "Resource": "*"}],
                },
                separators=(",", ":"),
            )
        )
        return {"x": allow("s3:" + "a" * (length - base))}

    assert len(build([], sized(2048)).policy or "") == 2048
    plan = plan_session(
        role_name="app-TaskRole",
        base_role_arn=BASE,
        attached_policy_arns=[],
        inline_policies=sized(2049),
        managed_documents={},
        target=ROLE,
    )
    [packed] = plan.packed
    assert plan.request.policy is None
    assert plan.request.policy_arns == (packed.arn,)
    assert packed.arn.startswith("arn:aws:iam::123456789012:policy/iam-sudo/iam-sudo-")
    assert len(packed.document) == 2049


def test_tags_within_sts_limits_are_passed_and_the_rest_reported() -> None:
    tags = {"team": "a", "aws:x": "b", "k" * 129: "c", "v": "x" * 257, "ok": "y"}
    kept, dropped = session_tags(tags)
    assert kept == (("ok", "y"), ("team", "a"))
    assert sorted(dropped) == sorted(["aws:x", "k" * 129, "v"])
    many = {f"t{i:02d}": "v" for i in range(60)}
    kept, dropped = session_tags(many)
    assert len(kept) == 50
    assert len(dropped) == 10


def test_session_names_keep_to_the_sts_charset_and_64_characters() -> None:
    assert (
        session_name("my-stack-TaskRole-9AO01PCC7I0T") == "iam-sudo-my-stack-TaskRole-9AO01PCC7I0T"
    )
    long = session_name("R" * 64)
    assert len(long) == 64
    assert long.startswith("iam-sudo-RRR")
    assert session_name("a b/c") == "iam-sudo-a-b-c"

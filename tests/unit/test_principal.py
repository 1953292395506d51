import pytest

from iam_sudo import InvalidPrincipal, Principal
from iam_sudo.core.principal import admits, trusted_principals

ECS = Principal("Service", "ecs-tasks.amazonaws.com")


def statement(principal: object, effect: str = "Allow") -> dict[str, object]:
    return {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}


def test_parse_splits_on_the_first_colon_only() -> None:
    assert Principal.parse("AWS:arn:aws:iam::123456789012:root") == Principal(
        "AWS", "arn:aws:iam::123456789012:root"
    )
    assert (
        str(Principal.parse("Service:ecs-tasks.amazonaws.com")) == "Service:ecs-tasks.amazonaws.com"
    )


@pytest.mark.parametrize("text", ["", "Service", ":id", "Service:", " Service:x", "Service: "])
def test_parse_rejects_text_that_is_not_type_colon_id(text: str) -> None:
    with pytest.raises(InvalidPrincipal, match="expected TYPE:ID"):
        Principal.parse(text)


def test_trusted_principals_come_from_every_allow_statement_and_never_from_deny() -> None:
    policy = {
        "Statement": [
            statement({"Service": "lambda.amazonaws.com"}),
            statement({"AWS": ["arn:aws:iam::111111111111:root", "222222222222"]}),
            statement({"Service": "ec2.amazonaws.com"}, effect="Deny"),
            statement({"Service": ["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"]}),
        ]
    }
    assert trusted_principals(policy) == [
        Principal("Service", "lambda.amazonaws.com"),
        Principal("AWS", "arn:aws:iam::111111111111:root"),
        Principal("AWS", "222222222222"),
        ECS,
    ]


def test_a_single_statement_object_is_read_like_a_list_of_one() -> None:
    assert trusted_principals({"Statement": statement({"Service": ECS.id})}) == [ECS]


def test_principal_star_is_the_aws_wildcard_and_admits_anyone() -> None:
    assert trusted_principals({"Statement": [statement("*")]}) == [Principal("AWS", "*")]
    assert admits({"Statement": [statement("*")]}, ECS)
    assert admits({"Statement": [statement({"AWS": "*"})]}, ECS)


def test_admits_only_principals_named_in_an_allow_statement() -> None:
    policy = {
        "Statement": [statement({"Service": ECS.id}, effect="Deny"), statement({"Service": "x"})]
    }
    assert not admits(policy, ECS)
    assert admits({"Statement": [statement({"Service": "x"}), statement({"Service": ECS.id})]}, ECS)
    assert not admits({"Statement": [statement({"AWS": ECS.id})]}, ECS)


def test_an_account_id_and_its_root_arn_are_the_same_principal() -> None:
    policy = {"Statement": [statement({"AWS": "arn:aws:iam::123456789012:root"})]}
    assert admits(policy, Principal("AWS", "123456789012"))
    policy = {"Statement": [statement({"AWS": "123456789012"})]}
    assert admits(policy, Principal("AWS", "arn:aws:iam::123456789012:root"))
    assert not admits(policy, Principal("AWS", "arn:aws:iam::123456789012:user/bob"))


def test_missing_or_malformed_trust_policies_admit_nobody() -> None:
    assert trusted_principals(None) == []
    assert trusted_principals({"Statement": "nonsense"}) == []
    assert not admits({}, ECS)


@pytest.mark.parametrize(
    ("action", "counts"),
    [
        ("sts:AssumeRole", True),
        (["sts:TagSession", "sts:assumerole"], True),
        ("sts:*", True),
        ("sts:AssumeRoleWithWebIdentity", True),
        ("sts:TagSession", False),
        (["sts:TagSession", "sts:SetSourceIdentity"], False),
        ("s3:*", False),
    ],
)
def test_only_statements_that_allow_assuming_the_role_count(action: object, counts: bool) -> None:
    policy = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": ECS.id}, "Action": action}]
    }
    assert admits(policy, ECS) is counts


def test_not_action_counts_unless_it_excludes_every_way_to_assume() -> None:
    def trust(not_action: object) -> dict[str, object]:
        return {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": ECS.id}, "NotAction": not_action}
            ]
        }

    assert admits(trust("s3:*"), ECS)
    assert not admits(trust("sts:AssumeRole*"), ECS)


def test_an_account_principal_answers_to_both_spellings() -> None:
    aliases = Principal("AWS", "123456789012").aliases
    assert aliases[:4] == (
        "123456789012",
        "arn:aws:iam::123456789012:root",
        "arn:aws-cn:iam::123456789012:root",
        "arn:aws-us-gov:iam::123456789012:root",
    )
    # ...and the root ARN of every other partition (core/partitions.py).
    assert "arn:aws-iso-b:iam::123456789012:root" in aliases
    assert "123456789012" in Principal("AWS", "arn:aws:iam::123456789012:root").aliases
    assert Principal("Service", "123456789012").aliases == ("123456789012",)

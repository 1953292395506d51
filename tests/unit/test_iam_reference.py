"""The reference evaluator's decision, step by step as the IAM User Guide's "Policy
evaluation logic" ("Determining whether a request is allowed or denied within an account")
gives it, and the phrase of "Troubleshoot access denied error messages" for each cause."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.iam_reference import (
    BOUNDARY,
    IDENTITY,
    RESOURCE,
    SESSION,
    Decision,
    Principal,
    Request,
    decide,
    statements,
)

ROLE = "arn:aws:iam::111122223333:role/R"
WHO = Principal("arn:aws:sts::111122223333:assumed-role/R/s", ROLE, "111122223333")
GET = Request("s3:GetObject", "arn:aws:s3:::b/k", {})


def allow(action: str = "s3:GetObject", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": "*", **extra}


def deny(action: str = "s3:GetObject", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": "*", **extra}


def test_identity_policies_alone_decide_without_session_policies_or_boundary() -> None:
    assert decide(GET, WHO, identity=[allow()]) == Decision(True)
    assert decide(GET, WHO, identity=[allow("s3:PutObject")]) == Decision(False, IDENTITY)


def test_session_policies_intersect_the_identity_policies() -> None:
    # "Session policies": the intersection of the identity-based and session policies.
    assert decide(GET, WHO, identity=[allow()], session=[allow()]) == Decision(True)
    assert decide(GET, WHO, identity=[allow()], session=[allow("s3:Put*")]) == Decision(
        False, SESSION
    )
    # Passed but empty is not "not passed": nothing allows.
    assert decide(GET, WHO, identity=[allow()], session=[]) == Decision(False, SESSION)
    # A session policy cannot grant what the role lacks.
    assert decide(GET, WHO, identity=[], session=[allow()]) == Decision(False, IDENTITY)


def test_a_permissions_boundary_limits_the_identity_policies() -> None:
    assert decide(GET, WHO, identity=[allow()], boundary=[allow("s3:*")]) == Decision(True)
    assert decide(GET, WHO, identity=[allow()], boundary=[allow("sns:*")]) == Decision(
        False, BOUNDARY
    )


@pytest.mark.parametrize(
    ("where", "kind"),
    [("identity", IDENTITY), ("session", SESSION), ("boundary", BOUNDARY)],
)
def test_an_explicit_deny_anywhere_wins_and_names_its_policy_type(where: str, kind: str) -> None:
    policies: dict[str, list[dict[str, Any]]] = {
        "identity": [allow()],
        "session": [allow()],
        "boundary": [allow()],
    }
    policies[where] = [*policies[where], deny()]
    assert decide(GET, WHO, **policies) == Decision(False, kind, explicit=True)


def test_of_several_denials_the_message_names_the_first_in_the_flow_charts_order() -> None:
    # "If multiple policy types deny ..., AWS includes only one of those policy types".
    assert decide(GET, WHO, identity=[], session=[], boundary=[]).policy_type == IDENTITY
    assert decide(GET, WHO, identity=[allow()], session=[], boundary=[]).policy_type == BOUNDARY
    explicit = decide(GET, WHO, identity=[allow(), deny()], session=[deny()])
    assert explicit == Decision(False, IDENTITY, explicit=True)


def test_a_resource_policy_grant_to_the_session_is_not_limited_by_implicit_denies() -> None:
    to_session = [allow(Principal={"AWS": WHO.arn})]
    assert decide(GET, WHO, identity=[], session=[], boundary=[], resource=to_session) == (
        Decision(True)
    )


def test_a_resource_policy_grant_to_the_role_is_limited_by_session_and_boundary() -> None:
    to_role = [allow(Principal={"AWS": ROLE})]
    assert decide(GET, WHO, identity=[], resource=to_role) == Decision(True)
    assert decide(GET, WHO, identity=[], session=[], resource=to_role) == Decision(False, SESSION)
    assert decide(GET, WHO, identity=[], boundary=[], resource=to_role) == Decision(False, BOUNDARY)


def test_a_resource_policy_grant_to_the_account_delegates_to_identity_policies() -> None:
    to_account = [allow(Principal={"AWS": "arn:aws:iam::111122223333:root"})]
    assert decide(GET, WHO, identity=[], resource=to_account) == Decision(False, IDENTITY)


def test_a_resource_policy_deny_applies_to_the_principals_it_names() -> None:
    others = [deny(Principal={"AWS": "arn:aws:iam::999999999999:role/X"})]
    assert decide(GET, WHO, identity=[allow()], resource=others) == Decision(True)
    for named in ("*", ROLE, WHO.arn, "111122223333"):
        denying = [deny(Principal={"AWS": named})]
        assert decide(GET, WHO, identity=[allow()], resource=denying) == Decision(
            False, RESOURCE, explicit=True
        )
    everyone_but = [deny(NotPrincipal={"AWS": "arn:aws:iam::999999999999:role/X"})]
    assert not decide(GET, WHO, identity=[allow()], resource=everyone_but).allowed


def test_the_reason_is_the_access_denied_messages_phrase() -> None:
    action = "s3:GetObject"
    assert Decision(False, SESSION).reason(action) == (
        "because no session policy allows the s3:GetObject action"
    )
    assert Decision(False, IDENTITY).reason(action) == (
        "because no identity-based policy allows the s3:GetObject action"
    )
    assert Decision(False, BOUNDARY).reason(action) == (
        "because no permissions boundary allows the s3:GetObject action"
    )
    assert Decision(False, SESSION, explicit=True).reason(action) == (
        "with an explicit deny in a session policy"
    )
    assert Decision(False, IDENTITY, explicit=True).reason(action) == (
        "with an explicit deny in an identity-based policy"
    )
    assert Decision(False, BOUNDARY, explicit=True).reason(action) == (
        "with an explicit deny in a permissions boundary"
    )
    assert Decision(False, RESOURCE, explicit=True).reason(action) == (
        "with an explicit deny in a resource-based policy"
    )
    with pytest.raises(ValueError, match="allowed"):
        Decision(True).reason(action)


def test_a_statement_element_is_one_statement_or_a_list() -> None:
    one = {"Version": "2012-10-17", "Statement": allow()}
    assert statements(one) == [allow()]
    assert statements('{"Statement": [{"Effect": "Deny"}]}') == [{"Effect": "Deny"}]

"""Hub and spokes end to end, under enforcement: every call signed and authorized by IAM.

Accounts: the hub (the function, from the Pulumi program), spokes A and B (created from
what the program registers through their providers) each with a role ``app-TaskRole`` of
different policies, spoke C whose roles trust a stranger instead of the hub, spoke D listed
but never enrolled. moto applies AWS's cross-account trust check, refuses roles that do not
exist and caps chained sessions at one hour (devtools/enforced.py, its test_enforced.py).
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools import enforced, localaws, pulumi_program
from tests.conftest import PRINT_IDENTITY, run_cli
from tests.integration.conftest import EnforcedWorld, enforced_world

# An enforced world of its own: moto in this process.
pytestmark = pytest.mark.aws

HUB = pulumi_program.ACCOUNT
A, B, C, D = "111111111111", "222222222222", "333333333333", "444444444444"
E = "777777777777"  # its reader trusts the hub, its base role does not
NOT_A_SPOKE = "666666666666"
ALICE = f"arn:aws:iam::{HUB}:user/alice"
ALICE_ROLE = f"arn:aws:iam::{HUB}:role/alice-role"
STRANGER = "arn:aws:iam::555555555555:role/stranger"
POLICY = f"""\
rules:
  - allowed-callers: ["{ALICE}", "arn:aws:sts::{HUB}:assumed-role/alice-role/*"]
    allowed-accounts: ["{HUB}", "{A}"]
    allowed-role-names: ["*"]
    allowed-principals: [{{"*": "*"}}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
  - allowed-callers: ["arn:aws:iam::{HUB}:user/bob"]
    allowed-role-names: ["*"]
    allowed-principals: [{{"*": "*"}}]
    allowed-base-roles: ["arn:aws:iam::*:role/IAMSudoUser"]
"""
ALICE_MAY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            "Resource": "*",
        }
    ],
}


@dataclass
class Org(EnforcedWorld):
    @property
    def log(self) -> list[str]:
        return self.function.logs

    @property
    def archive(self) -> Path:
        """The deployed archive (another function may be served beside it)."""
        return self.program.archive

    @property
    def function_env(self) -> dict[str, str]:
        return self.function_environment()

    def env(self, user: str, base: dict[str, str]) -> dict[str, str]:
        return self.client_env(user, base)

    def run(self, user: str, base: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env(user, base))

    def whoami(self, user: str, base: dict[str, str], *args: str) -> str:
        result = self.run(user, base, "simulate", *args, "--", sys.executable, "-c", PRINT_IDENTITY)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def assumed(self) -> list[dict[str, str]]:
        return self.aws.recorder.sent("AssumeRole")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    world = enforced_world(
        tmp_path_factory.mktemp("organization"),
        {
            "policy": POLICY,
            "spokeAccounts": [A, B, C, D, E],
            "baseRoleTrustedPrincipals": [ALICE, ALICE_ROLE],
        },
        ("alice", "bob"),
        seed_as=HUB,
    )
    aws, program, hub = world.aws, world.program, world.iam
    hub.put_user_policy(UserName="alice", PolicyName="assume", PolicyDocument=json.dumps(ALICE_MAY))
    localaws.create_role(
        hub,
        "alice-role",
        trust=localaws.trust_policy(("AWS", ALICE)),
        inline={"assume": ALICE_MAY},
    )
    localaws.create_role(hub, "app-HubRole", inline={"p": localaws.allow("ec2:Describe*")})
    spokes = {account: enforced.admin(aws, "iam", account) for account in (A, B, C, E)}
    for account, iam in spokes.items():
        enforced.create_program_resources(iam, program, account)
    ecs = localaws.trust_policy(("Service", "ecs-tasks.amazonaws.com"))
    localaws.create_role(
        spokes[A], "app-TaskRole", trust=ecs, inline={"p": localaws.allow("s3:GetObject")}
    )
    localaws.create_role(spokes[A], "app-PackedRole", inline=localaws.too_large_inline("a"))
    localaws.create_role(
        spokes[B], "app-TaskRole", trust=ecs, inline={"p": localaws.allow("sqs:SendMessage")}
    )
    for name in ("iam-sudo-reader", "IAMSudoUser"):
        spokes[C].update_assume_role_policy(
            RoleName=name, PolicyDocument=json.dumps(localaws.trust_policy(("AWS", STRANGER)))
        )
    spokes[E].update_assume_role_policy(
        RoleName="IAMSudoUser", PolicyDocument=json.dumps(localaws.trust_policy(("AWS", STRANGER)))
    )
    localaws.create_role(spokes[E], "app-TaskRole", inline={"p": localaws.allow("s3:*")})
    org = Org(**vars(world))
    org.enforce()
    yield org
    org.stop()


def session_arn(account: str, role: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/IAMSudoUser/iam-sudo-{role}"


def test_the_same_role_name_in_two_spokes_is_simulated_in_each_account_with_its_policies(
    org: Org, aws_env: dict[str, str]
) -> None:
    for account, action in ((A, "s3:GetObject"), (B, "sqs:SendMessage")):
        org.aws.recorder.clear()
        identity = org.whoami("bob", aws_env, "--account", account, "--role-name", "app-TaskRole")
        # The credentials act in the target account: STS says so.
        assert identity == session_arn(account, "app-TaskRole")
        reader, base = org.assumed()
        assert reader["RoleArn"] == f"arn:aws:iam::{account}:role/iam-sudo-reader"
        assert base["RoleArn"] == f"arn:aws:iam::{account}:role/IAMSudoUser"
        assert json.loads(base["Policy"])["Statement"][0]["Action"] == action
        # The session lives in the spoke, where the hub's bob is a caller of another
        # account: his name, then a hash of his ARN (a spoke's own user bob stays "bob").
        name, comma, digest = base["SourceIdentity"].partition(",")
        assert (name, comma, len(digest)) == ("bob", ",", 20)
        log = json.loads(org.log[-1])
        assert log["decision"] == "allow"
        assert log["account"] == account
        assert log["resolved_role"] == f"arn:aws:iam::{account}:role/app-TaskRole"


def test_a_role_arn_in_a_spoke_needs_no_account_option(org: Org, aws_env: dict[str, str]) -> None:
    arn = f"arn:aws:iam::{B}:role/app-TaskRole"
    assert org.whoami("bob", aws_env, "--role-name", arn) == session_arn(B, "app-TaskRole")


def test_a_warm_function_reuses_its_reader_session(org: Org, aws_env: dict[str, str]) -> None:
    org.whoami("bob", aws_env, "--account", A, "--role-name", "app-TaskRole")
    org.aws.recorder.clear()
    org.whoami("bob", aws_env, "--account", A, "--role-name", "app-TaskRole")
    assert [s["RoleArn"] for s in org.assumed()] == [f"arn:aws:iam::{A}:role/IAMSudoUser"]


def test_packed_policies_are_created_in_the_role_s_account_only(
    org: Org, aws_env: dict[str, str]
) -> None:
    from moto.iam.models import iam_backends

    def ours(account: str) -> set[str]:
        return {a for a in iam_backends[account]["aws"].managed_policies if "/iam-sudo/" in a}

    before = {account: ours(account) for account in (HUB, A, B)}
    org.aws.recorder.clear()
    identity = org.whoami("bob", aws_env, "--account", A, "--role-name", "app-PackedRole")
    assert identity == session_arn(A, "app-PackedRole")
    created = ours(A) - before[A]
    assert created
    assert all(arn.startswith(f"arn:aws:iam::{A}:policy/iam-sudo/") for arn in created)
    assert ours(HUB) == before[HUB]
    assert ours(B) == before[B]
    [base] = [s for s in org.assumed() if s["RoleArn"].endswith(":role/IAMSudoUser")]
    sent = {v for k, v in base.items() if k.startswith("PolicyArns.member.")}
    assert sent == created


def test_local_simulation_in_a_spoke_uses_your_credentials_and_the_same_plan(
    org: Org, aws_env: dict[str, str]
) -> None:
    org.aws.recorder.clear()
    identity = org.whoami(
        "alice", aws_env, "--local", "--account", A, "--role-name", "app-TaskRole"
    )
    assert identity == session_arn(A, "app-TaskRole")
    alice_key = org.users["alice"]["AWS_ACCESS_KEY_ID"]
    assumed = [r for r in org.aws.recorder.requests if r.action == "AssumeRole"]
    assert [r.params["RoleArn"] for r in assumed] == [
        f"arn:aws:iam::{A}:role/iam-sudo-reader",
        f"arn:aws:iam::{A}:role/IAMSudoUser",
    ]
    assert all(r.access_key == alice_key for r in assumed)
    assert json.loads(assumed[1].params["Policy"])["Statement"][0]["Action"] == "s3:GetObject"


def test_allowed_accounts_per_rule_refuse_before_anything_is_assumed(
    org: Org, aws_env: dict[str, str]
) -> None:
    org.aws.recorder.clear()
    result = org.run(
        "alice", aws_env, "simulate", "--account", B, "--role-name", "app-", "--", "true"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"iam-sudo: error: sudo policy does not allow simulating roles in account {B}; ask for "
        "it in the policy's allowed-accounts; `iam-sudo roles` lists the roles the sudo policy "
        "lets you simulate"
    )
    assert org.assumed() == []
    assert org.whoami("alice", aws_env, "--account", A, "--role-name", "app-Task")


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        (C, "cannot read account {account}: its iam-sudo-reader role does not exist or does "
            "not trust arn:aws:sts::{hub}:assumed-role/iam-sudo-execution/"),
        (D, "cannot read account {account}: its iam-sudo-reader role does not exist or does "
            "not trust arn:aws:sts::{hub}:assumed-role/iam-sudo-execution/"),
        (NOT_A_SPOKE, "account {account} is not a spoke of this iam-sudo deployment; add it "
            "to iam-sudo:spokeAccounts"),
        (E, "cannot assume arn:aws:iam::{account}:role/IAMSudoUser in account {account}: it "
            "does not exist or does not trust arn:aws:sts::{hub}:assumed-role/"
            "iam-sudo-execution/"),
    ],
    ids=["untrusting-spoke", "never-enrolled", "not-a-spoke", "untrusting-base-role"],
)  # fmt: skip
def test_an_unreachable_account_is_one_line_naming_it_and_what_to_do(
    org: Org, aws_env: dict[str, str], account: str, expected: str
) -> None:
    result = org.run(
        "bob", aws_env, "simulate", "--account", account, "--role-name", "app-", "--", "true"
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("iam-sudo: error: " + expected.format(account=account, hub=HUB))
    assert "app-" not in line or account == E  # E's role may be seen: its reader works


def test_a_chained_session_longer_than_an_hour_is_refused_in_one_line(
    org: Org, aws_env: dict[str, str]
) -> None:
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=org.aws.url,
        region_name=localaws.REGION,
        aws_access_key_id=org.users["alice"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=org.users["alice"]["AWS_SECRET_ACCESS_KEY"],
    )
    role_session = enforced.session_env(
        sts.assume_role(RoleArn=f"arn:aws:iam::{HUB}:role/alice-role", RoleSessionName="alice")[
            "Credentials"
        ]
    )
    org.users["alice-role"] = role_session
    org.aws.recorder.clear()
    args = ("simulate", "--local", "--account", A, "--role-name", "app-TaskRole")
    result = org.run("alice-role", aws_env, *args, "--duration", "7200", "--", "true")
    assert result.returncode == 1
    assert "role chaining, which STS caps at 3600 seconds" in result.stderr
    assert org.assumed() == [], "said up front, not retried"
    # An hour is what STS allows for the chain: the same request succeeds.
    identity = org.whoami("alice-role", aws_env, "--local", "--account", A, "--role-name",
                          "app-TaskRole", "--duration", "3600")  # fmt: skip
    assert identity == session_arn(A, "app-TaskRole")


def test_roles_in_all_accounts_come_from_the_function_for_the_verified_caller(
    org: Org, aws_env: dict[str, str]
) -> None:
    result = org.run("bob", aws_env, "roles", "--all-accounts", "--json")
    assert result.returncode == 1, "two accounts could not be read"
    listed = json.loads(result.stdout)
    arns = {entry["arn"] for entry in listed if "arn" in entry}
    assert {
        f"arn:aws:iam::{HUB}:role/app-HubRole",
        f"arn:aws:iam::{A}:role/app-TaskRole",
        f"arn:aws:iam::{A}:role/app-PackedRole",
        f"arn:aws:iam::{B}:role/app-TaskRole",
    } <= arns
    assert {e["account"] for e in listed if "error" in e} == {C, D}  # E's reader works
    assert f"iam-sudo: account {C}: cannot read account {C}" in result.stderr
    # Warm readers: one listing per readable account, all at once, not one after another.
    org.aws.recorder.clear()
    assert org.run("bob", aws_env, "roles", "--all-accounts").returncode == 1
    assert org.aws.recorder.actions().count("ListRoles") == 4  # the hub, A, B and E
    reader_sessions = [s for s in org.assumed() if s["RoleArn"].split(":")[4] in (A, B, E)]
    assert reader_sessions == []
    # (Rounds are measured where requests take AWS-like time: benchmarks/bench.py.)
    # Alice's rule allows the hub and A only: B's roles are not even named.
    alice = org.run("alice", aws_env, "roles", "--all-accounts", "--json")
    seen = {e["arn"].split(":")[4] for e in json.loads(alice.stdout) if "arn" in e}
    assert seen == {HUB, A}
    one = org.run("bob", aws_env, "roles", "--account", B, "--json")
    assert one.returncode == 0, one.stderr
    in_b = json.loads(one.stdout)
    assert {r["arn"].split(":")[4] for r in in_b} == {B}
    assert "app-TaskRole" in [r["name"] for r in in_b]


def test_prune_in_a_spoke_deletes_only_its_unneeded_iam_sudo_policies(
    org: Org, aws_env: dict[str, str]
) -> None:
    from moto.iam.models import iam_backends

    org.aws.enforce(False)
    try:
        orphan = enforced.admin(org.aws, "iam", A).create_policy(
            PolicyName="iam-sudo-orphan",
            Path="/iam-sudo/",
            PolicyDocument=json.dumps(localaws.allow("s3:GetObject")),
        )["Policy"]["Arn"]
    finally:
        org.aws.enforce()
    # Older than prune's minimum age (a younger one may be about to be passed by ARN).
    policies = iam_backends[A]["aws"].managed_policies
    policies[orphan].create_date = policies[orphan].create_date - timedelta(hours=1)
    org.whoami("bob", aws_env, "--account", A, "--role-name", "app-PackedRole")
    needed = {a for a in iam_backends[A]["aws"].managed_policies if "/iam-sudo/" in a} - {orphan}
    assert needed
    result = org.run("alice", aws_env, "prune", "--account", A)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [orphan]
    left = {a for a in iam_backends[A]["aws"].managed_policies if "/iam-sudo/" in a}
    assert left == needed


# Every role of the hub and spokes, as a base role glob: the README's default.
ANY_BASE_ROLE = """\
allowed-role-names: ["*"]
allowed-principals: [{"*": "*"}]
allowed-base-roles: ["arn:aws:iam::*:role/*"]
"""


def _iam_as(org: Org, credentials: dict[str, str]) -> Any:
    return _client_as(org, "iam", credentials)


def _client_as(org: Org, service: str, credentials: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=org.aws.url,
        region_name=localaws.REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
    )


def _packed_policy_of(org: Org, aws_env: dict[str, str]) -> str:
    """A packed policy in spoke A that bob's live sessions of app-PackedRole pass by ARN."""
    from moto.iam.models import iam_backends

    org.whoami("bob", aws_env, "--account", A, "--role-name", "app-PackedRole")
    packed = sorted(a for a in iam_backends[A]["aws"].managed_policies if "/iam-sudo/" in a)
    assert packed
    return packed[0]


def test_the_spoke_reader_is_never_a_base_role_whatever_the_globs_local(
    org: Org, aws_env: dict[str, str]
) -> None:
    """The issue's example: a sudo policy allowing arn:aws:iam::*:role/*, base role
    iam-sudo-reader of a spoke. The reader may delete and create /iam-sudo/ policies and
    lacks the Deny: a session through it could delete another user's packed policy and
    create one of the same ARN granting *:*. Refused before it is assumed as a base role."""
    packed = _packed_policy_of(org, aws_env)
    org.aws.recorder.clear()
    result = org.run(
        "alice", {**aws_env, "IAM_SUDO_POLICY": ANY_BASE_ROLE},
        "simulate", "--local", "--account", A, "--role-name", "app-TaskRole",
        "--base-role", "iam-sudo-reader", "--", "true",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "iam-sudo: error: the base role iam-sudo-reader is iam-sudo's spoke reader: a role "
        "iam-sudo deploys or uses for another duty is never a base role, whatever the sudo "
        "policy allows; use a base role (IAMSudoUser, or one the Pulumi program deployed)"
    )
    # The reader was assumed to read (no session policy), never as a base role.
    assert [s.get("Policy") for s in org.assumed()] == [None]
    from moto.iam.models import iam_backends

    assert packed in iam_backends[A]["aws"].managed_policies


def test_the_spoke_reader_is_never_a_base_role_through_the_function_either(
    org: Org, aws_env: dict[str, str]
) -> None:
    # A second deployment of the same hub, with the README's default policy: the function
    # refuses the reader, its own execution role and the deploy role by name.
    org.stand_in.add_function(
        "iam-sudo-wide", org.archive, {**org.function_env, "IAM_SUDO_POLICY": ANY_BASE_ROLE}
    )
    cases = {
        "iam-sudo-reader": (A, "iam-sudo's spoke reader"),
        "iam-sudo-wide-execution": (None, "the execution role of the function iam-sudo-wide"),
        "iam-sudo-execution": (None, "the execution role of the function iam-sudo"),
        "OrganizationAccountAccessRole": (A, "the Organization's deploy role"),
    }
    for base, (account, duty) in cases.items():
        org.aws.recorder.clear()
        where = ["--account", account] if account else []
        result = org.run(
            "bob", aws_env, "simulate", "--function-name", "iam-sudo-wide", *where,
            "--role-name", "app-TaskRole" if account else "app-HubRole",
            "--base-role", base, "--", "true",
        )  # fmt: skip
        assert result.returncode == 1, base
        assert f"the base role {base} is {duty}: a role iam-sudo" in result.stderr, base
        assert [s for s in org.assumed() if "Policy" in s] == [], base


def test_a_base_role_without_the_packed_policy_deny_is_refused_and_one_with_it_holds(
    org: Org, aws_env: dict[str, str]
) -> None:
    """IAM User Guide, "Policy evaluation logic": an explicit Deny in an identity-based
    policy overrides every Allow. The guard is what keeps a live session's packed policy
    ARN meaning what it meant; a base role lacking it is refused at use."""
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    trust = localaws.trust_policy(("AWS", ALICE))
    org.aws.enforce(False)
    try:
        spoke = enforced.admin(org.aws, "iam", A)
        localaws.create_role(spoke, "Unguarded", trust=trust, managed=[admin])
        localaws.create_role(
            spoke, "GuardedAdmin", trust=trust, managed=[admin], inline=localaws.guard(account=A)
        )
        localaws.create_role(spoke, "app-Admin", inline={"all": localaws.allow("*")})
        throwaway = [
            spoke.create_policy(
                PolicyName=f"iam-sudo-throwaway-{i}",
                Path="/iam-sudo/",
                PolicyDocument=json.dumps(localaws.allow("s3:GetObject")),
            )["Policy"]["Arn"]
            for i in (1, 2)
        ]
    finally:
        org.aws.enforce()
    wide = {**aws_env, "IAM_SUDO_POLICY": ANY_BASE_ROLE}
    args = ("simulate", "--local", "--account", A, "--role-name", "app-Admin")
    org.aws.recorder.clear()
    refused = org.run("alice", wide, *args, "--base-role", "Unguarded", "--", "true")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith(
        f"iam-sudo: error: the base role arn:aws:iam::{A}:role/Unguarded lacks iam-sudo's "
        "Deny on rewriting packed policies (its inline policy iam-sudo-packed-policies must "
        "deny iam:CreatePolicyVersion, "
    )
    assert [s.get("Policy") for s in org.assumed()] == [None]  # the reader only
    # Through a guarded base role, a session allowed *:* cannot touch the policies other
    # sessions pass by ARN: IAM (moto, enforcing) refuses it by the guard alone.
    printed = org.run("alice", wide, *args, "--base-role", "GuardedAdmin", "--format", "process")
    assert printed.returncode == 0, printed.stderr
    guarded = _iam_as(org, _process_env(printed.stdout))
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="AccessDenied"):
        guarded.delete_policy(PolicyArn=throwaway[0])
    with pytest.raises(ClientError, match="AccessDenied"):
        guarded.create_policy_version(
            PolicyArn=throwaway[0], PolicyDocument=json.dumps(localaws.allow("*"))
        )
    assert guarded.list_policies(PathPrefix="/iam-sudo/")["Policies"]  # admin otherwise
    # The same administrator without the guard deletes one: what the check prevents.
    sts = _client_as(org, "sts", org.users["alice"])
    unguarded = enforced.session_env(
        sts.assume_role(RoleArn=f"arn:aws:iam::{A}:role/Unguarded", RoleSessionName="admin")[
            "Credentials"
        ]
    )
    _iam_as(org, unguarded).delete_policy(PolicyArn=throwaway[1])


def _process_env(printed: str) -> dict[str, str]:
    answer = json.loads(printed)
    return {
        "AWS_ACCESS_KEY_ID": answer["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": answer["SecretAccessKey"],
        "AWS_SESSION_TOKEN": answer["SessionToken"],
    }

"""A local AWS that checks signatures and authorizes every request by IAM policy.

moto verifies SigV4 signatures and evaluates identity policies once its
``INITIAL_NO_AUTH_ACTION_COUNT`` is used up; that setting is read in-process, so this
runs moto's server in this process (seeded first, enforcing after :meth:`enforce`).

moto's evaluation is simpler than IAM's in places that matter here; each is taught
the AWS rule, never loosened:

* IAM actions on policies are authorized against resource ``*``: a grant scoped to
  ``policy/iam-sudo/*`` could never match. Here such a request's resource is the
  policy's ARN, as in AWS (``PolicyArn``, or the ARN ``CreatePolicy`` would create).
  Likewise a request naming a role that does not exist (GetRole of a part of a name) is
  authorized against that role's ARN, so that a ``role/*`` grant answers NoSuchEntity.
* a trust policy naming a role ARN admits that role's sessions in AWS; moto compares the
  session's ARN with the role's literally, and would refuse every role chain. Likewise a
  trust policy naming an account (its ID or root ARN) admits the account's principals.

With several accounts (moto's credentials from AssumeRole act in the role's account),
three more AWS rules that moto does not apply are taught:

* AssumeRole of a role in another account is allowed only if that role's trust policy,
  in *its* account, allows the caller (IAM User Guide, "Cross account resource access in
  IAM": both the caller's identity policy and the role's trust policy must allow it);
  moto looks the role up in the caller's account, and skips the trust check when absent;
* AssumeRole of a role that does not exist is refused with AccessDenied, as STS answers
  (moto would hand out credentials for it);
* a role session assuming a role (role chaining) gets at most one hour: a larger
  ``DurationSeconds`` fails with ValidationError "The requested DurationSeconds exceeds the
  1 hour session limit for roles assumed by role chaining" (IAM User Guide, "Roles terms
  and concepts", role chaining; AWS re:Post "iam-role-chaining-limit").

The first two apply under enforcement, like moto's own authorization; the cap always.

Under enforcement every request is decided by ONE evaluator written from the IAM User Guide,
:func:`devtools.iam_reference.decide` (moto's own is replaced, see devtools/authorize.py):
the caller's identity-based policies (a role's inline and attached; a user's and their
groups'), intersected with the session policies the session was given (AssumeRole's
``Policy`` and ``PolicyArns``, remembered by the access key it issued: moto keeps none),
within the entity's permissions boundary, with S3 bucket policies as resource-based
policies; an explicit deny anywhere wins. A denial carries AWS's message ("User: ... is not
authorized to perform: ... because no session policy allows the ... action", "... with an
explicit deny in an identity-based policy", ...) in the service's error shape, for S3
(including multipart uploads), SQS, SNS, DynamoDB, STS and IAM.

What it does not cover (a request these would decide is decided without them):

* Organizations SCPs and RCPs, VPC endpoint policies;
* resource-based policies other than S3 bucket policies (SQS queue, SNS topic, KMS key
  policies; a role's trust policy is moto's check, taught above), S3 ACLs and Block
  Public Access, and cross-account requests' resource-policy rules;
* session policies of AssumeRoleWithWebIdentity, AssumeRoleWithSAML and GetFederationToken
  (moto issues GetFederationToken one fixed key), session tags, and source identity;
* context keys moto does not give: only aws:PrincipalArn, aws:PrincipalAccount,
  aws:PrincipalType, aws:PrincipalTag/* (the role's tags), aws:userid, aws:username,
  aws:RequestedRegion, aws:CurrentTime, aws:EpochTime and aws:SecureTransport (true: the
  local endpoint stands for AWS's HTTPS ones) are present; aws:SourceIp, aws:ResourceTag/*,
  aws:RequestTag/* and service keys (s3:prefix, dynamodb:LeadingKeys, ...) are absent, so a
  condition on them is decided as on an absent key;
* the IAM action of an operation is moto's (for S3, its table of actions, corrected where
  it is not IAM's, e.g. HeadBucket needs s3:ListBucket); an operation that needs several
  actions is authorized for one;
* presigned URLs (moto authorizes only signed headers).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from devtools import authorize, localaws
from devtools.pulumi_program import ProgramRun

_SESSION = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+")


def _teach_moto() -> None:
    from moto.iam import access_control
    from moto.iam.responses import IamResponse

    if getattr(IamResponse, "_iam_sudo_taught", False):
        return
    determine = IamResponse._determine_resource

    def resource(self: Any) -> str:
        policy_arn = self.data.get("PolicyArn")
        if policy_arn and "RoleName" not in self.data:
            return str(policy_arn[0])
        if self._get_action() == "CreatePolicy":
            path = self.data.get("Path", ["/"])[0]
            name = self.data["PolicyName"][0]
            return f"arn:{self.partition}:iam::{self.current_account}:policy{path}{name}"
        determined = str(determine(self))
        if determined == "*" and "RoleName" in self.data:
            # A role that does not exist: IAM authorizes against the ARN it would have, and
            # answers NoSuchEntity; moto would authorize against "*" and deny.
            role = self.data["RoleName"][0]
            return f"arn:{self.partition}:iam::{self.current_account}:role/{role}"
        if determined == "*" and "UserName" in self.data:
            # Likewise a user ("Actions, resources, and condition keys for IAM": user).
            name = self.data["UserName"][0]
            try:
                return str(self.backend.get_user(name).arn)
            except Exception:  # moto's NoSuchEntity: the ARN it would have
                return f"arn:{self.partition}:iam::{self.current_account}:user/{name}"
        return determined

    IamResponse._determine_resource = resource  # type: ignore[method-assign]
    check = access_control.IAMPolicyStatement._check_principal

    def principal_matches(self: Any, principal: str) -> bool:
        if check(self, principal):
            return True
        session = _SESSION.fullmatch(principal)
        trusted = (self._statement.get("Principal") or {}).get("AWS", [])
        trusted = trusted if isinstance(trusted, list) else [trusted]
        # An account principal (its ID or root ARN) trusts every principal of the account
        # whose identity policies allow the call ("IAM JSON policy elements: Principal",
        # AWS account principals); moto compares ARNs literally.
        parts = principal.split(":")
        if len(parts) > 4 and any(
            t in (parts[4], f"arn:{parts[1]}:iam::{parts[4]}:root") for t in trusted
        ):
            return True
        if session is None:
            return False
        partition, account, role = session.groups()
        return any(
            re.fullmatch(rf"arn:{partition}:iam::{account}:role/(?:[^/]+/)*{re.escape(role)}", t)
            for t in trusted
            if isinstance(t, str)
        )

    access_control.IAMPolicyStatement._check_principal = principal_matches  # type: ignore[method-assign]
    _teach_cross_account_assume_role()
    authorize.install()
    IamResponse._iam_sudo_taught = True  # type: ignore[attr-defined]


CHAINED_SESSION_LIMIT = 3600
CHAINING_MESSAGE = (
    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
    "role chaining."
)


def _teach_cross_account_assume_role() -> None:
    from moto.iam import access_control
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSValidationError
    from moto.sts.responses import TokenResponse

    def role_of(arn: str) -> Any:
        """The role an ARN names, looked up in the ARN's own account; None if none."""
        parts = arn.split(":")
        if len(parts) < 6 or not re.fullmatch(r"\d{12}", parts[4]):
            return None
        backend = iam_backends[parts[4]][parts[1]]
        return next((r for r in backend.get_roles() if r.arn == arn), None)

    def is_assuming(self: Any, resource_arn: str) -> bool:
        # Every AssumeRole is one, whether the role exists (anywhere) or not.
        return bool(self._action == "sts:AssumeRole" and ":role/" in resource_arn)

    def trusts(self: Any, role_arn: str) -> bool:
        role = role_of(role_arn)
        if role is None:
            return False  # STS: AccessDenied, as for a role that does not trust the caller
        result = access_control.IAMPolicy(role.assume_role_policy_document).is_action_permitted(
            self._action,
            role_arn,
            self._access_key.arn,
            access_control.format_incoming_conditional_values(self._data),
        )
        return bool(result == access_control.PermissionResult.PERMITTED)

    access_control.IAMRequestBase._is_assuming_role_operation = is_assuming  # type: ignore[method-assign]
    access_control.IAMRequestBase._check_role_trust_relationship = trusts  # type: ignore[method-assign]

    assume_role = TokenResponse.assume_role

    def capped(self: Any) -> Any:
        duration = self._get_int_param("DurationSeconds", 3600)
        chained = self.backend.get_assumed_role_from_access_key(self.get_access_key())
        if chained is not None and duration > CHAINED_SESSION_LIMIT:
            raise STSValidationError(CHAINING_MESSAGE)
        result = assume_role(self)
        # moto keeps no session policy: remember them by the access key the session got.
        arns = [entry["arn"] for entry in self._get_param("PolicyArns") or []]
        authorize.remember_session(
            result.result["Credentials"].access_key_id, self._get_param("Policy"), arns
        )
        return result

    TokenResponse.assume_role = capped  # type: ignore[method-assign]


@dataclass
class EnforcedAws:
    """moto in this process, behind a recording proxy; open until :meth:`enforce`."""

    server: Any
    proxy: Any
    url: str
    recorder: localaws.Recorder

    def enforce(self, on: bool = True) -> None:
        from moto import settings

        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")

    def stop(self) -> None:
        self.enforce(False)
        self.proxy.shutdown()
        self.server.stop()


def start() -> EnforcedAws:
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    from moto.server import ThreadedMotoServer

    _teach_moto()
    port = localaws.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    recorder = localaws.Recorder()
    proxy = localaws.start_proxy(f"http://127.0.0.1:{port}", recorder)
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    # One moto per process: what an earlier harness seeded (other tests' roles) is gone.
    import urllib.request

    reset = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=30):
        pass
    authorize.forget_sessions()
    return EnforcedAws(server, proxy, url, recorder)


def admin(aws: EnforcedAws, service: str, account: str) -> Any:
    """A client acting in ``account`` with moto's seeding rights; only before :meth:`enforce`.

    moto lets anyone assume a role that does not exist while it does not enforce, and
    such credentials act in the role's account: that is how other accounts are seeded.
    """
    sts = localaws.client("sts", aws.url)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/seed-admin", RoleSessionName="seed"
    )["Credentials"]
    import boto3

    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=localaws.REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _name(value: str) -> str:
    # The mocks give every resource the id "<name>-id"; inputs refer to roles by id or name.
    return value.removesuffix("-id")


def create_program_resources(iam: Any, program: ProgramRun, account: str | None = None) -> None:
    """Create in moto the IAM roles, trust, inline policies and attachments of the program.

    ``account``: only the resources that land in that account (by their provider's
    assume-role account, see :meth:`ProgramRun.account_of`); default, the hub's.
    """
    from devtools.pulumi_program import ACCOUNT

    where = ACCOUNT if account is None else account

    def here(type_: str) -> list[Any]:
        return [r for r in program.of_type(type_) if program.account_of(r) == where]

    roles = here("aws:iam/role:Role")
    for role in roles:
        extra = {}
        if role.inputs.get("permissionsBoundary"):
            extra["PermissionsBoundary"] = role.inputs["permissionsBoundary"]
        if role.inputs.get("maxSessionDuration"):
            extra["MaxSessionDuration"] = int(role.inputs["maxSessionDuration"])
        iam.create_role(
            RoleName=role.inputs["name"],
            AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"],
            **extra,
        )
    for policy in here("aws:iam/rolePolicy:RolePolicy"):
        iam.put_role_policy(
            RoleName=_name(policy.inputs["role"]),
            PolicyName=policy.inputs["name"],
            PolicyDocument=policy.inputs["policy"],
        )
    for attachment in here("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        role_name = _name(attachment.inputs["role"])
        if any(r.inputs["name"] == role_name for r in roles):
            iam.attach_role_policy(RoleName=role_name, PolicyArn=attachment.inputs["policyArn"])


def user_with_keys(iam: Any, name: str) -> dict[str, str]:
    """An IAM user and an access key of theirs, as environment variables."""
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def session_env(credentials: dict[str, Any]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def document(value: Any) -> str:
    return json.dumps(value)

"""A local AWS that checks signatures and authorizes every request by IAM policy.

moto verifies SigV4 signatures and evaluates identity policies once its
``INITIAL_NO_AUTH_ACTION_COUNT`` is used up; that setting is read in-process, so this
runs moto's server in this process (seeded first, enforcing after :meth:`enforce`).

moto's evaluation is simpler than IAM's in two places that matter here; both are taught
the AWS rule, never loosened:

* IAM actions on policies are authorized against resource ``*``: a grant scoped to
  ``policy/iam-sudo/*`` could never match. Here such a request's resource is the
  policy's ARN, as in AWS (``PolicyArn``, or the ARN ``CreatePolicy`` would create).
* a trust policy naming a role ARN admits that role's sessions in AWS; moto compares the
  session's ARN with the role's literally, and would refuse every role chain.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from devtools import localaws
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
            return f"arn:aws:iam::{self.current_account}:policy{path}{name}"
        return str(determine(self))

    IamResponse._determine_resource = resource  # type: ignore[method-assign]
    check = access_control.IAMPolicyStatement._check_principal

    def principal_matches(self: Any, principal: str) -> bool:
        if check(self, principal):
            return True
        session = _SESSION.fullmatch(principal)
        trusted = (self._statement.get("Principal") or {}).get("AWS", [])
        trusted = trusted if isinstance(trusted, list) else [trusted]
        if session is None:
            return False
        partition, account, role = session.groups()
        return any(
            re.fullmatch(rf"arn:{partition}:iam::{account}:role/(?:[^/]+/)*{re.escape(role)}", t)
            for t in trusted
            if isinstance(t, str)
        )

    access_control.IAMPolicyStatement._check_principal = principal_matches  # type: ignore[method-assign]
    IamResponse._iam_sudo_taught = True  # type: ignore[attr-defined]


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
    return EnforcedAws(server, proxy, url, recorder)


def _name(value: str) -> str:
    # The mocks give every resource the id "<name>-id"; inputs refer to roles by id or name.
    return value.removesuffix("-id")


def create_program_resources(iam: Any, program: ProgramRun) -> None:
    """Create in moto the IAM roles, trust, inline policies and attachments of the program."""
    for role in program.of_type("aws:iam/role:Role"):
        extra = {}
        if role.inputs.get("permissionsBoundary"):
            extra["PermissionsBoundary"] = role.inputs["permissionsBoundary"]
        iam.create_role(
            RoleName=role.inputs["name"],
            AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"],
            **extra,
        )
    for policy in program.of_type("aws:iam/rolePolicy:RolePolicy"):
        iam.put_role_policy(
            RoleName=_name(policy.inputs["role"]),
            PolicyName=policy.inputs["name"],
            PolicyDocument=policy.inputs["policy"],
        )
    for attachment in program.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        role_name = _name(attachment.inputs["role"])
        if any(r.inputs["name"] == role_name for r in program.of_type("aws:iam/role:Role")):
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

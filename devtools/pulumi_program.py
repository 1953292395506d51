"""Run the iam-sudo Pulumi program under Pulumi's mocks: no CLI, no provider, no cloud.

Returns every resource the program registered, with its inputs, and the stack outputs.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"


MANAGEMENT_ACCOUNT = "999999999999"
PROVIDER = "pulumi:providers:aws"


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    #: "<provider URN>::<provider id>" for an explicit provider, "" for the default one.
    provider: str = ""
    id: str = ""

    @property
    def provider_id(self) -> str:
        return self.provider.rsplit("::", 1)[-1] if self.provider else ""


def assumed_account(provider: Resource) -> str:
    """The account an ``aws.Provider`` acts in: that of the role it assumes (its only one)."""
    roles = provider.inputs["assumeRoles"]
    roles = json.loads(roles) if isinstance(roles, str) else roles
    [role] = roles
    return str(role["roleArn"].split(":")[4])


@dataclass
class Mocks(pulumi.runtime.Mocks):
    resources: list[Resource] = field(default_factory=list)
    #: OU id -> [(account id, state)], what Organizations answers at deploy time.
    organizational_units: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: Where the program deploys: the region, and so its partition (aws-us-gov, aws-cn, ...).
    region: str = REGION

    @property
    def partition(self) -> str:
        from iam_sudo.core.partitions import partition_of_region

        return partition_of_region(self.region).name

    def account_of(self, provider_reference: str) -> str:
        """The account a resource created through ``provider_reference`` lands in."""
        if not provider_reference:
            return ACCOUNT
        provider_id = provider_reference.rsplit("::", 1)[-1]
        [provider] = [r for r in self.resources if r.id == provider_id and r.type == PROVIDER]
        return assumed_account(provider)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name", args.name)
        resource_id = f"{args.name}-id" if args.typ == PROVIDER else f"{name}-id"
        self.resources.append(
            Resource(args.typ, args.name, dict(args.inputs), args.provider or "", resource_id)
        )
        account = self.account_of(args.provider or "")
        at = f"{self.partition}:{{}}:{self.region}:{ACCOUNT}"
        arns = {
            "aws:iam/role:Role": f"arn:{self.partition}:iam::{account}:role/{name}",
            "aws:iam/policy:Policy": f"arn:{self.partition}:iam::{account}:policy/{name}",
            "aws:lambda/function:Function": f"arn:{at.format('lambda')}:function:{name}",
            "aws:cloudwatch/logGroup:LogGroup": f"arn:{at.format('logs')}:log-group:{name}",
        }
        state = {**args.inputs, "name": name}
        if args.typ in arns:
            state["arn"] = arns[args.typ]
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A bare dict: pulumi's mock monitor cannot take (result, None) for "no failures".
        if args.token == "aws:index/getPartition:getPartition":
            from iam_sudo.core.partitions import PARTITIONS

            suffix = PARTITIONS[self.partition].dns_suffix
            return {"partition": self.partition, "dnsSuffix": suffix, "id": self.partition}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:{self.partition}:iam::{ACCOUNT}:user/deployer"
            return {"accountId": ACCOUNT, "arn": arn, "userId": "AIDA", "id": ACCOUNT}
        if args.token == "aws:index/getRegion:getRegion":
            region = self.region
            return {"region": region, "name": region, "id": region, "endpoint": ""}
        if args.token == "aws:organizations/getOrganization:getOrganization":
            return {"masterAccountId": MANAGEMENT_ACCOUNT, "id": "o-example"}
        token = "aws:organizations/getOrganizationalUnitDescendantAccounts:"
        if args.token.startswith(token):
            unit = args.args["parentId"]
            org = f"arn:{self.partition}:organizations::{MANAGEMENT_ACCOUNT}:account/o-example"
            accounts = [
                {"id": a, "state": state, "status": state, "arn": f"{org}/{a}",
                 "email": f"{a}@example.com",
                 "name": a, "joinedMethod": "CREATED", "joinedTimestamp": "2026-01-01T00:00:00Z"}
                for a, state in self.organizational_units[unit]
            ]  # fmt: skip
            return {"accounts": accounts, "id": unit, "parentId": unit}
        raise NotImplementedError(args.token)


@dataclass
class ProgramRun:
    resources: list[Resource]
    outputs: dict[str, Any]

    def account_of(self, resource: Resource) -> str:
        """The account ``resource`` lands in: its provider's assume-role account, else ours."""
        if not resource.provider:
            return ACCOUNT
        [provider] = [
            r for r in self.resources if r.id == resource.provider_id and r.type == PROVIDER
        ]
        return assumed_account(provider)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_part: str = "") -> Resource:
        [found] = [r for r in self.of_type(type_) if name_part in r.name]
        return found

    @property
    def function_env(self) -> dict[str, str]:
        variables: dict[str, str] = self.one("aws:lambda/function:Function").inputs["environment"][
            "variables"
        ]
        return variables

    @property
    def archive(self) -> Path:
        return Path(self.one("aws:lambda/function:Function").inputs["code"].path)


def run(config: dict[str, Any], build_dir: Path, mocks: Mocks | None = None) -> ProgramRun:
    """Run ``__main__.py`` with ``iam-sudo:*`` config; raises what the program raises.

    Pass ``mocks`` to see what was registered even when the program fails.
    """
    mocks = Mocks() if mocks is None else mocks
    # Pulumi's runtime awaits on "the current" loop; an async test before may have closed it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(mocks, project="iam-sudo", stack="test", preview=False)
    pulumi.runtime.set_all_config(
        {
            f"iam-sudo:{key}": value if isinstance(value, str) else json.dumps(value)
            for key, value in config.items()
        }
    )
    exports: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    original_export, original_cwd = pulumi.export, Path.cwd()

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        return pulumi.Output.all(**exports).apply(outputs.update)

    pulumi.export = lambda name, value: exports.__setitem__(name, value)  # type: ignore[assignment]
    build_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(build_dir)
    try:
        program()
    finally:
        pulumi.export = original_export
        os.chdir(original_cwd)
        asyncio.set_event_loop(None)
        loop.close()
    return ProgramRun(mocks.resources, outputs)

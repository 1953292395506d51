"""Integration fixtures: the enforced world, built one way for every module that needs one.

The local AWS and the CLI runner every integration test shares are in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import enforced, localaws, pulumi_program
from devtools.lambda_stand_in import Function, LambdaStandIn


@dataclass
class EnforcedWorld:
    """moto in this process enforcing IAM (devtools/enforced.py), with the Pulumi program
    deployed in the hub: its roles and policies in moto, its function served by a Lambda
    stand-in under the execution role's session, and IAM users with access keys.

    Seed more (``iam``, ``sts``: the hub's seeding clients) before :meth:`enforce`.
    """

    aws: enforced.EnforcedAws
    program: pulumi_program.ProgramRun
    iam: Any
    sts: Any
    users: dict[str, dict[str, str]]
    execution: dict[str, str]
    stand_in: LambdaStandIn
    function: Function

    @property
    def local(self) -> dict[str, str]:
        """Environment that points an SDK at this world's AWS (with moto's default keys)."""
        local = localaws.LocalAws("", self.aws.url, self.aws.recorder, None, None)  # type: ignore[arg-type]
        return local.env()

    def function_environment(self) -> dict[str, str]:
        """The function's environment: this AWS, the execution role's session, the program's."""
        return {**self.local, **self.execution, **self.program.function_env}

    def client_env(self, user: str, base: Mapping[str, str], **extra: str) -> dict[str, str]:
        """A client's environment: ``base`` without AWS or iam-sudo settings, this AWS with
        ``user``'s keys, Lambda served by the stand-in, then ``extra``."""
        return {
            **{k: v for k, v in base.items() if not k.startswith(("AWS_", "IAM_SUDO_"))},
            **self.local,
            **self.users[user],
            "AWS_ENDPOINT_URL_LAMBDA": self.stand_in.url,
            **extra,
        }

    def enforce(self) -> None:
        self.aws.enforce()

    def stop(self) -> None:
        """Stop the stand-in and moto, and drop moto's backends: they live in this process,
        and the next world would find them."""
        self.stand_in.stop()
        self.aws.enforce(False)
        self.aws.stop()
        drop_moto_backends()


def drop_moto_backends() -> None:
    """Drop every account's moto backends in this process, as moto's reset ends up doing.

    moto's reset first rebuilds each account's backends, and IAM's rebuild loads the AWS
    managed policies again, only to drop them next: for an Organization's accounts that
    took a minute here. The next world creates the accounts it uses, as the first did.
    """
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.core.model_instances import reset_model_data

    with backend_lock:
        for backends in BackendDict._instances:
            backends.clear()
        BackendDict._instances.clear()
    reset_model_data()


def enforced_world(
    directory: Path,
    config: Mapping[str, Any],
    users: Sequence[str],
    *,
    seed_as: str | None = None,
) -> EnforcedWorld:
    """Start an :class:`EnforcedWorld`, not yet enforcing, with the program run with
    ``config`` (in ``directory``) and ``users``.

    ``seed_as``: seed the hub as an admin session in that account (:func:`enforced.admin`)
    rather than with moto's default keys.
    """
    aws = enforced.start()

    def client(service: str) -> Any:
        if seed_as:
            return enforced.admin(aws, service, seed_as)
        return localaws.client(service, aws.url)

    iam, sts = client("iam"), client("sts")
    program = pulumi_program.run(dict(config), directory)
    enforced.create_program_resources(iam, program)
    keys = {name: enforced.user_with_keys(iam, name) for name in users}
    execution = enforced.session_env(
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{pulumi_program.ACCOUNT}:role/iam-sudo-execution",
            RoleSessionName="lambda",
        )["Credentials"]
    )
    stand_in = LambdaStandIn()
    world = EnforcedWorld(aws, program, iam, sts, keys, execution, stand_in, None)  # type: ignore[arg-type]
    world.function = stand_in.add_function(
        "iam-sudo", program.archive, world.function_environment()
    )
    return world

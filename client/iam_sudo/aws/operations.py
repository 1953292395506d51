"""Which AWS operation a signed request is, read from botocore's service models.

The recording endpoint (:mod:`iam_sudo.aws.recorder`) sees raw HTTP requests. The service
is the one the signature's credential scope names (its signing name); the operation is
found as the service's protocol defines it:

* JSON protocols: the ``X-Amz-Target`` header (``DynamoDB_20120810.GetItem``);
* query and EC2 protocols: the ``Action`` parameter of the query string or form body;
* REST protocols: the method and the path matched against each operation's
  ``requestUri`` template (``/{Bucket}/{Key+}?uploads``), the most specific match winning:
  literal query keys, then the required members the request carries in its query string
  and headers (UploadPart's ``partNumber`` and ``uploadId``, CopyObject's
  ``x-amz-copy-source``).

Only names are kept: the operation, and the request's string parameters that can name a
resource (labels, query keys and top-level body members), for :mod:`iam_sudo.aws.catalogue`.
botocore is imported here, so only recording pays for it.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

_lock = threading.Lock()
_models: dict[str, Any] = {}
_by_signing_name: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class Operation:
    """A request identified: botocore's service name, its service id, the operation and
    its string parameters (by the model's member names) that may name resources."""

    service: str
    service_id: str
    operation: str | None
    protocol: str
    params: dict[str, str] = field(default_factory=dict)


def _loader() -> Any:
    from botocore.loaders import create_loader

    return create_loader()


_LOADER: Any = None


def _model(name: str) -> Any:
    """botocore's ServiceModel of ``name`` (cached), or None if botocore has none."""
    global _LOADER
    with _lock:
        if name in _models:
            return _models[name]
        from botocore.exceptions import UnknownServiceError
        from botocore.model import ServiceModel

        if _LOADER is None:
            _LOADER = _loader()
        try:
            model = ServiceModel(_LOADER.load_service_model(name, "service-2"), name)
        except UnknownServiceError:
            model = None
        _models[name] = model
        return model


def _signing_name(model: Any) -> str:
    return str(model.metadata.get("signingName") or model.metadata.get("endpointPrefix") or "")


def _candidates(signing_name: str) -> list[Any]:
    """The service models signed with ``signing_name``: the one of that name if it is one
    of them, else every model whose signing name it is (indexed once, on first need)."""
    global _by_signing_name, _LOADER
    direct = _model(signing_name)
    if direct is not None and _signing_name(direct) == signing_name:
        return [direct]
    with _lock:
        if _by_signing_name is None:
            if _LOADER is None:
                _LOADER = _loader()
            index: dict[str, list[str]] = {}
            for name in _LOADER.list_available_services("service-2"):
                data = _LOADER.load_service_model(name, "service-2")
                meta = data.get("metadata", {})
                key = meta.get("signingName") or meta.get("endpointPrefix") or name
                index.setdefault(key, []).append(name)
            _by_signing_name = index
        names = list(_by_signing_name.get(signing_name, []))
    return [m for m in (_model(n) for n in names) if m is not None]


def _template_regex(uri: str) -> tuple[re.Pattern[str], list[tuple[str, str | None]]]:
    path, _, query = uri.partition("?")
    pattern = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            name = piece[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            group = re.sub(r"\W", "_", name)
            pattern += f"(?P<{group}>.+)" if greedy else f"(?P<{group}>[^/]+)"
        else:
            pattern += re.escape(piece)
    literals = []
    for part in query.split("&") if query else ():
        key, sep, value = part.partition("=")
        literals.append((key, value if sep else None))
    return re.compile(pattern.rstrip("/") + "/?" if pattern != "/" else "/"), literals


def _rest_operation(
    model: Any, method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> tuple[str, dict[str, str]] | None:
    best: tuple[int, int, str, dict[str, str]] | None = None
    for name in model.operation_names:
        op = model.operation_model(name)
        http = op.http
        if http.get("method", "").upper() != method:
            continue
        regex, literals = _template_regex(http.get("requestUri", "/"))
        match = regex.fullmatch(path)
        if match is None:
            continue
        score = 0
        fits = True
        for key, value in literals:
            if key == "x-id":  # botocore's operation hint: not every SDK sends it
                score += 1 if query.get(key) == value else 0
                continue
            if key not in query or (value is not None and query[key] != value):
                fits = False
                break
            score += 2
        if not fits:
            continue
        params: dict[str, str] = {}
        shape = op.input_shape
        members = shape.members if shape is not None else {}
        required = set(shape.required_members) if shape is not None else set()
        labels = {k: unquote(v) for k, v in match.groupdict().items()}
        for member_name, member in members.items():
            location = member.serialization.get("location")
            where = member.serialization.get("name", member_name)
            value = None
            if location == "uri":
                value = labels.get(re.sub(r"\W", "_", where))
            elif location == "querystring":
                value = query.get(where)
            elif location == "header":
                value = headers.get(where.lower())
            if value is not None:
                if location in ("querystring", "header") and member_name in required:
                    score += 1
                params[member_name] = value
            elif member_name in required and location in ("querystring", "header"):
                fits = False
                break
        if not fits:
            continue
        literal_length = len(http.get("requestUri", ""))
        candidate = (score, literal_length, name, params)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return (best[2], best[3]) if best else None


def _strings(document: Any) -> dict[str, str]:
    if not isinstance(document, dict):
        return {}
    return {k: v for k, v in document.items() if isinstance(k, str) and isinstance(v, str)}


def identify(
    signing_name: str,
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes | None,
) -> Operation | None:
    """The operation of a request to the service signed as ``signing_name``, or None if
    botocore knows no such service. ``headers`` lower-case; ``body`` only when it was
    held (JSON and query protocols); ``operation`` is None when no model operation fits.
    """
    models = _candidates(signing_name)
    if not models:
        return None
    query = dict(parse_qsl(raw_query, keep_blank_values=True))
    target = headers.get("x-amz-target", "")
    form: dict[str, str] = {}
    content_type = headers.get("content-type", "")
    if body and "x-www-form-urlencoded" in content_type:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for model in models:
        protocol = str(model.metadata.get("protocol", ""))
        service_id = str(model.service_id)
        if target:
            prefix, _, name = target.rpartition(".")
            if model.metadata.get("targetPrefix") not in (None, prefix):
                continue
            if name in model.operation_names:
                params = {}
                if body:
                    try:
                        params = _strings(json.loads(body))
                    except ValueError:
                        params = {}
                return Operation(model.service_name, service_id, name, protocol, params)
            continue
        action = form.get("Action") or query.get("Action")
        if action:
            if action in model.operation_names:
                params = {
                    k: v for k, v in {**query, **form}.items() if k not in ("Action", "Version")
                }
                return Operation(model.service_name, service_id, action, protocol, params)
            continue
        if protocol.startswith("rest"):
            found = _rest_operation(model, method, path, query, headers)
            if found:
                params = found[1]
                if body and protocol == "rest-json":
                    with contextlib.suppress(ValueError):
                        params = {**_strings(json.loads(body)), **params}
                return Operation(model.service_name, service_id, found[0], protocol, params)
    first = models[0]
    return Operation(
        first.service_name, str(first.service_id), None, str(first.metadata.get("protocol", ""))
    )


def endpoint_prefix(service: str) -> str | None:
    """The botocore model's endpoint prefix of ``service`` (its host name's first label)."""
    model = _model(service)
    return str(model.metadata.get("endpointPrefix")) if model is not None else None


def service_model(service: str) -> Any:
    """botocore's ServiceModel of ``service`` (or None)."""
    return _model(service)

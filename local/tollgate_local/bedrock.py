"""A local stand-in for Amazon Bedrock that speaks the wire protocol boto3 uses.

moto answers Bedrock's control plane and ``Converse`` with HTTP 500 NotImplemented, so
``make local`` and the integration tests point ``bedrock`` and ``bedrock-runtime`` clients
at this WSGI app instead (``endpoint_url=<server.url>``; one server answers both).

Every route, status code, member name and error shape comes from botocore's own service
models (``bedrock`` 2023-04-20 and ``bedrock-runtime`` 2023-09-30): requests are read and
validated against the operation's input shape, answers are written through its output
shape (a member the model does not know is a bug here and fails loudly). Bedrock is
REST-JSON, so an error is the modelled HTTP status, the header ``x-amzn-ErrorType: <Code>``
and the body ``{"message": "..."}``; boto3 raises ``client.exceptions.<Code>`` for it.

Served operations (paths as in the model; ``{label}`` arrives percent-encoded)::

    POST   /inference-profiles                       CreateInferenceProfile   (201)
    GET    /inference-profiles                       ListInferenceProfiles    (?type=&maxResults=&nextToken=)
    GET    /inference-profiles/{inferenceProfileIdentifier}   GetInferenceProfile
    DELETE /inference-profiles/{inferenceProfileIdentifier}   DeleteInferenceProfile
    POST   /tagResource | /untagResource | /listTagsForResource
    GET    /foundation-models[/{modelIdentifier}]    ListFoundationModels / GetFoundationModel
    POST   /model/{modelId}/converse                 Converse (bedrock-runtime)

Any other path answers 404 ``UnknownOperationException``. Authentication is ignored, as in
moto: SigV4, ``Authorization: Bearer <key>`` (``AWS_BEARER_TOKEN_BEDROCK``) and none are
all accepted, and counted by kind in the stats.

Models: any well-formed foundation model id (the model id part of botocore's
``FoundationModelArn`` pattern) of a known provider is taken to exist, so that whatever
``models.json`` names can be provisioned; a small built-in catalog gives names, output
limits, prompt caching support (with the minimum tokens per cache checkpoint) and the
SYSTEM_DEFINED profiles that are listed.

Converse answers are deterministic: the same prompt to the same model gives the same text
and token counts. Input tokens are about 1 per 4 characters of text (system prompt, tool
definitions and messages), at least 1 per message, with fixed costs for images, documents,
video and audio; the tokens before the last ``cachePoint`` are written to the prompt cache
the first time and read from it later, and are then not counted in ``inputTokens``. As in
Bedrock, a ``cachePoint`` with fewer than the model's minimum tokens (1,000-4,096) before it,
counted from the start of the prompt or from the previous honoured ``cachePoint``, is
ignored: the call succeeds and those tokens are billed as plain input. The
answer is 12-400 words from a fixed vocabulary chosen by the prompt's hash (one word per
output token), cut by ``inferenceConfig.maxTokens`` (default 512). See ``_account_prompt``,
``_PromptCache.use`` and ``_compose_answer``.

Local-only control (never part of Bedrock's API; also available as Python methods)::

    GET  /_local/faults   -> {"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0}
    POST /_local/faults   <- any subset of those keys; rates in [0, 1], latency_ms an
                             integer in [0, 60000]; 400 {"message"} on a bad value
    GET  /_local/stats    -> counters: calls, answered, throttled, errors, rejected,
                             profiles, auth kinds, calls per operation, tokens by kind
    POST /_local/reset    -> clears faults, stats and the prompt cache (not the profiles)

Faults apply to every Bedrock API call, decided by a ``random.Random(seed)`` so a run is
reproducible: first the latency (a sleep), then throttling (429 ``ThrottlingException``),
then errors (500 ``InternalServerException`` or, where the operation models it,
503 ``ServiceUnavailableException``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final
from wsgiref.types import StartResponse, WSGIEnvironment

import botocore.session
from botocore.model import (
    ListShape,
    MapShape,
    NoShapeFoundError,
    OperationModel,
    ServiceModel,
    Shape,
    StringShape,
    StructureShape,
)
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["BedrockStandIn", "Faults", "StandInServer"]

_log = logging.getLogger(__name__)

JSON = dict[str, Any]

# --------------------------------------------------------------------------- service models


@functools.cache
def _service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def _shape(service: str, name: str) -> Shape:
    return _service_model(service).shape_for(name)


def _error_status(service: str, code: str) -> int:
    """The HTTP status the model gives an error code (e.g. ConflictException is 400, not 409)."""
    try:
        return int(_shape(service, code).metadata["error"]["httpStatusCode"])
    except (NoShapeFoundError, KeyError):
        # Not modelled: what AWS's REST front door answers for these.
        return {"UnknownOperationException": 404}.get(code, 400)


def _model_id_pattern() -> re.Pattern[str]:
    """A foundation model id, taken from the model part of botocore's FoundationModelArn."""
    arn_pattern = str(_shape("bedrock", "FoundationModelArn").metadata["pattern"])
    return re.compile(arn_pattern.split("foundation-model/", 1)[1])


# --------------------------------------------------------------------------- catalog


#: Minimum tokens per cache checkpoint assumed for a model with no published figure here (the
#: published ones are in ``_CATALOG`` and ``_UNLISTED_CACHE_CHECKPOINT_MIN_TOKENS``): the most common.
_UNKNOWN_MODEL_CACHE_CHECKPOINT_MIN_TOKENS: Final = 1_024


@dataclass(frozen=True)
class _FoundationModel:
    model_id: str
    name: str
    provider: str
    max_output_tokens: int
    images: bool = True
    prompt_caching: bool = True
    #: Fewest prompt tokens a cache checkpoint must close (see ``_honoured_checkpoints``).
    cache_checkpoint_min_tokens: int = _UNKNOWN_MODEL_CACHE_CHECKPOINT_MIN_TOKENS
    global_profile: bool = False


# Minimum tokens per cache checkpoint, as published in the Amazon Bedrock User Guide, "Prompt
# caching for faster model inference" (table of supported models): Claude 3.7 Sonnet 1,024;
# Claude 3.5 Haiku 2,048; Claude Sonnet 4, Sonnet 4.5 and Opus 4 1,024; Claude Haiku 4.5 4,096;
# Amazon Nova Micro, Lite, Pro and Premier "1K", taken as 1,000. The catalog rows below carry
# their figure; these are the published models that are not in the catalog.
_UNLISTED_CACHE_CHECKPOINT_MIN_TOKENS: Final = {
    "anthropic.claude-3-7-sonnet-20250219-v1:0": 1_024,
    "anthropic.claude-opus-4-20250514-v1:0": 1_024,
    "amazon.nova-premier-v1:0": 1_000,
}

# A few models with the limits Bedrock documents for them. Other well-formed ids are
# accepted too (see ``_find_model``), so this list only decides names, limits, prompt
# caching support and minimums, and the SYSTEM_DEFINED profiles that are listed.
_CATALOG: Final = {
    m.model_id: m
    for m in (
        _FoundationModel("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", "Anthropic", 4_096,
                         prompt_caching=False),
        _FoundationModel("anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", "Anthropic", 8_192,
                         images=False, cache_checkpoint_min_tokens=2_048),
        _FoundationModel("anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=1_024, global_profile=True),
        _FoundationModel("anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=1_024, global_profile=True),
        _FoundationModel("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=4_096, global_profile=True),
        _FoundationModel("amazon.nova-micro-v1:0", "Nova Micro", "Amazon", 10_000, images=False,
                         cache_checkpoint_min_tokens=1_000),
        _FoundationModel("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", 10_000, cache_checkpoint_min_tokens=1_000),
        _FoundationModel("amazon.nova-pro-v1:0", "Nova Pro", "Amazon", 10_000, cache_checkpoint_min_tokens=1_000),
        _FoundationModel("meta.llama3-3-70b-instruct-v1:0", "Llama 3.3 70B Instruct", "Meta", 8_192,
                         images=False, prompt_caching=False),
    )
}  # fmt: skip
#: Providers whose model ids Bedrock serves: a well-formed id from one of them is taken to exist.
_PROVIDERS: Final = frozenset((
    "ai21", "amazon", "anthropic", "cohere", "deepseek", "google", "luma", "meta", "minimax", "mistral",
    "moonshot", "moonshotai", "nvidia", "openai", "qwen", "stability", "twelvelabs", "writer",
))  # fmt: skip
#: Output limit assumed for a well-formed model id that is not in the catalog (generous on purpose).
_UNKNOWN_MODEL_MAX_OUTPUT = 64_000

#: Regions a cross-region (system-defined) profile routes to, by geography prefix of its id.
#: At most 5 each: botocore's InferenceProfileModels list has max 5.
_GEO_REGIONS: Final = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "apac": ("ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-south-1", "ap-northeast-2"),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "ca": ("ca-central-1", "ca-west-1"),
    "us-gov": ("us-gov-west-1", "us-gov-east-1"),
    "global": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"),
}
_REGION_GEO: Final = (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac"), ("ca-", "ca"))
_SYSTEM_PROFILES_SINCE: Final = datetime(2024, 8, 27, tzinfo=UTC)

# --------------------------------------------------------------------------- errors


class _BedrockError(Exception):
    """An error answer: a code that is an error shape in the service model, and its message."""

    def __init__(self, code: str, message: str, **fields: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


def _invalid(message: str) -> _BedrockError:
    return _BedrockError("ValidationException", message)


def _not_found(message: str) -> _BedrockError:
    return _BedrockError("ResourceNotFoundException", message)


# For a modelId it does not know, including an application inference profile ARN that does
# not exist (or was deleted), Bedrock's Converse answers 400 ValidationException "The provided
# model identifier is invalid." (what clients report; the API reference does not list cases).
# ResourceNotFoundException is modelled for Converse, but not what this case returns.
_INVALID_MODEL_ID = "The provided model identifier is invalid."

# --------------------------------------------------------------------------- wire format


def _is_document(shape: Shape) -> bool:
    return bool(getattr(shape, "is_document_type", False) or shape.metadata.get("document"))


def _wire_name(name: str, shape: Shape) -> str:
    return str(shape.serialization.get("name", name))


def _from_query(shape: Shape, raw: list[str], place: str) -> Any:
    kind = shape.type_name
    if kind == "list":
        return [_from_query(shape.member, [item], place) for item in raw]  # type: ignore[attr-defined]
    value = raw[-1]
    if kind in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise _invalid(
                f"Value '{value[:64]}' at '{place}' failed to satisfy constraint: Member must be an integer"
            ) from None
    if kind == "boolean":
        return value.lower() == "true"
    return value


def _read_input(operation: OperationModel, request: Request, labels: Mapping[str, str]) -> JSON:
    """The request as botocore's member names (URI labels, query string, JSON body)."""
    shape = operation.input_shape
    if shape is None:
        return {}
    params: JSON = {}
    body_members: dict[str, str] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = _wire_name(name, member)
        if location == "uri":
            if wire in labels:
                params[name] = labels[wire]
        elif location == "querystring":
            if wire in request.args:
                params[name] = _from_query(member, request.args.getlist(wire), name)
        elif location == "header":
            if wire in request.headers:
                params[name] = request.headers[wire]
        else:
            body_members[wire] = name
    raw = request.get_data()
    if body_members and raw.strip():
        try:
            document = json.loads(raw)
        except ValueError:
            # AWS answers SerializationException here; only a hand-made client sends bad JSON,
            # and a modelled error is easier for it to handle.
            raise _invalid("The request body is not valid JSON.") from None
        if not isinstance(document, dict):
            raise _invalid("The request body must be a JSON object.")
        for wire, name in body_members.items():
            if wire in document:
                params[name] = document[wire]
    return params


class _Problems:
    """Constraint violations, reported in AWS's (Coral) validation message format."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, shape: Shape, value: Any, place: str, constraint: str) -> None:
        shown = ""
        if value is None:
            shown = " null"
        elif isinstance(value, bool | int | float):
            shown = f" '{value}'"
        elif isinstance(value, str) and not shape.metadata.get("sensitive") and len(value) <= 64:
            shown = f" '{value}'"  # long strings may be prompt text: never echoed
        self.items.append(f"Value{shown} at '{place}' failed to satisfy constraint: Member must {constraint}")

    def raise_if_any(self) -> None:
        if self.items:
            count = len(self.items)
            noun = "error" if count == 1 else "errors"
            raise _invalid(f"{count} validation {noun} detected: " + "; ".join(self.items))


def _join(place: str, name: str) -> str:
    return f"{place}.{name}" if place else name


def _check_length(shape: Shape, value: Any, size: int, place: str, problems: _Problems) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        problems.add(shape, value, place, f"have length greater than or equal to {low}")
    if high is not None and size > high:
        problems.add(shape, value, place, f"have length less than or equal to {high}")


def _validate(shape: Shape | None, value: Any, place: str, problems: _Problems) -> None:
    """Check a value against its shape's type, required members, lengths, ranges, enums, patterns."""
    if shape is None or value is None or _is_document(shape):
        return
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            problems.add(shape, None, place, "be a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                problems.add(shape.members[name], None, _join(place, name), "not be null")
        present = [k for k, v in value.items() if k in shape.members and v is not None]
        if shape.metadata.get("union") and len(present) != 1:
            problems.add(shape, None, place, "have exactly one of its members set")
        for name in present:
            _validate(shape.members[name], value[name], _join(place, name), problems)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            problems.add(shape, None, place, "be a list")
            return
        _check_length(shape, None, len(value), place, problems)
        for index, item in enumerate(value, start=1):  # Coral counts list members from 1
            _validate(shape.member, item, f"{place}.{index}.member", problems)
    elif kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            problems.add(shape, None, place, "be a map")
            return
        _check_length(shape, None, len(value), place, problems)
        for key, item in value.items():
            _validate(shape.key, key, f"{place}.key", problems)
            _validate(shape.value, item, f"{place}.{key}", problems)
    elif kind == "string":
        assert isinstance(shape, StringShape)
        if not isinstance(value, str):
            problems.add(shape, None, place, "be a string")
            return
        _check_length(shape, value, len(value), place, problems)
        if shape.enum and value not in shape.enum:
            problems.add(shape, value, place, f"satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = shape.metadata.get("pattern")
        # The service anchors its patterns (the API reference shows them as ^...$).
        if pattern and re.fullmatch(pattern, value) is None:
            problems.add(shape, value, place, f"satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long", "float", "double"):
        integral = kind in ("integer", "long")
        if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
            problems.add(shape, None, place, f"be {'an integer' if integral else 'a number'}")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            problems.add(shape, value, place, f"have value greater than or equal to {low}")
        if high is not None and value > high:
            problems.add(shape, value, place, f"have value less than or equal to {high}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.add(shape, None, place, "be a boolean")
    elif kind == "blob":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            problems.add(shape, None, place, "be base64-encoded binary data")


def _timestamp(shape: Shape, value: datetime) -> Any:
    if shape.serialization.get("timestampFormat") == "iso8601":
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value.timestamp()  # REST-JSON's default for body members


def _write_output(shape: Shape | None, value: Any, place: str = "") -> Any:
    """``value`` in wire form through its output shape; an unmodelled member is a bug here."""
    if shape is None or value is None or _is_document(shape):
        return value
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        unknown = sorted(set(value) - set(shape.members))
        missing = [name for name in shape.required_members if value.get(name) is None]
        if unknown or missing:
            raise RuntimeError(f"{shape.name} at {place or 'top'}: unknown {unknown}, missing {missing}")
        return {
            _wire_name(name, shape.members[name]): _write_output(shape.members[name], item, _join(place, name))
            for name, item in value.items()
            if item is not None
        }
    if kind == "list":
        assert isinstance(shape, ListShape)
        return [_write_output(shape.member, item, f"{place}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        assert isinstance(shape, MapShape)
        return {key: _write_output(shape.value, item, f"{place}.{key}") for key, item in value.items()}
    if kind == "timestamp" and isinstance(value, datetime):
        return _timestamp(shape, value)
    if kind == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if kind == "string" and isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
        raise RuntimeError(f"{place}: {value!r} is not one of {shape.enum}")
    return value


# --------------------------------------------------------------------------- inference profiles


@dataclass
class _Profile:
    profile_id: str
    arn: str
    name: str
    kind: str  # APPLICATION | SYSTEM_DEFINED
    model_id: str  # the foundation model it invokes
    model_arns: tuple[str, ...]
    created_at: datetime
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    request_token: str | None = None
    source_arn: str = ""

    def summary(self) -> JSON:
        return {
            "inferenceProfileName": self.name,
            "description": self.description,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "inferenceProfileArn": self.arn,
            "models": [{"modelArn": arn} for arn in self.model_arns],
            "inferenceProfileId": self.profile_id,
            "status": "ACTIVE",
            "type": self.kind,
        }


_ARN = re.compile(
    r"arn:aws(?:-[a-z-]+)?:bedrock:(?P<region>[a-z0-9-]*):(?P<account>[0-9]*):"
    r"(?P<kind>[a-z-]+)/(?P<resource>.+)"
)
_APPLICATION_PROFILE_ID = re.compile(r"[a-z0-9]{12}")
_MAX_TAGS = 50  # AWS's usual per-resource tag limit; assumed for Bedrock
_PAGE_DEFAULT = 1000  # ListInferenceProfiles' modelled maximum; the real default is not documented

# --------------------------------------------------------------------------- token accounting

_CHARS_PER_TOKEN: Final = 4
#: Fixed costs of non-text content (assumed; Anthropic bills an image at about
#: width*height/750 tokens, ~1,600 for a 1.1-megapixel image).
_MEDIA_TOKENS: Final = {"image": 1_600, "document": 1_500, "video": 4_000, "audio": 1_000}
#: Framing that a tool call or tool result costs on top of its JSON (assumed).
_TOOL_BLOCK_TOKENS: Final = 10
_CACHE_TTL_SECONDS: Final = {"5m": 300.0, "1h": 3_600.0}
_DEFAULT_MAX_TOKENS: Final = 512
#: Natural answer lengths, in tokens (= words), before ``maxTokens`` cuts them.
_ANSWER_TOKENS: Final = (12, 400)
#: Reported ``metrics.latencyMs``: a simulated generation time (not slept), plus injected latency.
_FIRST_TOKEN_MS: Final = 120
_MS_PER_OUTPUT_TOKEN: Final = 6

_WORDS: Final = (
    "the", "a", "model", "answer", "request", "token", "budget", "tenant", "profile", "cost",
    "usage", "within", "limit", "so", "it", "is", "of", "to", "and", "for", "each", "call",
    "price", "region", "route", "cache", "prefix", "stream", "record", "period", "total",
    "meter", "guard", "rail", "alarm", "threshold", "minute", "hour", "day", "month",
    "steady", "clear", "short", "brief", "plain", "result", "value", "measure", "count",
    "then", "also", "while", "because", "after", "before", "every", "other", "same", "new",
    "local", "stand-in", "reply", "text", "line",
)  # fmt: skip


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _block_tokens(block: Mapping[str, Any]) -> int:
    """Tokens of one content block (a union: exactly one member is set)."""
    kind, value = next(iter(block.items()))
    if kind in ("text", "json"):
        return _text_tokens(value if isinstance(value, str) else _canonical(value))
    if kind == "document" and isinstance(value.get("source", {}).get("text"), str):
        return _text_tokens(value["source"]["text"])
    if kind in _MEDIA_TOKENS:
        return _MEDIA_TOKENS[kind]
    if kind == "guardContent":
        text = value.get("text", {}).get("text")
        return _text_tokens(text) if isinstance(text, str) else _MEDIA_TOKENS["image"]
    if kind == "toolResult":
        return _TOOL_BLOCK_TOKENS + sum(_block_tokens(part) for part in value.get("content", []) if part)
    if kind == "toolUse":
        return _TOOL_BLOCK_TOKENS + _text_tokens(_canonical(value))
    return _text_tokens(_canonical(value))  # reasoning, citations, search results, tool changes


@dataclass(frozen=True)
class _Checkpoint:
    tokens: int  # prompt tokens before this point
    key: str  # hash of the model id and every block before this point
    ttl: str = "5m"


@dataclass(frozen=True)
class _PromptAccount:
    tokens: int
    checkpoints: tuple[_Checkpoint, ...]  # where the request put cache points
    boundaries: tuple[_Checkpoint, ...]  # after every block: where an earlier prefix may be cached
    digest: bytes  # hash of the whole prompt (cache points left out): seeds the answer


def _account_prompt(model_id: str, params: Mapping[str, Any]) -> _PromptAccount:
    """Count prompt tokens in the order the model reads them: tools, system, messages.

    A cache point closes the prefix before it; the prefix is identified by the hash of the
    model id and the canonical JSON of every block before it, so the same prefix to the
    same model hits the cache whatever follows it.
    """
    digest = hashlib.sha256(model_id.encode())
    tokens = 0
    checkpoints: list[_Checkpoint] = []
    boundaries: list[_Checkpoint] = []

    def feed(tag: str, value: Any) -> None:
        digest.update(f"\x00{tag}\x00{_canonical(value)}".encode())
        if tag != "role":
            boundaries.append(_Checkpoint(tokens, digest.hexdigest()))

    def cache_point(block: Mapping[str, Any]) -> None:
        checkpoints.append(_Checkpoint(tokens, digest.hexdigest(), str(block.get("ttl", "5m"))))

    for tool in (params.get("toolConfig") or {}).get("tools", []):
        if "cachePoint" in tool:
            cache_point(tool["cachePoint"])
        else:
            tokens += _text_tokens(_canonical(tool))
            feed("tool", tool)
    for block in params.get("system") or []:
        if "cachePoint" in block:
            cache_point(block["cachePoint"])
        else:
            tokens += _block_tokens(block)
            feed("system", block)
    for message in params.get("messages") or []:
        feed("role", message["role"])
        message_tokens = 0
        for block in message["content"]:
            if "cachePoint" in block:
                cache_point(block["cachePoint"])
                continue
            counted = _block_tokens(block)
            tokens += counted
            message_tokens += counted
            feed("block", block)
        if message_tokens == 0:
            tokens += 1  # every message costs at least one token
    return _PromptAccount(tokens, tuple(checkpoints), tuple(boundaries), digest.digest())


def _honoured_checkpoints(points: Sequence[_Checkpoint], minimum: int) -> list[_Checkpoint]:
    """The cache points Bedrock acts on: each closes at least ``minimum`` tokens since the last one kept.

    The Amazon Bedrock User Guide ("Prompt caching for faster model inference"): a cache
    checkpoint has a model-specific minimum number of tokens, and a checkpoint placed before
    the prompt prefix reaches it is ignored (the call succeeds, nothing is cached and those
    tokens are billed as plain input). With a minimum of 1,024 "the first checkpoint can be
    defined after 1,024 tokens and the second after 2,048", so the count restarts at every
    kept checkpoint; an ignored one does not restart it.
    """
    kept: list[_Checkpoint] = []
    since = 0
    for point in points:
        if point.tokens - since >= minimum:
            kept.append(point)
            since = point.tokens
    return kept


@dataclass(frozen=True)
class _CacheUse:
    read: int = 0
    write: int = 0
    written_by_ttl: tuple[tuple[str, int], ...] = ()


class _PromptCache:
    """Cached prompt prefixes and when each expires (the TTL restarts on every hit)."""

    PURGE_ABOVE: ClassVar[int] = 10_000  # entries; expired ones are dropped past this

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}

    def clear(self) -> None:
        self._expiry.clear()

    def use(self, prompt: _PromptAccount, now: float, min_tokens: int) -> _CacheUse:
        """Read the longest cached prefix, write the rest up to the last cache point.

        Only the cache points that close ``min_tokens`` (the model's minimum per checkpoint)
        count: see ``_honoured_checkpoints``; with none, nothing is read or written.
        Like Bedrock (Anthropic's models), a hit is looked for at every block boundary up to
        the last cache point, not only at this request's cache points: a conversation that
        moved its cache point one turn on reads the previous turn's prefix. (Anthropic only
        looks about 20 blocks back; the stand-in looks all the way.) The caller holds the lock.
        """
        points = _honoured_checkpoints(prompt.checkpoints, max(min_tokens, 1))
        if not points:
            return _CacheUse()
        if len(self._expiry) > self.PURGE_ABOVE:
            self._expiry = {key: until for key, until in self._expiry.items() if until > now}
        last = points[-1].tokens
        hits = [p for p in (*prompt.boundaries, *points) if p.tokens <= last and self._expiry.get(p.key, 0.0) > now]
        hit = max(hits, key=lambda p: p.tokens, default=None)
        read = hit.tokens if hit else 0
        written: dict[str, int] = {}
        previous = read
        for point in points:
            if point.tokens > previous:
                written[point.ttl] = written.get(point.ttl, 0) + point.tokens - previous
                previous = point.tokens
        for point in [*points, *([hit] if hit else [])]:
            ttl = _CACHE_TTL_SECONDS[point.ttl]
            self._expiry[point.key] = max(self._expiry.get(point.key, 0.0), now + ttl)  # a hit restarts the TTL
        by_ttl = tuple(sorted(written.items(), key=lambda item: -_CACHE_TTL_SECONDS[item[0]]))  # 1h before 5m
        return _CacheUse(read, sum(written.values()), by_ttl)


@dataclass(frozen=True)
class _Answer:
    text: str
    output_tokens: int
    stop_reason: str


def _compose_answer(digest: bytes, max_tokens: int, stop_sequences: list[str]) -> _Answer:
    """A deterministic answer of "words" drawn from a fixed vocabulary, never from the prompt.

    Its natural length comes from the prompt hash; ``maxTokens`` cuts it (stopReason
    ``max_tokens``), so a shorter limit gives a prefix of the same answer.
    """
    rng = random.Random(digest)  # noqa: S311 - deterministic text, not security
    low, high = _ANSWER_TOKENS
    natural = rng.randint(low, high)
    words: list[str] = []
    sentence = 0
    for _ in range(min(natural, max_tokens)):
        word = rng.choice(_WORDS)
        if sentence == 0:
            word = word.capitalize()
            sentence = rng.randint(6, 14)
        sentence -= 1
        words.append(word + ("." if sentence == 0 else ""))
    text = " ".join(words)
    hits = [text.find(stop) for stop in stop_sequences if stop and stop in text]
    if hits:
        text = text[: min(hits)].rstrip()
        return _Answer(text, len(text.split()), "stop_sequence")
    return _Answer(text, len(words), "max_tokens" if natural > max_tokens else "end_turn")


# --------------------------------------------------------------------------- faults and stats


@dataclass(frozen=True)
class Faults:
    """Injected faults: share of calls throttled, share failing, and added latency."""

    throttle_rate: float = 0.0
    error_rate: float = 0.0
    latency_ms: int = 0

    MAX_LATENCY_MS: ClassVar[int] = 60_000

    def as_dict(self) -> JSON:
        return {"throttle_rate": self.throttle_rate, "error_rate": self.error_rate, "latency_ms": self.latency_ms}

    def changed(self, changes: Mapping[str, Any]) -> Faults:
        """These faults with ``changes`` applied; ValueError names the first bad value."""
        unknown = sorted(set(changes) - {"throttle_rate", "error_rate", "latency_ms"})
        if unknown:
            raise ValueError(f"unknown fault setting(s) {unknown}; use throttle_rate, error_rate, latency_ms")
        values = self.as_dict()
        for key in ("throttle_rate", "error_rate"):
            if key in changes:
                rate = changes[key]
                if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                    raise ValueError(f"{key} must be a number from 0 to 1, got {rate!r}")
                values[key] = float(rate)
        if "latency_ms" in changes:
            latency = changes["latency_ms"]
            if isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= self.MAX_LATENCY_MS:
                raise ValueError(f"latency_ms must be an integer from 0 to {self.MAX_LATENCY_MS}, got {latency!r}")
            values["latency_ms"] = latency
        return Faults(**values)


#: How many answered Converse calls ``BedrockStandIn.calls`` keeps (the oldest are dropped).
CONVERSE_LOG_SIZE: Final = 10_000


@dataclass
class _Stats:
    calls: int = 0
    answered: int = 0
    throttled: int = 0
    errors: int = 0
    rejected: int = 0
    auth: dict[str, int] = field(default_factory=lambda: {"sigv4": 0, "bearer": 0, "none": 0})
    operations: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0})
    #: The latest answered Converse calls, in order: the modelId the caller sent and the usage
    #: returned. Bounded, so that a long ``make local`` does not grow without limit.
    converse_log: deque[JSON] = field(default_factory=lambda: deque(maxlen=CONVERSE_LOG_SIZE))


@dataclass(frozen=True)
class _Fault:
    latency_ms: int
    code: str | None  # ThrottlingException / InternalServerException / ServiceUnavailableException


_FAULT_MESSAGES: Final = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "The server encountered an internal error while processing the request.",
    "ServiceUnavailableException": "Bedrock is unable to process your request.",
}

# --------------------------------------------------------------------------- server handle


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug logs every request to stderr by default; tests and ``make local`` do not want that."""

    def log(self, type: str, message: str, *args: Any) -> None:
        _log.debug("%s: %s", type, message % args)


class StandInServer:
    """A running stand-in: ``url`` and ``port`` to point clients at, ``stop()`` to end it."""

    def __init__(self, server: BaseWSGIServer, host: str):
        self._server = server
        self.port: int = server.port
        self.url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long shutdown() may wait; werkzeug's default is 0.5 s
            name=f"bedrock-stand-in:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wait for the serving thread and free the port. Safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> StandInServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- the stand-in


#: An operation: validated params (botocore member names) and the injected latency -> output.
Handler = Callable[[JSON, int], JSON]


class BedrockStandIn:
    """Bedrock's control plane (inference profiles) and runtime Converse, in memory.

    A WSGI app; ``serve()`` runs it on a threaded werkzeug server. All state sits behind one
    lock, so concurrent requests are safe.
    """

    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012", seed: int = 0):
        self.region = region
        self.account_id = account_id
        self._seed = seed
        self._lock = threading.Lock()
        self._fault_rng = random.Random(seed)  # noqa: S311 - reproducible faults, not security
        self._id_rng = random.Random(f"{seed}:ids")  # noqa: S311 - reproducible ids, not security
        self._request_rng = random.Random(f"{seed}:requests")  # noqa: S311 - apart, so profile ids stay stable
        self._faults = Faults()
        self._stats = _Stats()
        self._profiles: dict[str, _Profile] = {}  # application profiles by id, in creation order
        self._cache = _PromptCache()
        self._model_id = _model_id_pattern()
        self._handlers: dict[str, tuple[OperationModel, Handler]] = {}
        rules: list[Rule] = []
        for service, name, handler in (
            ("bedrock", "CreateInferenceProfile", self._create_inference_profile),
            ("bedrock", "GetInferenceProfile", self._get_inference_profile),
            ("bedrock", "ListInferenceProfiles", self._list_inference_profiles),
            ("bedrock", "DeleteInferenceProfile", self._delete_inference_profile),
            ("bedrock", "TagResource", self._tag_resource),
            ("bedrock", "UntagResource", self._untag_resource),
            ("bedrock", "ListTagsForResource", self._list_tags_for_resource),
            ("bedrock", "ListFoundationModels", self._list_foundation_models),
            ("bedrock", "GetFoundationModel", self._get_foundation_model),
            ("bedrock-runtime", "Converse", self._converse),
        ):
            operation = _service_model(service).operation_model(name)
            endpoint = f"{service}:{name}"
            self._handlers[endpoint] = (operation, handler)
            # Labels may hold ARNs, whose '/' arrives percent-encoded and is decoded by the
            # WSGI server: a path converter keeps them whole.
            path = re.sub(r"\{(\w+)\+?\}", r"<path:\1>", operation.http["requestUri"].split("?")[0])
            rules.append(Rule(path, methods=[operation.http["method"]], endpoint=endpoint))
        rules += [
            Rule("/_local/faults", methods=["GET", "POST"], endpoint="_local:faults"),
            Rule("/_local/stats", methods=["GET"], endpoint="_local:stats"),
            Rule("/_local/reset", methods=["POST"], endpoint="_local:reset"),
        ]
        self._urls = Map(rules, strict_slashes=False, merge_slashes=False)

    # ----------------------------------------------------------------- public controls

    def set_faults(
        self, *, throttle_rate: float | None = None, error_rate: float | None = None, latency_ms: int | None = None
    ) -> JSON:
        """Change the given fault settings (others stay); returns the settings now in force.

        Raises ValueError for a rate outside [0, 1] or a latency outside [0, 60000] ms.
        """
        changes = {"throttle_rate": throttle_rate, "error_rate": error_rate, "latency_ms": latency_ms}
        return self._change_faults({k: v for k, v in changes.items() if v is not None})

    def faults(self) -> JSON:
        """The fault settings in force."""
        with self._lock:
            return self._faults.as_dict()

    def stats(self) -> JSON:
        """A copy of the counters (see the module docstring)."""
        with self._lock:
            s = self._stats
            return {
                "calls": s.calls,
                "answered": s.answered,
                "throttled": s.throttled,
                "errors": s.errors,
                "rejected": s.rejected,
                "profiles": len(self._profiles),
                "auth": dict(s.auth),
                "operations": dict(s.operations),
                "tokens": dict(s.tokens),
            }

    @property
    def calls(self) -> list[JSON]:
        """The Converse calls answered since the last reset: ``{"model_id", "usage"}`` each, in order.

        Only the latest ``CONVERSE_LOG_SIZE`` are kept; the token totals in ``stats()`` count them all.
        """
        with self._lock:
            return [dict(call) for call in self._stats.converse_log]

    def profiles(self) -> list[JSON]:
        """The application inference profiles held, with their tags and the model they invoke."""
        with self._lock:
            return [
                {"name": p.name, "arn": p.arn, "model_id": p.model_id, "tags": dict(p.tags)}
                for p in self._profiles.values()
            ]

    def reset(self) -> None:
        """Clear faults, stats and the prompt cache; the inference profiles stay."""
        with self._lock:
            self._faults = Faults()
            self._stats = _Stats()
            self._cache.clear()
            self._fault_rng.seed(self._seed)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> StandInServer:
        """Serve on a threaded werkzeug server in a daemon thread (port 0: any free port)."""
        server = make_server(host, port, self, threaded=True, request_handler=_QuietRequestHandler)
        return StandInServer(server, host)

    def _change_faults(self, changes: Mapping[str, Any]) -> JSON:
        with self._lock:
            self._faults = self._faults.changed(changes)
            return self._faults.as_dict()

    # ----------------------------------------------------------------- WSGI

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        request = Request(environ)
        try:
            endpoint, labels = self._urls.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed):
            response = self._error_response(
                "bedrock",
                _BedrockError("UnknownOperationException", f"No operation for {request.method} {request.path}"),
            )
        else:
            if endpoint.startswith("_local:"):
                response = self._local(endpoint, request)
            else:
                response = self._api(endpoint, request, labels)
        return response(environ, start_response)

    def _api(self, endpoint: str, request: Request, labels: Mapping[str, str]) -> Response:
        operation, handler = self._handlers[endpoint]
        service = endpoint.split(":", 1)[0]
        fault = self._admit(operation, request)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.code:
            return self._error_response(service, _BedrockError(fault.code, _FAULT_MESSAGES[fault.code]))
        try:
            params = _read_input(operation, request, labels)
            problems = _Problems()
            _validate(operation.input_shape, params, "", problems)
            problems.raise_if_any()
            result = handler(params, fault.latency_ms)
            body = _write_output(operation.output_shape, result)
        except _BedrockError as error:
            with self._lock:
                self._stats.rejected += 1
            return self._error_response(service, error)
        except Exception:  # a bug here must still answer in Bedrock's error shape
            _log.exception("stand-in failure in %s", operation.name)
            return self._error_response(
                service, _BedrockError("InternalServerException", _FAULT_MESSAGES["InternalServerException"])
            )
        with self._lock:
            self._stats.answered += 1
        return self._json(body, int(operation.http.get("responseCode", 200)), {"x-amzn-RequestId": self._request_id()})

    def _admit(self, operation: OperationModel, request: Request) -> _Fault:
        """Count the call and decide its fault, both under the lock (reproducible draws)."""
        authorization = request.headers.get("Authorization", "")
        auth = (
            "bearer"
            if authorization.startswith("Bearer ")
            else "sigv4"
            if authorization.startswith("AWS4-")
            else "none"
        )
        modelled = {error.name for error in operation.error_shapes}
        with self._lock:
            stats, faults = self._stats, self._faults
            stats.calls += 1
            stats.auth[auth] += 1
            stats.operations[operation.name] = stats.operations.get(operation.name, 0) + 1
            throttle_draw, error_draw = self._fault_rng.random(), self._fault_rng.random()
            if throttle_draw < faults.throttle_rate:
                stats.throttled += 1
                return _Fault(faults.latency_ms, "ThrottlingException")
            if error_draw < faults.error_rate:
                stats.errors += 1
                choices = sorted({"InternalServerException", "ServiceUnavailableException"} & modelled)
                return _Fault(faults.latency_ms, self._fault_rng.choice(choices))
            return _Fault(faults.latency_ms, None)

    def _local(self, endpoint: str, request: Request) -> Response:
        if endpoint == "_local:stats":
            return self._json(self.stats())
        if endpoint == "_local:reset":
            self.reset()
            return self._json({"faults": self.faults(), "stats": self.stats()})
        if request.method == "GET":
            return self._json(self.faults())
        try:
            changes = json.loads(request.get_data() or b"{}")
            if not isinstance(changes, dict):
                raise ValueError('the body must be a JSON object such as {"throttle_rate": 0.5}')
            return self._json(self._change_faults(changes))
        except ValueError as error:  # json.JSONDecodeError is a ValueError too
            return self._json({"message": str(error)}, 400)

    @staticmethod
    def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, headers=dict(headers or {}), content_type="application/json")

    def _request_id(self) -> str:
        with self._lock:
            return _uuid(self._request_rng)

    def _error_response(self, service: str, error: _BedrockError) -> Response:
        body = {"message": error.message, **error.fields}
        headers = {"x-amzn-ErrorType": error.code, "x-amzn-RequestId": self._request_id()}
        return self._json(body, _error_status(service, error.code), headers)

    # ----------------------------------------------------------------- models and profiles

    def _find_model(self, model_id: str) -> _FoundationModel:
        """A foundation model by id: any well-formed id of a known provider exists (so any models.json runs)."""
        if model_id in _CATALOG:
            return _CATALOG[model_id]
        provider = model_id.split(".", 1)[0]
        if self._model_id.fullmatch(model_id) is None or provider not in _PROVIDERS:
            raise _not_found(f"The foundation model {model_id} does not exist.")
        cache_min = _UNLISTED_CACHE_CHECKPOINT_MIN_TOKENS.get(model_id, _UNKNOWN_MODEL_CACHE_CHECKPOINT_MIN_TOKENS)
        return _FoundationModel(
            model_id, model_id, provider.capitalize(), _UNKNOWN_MODEL_MAX_OUTPUT, cache_checkpoint_min_tokens=cache_min
        )

    def _model_arn(self, model_id: str, region: str | None = None) -> str:
        return f"arn:aws:bedrock:{region or self.region}::foundation-model/{model_id}"

    def _geographies(self) -> list[str]:
        """Geographies (besides ``global``, open to every region) whose profiles this region can call."""
        geos = {geo for geo, regions in _GEO_REGIONS.items() if self.region in regions and geo != "global"}
        home = next((geo for prefix, geo in _REGION_GEO if self.region.startswith(prefix)), None)
        if home:
            geos.add(home)
        return sorted(geos)

    def _system_profile(self, profile_id: str) -> _Profile:
        """A system-defined cross-region profile such as ``us.<model id>`` (ResourceNotFound if none)."""
        geo, _, model_id = profile_id.partition(".")
        if geo != "global" and geo not in self._geographies():
            raise _not_found(f"The inference profile {profile_id} does not exist in {self.region}.")
        try:
            model = self._find_model(model_id)
        except _BedrockError:
            raise _not_found(f"The inference profile {profile_id} does not exist in {self.region}.") from None
        regions = [self.region] + [r for r in _GEO_REGIONS[geo] if r != self.region]
        return _Profile(
            profile_id=profile_id,
            arn=f"arn:aws:bedrock:{self.region}:{self.account_id}:inference-profile/{profile_id}",
            name=f"{geo.upper()} {model.provider} {model.name}",
            kind="SYSTEM_DEFINED",
            model_id=model.model_id,
            model_arns=tuple(self._model_arn(model.model_id, r) for r in regions[:5]),
            created_at=_SYSTEM_PROFILES_SINCE,
            description=f"Routes requests to {model.name} in {', '.join(regions[:5])}.",
        )

    def _builtin_system_profiles(self) -> list[_Profile]:
        profiles = []
        for model in _CATALOG.values():
            for geo in self._geographies():
                profiles.append(self._system_profile(f"{geo}.{model.model_id}"))
            if model.global_profile:
                profiles.append(self._system_profile(f"global.{model.model_id}"))
        return profiles

    def _lookup_profile(self, identifier: str) -> _Profile:
        """An inference profile by ARN or id, application or system-defined. Caller holds the lock."""
        match = _ARN.fullmatch(identifier)
        if match:
            if match["region"] != self.region or match["account"] != self.account_id:
                raise _not_found(f"The inference profile {identifier} does not exist in this account and region.")
            if match["kind"] == "application-inference-profile":
                if match["resource"] in self._profiles:
                    return self._profiles[match["resource"]]
                raise _not_found(f"The inference profile {identifier} does not exist.")
            if match["kind"] == "inference-profile":
                return self._system_profile(match["resource"])
            raise _invalid(f"{identifier} is not an inference profile ARN.")
        if identifier in self._profiles:
            return self._profiles[identifier]
        if _APPLICATION_PROFILE_ID.fullmatch(identifier):
            raise _not_found(f"The inference profile {identifier} does not exist.")
        return self._system_profile(identifier)

    def _copy_source(self, source_arn: str) -> tuple[str, tuple[str, ...]]:
        """(foundation model id, model ARNs) of what an application profile copies from."""
        match = _ARN.fullmatch(source_arn)
        if match is None:
            raise _invalid(f"The model source {source_arn} is not a foundation model or inference profile ARN.")
        if match["region"] != self.region:
            raise _invalid(f"The model source {source_arn} must be in the region of the request, {self.region}.")
        if match["kind"] == "foundation-model":
            if match["account"]:
                raise _invalid(f"A foundation model ARN has no account id: {source_arn}.")
            model = self._find_model(match["resource"])
            return model.model_id, (self._model_arn(model.model_id),)
        if match["account"] != self.account_id:
            raise _invalid(f"The inference profile {source_arn} must belong to account {self.account_id}.")
        profile = self._system_profile(match["resource"])
        return profile.model_id, profile.model_arns

    def _application_profile(self, arn: str) -> _Profile:
        """An application profile by ARN, for tagging. Caller holds the lock."""
        match = _ARN.fullmatch(arn)
        if (
            match is None
            or match["kind"] != "application-inference-profile"
            or match["region"] != self.region
            or match["account"] != self.account_id
            or match["resource"] not in self._profiles
        ):
            raise _not_found(f"The resource {arn} does not exist.")
        return self._profiles[match["resource"]]

    # ----------------------------------------------------------------- control plane operations

    def _create_inference_profile(self, params: JSON, _latency_ms: int) -> JSON:
        name = params["inferenceProfileName"]
        source = params["modelSource"].get("copyFrom")
        if not source:
            raise _invalid("modelSource must set copyFrom to a foundation model or inference profile ARN.")
        tags = {t["key"]: t["value"] for t in params.get("tags") or []}
        _check_tag_keys(tags)
        model_id, model_arns = self._copy_source(source)
        token = params.get("clientRequestToken")
        with self._lock:
            for existing in self._profiles.values():
                # botocore fills clientRequestToken itself and reuses it on retries: a retry
                # of a create that succeeded answers with the same profile.
                if token and existing.request_token == token:
                    if (existing.name, existing.source_arn) != (name, source):
                        raise _BedrockError("ConflictException", "The clientRequestToken was used for another request.")
                    return {"inferenceProfileArn": existing.arn, "status": "ACTIVE"}
                if existing.name == name:
                    raise _BedrockError("ConflictException", f"An inference profile named {name} already exists.")
            if len(tags) > _MAX_TAGS:
                raise _BedrockError(
                    "TooManyTagsException", f"A resource can have at most {_MAX_TAGS} tags.", resourceName=name
                )
            profile_id = _new_profile_id(self._id_rng, self._profiles)
            profile = _Profile(
                profile_id=profile_id,
                arn=f"arn:aws:bedrock:{self.region}:{self.account_id}:application-inference-profile/{profile_id}",
                name=name,
                kind="APPLICATION",
                model_id=model_id,
                model_arns=model_arns,
                created_at=datetime.now(UTC),
                description=params.get("description"),
                tags=tags,
                request_token=token,
                source_arn=source,
            )
            self._profiles[profile_id] = profile
        return {"inferenceProfileArn": profile.arn, "status": "ACTIVE"}

    def _get_inference_profile(self, params: JSON, _latency_ms: int) -> JSON:
        with self._lock:
            return self._lookup_profile(params["inferenceProfileIdentifier"]).summary()

    def _list_inference_profiles(self, params: JSON, _latency_ms: int) -> JSON:
        # Without typeEquals Bedrock lists the SYSTEM_DEFINED profiles only (aws-cli issue
        # 9728 reproduces it): application profiles need typeEquals=APPLICATION.
        kind = params.get("typeEquals") or "SYSTEM_DEFINED"
        page_size = params.get("maxResults") or _PAGE_DEFAULT
        start = _decode_page_token(params.get("nextToken"), kind)
        with self._lock:
            profiles = list(self._profiles.values()) if kind == "APPLICATION" else self._builtin_system_profiles()
            page = [profile.summary() for profile in profiles[start : start + page_size]]
        following = start + page_size
        return {
            "inferenceProfileSummaries": page,
            "nextToken": _encode_page_token(following, kind) if following < len(profiles) else None,
        }

    def _delete_inference_profile(self, params: JSON, _latency_ms: int) -> JSON:
        with self._lock:
            profile = self._lookup_profile(params["inferenceProfileIdentifier"])
            if profile.kind != "APPLICATION":
                raise _invalid(f"{profile.profile_id} is a system-defined inference profile and cannot be deleted.")
            del self._profiles[profile.profile_id]
        return {}

    def _tag_resource(self, params: JSON, _latency_ms: int) -> JSON:
        tags = {t["key"]: t["value"] for t in params["tags"]}
        _check_tag_keys(tags)
        with self._lock:
            profile = self._application_profile(params["resourceARN"])
            if len({**profile.tags, **tags}) > _MAX_TAGS:
                raise _BedrockError(
                    "TooManyTagsException", f"A resource can have at most {_MAX_TAGS} tags.", resourceName=profile.arn
                )
            profile.tags.update(tags)
        return {}

    def _untag_resource(self, params: JSON, _latency_ms: int) -> JSON:
        with self._lock:
            profile = self._application_profile(params["resourceARN"])
            for key in params["tagKeys"]:
                profile.tags.pop(key, None)
        return {}

    def _list_tags_for_resource(self, params: JSON, _latency_ms: int) -> JSON:
        with self._lock:
            profile = self._application_profile(params["resourceARN"])
            return {"tags": [{"key": k, "value": v} for k, v in profile.tags.items()]}

    def _foundation_model_summary(self, model: _FoundationModel) -> JSON:
        return {
            "modelArn": self._model_arn(model.model_id),
            "modelId": model.model_id,
            "modelName": model.name,
            "providerName": model.provider,
            "inputModalities": ["TEXT", "IMAGE"] if model.images else ["TEXT"],
            "outputModalities": ["TEXT"],
            "responseStreamingSupported": True,
            "customizationsSupported": [],
            "inferenceTypesSupported": ["ON_DEMAND"],
            "modelLifecycle": {"status": "ACTIVE"},
        }

    def _list_foundation_models(self, params: JSON, _latency_ms: int) -> JSON:
        provider = (params.get("byProvider") or "").lower()
        models = [m for m in _CATALOG.values() if not provider or m.provider.lower() == provider]
        return {"modelSummaries": [self._foundation_model_summary(m) for m in models]}

    def _get_foundation_model(self, params: JSON, _latency_ms: int) -> JSON:
        identifier = params["modelIdentifier"]
        match = _ARN.fullmatch(identifier)
        if match and match["kind"] == "foundation-model":
            identifier = match["resource"]
        return {"modelDetails": self._foundation_model_summary(self._find_model(identifier))}

    # ----------------------------------------------------------------- runtime: Converse

    def _resolve_model(self, model_id: str) -> _FoundationModel:
        """The foundation model a Converse modelId invokes (see _INVALID_MODEL_ID)."""
        try:
            match = _ARN.fullmatch(model_id)
            if match and match["kind"] == "foundation-model":
                if match["region"] != self.region:
                    raise _invalid(_INVALID_MODEL_ID)
                return self._find_model(match["resource"])
            if match and match["kind"] not in ("inference-profile", "application-inference-profile"):
                raise _invalid(_INVALID_MODEL_ID)
            if match or model_id.split(".", 1)[0] in _GEO_REGIONS:
                with self._lock:
                    return self._find_model(self._lookup_profile(model_id).model_id)
            return self._find_model(model_id)
        except _BedrockError as error:
            if error.code == "ResourceNotFoundException":
                raise _invalid(_INVALID_MODEL_ID) from None
            raise

    def _converse(self, params: JSON, injected_latency_ms: int) -> JSON:
        model = self._resolve_model(params["modelId"])
        _check_conversation(params)
        config = params.get("inferenceConfig") or {}
        max_tokens = config.get("maxTokens", _DEFAULT_MAX_TOKENS)
        if max_tokens > model.max_output_tokens:
            raise _invalid(
                f"The maximum tokens you requested exceeds the model limit of {model.max_output_tokens}. "
                f"Try again with a maximum tokens value that is lower than {model.max_output_tokens}."
            )
        prompt = _account_prompt(model.model_id, params)
        if prompt.checkpoints and not model.prompt_caching:
            raise _invalid(
                "You invoked an unsupported model or your request did not allow prompt caching. "
                "See the documentation for more information."
            )
        with self._lock:
            cache = self._cache.use(prompt, time.monotonic(), model.cache_checkpoint_min_tokens)
        answer = _compose_answer(prompt.digest, max_tokens, config.get("stopSequences") or [])
        input_tokens = prompt.tokens - cache.read - cache.write
        usage: JSON = {
            "inputTokens": input_tokens,  # the uncached remainder only, as Bedrock reports it
            "outputTokens": answer.output_tokens,
            # The API reference says "input tokens and tokens generated"; what Bedrock returns
            # is input + output + cache read + cache write, so every prompt token is counted once.
            "totalTokens": input_tokens + answer.output_tokens + cache.read + cache.write,
            "cacheReadInputTokens": cache.read,
            "cacheWriteInputTokens": cache.write,
        }
        if cache.written_by_ttl:
            usage["cacheDetails"] = [{"ttl": ttl, "inputTokens": n} for ttl, n in cache.written_by_ttl]
        with self._lock:
            totals = self._stats.tokens
            totals["input"] += input_tokens
            totals["output"] += answer.output_tokens
            totals["cache_read"] += cache.read
            totals["cache_write"] += cache.write
            self._stats.converse_log.append({"model_id": params["modelId"], "usage": dict(usage)})
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
            "stopReason": answer.stop_reason,
            "usage": usage,
            "metrics": {
                "latencyMs": injected_latency_ms + _FIRST_TOKEN_MS + _MS_PER_OUTPUT_TOKEN * answer.output_tokens
            },
        }


# --------------------------------------------------------------------------- helpers


def _check_conversation(params: Mapping[str, Any]) -> None:
    """The conversation rules Bedrock applies beyond the shape (messages are optional there
    only because a Prompt management ARN can supply them, which the stand-in does not serve)."""
    messages = params.get("messages") or []
    if not messages:
        raise _invalid("The messages field is empty. Add at least one user message and try again.")
    if messages[0]["role"] != "user":
        raise _invalid(
            "A conversation must start with a user message. Try again with a conversation that starts "
            "with a user message."
        )
    for index, message in enumerate(messages):
        if message["role"] not in ("user", "assistant"):
            raise _invalid(
                f"The role of the Message object at messages.{index} must be user or assistant; "
                "put system prompts in the system field."
            )
        if index and message["role"] == messages[index - 1]["role"]:
            raise _invalid(
                "A conversation must alternate between user and assistant roles. Make sure the "
                "conversation alternates between user and assistant roles and try again."
            )
        if not message["content"]:
            raise _invalid(
                f"The content field in the Message object at messages.{index} is empty. Add a "
                "ContentBlock object to the content field and try again."
            )
        for position, block in enumerate(message["content"]):
            if "text" in block and not block["text"].strip():
                raise _invalid(
                    f"The text field in the ContentBlock object at messages.{index}.content.{position} "
                    "is blank. Add text to the text field, and try again."
                )


def _check_tag_keys(tags: Mapping[str, str]) -> None:
    reserved = sorted(key for key in tags if key.lower().startswith("aws:"))
    if reserved:
        raise _invalid(f"Tag keys starting with 'aws:' are reserved for AWS use: {reserved}.")


def _new_profile_id(rng: random.Random, taken: Mapping[str, Any]) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    while True:
        candidate = "".join(rng.choice(alphabet) for _ in range(12))
        if candidate not in taken:
            return candidate


def _uuid(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-a{digits[17:20]}-{digits[20:]}"


def _encode_page_token(offset: int, kind: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode()


def _decode_page_token(token: str | None, kind: str) -> int:
    if not token:
        return 0
    try:
        token_kind, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if token_kind == kind and int(offset) >= 0:
            return int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise _invalid("The nextToken is not valid for this request.")

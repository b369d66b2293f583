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
``models.json`` names can be provisioned; the built-in catalog (``_CATALOG``, the current
lineup from the research notes, never from models.json) gives per model its name, context
window, output limit, prompt caching (minimum tokens per cache checkpoint, TTLs), service
tiers, latency-optimized source Regions and global profile, and the SYSTEM_DEFINED profiles
that are listed. A model outside the catalog offers only what every model does.

Converse answers are deterministic: the same prompt to the same model gives the same text
and token counts. Input tokens are about 1 per 4 characters of text (system prompt, tool
definitions and messages), at least 1 per message, with fixed costs for images, documents,
video and audio; the tokens before the last ``cachePoint`` are written to the prompt cache
the first time and read from it later, and are then not counted in ``inputTokens``. As in
Bedrock, a ``cachePoint`` with fewer than the model's minimum tokens (1,000-4,096) before it,
counted from the start of the prompt or from the previous honoured ``cachePoint``, is
ignored: the call succeeds and those tokens are billed as plain input. A cache entry lives
for its ``cachePoint.ttl`` ("5m" default, or "1h" where the model offers it), restarted by
every hit; writes are itemised in ``usage.cacheDetails`` (1h before 5m). The
answer is 12-400 words from a fixed vocabulary chosen by the prompt's hash (one word per
output token), cut by ``inferenceConfig.maxTokens`` (default 512). See ``_account_prompt``,
``_PromptCache.use`` and ``_compose_answer``.

What Bedrock served is in every answer: ``serviceTier`` (the tier asked for in
``serviceTier.type``, if the model offers it) and, when the request has a ``performanceConfig``,
``performanceConfig.latency`` ("optimized" through the ``us.`` profile of a latency-optimized
model from one of its Regions). A tier, a TTL or latency-optimized that the model does not
offer, or a prompt longer than its context window, is a ValidationException, served nothing.
See ``_check_tier``, ``_check_latency``, ``_check_cache_ttls`` and ``_context_window``.

Local-only control (never part of Bedrock's API; also available as Python methods)::

    GET  /_local/faults   -> {"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0,
                              "priority_downgrade_rate": 0.0, "reserved_overflow_rate": 0.0,
                              "latency_fallback_rate": 0.0}
    POST /_local/faults   <- any subset of those keys; rates in [0, 1], latency_ms an
                             integer in [0, 60000]; 400 {"message"} on a bad value
    GET  /_local/stats    -> counters: calls, answered, throttled, errors, rejected,
                             profiles, auth kinds, calls per operation, tokens by kind,
                             answered calls by service tier and by latency served
    POST /_local/reset    -> clears faults, stats and the prompt cache (not the profiles)

Faults apply to every Bedrock API call, decided by a ``random.Random(seed)`` so a run is
reproducible: first the latency (a sleep), then throttling (429 ``ThrottlingException``),
then errors (500 ``InternalServerException`` or, where the operation models it,
503 ``ServiceUnavailableException``). The three serving faults make Bedrock serve less than
asked, as it may: a share of the priority calls at the default tier, of the reserved calls
at default (overflow), of the latency-optimized calls at standard latency (quota used up);
they are drawn from their own seeded generator.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
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


#: Minimum tokens per cache checkpoint assumed for a model with no published figure: the most common.
_UNKNOWN_MODEL_CACHE_CHECKPOINT_MIN_TOKENS: Final = 1_024

_5M: Final = frozenset({"5m"})
_5M_1H: Final = frozenset({"5m", "1h"})
_DEFAULT: Final = frozenset({"default"})
_PRIORITY_FLEX: Final = frozenset({"default", "priority", "flex"})
#: The anthropic_beta flag in additionalModelRequestFields that opens Claude Sonnet 4 / 4.5's
#: 1M-token window (Anthropic's name for it; on Bedrock assumed, see the Sonnet 4.5 row).
_CONTEXT_1M_BETA: Final = "context-1m-2025-08-07"


@dataclass(frozen=True)
class _FoundationModel:
    """What Bedrock offers for one model: the stand-in refuses or limits by these, never by models.json."""

    model_id: str
    name: str
    provider: str
    max_output_tokens: int
    #: Most prompt tokens (input + cache read + cache write) a request may carry.
    context_window: int = 200_000
    images: bool = True
    prompt_caching: bool = True
    #: Fewest prompt tokens a cache checkpoint must close (see ``_honoured_checkpoints``).
    cache_checkpoint_min_tokens: int = _UNKNOWN_MODEL_CACHE_CHECKPOINT_MIN_TOKENS
    #: The ``cachePoint.ttl`` values the model accepts ("5m" is Bedrock's default TTL).
    cache_ttls: frozenset[str] = _5M
    #: The ``serviceTier.type`` values it serves ("default" is Standard, offered by every model).
    tiers: frozenset[str] = _DEFAULT
    #: Source regions whose ``us.`` cross-region profile serves ``performanceConfig.latency: optimized``.
    latency_optimized_regions: frozenset[str] = frozenset()
    #: Above this many tokens (prompt + answer) an optimized request is served at standard latency.
    latency_optimized_max_tokens: int | None = None
    #: Whether a ``global.`` cross-region profile exists for it.
    global_profile: bool = False
    #: The window with the ``context-1m-2025-08-07`` beta (Claude Sonnet 4 / 4.5 only).
    beta_context_window: int | None = None


# The models Bedrock serves and what each offers, from the research notes on Bedrock
# (/work/notes/bedrock-prices.md, 2026-12-03), never from Tollgate's models.json: the stand-in
# plays Bedrock, so that a mistake in the price book is found here instead of mirrored.
# Grades: [A] AWS's own pages or botocore's model; [B] AWS-authored repos transcribing AWS
# pages; [3P] third-party; "assumed" where nothing was found. Per row the id's grade comes
# first, then what is not [A]. Verified [A] across rows:
# - tiers: every model serves "default" (Standard); Priority and Flex: gpt-oss-20b/120b, Qwen3
#   Coder-480B, Qwen3 32B, Qwen3-235B-2507, Nova Pro, Nova Premier (What's New 2025-11-18);
#   Reserved: Claude Sonnet 4.5 (What's New 2025-11-26). Priority/Flex for Mistral Large 3 is [B]
#   (pricing-page rows). Every other model is assumed to serve Standard only (for Claude
#   Sonnet 4.6 a [3P] copy of its AWS card says so; which other Claude models have them: NOT FOUND).
# - latency-optimized (latency-optimized-inference.html): through the us. profile, with these
#   source Regions: Nova Pro us-east-1/us-east-2, Claude 3.5 Haiku us-east-2/us-west-2, Llama
#   3.1 70B us-east-2/us-west-2, Llama 3.1 405B us-east-2 and only up to 11K total tokens.
# - Claude Haiku 4.5: 4,096 tokens a cache checkpoint, 5m and 1h TTLs, 200K / 64K, global (its card).
# - context window / max output: Claude Fable 5.2, Fable 5, Opus 4.7, Opus 4.6, Haiku 5.5 1M / 128K;
#   Claude 3.5 Haiku 200K / 8K; gpt-oss 128K (model cards).
# - Claude Sonnet 4.5 has a global profile (global-cross-region-inference.html).
# The 1-hour TTL: Claude Sonnet 4.5, Haiku 4.5, Opus 4.5 (What's New 2026-01-26, known through
# [3P] citations of it) and [B] Opus 4.6, Sonnet 4.6; for Fable 5, Sonnet 5, Opus 4.8 derived from
# their [B] 1-hour cache-write prices; assumed for the other Claude models from 4.5 on. Cache
# minimums are the User Guide's table (as before: Nova's "1K" taken as 1,000; [B] now says 1,024
# for Nova Pro and 1,536 for Nova Lite/Micro) or [B]; Claude 5.x / Fable / Opus 4.7 / 4.8 assumed as
# the same family's 4.x figure. Caching is off for the open-weight models (per-model support NOT
# FOUND; Bedrock's explicit caching is documented for Claude and Nova). Context windows and output
# limits not listed above are [B]/[3P]/assumed as marked; image input is only listed, never checked.
# Lifecycle is not enforced: models past their end of life (Claude 3 Haiku, 3.5 Haiku, 3.7 Sonnet,
# Sonnet 4, Nova Premier, Llama 3.1 405B, Cohere Command R, AI21 Jamba 1.5) still answer here.
_CATALOG: Final = {
    m.model_id: m
    for m in (
        # --- Anthropic
        # id [3P]; 1M / 128K [A]; caching, TTLs and global [3P]/assumed
        _FoundationModel("anthropic.claude-fable-5-2", "Claude Fable 5.2", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [B]; 1M / 128K [A]; 1h [B-derived]; minimum assumed; global [3P]
        _FoundationModel("anthropic.claude-fable-5", "Claude Fable 5", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [3P]; 1M / 128K [3P]; caching assumed; global [3P]
        _FoundationModel("anthropic.claude-sonnet-5-5", "Claude Sonnet 5.5", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=2_048, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [3P]; 1M / 128K [A]; caching assumed; US geography only [3P]
        _FoundationModel("anthropic.claude-haiku-5-5", "Claude Haiku 5.5", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H),
        # id [B]; 1M / 128K [B]; 1h [B-derived]; minimum assumed; global [B]
        _FoundationModel("anthropic.claude-sonnet-5", "Claude Sonnet 5", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=2_048, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [B]; 1M / 128K [B]; 1h [B-derived]; minimum and global assumed
        _FoundationModel("anthropic.claude-opus-4-8", "Claude Opus 4.8", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [A]; 1M / 128K [A]; caching and global assumed
        _FoundationModel("anthropic.claude-opus-4-7", "Claude Opus 4.7", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [B]; 1M / 128K [A]; 4,096 and 1h [B]; global [3P]
        _FoundationModel("anthropic.claude-opus-4-6-v1", "Claude Opus 4.6", "Anthropic", 128_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [B]; 1M / 64K [3P]; 2,048 [B] (a [3P] copy of the card says 1,024); 1h [B]; global [3P]
        _FoundationModel("anthropic.claude-sonnet-4-6", "Claude Sonnet 4.6", "Anthropic", 64_000,
                         context_window=1_000_000, cache_checkpoint_min_tokens=2_048, cache_ttls=_5M_1H,
                         global_profile=True),
        # id [3P]; 200K / 64K [3P]; 4,096 [B]; 1h (What's New, cited); global [3P]
        _FoundationModel("anthropic.claude-opus-4-5-20251101-v1:0", "Claude Opus 4.5", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H, global_profile=True),
        # id, 200K / 64K, 4,096, 5m + 1h, global: all [A]
        _FoundationModel("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=4_096, cache_ttls=_5M_1H, global_profile=True),
        # id [3P]; 200K / 64K [3P]; Reserved and global [A]; 1,024 [B]; 1h (What's New, cited).
        # 1M with the context-1m beta: Anthropic's rule, assumed on Bedrock (consistent with the
        # [B] long-context price row: Bedrock serves prompts above 200K for it).
        _FoundationModel("anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=1_024, cache_ttls=_5M_1H, tiers=frozenset({"default", "reserved"}),
                         global_profile=True, beta_context_window=1_000_000),
        # id [B]; 200K [B]; 32K output assumed; 1,024 [B]; US only [3P]
        _FoundationModel("anthropic.claude-opus-4-1-20250805-v1:0", "Claude Opus 4.1", "Anthropic", 32_000,
                         cache_checkpoint_min_tokens=1_024),
        # id and 1,024 from the User Guide's caching table (as before); 32K output assumed
        _FoundationModel("anthropic.claude-opus-4-20250514-v1:0", "Claude Opus 4", "Anthropic", 32_000,
                         cache_checkpoint_min_tokens=1_024),
        # id [B]; 200K [B]; 1,024 [B]; global [3P]; 1M beta assumed as for Sonnet 4.5 ([B]: long-context rows)
        _FoundationModel("anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", "Anthropic", 64_000,
                         cache_checkpoint_min_tokens=1_024, global_profile=True, beta_context_window=1_000_000),
        # id in the notes; 1,024 [B]; 8K output assumed
        _FoundationModel("anthropic.claude-3-7-sonnet-20250219-v1:0", "Claude 3.7 Sonnet", "Anthropic", 8_192,
                         cache_checkpoint_min_tokens=1_024),
        # id, 200K / 8K, latency-optimized [A]; 2,048 [B]
        _FoundationModel("anthropic.claude-3-5-haiku-20241022-v1:0", "Claude 3.5 Haiku", "Anthropic", 8_192,
                         images=False, cache_checkpoint_min_tokens=2_048,
                         latency_optimized_regions=frozenset({"us-east-2", "us-west-2"})),
        _FoundationModel("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", "Anthropic", 4_096,
                         prompt_caching=False),
        # --- Amazon (ids [A] batch-inference table / [B]; windows and output limits assumed)
        _FoundationModel("amazon.nova-micro-v1:0", "Nova Micro", "Amazon", 10_000, context_window=128_000,
                         images=False, cache_checkpoint_min_tokens=1_000),
        _FoundationModel("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", 10_000, context_window=300_000,
                         cache_checkpoint_min_tokens=1_000),
        # Priority + Flex and latency-optimized (us-east-1, us-east-2) [A]
        _FoundationModel("amazon.nova-pro-v1:0", "Nova Pro", "Amazon", 10_000, context_window=300_000,
                         cache_checkpoint_min_tokens=1_000, tiers=_PRIORITY_FLEX,
                         latency_optimized_regions=frozenset({"us-east-1", "us-east-2"})),
        # Priority + Flex [A]
        _FoundationModel("amazon.nova-premier-v1:0", "Nova Premier", "Amazon", 32_000, context_window=1_000_000,
                         cache_checkpoint_min_tokens=1_000, tiers=_PRIORITY_FLEX),
        # id [B]; global [3P]; caching minimum not published (the common 1,024)
        _FoundationModel("amazon.nova-2-lite-v1:0", "Nova 2 Lite", "Amazon", 64_000, context_window=1_000_000,
                         global_profile=True),
        _FoundationModel("amazon.nova-2-pro-v1:0", "Nova 2 Pro (preview)", "Amazon", 64_000, context_window=1_000_000),
        # --- Meta (ids [B]; no prompt caching; windows and output limits assumed)
        _FoundationModel("meta.llama4-maverick-17b-instruct-v1:0", "Llama 4 Maverick 17B Instruct", "Meta", 8_192,
                         context_window=1_000_000, prompt_caching=False),
        _FoundationModel("meta.llama4-scout-17b-instruct-v1:0", "Llama 4 Scout 17B Instruct", "Meta", 8_192,
                         context_window=3_500_000, prompt_caching=False),
        _FoundationModel("meta.llama3-3-70b-instruct-v1:0", "Llama 3.3 70B Instruct", "Meta", 8_192,
                         context_window=128_000, images=False, prompt_caching=False),
        _FoundationModel("meta.llama3-1-8b-instruct-v1:0", "Llama 3.1 8B Instruct", "Meta", 8_192,
                         context_window=128_000, images=False, prompt_caching=False),
        # latency-optimized (us-east-2, us-west-2) [A]
        _FoundationModel("meta.llama3-1-70b-instruct-v1:0", "Llama 3.1 70B Instruct", "Meta", 8_192,
                         context_window=128_000, images=False, prompt_caching=False,
                         latency_optimized_regions=frozenset({"us-east-2", "us-west-2"})),
        # latency-optimized (us-east-2) up to 11K total tokens, standard above [A]
        _FoundationModel("meta.llama3-1-405b-instruct-v1:0", "Llama 3.1 405B Instruct", "Meta", 8_192,
                         context_window=128_000, images=False, prompt_caching=False,
                         latency_optimized_regions=frozenset({"us-east-2"}), latency_optimized_max_tokens=11_000),
        # --- Mistral AI (id [B]; Priority + Flex [B]; window assumed)
        _FoundationModel("mistral.mistral-large-3-675b-instruct", "Mistral Large 3", "Mistral AI", 8_192,
                         context_window=256_000, prompt_caching=False, tiers=_PRIORITY_FLEX),
        # --- OpenAI (gpt-oss: id, 128K and Priority + Flex [A]; GPT-5.6 id and 1M [B], Standard only [3P])
        _FoundationModel("openai.gpt-oss-120b-1:0", "gpt-oss-120b", "OpenAI", 32_768, context_window=128_000,
                         images=False, prompt_caching=False, tiers=_PRIORITY_FLEX),
        _FoundationModel("openai.gpt-oss-20b-1:0", "gpt-oss-20b", "OpenAI", 32_768, context_window=128_000,
                         images=False, prompt_caching=False, tiers=_PRIORITY_FLEX),
        _FoundationModel("openai.gpt-5.6-sol", "GPT-5.6 Sol", "OpenAI", 128_000, context_window=1_000_000,
                         prompt_caching=False),
        # --- DeepSeek (id [B]; window and output assumed)
        _FoundationModel("deepseek.r1-v1:0", "DeepSeek-R1", "DeepSeek", 32_768, context_window=128_000,
                         images=False, prompt_caching=False),
        # --- Qwen (ids [3P]; Priority + Flex [A]; windows assumed)
        _FoundationModel("qwen.qwen3-235b-a22b-2507-v1:0", "Qwen3 235B A22B 2507", "Qwen", 32_768,
                         context_window=256_000, images=False, prompt_caching=False, tiers=_PRIORITY_FLEX),
        _FoundationModel("qwen.qwen3-32b-v1:0", "Qwen3 32B (dense)", "Qwen", 16_384, context_window=128_000,
                         images=False, prompt_caching=False, tiers=_PRIORITY_FLEX),
        _FoundationModel("qwen.qwen3-coder-480b-a35b-v1:0", "Qwen3 Coder 480B A35B Instruct", "Qwen", 65_536,
                         context_window=256_000, images=False, prompt_caching=False, tiers=_PRIORITY_FLEX),
        # --- Google, MiniMax (ids [B]; windows and output assumed)
        _FoundationModel("google.gemma-3-4b-it", "Gemma 3 4B IT", "Google", 8_192, context_window=128_000,
                         prompt_caching=False),
        _FoundationModel("google.gemma-3-12b-it", "Gemma 3 12B IT", "Google", 8_192, context_window=128_000,
                         prompt_caching=False),
        _FoundationModel("google.gemma-3-27b-it", "Gemma 3 27B IT", "Google", 8_192, context_window=128_000,
                         prompt_caching=False),
        _FoundationModel("minimax.minimax-m2", "MiniMax M2", "MiniMax", 32_768, context_window=196_608,
                         images=False, prompt_caching=False),
        _FoundationModel("minimax.minimax-m2.1", "MiniMax M2.1", "MiniMax", 32_768, context_window=196_608,
                         images=False, prompt_caching=False),
        _FoundationModel("minimax.minimax-m2.5", "MiniMax M2.5", "MiniMax", 32_768, context_window=196_608,
                         images=False, prompt_caching=False),
        # --- Cohere, AI21 (ids [B] / [A] lifecycle table; windows and output assumed)
        _FoundationModel("cohere.command-r-v1:0", "Command R", "Cohere", 4_096, context_window=128_000,
                         images=False, prompt_caching=False),
        _FoundationModel("cohere.command-r-plus-v1:0", "Command R+", "Cohere", 4_096, context_window=128_000,
                         images=False, prompt_caching=False),
        _FoundationModel("ai21.jamba-1-5-large-v1:0", "Jamba 1.5 Large", "AI21 Labs", 4_096, context_window=256_000,
                         images=False, prompt_caching=False),
        _FoundationModel("ai21.jamba-1-5-mini-v1:0", "Jamba 1.5 Mini", "AI21 Labs", 4_096, context_window=256_000,
                         images=False, prompt_caching=False),
    )
}  # fmt: skip
#: Providers whose model ids Bedrock serves: a well-formed id from one of them is taken to exist.
_PROVIDERS: Final = frozenset((
    "ai21", "amazon", "anthropic", "cohere", "deepseek", "google", "luma", "meta", "minimax", "mistral",
    "moonshot", "moonshotai", "nvidia", "openai", "qwen", "stability", "twelvelabs", "writer",
))  # fmt: skip
#: A well-formed model id that is not in the catalog exists, with generous limits (on purpose: so
#: that whatever models.json names can be provisioned and called) but only what every model offers:
#: the Standard tier, standard latency, 5-minute caching (1,024 tokens a checkpoint).
_UNKNOWN_MODEL_MAX_OUTPUT = 64_000
_UNKNOWN_MODEL_CONTEXT_WINDOW = 1_000_000

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
    #: The geography of the cross-region profile it routes through ("us", "global", ...), or
    #: None for in-region (a profile copied from a foundation model).
    geo: str | None = None

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
#: Generation time per token by the tier that served: Priority is "up to 25% better output
#: tokens per second" (AWS); Flex's slowdown and the latency-optimized speed-up are assumed.
_TIER_SPEED: Final = {"default": 1.0, "reserved": 1.0, "priority": 0.8, "flex": 2.0}
_OPTIMIZED_SPEED: Final = 0.5

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
    """Cached prompt prefixes, each with its TTL and when it expires.

    An entry lives for its own TTL ("5m" or "1h", from the cache point that wrote it) and every
    hit restarts that TTL (the User Guide: the TTL resets with each successful cache hit).
    A 1-hour entry stays 1-hour when a later request reaches it through a 5-minute cache point.
    """

    PURGE_ABOVE: ClassVar[int] = 10_000  # entries; expired ones are dropped past this

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, float]] = {}  # prefix key -> (expires at, TTL seconds)

    def clear(self) -> None:
        self._entries.clear()

    def _alive(self, key: str, now: float) -> bool:
        return self._entries.get(key, (0.0, 0.0))[0] > now

    def _keep(self, key: str, ttl_seconds: float, now: float) -> None:
        """(Re)start an entry's TTL; a live entry keeps the longer of its TTL and this one."""
        expires, held = self._entries.get(key, (0.0, 0.0))
        ttl = max(ttl_seconds, held) if expires > now else ttl_seconds
        self._entries[key] = (now + ttl, ttl)

    def use(self, prompt: _PromptAccount, now: float, min_tokens: int) -> _CacheUse:
        """Read the longest cached prefix, write the rest up to the last cache point.

        Only the cache points that close ``min_tokens`` (the model's minimum per checkpoint)
        count: see ``_honoured_checkpoints``; with none, nothing is read or written.
        Like Bedrock (Anthropic's models), a hit is looked for at every block boundary up to
        the last cache point, not only at this request's cache points: a conversation that
        moved its cache point one turn on reads the previous turn's prefix. (Anthropic only
        looks about 20 blocks back; the stand-in looks all the way.) The tokens between two
        cache points are written with the TTL of the later one. The caller holds the lock.
        """
        points = _honoured_checkpoints(prompt.checkpoints, max(min_tokens, 1))
        if not points:
            return _CacheUse()
        if len(self._entries) > self.PURGE_ABOVE:
            self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > now}
        last = points[-1].tokens
        hits = [p for p in (*prompt.boundaries, *points) if p.tokens <= last and self._alive(p.key, now)]
        hit = max(hits, key=lambda p: p.tokens, default=None)
        read = hit.tokens if hit else 0
        written: dict[str, int] = {}
        previous = read
        for point in points:
            if point.tokens > previous:
                written[point.ttl] = written.get(point.ttl, 0) + point.tokens - previous
                previous = point.tokens
        if hit:
            self._keep(hit.key, 0.0, now)  # a hit restarts the entry's own TTL
        for point in points:
            self._keep(point.key, _CACHE_TTL_SECONDS[point.ttl], now)
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
    """Injected faults: share of calls throttled, share failing, added latency, and how often
    Bedrock serves less than asked (each a share of the calls that asked for it):

    - ``priority_downgrade_rate``: priority calls served at the Standard tier ("default");
    - ``reserved_overflow_rate``: reserved calls overflowing to Standard (Bedrock does this above
      the reserved tokens per minute, the User Guide says);
    - ``latency_fallback_rate``: latency-optimized calls served at standard latency (Bedrock does
      this past the model's latency-optimized quota and charges standard, the User Guide says).
    """

    throttle_rate: float = 0.0
    error_rate: float = 0.0
    latency_ms: int = 0
    priority_downgrade_rate: float = 0.0
    reserved_overflow_rate: float = 0.0
    latency_fallback_rate: float = 0.0

    MAX_LATENCY_MS: ClassVar[int] = 60_000
    RATES: ClassVar[tuple[str, ...]] = (
        "throttle_rate", "error_rate", "priority_downgrade_rate", "reserved_overflow_rate", "latency_fallback_rate",
    )  # fmt: skip

    def as_dict(self) -> JSON:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def changed(self, changes: Mapping[str, Any]) -> Faults:
        """These faults with ``changes`` applied; ValueError names the first bad value."""
        known = [f.name for f in fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault setting(s) {unknown}; use {', '.join(known)}")
        values = self.as_dict()
        for key in self.RATES:
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
    #: Answered Converse calls by the tier and the latency that served them.
    service_tiers: dict[str, int] = field(default_factory=dict)
    latency: dict[str, int] = field(default_factory=lambda: {"standard": 0, "optimized": 0})
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

    def __init__(
        self,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``clock`` (seconds) times the prompt cache's TTLs; tests pass one they can move on."""
        self.region = region
        self.account_id = account_id
        self._seed = seed
        self._lock = threading.Lock()
        self._fault_rng = random.Random(seed)  # noqa: S311 - reproducible faults, not security
        self._id_rng = random.Random(f"{seed}:ids")  # noqa: S311 - reproducible ids, not security
        self._request_rng = random.Random(f"{seed}:requests")  # noqa: S311 - apart, so profile ids stay stable
        self._serving_rng = random.Random(f"{seed}:serving")  # noqa: S311 - apart, so fault draws stay as they were
        self._clock = clock
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
        self,
        *,
        throttle_rate: float | None = None,
        error_rate: float | None = None,
        latency_ms: int | None = None,
        priority_downgrade_rate: float | None = None,
        reserved_overflow_rate: float | None = None,
        latency_fallback_rate: float | None = None,
    ) -> JSON:
        """Change the given fault settings (others stay); returns the settings now in force.

        Raises ValueError for a rate outside [0, 1] or a latency outside [0, 60000] ms.
        """
        changes = {
            "throttle_rate": throttle_rate,
            "error_rate": error_rate,
            "latency_ms": latency_ms,
            "priority_downgrade_rate": priority_downgrade_rate,
            "reserved_overflow_rate": reserved_overflow_rate,
            "latency_fallback_rate": latency_fallback_rate,
        }
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
                "service_tiers": dict(s.service_tiers),
                "latency": dict(s.latency),
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
            self._serving_rng.seed(f"{self._seed}:serving")

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
        return _FoundationModel(
            model_id,
            model_id,
            provider.capitalize(),
            _UNKNOWN_MODEL_MAX_OUTPUT,
            context_window=_UNKNOWN_MODEL_CONTEXT_WINDOW,
            global_profile=True,
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
        if geo == "global" and not model.global_profile:
            raise _not_found(f"The inference profile {profile_id} does not exist in {self.region}.")
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
            geo=geo,
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

    def _copy_source(self, source_arn: str) -> tuple[str, tuple[str, ...], str | None]:
        """(foundation model id, model ARNs, geography) of what an application profile copies from."""
        match = _ARN.fullmatch(source_arn)
        if match is None:
            raise _invalid(f"The model source {source_arn} is not a foundation model or inference profile ARN.")
        if match["region"] != self.region:
            raise _invalid(f"The model source {source_arn} must be in the region of the request, {self.region}.")
        if match["kind"] == "foundation-model":
            if match["account"]:
                raise _invalid(f"A foundation model ARN has no account id: {source_arn}.")
            model = self._find_model(match["resource"])
            return model.model_id, (self._model_arn(model.model_id),), None
        if match["account"] != self.account_id:
            raise _invalid(f"The inference profile {source_arn} must belong to account {self.account_id}.")
        profile = self._system_profile(match["resource"])
        return profile.model_id, profile.model_arns, profile.geo

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
        model_id, model_arns, geo = self._copy_source(source)
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
                geo=geo,
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

    def _resolve_model(self, model_id: str) -> tuple[_FoundationModel, str | None]:
        """The foundation model a Converse modelId invokes, and the geography of the cross-region
        profile it goes through (None: in-region). See _INVALID_MODEL_ID."""
        try:
            match = _ARN.fullmatch(model_id)
            if match and match["kind"] == "foundation-model":
                if match["region"] != self.region:
                    raise _invalid(_INVALID_MODEL_ID)
                return self._find_model(match["resource"]), None
            if match and match["kind"] not in ("inference-profile", "application-inference-profile"):
                raise _invalid(_INVALID_MODEL_ID)
            if match or model_id.split(".", 1)[0] in _GEO_REGIONS:
                with self._lock:
                    profile = self._lookup_profile(model_id)
                return self._find_model(profile.model_id), profile.geo
            return self._find_model(model_id), None
        except _BedrockError as error:
            if error.code == "ResourceNotFoundException":
                raise _invalid(_INVALID_MODEL_ID) from None
            raise

    def _converse(self, params: JSON, injected_latency_ms: int) -> JSON:
        model, geo = self._resolve_model(params["modelId"])
        _check_conversation(params)
        config = params.get("inferenceConfig") or {}
        max_tokens = config.get("maxTokens", _DEFAULT_MAX_TOKENS)
        if max_tokens > model.max_output_tokens:
            raise _invalid(
                f"The maximum tokens you requested exceeds the model limit of {model.max_output_tokens}. "
                f"Try again with a maximum tokens value that is lower than {model.max_output_tokens}."
            )
        tier = _check_tier(model, params)
        optimized = _check_latency(model, params, geo, self.region)
        prompt = _account_prompt(model.model_id, params)
        if prompt.checkpoints and not model.prompt_caching:
            raise _invalid(
                "You invoked an unsupported model or your request did not allow prompt caching. "
                "See the documentation for more information."
            )
        _check_cache_ttls(model, prompt.checkpoints)
        window = _context_window(model, params)
        if prompt.tokens > window:
            # What clients report Bedrock answering (the model's limit is not named in it).
            raise _invalid("The model returned the following errors: Input is too long for requested model.")
        answer = _compose_answer(prompt.digest, max_tokens, config.get("stopSequences") or [])
        with self._lock:
            cache = self._cache.use(prompt, self._clock(), model.cache_checkpoint_min_tokens)
            # How Bedrock served it: less than asked, sometimes (see Faults).
            faults = self._faults
            if tier == "priority" and self._serving_rng.random() < faults.priority_downgrade_rate:
                tier = "default"
            if tier == "reserved" and self._serving_rng.random() < faults.reserved_overflow_rate:
                tier = "default"
            if optimized and self._serving_rng.random() < faults.latency_fallback_rate:
                optimized = False
        if optimized and model.latency_optimized_max_tokens is not None:
            # Llama 3.1 405B: optimized up to 11K input + output tokens, standard above (User Guide).
            optimized = prompt.tokens + answer.output_tokens <= model.latency_optimized_max_tokens
        latency = "optimized" if optimized else "standard"
        input_tokens = prompt.tokens - cache.read - cache.write
        usage: JSON = {
            "inputTokens": input_tokens,  # the uncached remainder only, as Bedrock reports it
            "outputTokens": answer.output_tokens,
            # The API reference says "input tokens and tokens generated"; what Bedrock returns
            # is input + output + cache read + cache write, so every prompt token is counted once.
            "totalTokens": input_tokens + answer.output_tokens + cache.read + cache.write,
            "cacheReadInputTokens": cache.read,
            "cacheWriteInputTokens": cache.write,  # the sum of cacheDetails (assumed; see the notes)
        }
        if cache.written_by_ttl:
            usage["cacheDetails"] = [{"ttl": ttl, "inputTokens": n} for ttl, n in cache.written_by_ttl]
        with self._lock:
            stats = self._stats
            totals = stats.tokens
            totals["input"] += input_tokens
            totals["output"] += answer.output_tokens
            totals["cache_read"] += cache.read
            totals["cache_write"] += cache.write
            stats.service_tiers[tier] = stats.service_tiers.get(tier, 0) + 1
            stats.latency[latency] += 1
            stats.converse_log.append(
                {"model_id": params["modelId"], "usage": dict(usage), "service_tier": tier, "latency": latency}
            )
        ms_per_token = _MS_PER_OUTPUT_TOKEN * _TIER_SPEED[tier] * (_OPTIMIZED_SPEED if optimized else 1.0)
        generation_ms = round(ms_per_token * answer.output_tokens)
        response: JSON = {
            "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
            "stopReason": answer.stop_reason,
            "usage": usage,
            "metrics": {"latencyMs": injected_latency_ms + _FIRST_TOKEN_MS + generation_ms},
            # The tier that served the call (the User Guide: visible in the API response). Sent
            # also when the request named none: clients report {"type": "default"} then [3P].
            "serviceTier": {"type": tier},
        }
        if params.get("performanceConfig"):
            # The latency that served the call (the User Guide: visible in the API response);
            # when the request has no performanceConfig it is left out (assumed).
            response["performanceConfig"] = {"latency": latency}
        return response


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


def _check_tier(model: _FoundationModel, params: Mapping[str, Any]) -> str:
    """The service tier asked for, if the model offers it; a ValidationException if not.

    Verified [A]: which models offer which tier (see the catalog); [3P] (what clients report):
    a tier the model or Region does not offer is a ValidationException, and Reserved without a
    reservation answers "Reservation not found.". Assumed: the wording for Priority / Flex, and
    that this account holds a reservation for every model that offers Reserved.
    """
    tier = str((params.get("serviceTier") or {}).get("type") or "default")
    if tier in model.tiers:
        return tier
    if tier == "reserved":
        raise _invalid("Reservation not found.")
    offered = ", ".join(sorted(model.tiers))
    raise _invalid(
        f"The service tier {tier} is not supported for the model {model.model_id} (it offers: {offered}). "
        "Try again with a supported service tier, or without serviceTier for the default tier."
    )


def _check_latency(model: _FoundationModel, params: Mapping[str, Any], geo: str | None, region: str) -> bool:
    """Whether latency-optimized inference was asked for (and is offered); a ValidationException if
    asked for where it is not offered.

    Verified [A] (latency-optimized-inference.html): it is served through the ``us.`` cross-region
    profile of a few models, from the source Regions in the catalog. Assumed: that a request for
    it anywhere else is refused (AWS documents no answer for that case) and the wording.
    """
    if (params.get("performanceConfig") or {}).get("latency", "standard") != "optimized":
        return False
    if geo == "us" and region in model.latency_optimized_regions:
        return True
    where = f"the us. inference profile from {', '.join(sorted(model.latency_optimized_regions))}"
    raise _invalid(
        f"Latency-optimized inference is not supported for {model.model_id} with this model identifier "
        f"in {region}"
        + (f"; it is offered through {where}." if model.latency_optimized_regions else ".")
        + " Try again with performanceConfig latency standard."
    )


def _check_cache_ttls(model: _FoundationModel, checkpoints: Sequence[_Checkpoint]) -> None:
    """A ValidationException for a cache TTL the model does not offer, or TTLs out of order.

    [3P] (what clients report): "1h" on a Claude model without the 1-hour TTL fails as the model's
    own "Extra inputs are not permitted", on a non-Anthropic model with "Extended TTL prompt caching
    is only supported for Anthropic models". [B] (AWS agent toolkit): with mixed TTLs the longer
    must come first (tools, then system, then messages). The ordering message is assumed.
    """
    ttls = [point.ttl for point in checkpoints]
    refused = sorted(set(ttls) - model.cache_ttls)
    if refused:
        if model.provider != "Anthropic":
            raise _invalid("Extended TTL prompt caching is only supported for Anthropic models")
        raise _invalid("The model returned the following errors: cache_control.ttl: Extra inputs are not permitted")
    for earlier, later in itertools.pairwise(ttls):
        if _CACHE_TTL_SECONDS[later] > _CACHE_TTL_SECONDS[earlier]:
            raise _invalid(
                f"A cachePoint with ttl {later} must not come after one with ttl {earlier}: the longer TTL "
                "comes first, in the order tools, system, messages."
            )


def _context_window(model: _FoundationModel, params: Mapping[str, Any]) -> int:
    """The most prompt tokens this request may send (the 1M beta where the model has one)."""
    if model.beta_context_window is not None:
        extra = params.get("additionalModelRequestFields")
        betas = extra.get("anthropic_beta") if isinstance(extra, Mapping) else None
        if isinstance(betas, list) and _CONTEXT_1M_BETA in betas:
            return model.beta_context_window
    return model.context_window


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

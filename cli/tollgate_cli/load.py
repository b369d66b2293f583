"""A realistic workload through the real HTTP API, with the unmodified boto3 bedrock-runtime client.

Each tenant gets its own client, made with ``AWS_BEARER_TOKEN_BEDROCK=<tenant key>`` and
``endpoint_url=<gateway URL>``: exactly what a tenant's code does.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

_TOPICS = (
    "the renewal terms of a cloud hosting contract", "why the invoice total changed this month",
    "a polite reply to a customer asking for a refund", "the risks of deploying on a Friday",
    "how to read a flame graph", "a summary of last quarter's support tickets",
    "three names for a coffee subscription service", "the difference between p50 and p99 latency",
)  # fmt: skip
_ASKS = ("Summarise", "Explain briefly", "Write a short note about", "List the key points of", "Draft")
_ENV_LOCK = threading.Lock()


@dataclass(frozen=True)
class Caller:
    tenant: str
    api_key: str
    profiles: tuple[str, ...]
    caching: frozenset[str] = frozenset()  # profiles whose model supports prompt caching


@dataclass
class TenantTally:
    requests: int = 0
    succeeded: int = 0
    throttled: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    errors: dict[str, int] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)  # of the answered requests (x-tollgate-request-id)

    def count(self, answer: dict[str, Any] | None, error_code: str | None) -> None:
        """Add one call: its answer, or the error code it failed with."""
        self.requests += 1
        if answer is not None:
            usage = answer["usage"]
            headers = answer["ResponseMetadata"]["HTTPHeaders"]
            self.succeeded += 1
            self.input_tokens += usage["inputTokens"]
            self.output_tokens += usage["outputTokens"]
            self.cache_tokens += usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)
            self.cost_usd += Decimal(headers["x-tollgate-cost-usd"])
            self.request_ids.append(headers["x-tollgate-request-id"])
        elif error_code == "ThrottlingException":
            self.throttled += 1
        else:
            self.failed += 1
            self.errors[str(error_code)] = self.errors.get(str(error_code), 0) + 1


@contextmanager
def bearer_token(api_key: str) -> Iterator[None]:
    """AWS_BEARER_TOKEN_BEDROCK set to this key, for this thread only (others wait).

    botocore reads the variable twice: when the client is made (to choose bearer auth; without
    it the client signs with SigV4) and again when it signs each call (seen with botocore 1.43).
    """
    with _ENV_LOCK:
        os.environ["AWS_BEARER_TOKEN_BEDROCK"] = api_key
        try:
            yield
        finally:
            os.environ.pop("AWS_BEARER_TOKEN_BEDROCK", None)


def bedrock_client(api_url: str, api_key: str, region: str) -> Any:
    """A stock bedrock-runtime client made as a tenant's code makes it, with the key in the environment.

    One attempt per call, so the tally shows what the gateway answered, not what retries hid.
    """
    with bearer_token(api_key):
        return boto3.session.Session().client(
            "bedrock-runtime",
            region_name=region,
            endpoint_url=api_url,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=60),
        )


def request_body(rng: random.Random, index: int, caching: bool) -> dict[str, Any]:
    """One Converse request: prompts of varied length, varied maxTokens, some cached system prompts."""
    prompt = f"{rng.choice(_ASKS)} {rng.choice(_TOPICS)}. " + "Add detail. " * rng.randint(0, 40) + f"(#{index})"
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "inferenceConfig": {"maxTokens": rng.choice([64, 256, 512, 1024])},
    }
    if caching and rng.random() < 0.4:
        # ~5,050 tokens (1 per 4 characters in the local stand-in): a cache checkpoint is ignored
        # before the model's minimum, and the largest among config.json's models is Claude Haiku
        # 4.5's 4,096 (Amazon Bedrock User Guide, "Prompt caching for faster model inference").
        body["system"] = [
            {"text": "You are the support assistant of a SaaS company. " + "Follow the style guide. " * 840},
            {"cachePoint": {"type": "default"}},
        ]
    return body


def run_load(
    api_url: str,
    region: str,
    callers: Sequence[Caller],
    *,
    requests: int,
    seed: int = 1,
    on_done: Callable[[], None] = lambda: None,
) -> dict[str, TenantTally]:
    """Send ``requests`` requests spread over the callers' profiles; tally what each tenant was charged.

    One call at a time: the key is an environment variable that botocore reads on every call,
    and a process has one environment (each real tenant runs in its own process). Threads
    would only queue on it.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not security
    clients = {c.tenant: bedrock_client(api_url, c.api_key, region) for c in callers}
    keys = {c.tenant: c.api_key for c in callers}
    plan = []
    for index in range(requests):
        caller = rng.choice(callers)
        profile = rng.choice(caller.profiles)
        plan.append((caller.tenant, profile, request_body(rng, index, profile in caller.caching)))
    tallies = {c.tenant: TenantTally() for c in callers}
    for tenant, profile, body in plan:
        outcome: str | None = None
        try:
            with bearer_token(keys[tenant]):
                answer = clients[tenant].converse(modelId=profile, **body)
        except ClientError as error:
            outcome = error.response["Error"]["Code"]
            answer = None
        except BotoCoreError as error:  # connection refused, timeout: the gateway is not answering
            outcome = type(error).__name__
            answer = None
        tallies[tenant].count(answer, outcome)
        on_done()
    return tallies


class Aggregated(Protocol):
    def aggregated(self, request_ids: Iterable[str]) -> set[str]: ...


def wait_for_rollups(
    trends: Aggregated,
    request_ids: Sequence[str],
    *,
    timeout: float = 60.0,
    poll: float = 0.5,
    on_progress: Callable[[int], None] = lambda done: None,
) -> tuple[int, float]:
    """Wait until the aggregator has rolled up every request (its exactly-once marker exists).

    Returns how many were rolled up and the seconds waited; fewer than asked means ``timeout``
    passed first (the stream is behind, or records failed: see the AggregationFailureQueue).
    """
    started = time.monotonic()
    pending = set(request_ids)
    while True:
        pending -= trends.aggregated(pending)
        on_progress(len(request_ids) - len(pending))
        waited = time.monotonic() - started
        if not pending or waited >= timeout:
            return len(request_ids) - len(pending), waited
        time.sleep(poll)

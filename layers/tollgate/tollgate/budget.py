"""The gateway's time budget: every timeout between a tenant's request and the gateway's answer.

API Gateway waits 29 s for a REST API's Lambda integration (the default, and the most without
a quota increase), then answers 504 on its own, whatever the function still does. If that
happened after Bedrock was called, the tenant would be billed for an answer it never got (and
its client would retry the 504, calling Bedrock again), and a usage record written after the
504 would charge for it. So everything that can happen once a Bedrock attempt starts must end
before API Gateway gives up:

    margin (before the handler runs: API Gateway -> Lambda, cold start; and the answer's way back)
  + before the model (the handler's own work: reading the profile directory, a refused attempt)
  + Bedrock connect + read timeout                       (one attempt; botocore never retries it)
  + the usage write's worst case   (connect + read) x attempts + botocore's back-off between them
  + the fallback send's worst case (connect + read) x attempts + back-off
  <= API Gateway's integration timeout

The service enforces it at run time too: a Bedrock attempt starts only while the rest of the
budget (Bedrock connect + read, then the usage write and the fallback send) still fits before
the handler's deadline; otherwise the tenant gets a retryable 503 and nothing is called.

This module is the one place these figures live: wiring builds the clients from it, the gateway
service checks it before each Bedrock attempt, settings may only shorten the Bedrock read timeout
(tests do), and a test checks it against template.yaml (the gateway function's Timeout and the
integration timeout of its API events).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: API Gateway's REST API integration timeout when an integration sets no TimeoutInMillis.
API_GATEWAY_DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000


def standard_retry_backoff_worst(attempts: int) -> float:
    """The longest botocore's ``standard`` retry mode can sleep in all between ``attempts`` attempts.

    Before retry n (n = 1, 2, ...) it sleeps ``random() * min(2 ** (n - 1), 20)`` seconds
    (botocore.retries.standard.ExponentialBackoff; a test holds botocore to it).
    """
    return float(sum(min(2 ** (n - 1), 20) for n in range(1, attempts)))


class BudgetError(ValueError):
    """The timeouts do not fit in API Gateway's integration timeout."""


@dataclass(frozen=True)
class ClientLimits:
    """One AWS client's connect and read timeouts and total attempts (botocore standard retries)."""

    connect_seconds: float
    read_seconds: float
    attempts: int = 1

    @property
    def worst_seconds(self) -> float:
        """How long one call through this client can take at worst, retries and back-off included."""
        return self.attempts * (self.connect_seconds + self.read_seconds) + standard_retry_backoff_worst(self.attempts)


@dataclass(frozen=True)
class Deadline:
    """When the gateway must have answered, on the monotonic clock."""

    at: float

    def remaining(self, now: float) -> float:
        return self.at - now


@dataclass(frozen=True)
class TimeoutBudget:
    integration_seconds: float = API_GATEWAY_DEFAULT_INTEGRATION_TIMEOUT_MS / 1000
    #: template.yaml's Timeout of the gateway function (a test checks they agree).
    lambda_timeout_seconds: int = 29
    #: Time outside the handler: API Gateway invoking Lambda, a cold start's init, the answer back.
    margin_seconds: float = 2.0
    #: The handler's own work before the Bedrock attempt that answers: a cold container's profile
    #: directory Query, and a throttled attempt with its back-off (retried only if it still fits).
    before_model_seconds: float = 2.0
    #: Bedrock Converse: never retried by botocore (a timed-out call may have been billed).
    bedrock: ClientLimits = field(default_factory=lambda: ClientLimits(connect_seconds=1.0, read_seconds=16.0))
    #: Attempts the gateway itself makes when Bedrock refused without billing (throttled, 503,
    #: connection refused), and the pause between them.
    model_attempts: int = 2
    model_retry_backoff_seconds: float = 0.1
    #: The usage record's conditional PutItem (idempotent by request id, so retries are safe);
    #: the same client reads the profile directory.
    usage_write: ClientLimits = field(default_factory=lambda: ClientLimits(0.5, 1.0, attempts=2))
    #: The fallback path when the usage write failed: the record to the metering fallback queue.
    fallback_send: ClientLimits = field(default_factory=lambda: ClientLimits(0.5, 1.0, attempts=2))

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise BudgetError("the gateway's timeouts do not fit: " + "; ".join(problems))

    @property
    def handler_seconds(self) -> float:
        """How long the handler may take, from its start to its answer."""
        return self.integration_seconds - self.margin_seconds

    @property
    def after_model_seconds(self) -> float:
        """The worst case of what follows Bedrock's answer: the usage write, then the fallback send."""
        return self.usage_write.worst_seconds + self.fallback_send.worst_seconds

    @property
    def model_attempt_seconds(self) -> float:
        """What must still be left before the deadline for a Bedrock attempt to start."""
        return self.bedrock.connect_seconds + self.bedrock.read_seconds + self.after_model_seconds

    @property
    def total_seconds(self) -> float:
        return self.margin_seconds + self.before_model_seconds + self.model_attempt_seconds

    def problems(self) -> list[str]:
        found = []
        if self.bedrock.attempts != 1:
            found.append(
                f"the Bedrock client must make exactly 1 attempt (a timed-out call may have been billed), "
                f"not {self.bedrock.attempts}"
            )
        if self.total_seconds > self.integration_seconds:
            found.append(
                f"margin {self.margin_seconds:g} s + before the model {self.before_model_seconds:g} s + Bedrock "
                f"connect {self.bedrock.connect_seconds:g} s + read {self.bedrock.read_seconds:g} s + usage write "
                f"{self.usage_write.worst_seconds:g} s + fallback send {self.fallback_send.worst_seconds:g} s = "
                f"{self.total_seconds:g} s, more than API Gateway's integration timeout of "
                f"{self.integration_seconds:g} s: shorten the Bedrock read timeout"
            )
        if self.lambda_timeout_seconds < self.handler_seconds:
            found.append(
                f"the gateway function's Timeout ({self.lambda_timeout_seconds} s) must be at least the "
                f"{self.handler_seconds:g} s the handler may take"
            )
        return found

    def with_bedrock_read(self, read_seconds: float) -> TimeoutBudget:
        return replace(self, bedrock=replace(self.bedrock, read_seconds=read_seconds))

    def deadline(self, *, started: float, now: float, lambda_remaining_seconds: float | None = None) -> Deadline:
        """The handler's deadline: ``handler_seconds`` after it started, and never after Lambda's own timeout."""
        at = started + self.handler_seconds
        if lambda_remaining_seconds is not None:
            at = min(at, now + lambda_remaining_seconds)
        return Deadline(at)


#: The budget the gateway runs with.
GATEWAY_BUDGET = TimeoutBudget()

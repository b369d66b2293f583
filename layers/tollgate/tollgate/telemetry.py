"""The one definition of Tollgate's CloudWatch metrics.

The aggregator emits these, the alarms and the dashboard name them; all three import this
module, and a test checks that every metric an alarm or widget names is one the aggregator
emits with the same namespace, name and dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tollgate.money import usd
from tollgate.rollup import Totals

DEFAULT_NAMESPACE = "Tollgate"


class MetricName(StrEnum):
    REQUESTS = "Requests"
    INPUT_TOKENS = "InputTokens"
    OUTPUT_TOKENS = "OutputTokens"
    CACHE_READ_TOKENS = "CacheReadTokens"
    CACHE_WRITE_TOKENS = "CacheWriteTokens"
    TOTAL_TOKENS = "TotalTokens"
    COST_USD = "CostUSD"


UNITS: dict[MetricName, str] = {
    MetricName.REQUESTS: "Count",
    MetricName.INPUT_TOKENS: "Count",
    MetricName.OUTPUT_TOKENS: "Count",
    MetricName.CACHE_READ_TOKENS: "Count",
    MetricName.CACHE_WRITE_TOKENS: "Count",
    MetricName.TOTAL_TOKENS: "Count",
    MetricName.COST_USD: "None",
}

DIM_TENANT = "TenantId"
DIM_PROFILE = "Profile"
DIM_TIER = "ServiceTier"

#: Every datapoint is emitted under both dimension sets: per profile (alarms, per-profile
#: widgets) and per tenant (tenant totals, top spenders).
PROFILE_DIMENSIONS: tuple[str, ...] = (DIM_TENANT, DIM_PROFILE)
TENANT_DIMENSIONS: tuple[str, ...] = (DIM_TENANT,)
DIMENSION_SETS: tuple[tuple[str, ...], ...] = (PROFILE_DIMENSIONS, TENANT_DIMENSIONS)


def profile_dimensions(tenant_id: str, profile: str) -> dict[str, str]:
    return {DIM_TENANT: tenant_id, DIM_PROFILE: profile}


def tenant_dimensions(tenant_id: str) -> dict[str, str]:
    return {DIM_TENANT: tenant_id}


#: Cost and requests per tenant are also emitted by the service tier Bedrock served (default,
#: priority, flex, reserved), so that a dashboard can split a tenant's spend by tier.
TIER_DIMENSIONS: tuple[str, ...] = (DIM_TENANT, DIM_TIER)
TIER_METRICS: tuple[MetricName, ...] = (MetricName.REQUESTS, MetricName.COST_USD)


def tier_dimensions(tenant_id: str, tier: str) -> dict[str, str]:
    return {DIM_TENANT: tenant_id, DIM_TIER: tier}


def metric_values(totals: Totals) -> dict[MetricName, float]:
    """The value of each metric for one bucket.

    Counts are exact integers. Cost goes out in USD as a double: CloudWatch stores doubles, so
    metric sums agree with the exact ledger (usage records, trend rows) to far better than a
    micro-dollar, while the ledger itself stays exact.
    """
    return {
        MetricName.REQUESTS: float(totals.requests),
        MetricName.INPUT_TOKENS: float(totals.tokens.input),
        MetricName.OUTPUT_TOKENS: float(totals.tokens.output),
        MetricName.CACHE_READ_TOKENS: float(totals.tokens.cache_read),
        # cache writes of both TTLs (their costs differ; the cost metric has them apart)
        MetricName.CACHE_WRITE_TOKENS: float(totals.tokens.cache_write + totals.tokens.cache_write_1h),
        MetricName.TOTAL_TOKENS: float(totals.tokens.total),
        MetricName.COST_USD: float(usd(totals.cost_pusd)),
    }


@dataclass(frozen=True)
class MetricRef:
    """A metric as an alarm or a widget names it."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(sorted(name for name, _ in self.dimensions))


# --------------------------------------------------------------------------- metering health
#
# When the gateway cannot write a usage record after Bedrock answered, it says so in one log
# line marked ``"metering": <outcome>``. template.yaml's metric filters on the gateway's log
# group count those lines into the metrics below (and an alarm watches the unmetered ones); a
# test renders the lines the gateway really logs and matches them against the template's
# filter patterns.

#: The log field that marks a call the gateway could not meter at once.
METERING_LOG_KEY = "metering"


class MeteringOutcome(StrEnum):
    #: The usage write failed; the very record went to the metering fallback queue, to be written
    #: by the recovery function. The tenant was answered and charged.
    DEFERRED = "deferred"
    #: The fallback send failed too: the tenant got a 503, not charged, and the record exists only
    #: in this log line (Bedrock billed the call: the cost is ours).
    UNMETERED = "unmetered"


#: The metric each outcome's log lines are counted into (namespace: the stack's MetricNamespace).
METERING_METRICS: dict[MeteringOutcome, str] = {
    MeteringOutcome.DEFERRED: "DeferredMeteringCalls",
    MeteringOutcome.UNMETERED: "UnmeteredCalls",
}


def metering_filter_pattern(outcome: MeteringOutcome) -> str:
    """The CloudWatch Logs filter pattern that selects the log lines of ``outcome``."""
    return f'{{ $.{METERING_LOG_KEY} = "{outcome}" }}'

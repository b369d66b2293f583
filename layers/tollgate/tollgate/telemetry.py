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

#: Every datapoint is emitted under both dimension sets: per profile (alarms, per-profile
#: widgets) and per tenant (tenant totals, top spenders).
PROFILE_DIMENSIONS: tuple[str, ...] = (DIM_TENANT, DIM_PROFILE)
TENANT_DIMENSIONS: tuple[str, ...] = (DIM_TENANT,)
DIMENSION_SETS: tuple[tuple[str, ...], ...] = (PROFILE_DIMENSIONS, TENANT_DIMENSIONS)


def profile_dimensions(tenant_id: str, profile: str) -> dict[str, str]:
    return {DIM_TENANT: tenant_id, DIM_PROFILE: profile}


def tenant_dimensions(tenant_id: str) -> dict[str, str]:
    return {DIM_TENANT: tenant_id}


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
        MetricName.CACHE_WRITE_TOKENS: float(totals.tokens.cache_write),
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

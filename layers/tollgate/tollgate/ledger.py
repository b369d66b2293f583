"""The budget ledger as pure code: worst cases, reservations, and the DynamoDB transactions.

An enforced budget never lets requests in flight overspend it by more than one request's worst
case. Before Bedrock is called, ONE TransactWriteItems reserves the request's worst-case cost
``w`` on every enforced budget item (tenant and profile budget, month and day) with the
condition ``attribute_not_exists(committed_pusd) OR committed_pusd <= :cap`` where
``:cap = limit - w`` (computed here: a condition cannot do arithmetic), reserves its worst-case
tokens in the tenant's tokens-per-minute window likewise, and puts ``RES#<request id>``. After
Bedrock, ONE TransactWriteItems puts the usage record, settles every budget item
(``committed += actual - w``, ``spent += actual``) and deletes the RES item (condition
``attribute_exists``). Failure after the reserve releases it (``committed -= w``, delete RES);
a reservation nobody released (crashed function) is released by the sweeper after
``release_at``. Settle and release race on the RES item's condition: exactly one wins; a settle
that lost does a *late settle* (``committed += actual``, ``spent += actual``).

Alert-mode budgets are not reserved: their ``spent_pusd`` (and ``committed_pusd``, so that a
switch to "enforce" starts from the truth) is ADDed in the transaction of the usage record.

The worst case of a request (``worst_case``), all in integer pico-dollars, rounded up:

* prompt bound P (tokens): the UTF-8 bytes of the request's prompt fields (``messages``,
  ``system``, ``toolConfig``, ``additionalModelRequestFields``, ``promptVariables``) serialized as
  JSON, plus ``PROMPT_OVERHEAD_TOKENS`` (and ``TOOLS_OVERHEAD_TOKENS`` with tools) for what the
  model's chat template adds. A token of text is never shorter than one byte of its UTF-8 form
  (tokenizers split bytes; the JSON's own quotes and keys only add to the count). Capped at the
  model's ``limits.context_window`` (Bedrock refuses, unbilled, a longer prompt). A request with
  image, document or video blocks is bounded by the context window alone (their tokens do not
  follow their bytes), and is refused under an enforced budget when the window is unknown.
* output bound O: ``inferenceConfig.maxTokens``, capped at the model's ``max_output_tokens``; the
  model's ``max_output_tokens`` without it; refused (ValidationException) when neither is known.
* w = P x the highest input-side rate (input, cache read, cache writes) + O x the output rate,
  maximised over every way the profile may be served (tier, latency; the long-context rates too
  when P is above the model's threshold), after the contract discount, rounded up.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from tollgate.config import ModelEntry, ResolvedProfile, ResolvedTenant, served_ways
from tollgate.errors import BadRequest, BudgetExceeded, TokenRateExceeded
from tollgate.money import format_usd
from tollgate.periods import (
    COMMITTED_ATTR,
    LIMIT_ATTR,
    SPENT_ATTR,
    LedgerKey,
    Period,
    ledger_key,
    periods_of,
)
from tollgate.pricing import PriceBook, PriceNotFoundError
from tollgate.usage import UsageRecord, iso_utc

#: ControlTable keys of open reservations and token windows.
RES_PREFIX: Final = "RES#"
RES_SK: Final = "RES"
TPM_PREFIX: Final = "TPM#"
#: Tokens used in a minute window (settled + reserved).
USED_TOKENS_ATTR: Final = "used_tokens"
#: The sparse GSI of open reservations (template.yaml ControlTable: only RES items have these).
RELEASE_INDEX: Final = "by-release"
RES_SHARD_ATTR: Final = "res_shard"
RELEASE_AT_ATTR: Final = "release_at"
RES_SHARDS: Final = 8
#: A reservation is released by the sweeper this long after the request's deadline.
RELEASE_GRACE_SECONDS: Final = 60
#: A minute window lives 10 minutes (TTL attribute of ControlTable).
TPM_TTL_SECONDS: Final = 600
TTL_ATTR: Final = "expires_at"

#: Tokens a chat template adds around the messages (roles, turn markers); generous.
PROMPT_OVERHEAD_TOKENS: Final = 64
#: Tokens of the system prompt a provider adds when tools are given (Anthropic: ~350); generous.
TOOLS_OVERHEAD_TOKENS: Final = 1000
PROMPT_FIELDS: Final = ("messages", "system", "toolConfig", "additionalModelRequestFields", "promptVariables")
BINARY_BLOCKS: Final = frozenset({"image", "document", "video"})

BUDGET_CONDITION: Final = f"attribute_not_exists({COMMITTED_ATTR}) OR {COMMITTED_ATTR} <= :cap"
TOKENS_CONDITION: Final = f"attribute_not_exists({USED_TOKENS_ATTR}) OR {USED_TOKENS_ATTR} <= :cap"
TOKENS_SETTLE: Final = f"ADD {USED_TOKENS_ATTR} :d SET {TTL_ATTR} = if_not_exists({TTL_ATTR}, :ttl)"


def tpm_pk(tenant_id: str) -> str:
    return f"{TPM_PREFIX}{tenant_id}"


def tpm_sk(instant: datetime) -> str:
    """The UTC minute window of an instant: ``2026-12-03T15:58``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def res_key(request_id: str) -> LedgerKey:
    return LedgerKey(f"{RES_PREFIX}{request_id}", RES_SK)


def res_shard(request_id: str) -> str:
    """Which of RES_SHARDS GSI partitions the reservation is in (spreads the sweeper's reads)."""
    return str(zlib.crc32(request_id.encode()) % RES_SHARDS)


# -- worst case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorstCase:
    prompt_tokens: int
    output_tokens: int
    amount_pusd: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def _has_binary(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(k in BINARY_BLOCKS or _has_binary(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_binary(v) for v in value)
    return isinstance(value, bytes | bytearray)


def prompt_bound(params: Mapping[str, Any], model: ModelEntry, model_id: str) -> int:
    """At least as many tokens as the prompt can have (module docstring)."""
    window = model.limits.context_window
    prompt = {name: params[name] for name in PROMPT_FIELDS if name in params}
    if _has_binary(prompt):
        if window is None:
            raise BadRequest(
                f"this request has image, document or video content, whose tokens cannot be bounded before "
                f"the call, and models.json gives no context window for {model_id}: under an enforced budget or "
                "a tokens-per-minute limit "
                "it cannot be reserved, so it was refused (nothing was charged). Send text only, or an "
                f"administrator adds limits.context_window to {model_id} in models.json"
            )
        return window
    text = json.dumps(prompt, ensure_ascii=False, separators=(",", ":"), default=str)
    bound = len(text.encode("utf-8")) + PROMPT_OVERHEAD_TOKENS
    if "toolConfig" in prompt:
        bound += TOOLS_OVERHEAD_TOKENS
    return bound if window is None else min(bound, window)


def output_bound(params: Mapping[str, Any], model: ModelEntry, model_id: str) -> int:
    most = model.limits.max_output_tokens
    asked = (params.get("inferenceConfig") or {}).get("maxTokens")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return asked if most is None else min(asked, most)
    if most is None:
        raise BadRequest(
            "set inferenceConfig.maxTokens: under an enforced budget or a tokens-per-minute limit a request's "
            "worst case is reserved "
            f"before the call, and models.json gives no maximum output for {model_id} (nothing was charged)"
        )
    return most


def _ceil_discounted(listed: int, percent: Decimal | None) -> int:
    if percent is None:
        return listed
    kept = Decimal(listed) * (Decimal(100) - percent) / Decimal(100)
    return int(kept.to_integral_value(rounding="ROUND_CEILING"))


def worst_case(
    params: Mapping[str, Any], profile: ResolvedProfile, model: ModelEntry, prices: PriceBook, at: datetime
) -> WorstCase:
    """The most a request can be charged (module docstring): what an enforced budget reserves."""
    prompt = prompt_bound(params, model, profile.model_id)
    output = output_bound(params, model, profile.model_id)
    long_above = model.long_context_above
    amount: int | None = None
    for tier, context, latency in served_ways(profile.allow, model):
        if context == "long" and (long_above is None or prompt <= long_above):
            continue  # a prompt of at most P tokens is never billed at the long-context rates
        try:
            price = prices.price(profile.model_id, profile.scope, at, tier=tier, context=context, latency=latency)
        except PriceNotFoundError:
            continue
        highest_in = max(price.input, price.cache_read, price.cache_write, price.cache_write_1h)
        listed = prompt * highest_in + output * price.output
        cost = _ceil_discounted(listed, price.discount.percent if price.discount else None)
        amount = cost if amount is None else max(amount, cost)
    if amount is None:
        raise PriceNotFoundError(f"no price for {profile.model_id} ({profile.scope}) on {at.date()}")
    return WorstCase(prompt, output, amount)


# -- what a request holds -----------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetHold:
    """One budget item a request is charged to (the tenant's or its profile's, month or day)."""

    key: LedgerKey
    limit_pusd: int
    enforced: bool
    tenant_id: str
    profile: str | None
    period: Period

    @property
    def label(self) -> str:
        owner = f"tenant {self.tenant_id}" if self.profile is None else f"profile {self.profile}"
        kind = "monthly" if self.period.kind == "month" else "daily"
        return f"{owner}'s {kind} budget ({self.period.key}, {self.period.time_zone})"


def budget_holds(tenant: ResolvedTenant, profile: ResolvedProfile, at: datetime) -> list[BudgetHold]:
    """Every budget period with a limit that a request made ``at`` is charged to."""
    holds = []
    periods = periods_of(at, tenant.time_zone)
    for owner, budget in ((None, tenant.budget), (profile.name, profile.budget)):
        if not budget.active:
            continue
        for kind, period in periods.items():
            limit = budget.monthly_pusd if kind == "month" else budget.daily_pusd
            if limit is not None:
                holds.append(
                    BudgetHold(
                        ledger_key(tenant.tenant_id, owner, period),
                        limit,
                        budget.enforced,
                        tenant.tenant_id,
                        owner,
                        period,
                    )
                )
    return holds


@dataclass(frozen=True)
class Hold:
    """An amount a reservation holds on one item: pico-dollars (committed) or tokens (used)."""

    pk: str
    sk: str
    attr: str
    amount: int

    def to_item(self) -> dict[str, Any]:
        return {"pk": self.pk, "sk": self.sk, "attr": self.attr, "amount": self.amount}


@dataclass(frozen=True)
class Reservation:
    request_id: str
    tenant_id: str
    amount_pusd: int
    tokens: int
    holds: tuple[Hold, ...]
    release_at: int  # epoch seconds

    @property
    def key(self) -> LedgerKey:
        return res_key(self.request_id)

    def held_pusd(self, key: LedgerKey) -> int:
        return sum(h.amount for h in self.holds if (h.pk, h.sk) == (key.pk, key.sk) and h.attr == COMMITTED_ATTR)

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": self.key.pk,
            "sk": self.key.sk,
            "request_id": self.request_id,
            "tenant_id": self.tenant_id,
            "amount_pusd": self.amount_pusd,
            "tokens": self.tokens,
            "holds": [h.to_item() for h in self.holds],
            RELEASE_AT_ATTR: self.release_at,
            RES_SHARD_ATTR: res_shard(self.request_id),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Reservation:
        return cls(
            request_id=str(item["request_id"]),
            tenant_id=str(item["tenant_id"]),
            amount_pusd=int(item["amount_pusd"]),
            tokens=int(item["tokens"]),
            holds=tuple(Hold(str(h["pk"]), str(h["sk"]), str(h["attr"]), int(h["amount"])) for h in item["holds"]),
            release_at=int(item[RELEASE_AT_ATTR]),
        )


@dataclass(frozen=True)
class Plan:
    """What a request must do on the ledger: reserve (enforced budgets, token limit) or only record."""

    holds: tuple[BudgetHold, ...]
    tokens_per_min: int | None

    @property
    def reserves(self) -> bool:
        return self.tokens_per_min is not None or any(h.enforced for h in self.holds)

    @property
    def needed(self) -> bool:
        return bool(self.holds) or self.tokens_per_min is not None


def plan_of(tenant: ResolvedTenant, profile: ResolvedProfile, at: datetime) -> Plan:
    return Plan(tuple(budget_holds(tenant, profile, at)), tenant.rate_limits.tokens_per_min)


def reservation_for(
    plan: Plan, request_id: str, tenant_id: str, worst: WorstCase, at: datetime, deadline_seconds: float
) -> Reservation:
    """The reservation of a request: ``w`` on each enforced budget item, its tokens in the minute window.

    Refuses at once (nothing is written) what no reservation could ever fit: a worst case above
    a limit, worst-case tokens above tokens_per_min.
    """
    holds = []
    for hold in plan.holds:
        if not hold.enforced:
            continue
        if worst.amount_pusd > hold.limit_pusd:
            raise BudgetExceeded(
                f"this request may cost up to {format_usd(worst.amount_pusd)} USD ({worst.prompt_tokens} prompt "
                f"tokens at most, maxTokens {worst.output_tokens}), more than the whole {hold.label} of "
                f"{format_usd(hold.limit_pusd)} USD; lower inferenceConfig.maxTokens or shorten the prompt "
                "(nothing was charged)"
            )
        holds.append(Hold(hold.key.pk, hold.key.sk, COMMITTED_ATTR, worst.amount_pusd))
    if plan.tokens_per_min is not None:
        if worst.tokens > plan.tokens_per_min:
            raise BadRequest(
                f"this request may use up to {worst.tokens} tokens, more than tenant {tenant_id}'s limit of "
                f"{plan.tokens_per_min} tokens per minute; lower inferenceConfig.maxTokens or shorten the "
                "prompt (nothing was charged)"
            )
        holds.append(Hold(tpm_pk(tenant_id), tpm_sk(at), USED_TOKENS_ATTR, worst.tokens))
    release_at = math.ceil(at.timestamp() + deadline_seconds) + RELEASE_GRACE_SECONDS
    return Reservation(request_id, tenant_id, worst.amount_pusd, worst.tokens, tuple(holds), release_at)


# -- transactions (plain values: the adapter serializes them) ---------------------------------------


def _key(pk: str, sk: str) -> dict[str, str]:
    return {"pk": pk, "sk": sk}


def _budget_info(hold: BudgetHold, now: datetime) -> tuple[str, dict[str, Any]]:
    """SET of the informative attributes of a budget item (ISSUE10 Ledger)."""
    sets = f"{LIMIT_ATTR} = :limit, tenant_id = :tenant, period = :period, time_zone = :tz, updated_at = :now"
    values: dict[str, Any] = {
        ":limit": hold.limit_pusd,
        ":tenant": hold.tenant_id,
        ":period": hold.period.sort_key,
        ":tz": hold.period.time_zone,
        ":now": iso_utc(now),
    }
    if hold.profile is not None:
        sets += ", profile = :profile"
        values[":profile"] = hold.profile
    return sets, values


def reserve_items(plan: Plan, reservation: Reservation, now: datetime) -> list[dict[str, Any]]:
    """The reserve transaction. Item order: the holds (as in ``reservation.holds``), then the RES Put."""
    by_key = {(h.key.pk, h.key.sk): h for h in plan.holds}
    items: list[dict[str, Any]] = []
    for hold in reservation.holds:
        if hold.attr == COMMITTED_ATTR:
            budget = by_key[(hold.pk, hold.sk)]
            sets, values = _budget_info(budget, now)
            items.append(
                {
                    "Update": {
                        "Key": _key(hold.pk, hold.sk),
                        "UpdateExpression": f"ADD {COMMITTED_ATTR} :w SET {sets}",
                        "ConditionExpression": BUDGET_CONDITION,
                        "ExpressionAttributeValues": {
                            **values,
                            ":w": hold.amount,
                            ":cap": budget.limit_pusd - hold.amount,
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        else:
            assert plan.tokens_per_min is not None
            items.append(
                {
                    "Update": {
                        "Key": _key(hold.pk, hold.sk),
                        "UpdateExpression": f"ADD {USED_TOKENS_ATTR} :n SET {TTL_ATTR} = :ttl",
                        "ConditionExpression": TOKENS_CONDITION,
                        "ExpressionAttributeValues": {
                            ":n": hold.amount,
                            ":cap": plan.tokens_per_min - hold.amount,
                            ":ttl": int(now.timestamp()) + TPM_TTL_SECONDS,
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
    items.append({"Put": {"Item": reservation.to_item(), "ConditionExpression": "attribute_not_exists(pk)"}})
    return items


def refusal(
    plan: Plan, reservation: Reservation, index: int, old: Mapping[str, Any] | None, now: datetime
) -> BudgetExceeded | TokenRateExceeded:
    """The error for a reserve whose item ``index`` failed its condition (``old``: that item)."""
    hold = reservation.holds[index] if index < len(reservation.holds) else None
    if hold is None or hold.attr == USED_TOKENS_ATTR:
        used = int((old or {}).get(USED_TOKENS_ATTR, 0))
        retry_after = max(1, 60 - now.astimezone(UTC).second)
        return TokenRateExceeded(
            f"tenant {reservation.tenant_id} has used {used} of its {plan.tokens_per_min} tokens per minute "
            f"(settled and in flight) and this request may use up to {reservation.tokens}; retry in "
            f"{retry_after} s (nothing was charged)",
            retry_after=retry_after,
        )
    budget = next(h for h in plan.holds if (h.key.pk, h.key.sk) == (hold.pk, hold.sk))
    spent = int((old or {}).get(SPENT_ATTR, 0))
    committed = int((old or {}).get(COMMITTED_ATTR, 0))
    resets = budget.period.end
    local = budget.period.local_end
    return BudgetExceeded(
        f"over budget: {budget.label} is {format_usd(budget.limit_pusd)} USD; {format_usd(spent)} USD spent and "
        f"{format_usd(max(committed - spent, 0))} USD reserved by requests in flight, and this request may cost "
        f"up to {format_usd(reservation.amount_pusd)} USD. Nothing was charged. It resets at "
        f"{local.strftime('%Y-%m-%d %H:%M %Z')} ({resets.strftime('%Y-%m-%d %H:%M')} UTC)"
    )


def _settle_budget(hold: BudgetHold, delta_committed: int, actual: int, now: datetime) -> dict[str, Any]:
    sets, values = _budget_info(hold, now)
    return {
        "Update": {
            "Key": _key(hold.key.pk, hold.key.sk),
            "UpdateExpression": f"ADD {COMMITTED_ATTR} :c, {SPENT_ATTR} :a SET {sets}",
            "ExpressionAttributeValues": {**values, ":c": delta_committed, ":a": actual},
        }
    }


def settle_items(
    usage_item: Mapping[str, Any],
    record: UsageRecord,
    holds: Sequence[BudgetHold],
    reservation: Reservation | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The usage record and its cost on every budget item, in one transaction.

    Item 0 is the usage Put (condition: not there yet); with a reservation, the last item is the
    Delete of its RES item (condition: still there). Without one (alert mode only, or a late
    settle after the sweeper released it), every budget item gets the whole actual cost.
    """
    actual = record.cost_pusd
    items: list[dict[str, Any]] = [
        {"Put": {"Item": dict(usage_item), "ConditionExpression": "attribute_not_exists(request_id)"}}
    ]
    for hold in holds:
        held = reservation.held_pusd(hold.key) if reservation is not None else 0
        items.append(_settle_budget(hold, actual - held, actual, now))
    if reservation is not None:
        for token_hold in (h for h in reservation.holds if h.attr == USED_TOKENS_ATTR):
            items.append(
                {
                    "Update": {
                        "Key": _key(token_hold.pk, token_hold.sk),
                        "UpdateExpression": TOKENS_SETTLE,
                        "ExpressionAttributeValues": {
                            ":d": record.tokens.total - token_hold.amount,
                            ":ttl": int(now.timestamp()) + TPM_TTL_SECONDS,
                        },
                    }
                }
            )
        items.append(
            {
                "Delete": {
                    "Key": _key(reservation.key.pk, reservation.key.sk),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        )
    return items


def release_items(reservation: Reservation, now: datetime) -> list[dict[str, Any]]:
    """Give back what a reservation holds; item 0 deletes its RES item (condition: still there)."""
    items: list[dict[str, Any]] = [
        {"Delete": {"Key": _key(reservation.key.pk, reservation.key.sk), "ConditionExpression": "attribute_exists(pk)"}}
    ]
    for hold in reservation.holds:
        update = f"ADD {hold.attr} :d"
        values: dict[str, Any] = {":d": -hold.amount}
        if hold.attr == USED_TOKENS_ATTR:
            update += f" SET {TTL_ATTR} = if_not_exists({TTL_ATTR}, :ttl)"
            values[":ttl"] = int(now.timestamp()) + TPM_TTL_SECONDS
        items.append(
            {"Update": {"Key": _key(hold.pk, hold.sk), "UpdateExpression": update, "ExpressionAttributeValues": values}}
        )
    return items

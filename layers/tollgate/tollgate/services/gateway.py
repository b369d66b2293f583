"""The gateway: pick the caller's profile, call Converse through it, charge one usage record.

Per request this makes, besides Converse: one conditional PutItem of the usage record (no
budget, no token limit); or one TransactWriteItems of the record with its cost on the budget
items (alert-mode budgets); or, with an enforced budget or a tokens-per-minute limit, one
TransactWriteItems reserving the worst case before Bedrock and one settling it with the record
after (tollgate.ledger, which also says how the worst case is bounded). The profile directory
(profile -> application inference profile ARN) is read once per container; prices and
ownership come from the bundled config.json/models.json.

Metering: if the usage write fails (after its client's retries), the very record goes to the
metering fallback queue and the tenant is answered as usual; the recovery function writes it
later with the same conditional PutItem. If that fails too, the tenant gets a 503 (not charged),
the record goes to one log line marked unmetered (metric filter, alarm), and a breaker refuses
calls before Bedrock for a while, so that clients' retries of the 503 cost nothing.

Time: every request has a deadline (tollgate.budget) before API Gateway would give up on it. A
Bedrock attempt starts only while what can follow it (Bedrock's connect and read timeouts, the
usage write, the fallback send) still fits before the deadline; an attempt Bedrock refused
without billing (throttled, unavailable, not reachable) is tried again only then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from aws_lambda_powertools import Logger

from tollgate.budget import GATEWAY_BUDGET, Deadline, TimeoutBudget
from tollgate.config import TIERS, ConfigBundle, Latency, ResolvedProfile, Tier
from tollgate.errors import (
    AccessDenied,
    BadRequest,
    InternalError,
    ServiceUnavailable,
    TollgateError,
    UpstreamError,
    names_a_missing_model,
)
from tollgate.ledger import Plan, Reservation, plan_of, reservation_for, worst_case
from tollgate.ports import Ledger, MeteringFallback, ModelClient, ProfileDirectory, UsageStore
from tollgate.pricing import Price, PriceBook, PriceNotFoundError, Served, TokenCounts
from tollgate.telemetry import METERING_LOG_KEY, MeteringOutcome
from tollgate.usage import Route, UsageRecord

logger = Logger(service="tollgate", child=True)

#: Headers of the reference sample's /invoke contract (plus our own name for the first).
PROFILE_HEADERS = ("x-tollgate-profile", "inference-profile-id")
TAGS_HEADER = "tags"


@dataclass(frozen=True)
class Caller:
    """Who is calling, as established by the authorizer (never by request headers)."""

    tenant_id: str
    key_id: str


@dataclass(frozen=True)
class Answer:
    record: UsageRecord
    response: dict[str, Any]


def tokens_of(response: Mapping[str, Any]) -> TokenCounts:
    """The tokens of a Converse response, cache writes split by TTL.

    ``usage.cacheDetails`` lists the cache writes by TTL ("1h", "5m"). The 1-hour writes are
    those it lists with ttl 1h; every other cache-write token is a 5-minute write (Bedrock's
    default TTL). Should the list add up to more than ``cacheWriteInputTokens``, the list is
    taken (never fewer tokens than Bedrock itemised).
    """
    usage = response.get("usage") or {}
    try:
        details = usage.get("cacheDetails") or []
        by_ttl = {"5m": 0, "1h": 0}
        for detail in details:
            ttl = str(detail["ttl"])
            if ttl not in by_ttl:
                raise ValueError(f"cache TTL {ttl!r} is not one Tollgate prices")
            by_ttl[ttl] += int(detail["inputTokens"])
        written = max(int(usage.get("cacheWriteInputTokens", 0) or 0), by_ttl["5m"] + by_ttl["1h"])
        return TokenCounts(
            input=int(usage.get("inputTokens", 0)),
            output=int(usage.get("outputTokens", 0)),
            cache_read=int(usage.get("cacheReadInputTokens", 0) or 0),
            cache_write=written - by_ttl["1h"],
            cache_write_1h=by_ttl["1h"],
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise InternalError(f"Bedrock returned unusable usage figures: {exc}") from exc


@dataclass(frozen=True)
class Requested:
    """What a Converse request asks Bedrock for beyond the defaults."""

    tier: str = "default"
    latency: str = "standard"
    cache_ttls: frozenset[str] = frozenset()


def _cache_points(blocks: Any) -> list[Mapping[str, Any]]:
    if not isinstance(blocks, list):
        return []
    return [b["cachePoint"] for b in blocks if isinstance(b, Mapping) and isinstance(b.get("cachePoint"), Mapping)]


def requested_of(params: Mapping[str, Any]) -> Requested:
    """The tier, latency mode and cache TTLs a (validated) Converse request asks for."""
    points = _cache_points(params.get("system"))
    for message in params.get("messages") or []:
        points += _cache_points(message.get("content") if isinstance(message, Mapping) else None)
    points += _cache_points((params.get("toolConfig") or {}).get("tools"))
    return Requested(
        tier=str((params.get("serviceTier") or {}).get("type", "default")),
        latency=str((params.get("performanceConfig") or {}).get("latency", "standard")),
        cache_ttls=frozenset(str(point.get("ttl", "5m")) for point in points),
    )


def served_of(response: Mapping[str, Any], requested: Requested) -> Served:
    """How Bedrock served the call, from its answer; what was asked for where the answer is silent.

    (A missing serviceTier or performanceConfig in the answer is charged as requested: never less.)
    """
    tier = (response.get("serviceTier") or {}).get("type") or requested.tier
    latency = (response.get("performanceConfig") or {}).get("latency") or requested.latency
    if tier not in TIERS or latency not in ("standard", "optimized"):
        # Billed already: never drop the record. What was asked for is allowed, hence priced.
        logger.warning("Bedrock answered with an unknown tier or latency", extra={"tier": tier, "latency": latency})
        tier, latency = requested.tier, requested.latency
    return Served(tier=cast(Tier, tier), latency=cast(Latency, latency))


def refuse_what_is_not_allowed(profile: ResolvedProfile, requested: Requested) -> None:
    """A ValidationException, before Bedrock is called, for an option the profile does not allow."""
    allow = profile.allow
    place = f"config.json profiles.{profile.name}.allow"
    if requested.tier not in allow.tiers:
        raise BadRequest(
            f"profile {profile.name} does not allow serviceTier {requested.tier!r} (allowed: "
            f"{', '.join(allow.tiers)}); nothing was charged. An administrator can allow it in {place}.tiers"
        )
    if requested.latency not in allow.latency:
        raise BadRequest(
            f"profile {profile.name} does not allow performanceConfig latency {requested.latency!r} (allowed: "
            f"{', '.join(allow.latency)}); nothing was charged. An administrator can allow it in {place}.latency"
        )
    refused = sorted(requested.cache_ttls - set(allow.cache_ttls))
    if refused:
        raise BadRequest(
            f"profile {profile.name} does not allow cachePoint ttl {', '.join(map(repr, refused))} (allowed: "
            f"{', '.join(allow.cache_ttls)}); nothing was charged. An administrator can allow it in "
            f"{place}.cache_ttls"
        )


def parse_tag_selector(raw: str) -> dict[str, str]:
    """The reference sample's ``tags`` header: a JSON list of {"key","value"} (or a JSON object)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise BadRequest('the tags header must be JSON, e.g. [{"key": "Application", "value": "Chat"}]') from None
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list) and all(
        isinstance(t, dict) and isinstance(t.get("key"), str) and isinstance(t.get("value"), str) for t in value
    ):
        return {t["key"]: t["value"] for t in value}
    raise BadRequest('the tags header must be a list of {"key": ..., "value": ...} objects')


class GatewayService:
    def __init__(
        self,
        *,
        bundle: ConfigBundle,
        directory: ProfileDirectory,
        model: ModelClient,
        usage: UsageStore,
        fallback: MeteringFallback,
        retention_days: int,
        ledger: Ledger | None = None,
        breaker_seconds: float = 30.0,
        budget: TimeoutBudget = GATEWAY_BUDGET,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._bundle = bundle
        self._budget = budget
        self._sleep = sleep
        if bundle.region is None:
            raise ValueError(
                "the gateway needs the configuration checked for its region: ConfigBundle.load_dir(..., region=)"
            )
        self._prices = PriceBook(bundle.catalog, bundle.region)
        self._directory = directory
        self._model = model
        self._usage = usage
        self._fallback = fallback
        self._ledger = ledger
        self._breaker_seconds = breaker_seconds
        self._breaker_open_until: float | None = None
        self._retention_days = retention_days
        self._clock = clock
        self._monotonic = monotonic

    # -- choosing the profile ----------------------------------------------------------------

    # A name or tags that select no profile of the caller get one answer, whether another tenant
    # has such a profile or nobody does: a 403 that names only the caller's own profiles, so that
    # no tenant can find out other tenants' profile names or tags by probing (PRODUCT.md: naming
    # another tenant's profile is 403).

    def profile_named(self, caller: Caller, name: str) -> ResolvedProfile:
        profile = self._bundle.profile(name)
        if profile is None or profile.tenant_id != caller.tenant_id:
            raise AccessDenied(f"that is not one of your profiles; your profiles: {self._names_of(caller)}")
        return profile

    def profile_from_headers(self, caller: Caller, headers: Mapping[str, str]) -> ResolvedProfile:
        """Select among the caller's own profiles by name header or by tags header."""
        lowered = {k.lower(): v for k, v in headers.items()}
        for header in PROFILE_HEADERS:
            if lowered.get(header):
                return self.profile_named(caller, lowered[header].strip())
        if not lowered.get(TAGS_HEADER):
            raise BadRequest(
                "name the profile with the 'x-tollgate-profile' (or 'inference-profile-id') header, "
                "or select it by its tags with the 'tags' header"
            )
        wanted = parse_tag_selector(lowered[TAGS_HEADER])
        mine = [
            p for p in self._bundle.profiles_of(caller.tenant_id) if all(p.tags.get(k) == v for k, v in wanted.items())
        ]
        if len(mine) == 1:
            return mine[0]
        if len(mine) > 1:
            raise BadRequest(
                f"the tags match {len(mine)} of your profiles ({', '.join(p.name for p in mine)}); "
                "add tags or name the profile"
            )
        raise AccessDenied(f"the tags match none of your profiles; your profiles: {self._names_of(caller)}")

    def _names_of(self, caller: Caller) -> str:
        return ", ".join(p.name for p in self._bundle.profiles_of(caller.tenant_id)) or "none"

    # -- calling and charging ------------------------------------------------------------------

    def deadline(self, started: float, lambda_remaining_seconds: float | None = None) -> Deadline:
        """The deadline of a request whose handler started at ``started`` (this service's monotonic clock)."""
        return self._budget.deadline(
            started=started, now=self._monotonic(), lambda_remaining_seconds=lambda_remaining_seconds
        )

    def _call_model(self, arn: str, params: Mapping[str, Any], deadline: Deadline) -> tuple[dict[str, Any], int]:
        """Bedrock's answer and the answering attempt's latency in ms; errors propagate (nothing recorded).

        Never retries what may have been billed (a read timeout, a dropped connection, a 500):
        only an attempt Bedrock refused before any inference, and only if a whole attempt and
        what follows it still fit before the deadline.
        """
        budget = self._budget
        attempt = 1
        refused: TollgateError | None = None
        while True:
            left = deadline.remaining(self._monotonic())
            if left < budget.model_attempt_seconds:
                if refused is not None:
                    raise refused
                logger.warning("no time left to call the model", extra={"seconds_left": round(left, 3)})
                raise ServiceUnavailable(
                    "the gateway ran out of time before it could call the model; retry (nothing was charged)"
                )
            started = self._monotonic()
            try:
                response = self._model.converse(arn, params)
                return response, int((self._monotonic() - started) * 1000)
            except TollgateError as exc:
                if not exc.unbilled or attempt >= budget.model_attempts:
                    raise
                refused = exc
            attempt += 1
            self._sleep(budget.model_retry_backoff_seconds)

    def _provisioned_arn(self, profile: ResolvedProfile) -> str:
        """The ARN to call, only if it was provisioned for the model and scope that will be charged.

        The price comes from config.json bundled with this code; the ARN from the provisioner's
        registry. During a deploy that changes a profile's model the two can briefly disagree:
        calling then would bill one model and charge the tenant for another, so the call is
        refused with a retryable 503 until the registry catches up.
        """
        wanted = (profile.model_id, profile.scope)
        found = self._directory.lookup(profile.name)
        if found is not None and (found.model_id, found.scope) != wanted:
            found = self._directory.lookup(profile.name, refresh=True)
        if found is None:
            raise ServiceUnavailable(f"profile {profile.name!r} is not provisioned yet; retry in a minute")
        if (found.model_id, found.scope) != wanted:
            logger.warning(
                "provisioned profile does not match config.json",
                extra={"profile": profile.name, "provisioned": [found.model_id, found.scope], "configured": wanted},
            )
            raise ServiceUnavailable(
                f"profile {profile.name!r} is being re-provisioned for {profile.model_id} ({profile.scope}); "
                "retry in a minute (nothing was charged)"
            )
        return found.arn

    def converse(
        self,
        caller: Caller,
        profile: ResolvedProfile,
        params: Mapping[str, Any],
        *,
        request_id: str,
        route: Route,
        deadline: Deadline | None = None,
    ) -> Answer:
        deadline = deadline or self.deadline(self._monotonic())
        requested = requested_of(params)
        refuse_what_is_not_allowed(profile, requested)
        self._refuse_while_metering_is_down()
        requested_at = self._clock()
        try:
            # Never serve usage we cannot price: the rates of what was asked for must exist now.
            asked = self._prices.price(
                profile.model_id, profile.scope, requested_at, tier=requested.tier, latency=requested.latency
            )
        except PriceNotFoundError as exc:
            if not self._prices.offers(profile.model_id, profile.scope, tier=requested.tier, latency=requested.latency):
                # Each option is allowed, but not the two together (config check prices each alone).
                raise BadRequest(
                    f"profile {profile.name} offers serviceTier {requested.tier!r} and latency "
                    f"{requested.latency!r}, but not both in one request; ask for one (nothing was charged)"
                ) from exc
            logger.error("no price for profile", extra={"profile": profile.name, "error": str(exc)})
            raise InternalError(f"profile {profile.name!r} cannot be priced right now; nothing was charged") from exc
        arn = self._provisioned_arn(profile)
        plan = self._plan(caller, profile, requested_at)
        reservation = self._reserve(plan, profile, params, request_id, caller, requested_at, deadline)
        try:
            return self._serve(
                caller,
                profile,
                params,
                request_id,
                route,
                deadline,
                requested,
                requested_at,
                asked,
                arn,
                plan,
                reservation,
            )
        except BaseException:
            if reservation is not None:
                self._release(reservation)
            raise

    # -- budgets and token limits (tollgate.ledger) ------------------------------------------------

    def _plan(self, caller: Caller, profile: ResolvedProfile, at: datetime) -> Plan:
        """The budget items and token limit of the request (none without a ledger: see wiring)."""
        tenant = self._bundle.tenant(caller.tenant_id)
        if tenant is None or self._ledger is None:
            return Plan((), None)
        return plan_of(tenant, profile, at)

    def _reserve(
        self,
        plan: Plan,
        profile: ResolvedProfile,
        params: Mapping[str, Any],
        request_id: str,
        caller: Caller,
        at: datetime,
        deadline: Deadline,
    ) -> Reservation | None:
        """Reserve the request's worst case (enforced budgets, tokens per minute) before Bedrock: 1 call."""
        if not plan.reserves or self._ledger is None:
            return None
        model = self._bundle.catalog.models[profile.model_id]
        worst = worst_case(params, profile, model, self._prices, at)
        left = deadline.remaining(self._monotonic())
        reservation = reservation_for(plan, request_id, caller.tenant_id, worst, at, left)
        self._ledger.reserve(plan, reservation, at)
        return reservation

    def _release(self, reservation: Reservation) -> None:
        """Best effort: what is not released here the sweeper releases after ``release_at``."""
        assert self._ledger is not None
        try:
            self._ledger.release(reservation, self._clock())
        except Exception:
            logger.exception(
                "could not release a reservation: the sweeper will", extra={"request_id": reservation.request_id}
            )

    def _serve(
        self,
        caller: Caller,
        profile: ResolvedProfile,
        params: Mapping[str, Any],
        request_id: str,
        route: Route,
        deadline: Deadline,
        requested: Requested,
        requested_at: datetime,
        asked: Price,
        arn: str,
        plan: Plan,
        reservation: Reservation | None,
    ) -> Answer:
        try:
            response, latency_ms = self._call_model(arn, params, deadline)
        except UpstreamError as exc:
            if not names_a_missing_model(exc):
                raise
            # The model id is always our own profile ARN, never the tenant's: if Bedrock does not
            # know it, a deploy replaced it under us. Read the directory again for the next call
            # and let the client retry, rather than blame the tenant's request.
            self._directory.lookup(profile.name, refresh=True)
            logger.warning("provisioned profile not found in Bedrock", extra={"profile": profile.name, "arn": arn})
            raise ServiceUnavailable(
                f"profile {profile.name!r} is being re-provisioned; retry shortly (nothing was charged)"
            ) from exc

        tokens = tokens_of(response)
        record = UsageRecord.charge(
            request_id=request_id,
            tenant_id=caller.tenant_id,
            profile=profile.name,
            route=route,
            key_id=caller.key_id,
            requested_at=requested_at,
            tokens=tokens,
            price=self._served_price(profile, requested_at, tokens, served_of(response, requested), asked),
            latency_ms=latency_ms,
            stop_reason=str(response.get("stopReason", "")),
            retention_days=self._retention_days,
        )
        self._meter(record, plan, reservation)
        logger.info(
            "charged",
            extra={
                "request_id": request_id,
                "profile": profile.name,
                "model_id": record.model_id,
                "total_tokens": record.tokens.total,
                "cost_usd": record.cost_usd,
                "latency_ms": latency_ms,
            },
        )
        return Answer(record=record, response=response)

    def _served_price(
        self, profile: ResolvedProfile, at: datetime, tokens: TokenCounts, served: Served, asked: Price
    ) -> Price:
        """The rates of what Bedrock served (tier, latency, long context); what was asked for if unpriced."""
        try:
            return self._prices.charge(profile.model_id, profile.scope, at, tokens, served)
        except PriceNotFoundError as exc:
            # Bedrock served something models.json has no rates for (config check requires rates for
            # everything a profile allows): charge what was asked for, at its context, and say so.
            context = "long" if self._prices.long_context(profile.model_id, tokens) else asked.context
            try:
                fallback = self._prices.price(
                    profile.model_id, profile.scope, at, tier=asked.tier, context=context, latency=asked.latency
                )
            except PriceNotFoundError:
                fallback = asked
            logger.warning(
                "served with unpriced options: charged as requested",
                extra={"profile": profile.name, "served": [served.tier, served.latency], "error": str(exc)},
            )
            return fallback

    # -- metering --------------------------------------------------------------------------------

    def _meter(self, record: UsageRecord, plan: Plan, reservation: Reservation | None) -> None:
        """Write the record, else defer it to the fallback queue; raise (503) only if both failed.

        With budgets or a token limit the record goes with its cost on the ledger in one
        transaction (settling the reservation); the recovery function settles a deferred one.
        """
        try:
            if plan.needed and self._ledger is not None:
                self._ledger.settle(record, plan.holds, reservation, self._clock())
            else:
                self._usage.record(record)
            return
        except Exception as exc:
            write_error = exc
        try:
            self._fallback.defer(record)
        except Exception as exc:
            # Bedrock billed us but the call cannot be metered: the answer is not handed out and
            # the tenant is not charged. This one line carries the whole record, so that our own
            # Bedrock bill still reconciles (a metric filter counts it; an alarm pages).
            self._breaker_open_until = self._monotonic() + self._breaker_seconds
            logger.exception(
                "call not metered: neither the usage table nor the fallback queue took its record",
                extra={
                    METERING_LOG_KEY: str(MeteringOutcome.UNMETERED),
                    "record": record.to_item(),
                    "usage_write_error": repr(write_error),
                    "fallback_error": repr(exc),
                    "breaker_seconds": self._breaker_seconds,
                },
            )
            raise ServiceUnavailable("the request could not be metered; it was not charged, please retry") from exc
        logger.warning(
            "usage record deferred to the metering fallback queue",
            extra={
                METERING_LOG_KEY: str(MeteringOutcome.DEFERRED),
                "request_id": record.request_id,
                "cost_usd": record.cost_usd,
                "usage_write_error": repr(write_error),
            },
        )

    def _refuse_while_metering_is_down(self) -> None:
        """While the breaker is open, refuse before Bedrock is called: a retry then costs nothing."""
        if self._breaker_open_until is None:
            return
        left = self._breaker_open_until - self._monotonic()
        if left <= 0:
            self._breaker_open_until = None  # closed: this request tries again
            return
        raise ServiceUnavailable(
            "the gateway cannot meter calls right now, so it is not calling the model; "
            f"retry in {max(1, round(left))} s (nothing was charged)"
        )

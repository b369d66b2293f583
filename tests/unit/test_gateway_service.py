"""The gateway's decisions, with fakes for Bedrock and the usage table."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from tollgate.budget import GATEWAY_BUDGET
from tollgate.config import ConfigBundle
from tollgate.errors import (
    AccessDenied,
    BadRequest,
    InternalError,
    ServiceUnavailable,
    TollgateError,
    UpstreamError,
)
from tollgate.ports import Provisioned
from tollgate.services.gateway import Caller, GatewayService
from tollgate.usage import UsageRecord

ACME = Caller("acme", "key1")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PARAMS = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


class FakeModel:
    def __init__(self, response: dict[str, Any] | Exception):
        self.response = response
        self.calls: list[str] = []

    def converse(self, model_arn: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(model_arn)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


class FakeUsage:
    def __init__(self, fail: bool = False):
        self.records: list[UsageRecord] = []
        self.fail = fail

    def record(self, record: UsageRecord) -> None:
        if self.fail:
            raise RuntimeError("DynamoDB unavailable")
        self.records.append(record)


class FakeFallback:
    def __init__(self, fail: bool = False):
        self.records: list[UsageRecord] = []
        self.fail = fail

    def defer(self, record: UsageRecord) -> None:
        if self.fail:
            raise RuntimeError("SQS unavailable")
        self.records.append(record)


class FakeDirectory:
    """The registry as a dict; ``after_refresh`` is what a fresh read would find."""

    def __init__(self, entries: dict[str, Provisioned], after_refresh: dict[str, Provisioned] | None = None):
        self.entries = entries
        self.after_refresh = after_refresh
        self.refreshes = 0

    def lookup(self, profile: str, *, refresh: bool = False) -> Provisioned | None:
        if refresh:
            self.refreshes += 1
            if self.after_refresh is not None:
                self.entries = self.after_refresh
        return self.entries.get(profile)


def provisioned(bundle: ConfigBundle, **changed: str) -> dict[str, Provisioned]:
    """The registry as the provisioner leaves it for config.json; ``changed`` maps profile -> other model."""
    return {
        p.name: Provisioned(f"arn:profile/{p.name}", changed.get(p.name, p.model_id), p.scope)
        for p in bundle.profiles()
    }


ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hello"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1000, "outputTokens": 200, "totalTokens": 1200},
    "metrics": {"latencyMs": 300},
}


def gateway(
    bundle: ConfigBundle,
    model: FakeModel,
    usage: FakeUsage,
    directory: FakeDirectory | None = None,
    clock: datetime = NOW,
) -> GatewayService:
    directory = directory if directory is not None else FakeDirectory(provisioned(bundle))
    return GatewayService(
        bundle=bundle,
        directory=directory,
        model=model,
        usage=usage,
        fallback=FakeFallback(),
        retention_days=90,
        clock=lambda: clock,
    )


def test_a_call_through_an_own_profile_is_charged_once(bundle: ConfigBundle) -> None:
    model, usage = FakeModel(ANSWER), FakeUsage()
    service = gateway(bundle, model, usage)
    answer = service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r1", route="converse")
    # Called through the profile's application inference profile ARN, never the bare model id
    assert model.calls == ["arn:profile/acme-chat"]
    (record,) = usage.records
    assert record == answer.record
    # Claude Haiku 4.5, global: $1 in / $5 out per 1M -> 1000 * 1e-6 + 200 * 5e-6 = $0.002
    assert record.cost_usd == "0.002"
    # the row of the US regions' price list (region group "us" of models.json)
    assert record.price_version == "anthropic.claude-haiku-4-5-20251001-v1:0@global@us@2025-10-15"
    assert (record.tenant_id, record.profile, record.key_id) == ("acme", "acme-chat", "key1")


def refusal(call: Any) -> tuple[type, int, str, str]:
    """What the tenant sees of a refusal: the error's class, status, Bedrock error type and message."""
    with pytest.raises(TollgateError) as raised:
        call()
    error = raised.value
    return type(error), error.status, error.error_type, error.message


def test_another_tenants_profile_and_a_missing_one_are_refused_alike(bundle: ConfigBundle) -> None:
    """Otherwise a tenant could probe which profile names exist (other tenants' names)."""
    service = gateway(bundle, FakeModel(ANSWER), FakeUsage())
    others = refusal(lambda: service.profile_named(ACME, "globex-assistant"))
    missing = refusal(lambda: service.profile_named(ACME, "nope"))
    assert others == missing
    assert others[:3] == (AccessDenied, 403, "AccessDeniedException")
    assert others[3].endswith("your profiles: acme-chat, acme-search")
    assert "globex" not in others[3]
    # and the same through the /invoke name headers
    assert refusal(lambda: service.profile_from_headers(ACME, {"x-tollgate-profile": "globex-assistant"})) == missing
    assert refusal(lambda: service.profile_from_headers(ACME, {"inference-profile-id": "nope"})) == missing


def test_tags_of_another_tenants_profile_and_tags_nobody_has_are_refused_alike(bundle: ConfigBundle) -> None:
    service = gateway(bundle, FakeModel(ANSWER), FakeUsage())

    def by_tags(tags: str) -> tuple[type, int, str, str]:
        return refusal(lambda: service.profile_from_headers(ACME, {"tags": tags}))

    others = by_tags('[{"key": "Application", "value": "Assistant"}]')
    nobody = by_tags('[{"key": "Application", "value": "Nope"}]')
    tenant_tag = by_tags('{"TenantID": "globex"}')
    assert others == nobody == tenant_tag
    assert others[:3] == (AccessDenied, 403, "AccessDeniedException")
    assert others[3].endswith("your profiles: acme-chat, acme-search")


def test_headers_select_among_the_callers_own_profiles(bundle: ConfigBundle) -> None:
    service = gateway(bundle, FakeModel(ANSWER), FakeUsage())
    assert service.profile_from_headers(ACME, {"inference-profile-id": "acme-search"}).name == "acme-search"
    assert service.profile_from_headers(ACME, {"X-Tollgate-Profile": "acme-chat"}).name == "acme-chat"
    by_tags = service.profile_from_headers(ACME, {"tags": '[{"key": "Application", "value": "Chat"}]'})
    assert by_tags.name == "acme-chat"
    with pytest.raises(BadRequest, match="match 2 of your profiles"):
        service.profile_from_headers(ACME, {"tags": '{"Environment": "prod"}'})
    with pytest.raises(BadRequest, match="name the profile"):
        service.profile_from_headers(ACME, {})
    with pytest.raises(BadRequest, match="must be JSON"):
        service.profile_from_headers(ACME, {"tags": "Application=Chat"})


def test_bedrock_errors_leave_no_record(bundle: ConfigBundle) -> None:
    usage = FakeUsage()
    service = gateway(bundle, FakeModel(UpstreamError("ThrottlingException", 429, "slow down")), usage)
    with pytest.raises(UpstreamError) as raised:
        service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse")
    assert raised.value.status == 429
    assert usage.records == []


def test_an_unpriceable_call_is_refused_before_bedrock_is_called(bundle: ConfigBundle) -> None:
    model, usage = FakeModel(ANSWER), FakeUsage()
    service = gateway(bundle, model, usage, clock=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(InternalError, match="cannot be priced"):
        service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse")
    assert model.calls == []


def test_an_unprovisioned_profile_is_a_503_and_not_called(bundle: ConfigBundle) -> None:
    model = FakeModel(ANSWER)
    service = gateway(bundle, model, FakeUsage(), FakeDirectory({}))
    with pytest.raises(ServiceUnavailable, match="not provisioned yet"):
        service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse")
    assert model.calls == []


def test_a_profile_provisioned_for_another_model_is_refused_until_the_registry_catches_up(
    bundle: ConfigBundle,
) -> None:
    """Mid-deploy, config.json says one model and the registry's ARN another: never bill one, charge the other."""
    stale = provisioned(bundle, **{"acme-chat": "amazon.nova-lite-v1:0"})
    model, usage = FakeModel(ANSWER), FakeUsage()
    directory = FakeDirectory(stale)
    service = gateway(bundle, model, usage, directory)
    with pytest.raises(ServiceUnavailable, match="being re-provisioned") as raised:
        service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse")
    assert raised.value.status == 503  # boto3 retries it by itself
    assert (model.calls, usage.records, directory.refreshes) == ([], [], 1)

    # Once the provisioner has replaced the profile, a fresh read finds the new ARN and the call goes through
    directory = FakeDirectory(stale, after_refresh=provisioned(bundle))
    service = gateway(bundle, model, usage, directory)
    answer = service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r2", route="converse")
    assert model.calls == ["arn:profile/acme-chat"]
    configured = bundle.profile("acme-chat")
    assert configured is not None
    assert answer.record.model_id == configured.model_id


@pytest.mark.parametrize(
    "gone",
    [
        UpstreamError("ValidationException", 400, "The provided model identifier is invalid."),
        UpstreamError("ResourceNotFoundException", 404, "Model not found"),
    ],
)
def test_a_deleted_profile_arn_is_a_retryable_503_and_refreshes_the_directory(
    bundle: ConfigBundle, gone: UpstreamError
) -> None:
    directory, usage = FakeDirectory(provisioned(bundle)), FakeUsage()
    service = gateway(bundle, FakeModel(gone), usage, directory)
    with pytest.raises(ServiceUnavailable, match="being re-provisioned"):
        service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse")
    assert (usage.records, directory.refreshes) == ([], 1)


def test_other_validation_errors_are_the_tenants_and_pass_through(bundle: ConfigBundle) -> None:
    directory = FakeDirectory(provisioned(bundle))
    bad = UpstreamError("ValidationException", 400, "maxTokens must be at least 1")
    service = gateway(bundle, FakeModel(bad), FakeUsage(), directory)
    with pytest.raises(UpstreamError, match="maxTokens"):
        service.converse(ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse")
    assert directory.refreshes == 0


# --------------------------------------------------------------------------- time budget


class Clock:
    """A monotonic clock that the fake model moves on by the time each attempt takes."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TimedModel:
    """Bedrock's outcomes in turn (an answer or an error), each taking ``seconds`` on ``clock``."""

    def __init__(self, clock: Clock, outcomes: list[dict[str, Any] | Exception], seconds: float = 0.05):
        self.clock, self.outcomes, self.seconds = clock, outcomes, seconds
        self.calls = 0

    def converse(self, model_arn: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.clock.now += self.seconds
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def timed_gateway(
    bundle: ConfigBundle, clock: Clock, model: TimedModel, usage: FakeUsage, fallback: FakeFallback | None = None
) -> GatewayService:
    return GatewayService(
        bundle=bundle,
        directory=FakeDirectory(provisioned(bundle)),
        model=model,
        usage=usage,
        fallback=fallback or FakeFallback(),
        retention_days=90,
        breaker_seconds=30,
        clock=lambda: NOW,
        monotonic=clock,
        sleep=lambda seconds: setattr(clock, "now", clock.now + seconds),
    )


THROTTLED = UpstreamError("ThrottlingException", 429, "slow down", unbilled=True)


def converse_now(service: GatewayService, clock: Clock, started: float | None = None) -> Any:
    deadline = service.deadline(clock.now if started is None else started)
    return service.converse(
        ACME, service.profile_named(ACME, "acme-chat"), PARAMS, request_id="r", route="converse", deadline=deadline
    )


def test_a_call_bedrock_refused_unbilled_is_tried_again_while_the_budget_allows(bundle: ConfigBundle) -> None:
    clock, usage = Clock(), FakeUsage()
    model = TimedModel(clock, [THROTTLED, ANSWER])
    answer = converse_now(timed_gateway(bundle, clock, model, usage), clock)
    assert model.calls == 2
    assert usage.records == [answer.record]


def test_an_unbilled_refusal_is_not_tried_again_once_a_whole_attempt_no_longer_fits(bundle: ConfigBundle) -> None:
    clock, usage = Clock(), FakeUsage()
    model = TimedModel(clock, [THROTTLED, ANSWER], seconds=GATEWAY_BUDGET.before_model_seconds + 0.1)
    with pytest.raises(UpstreamError, match="slow down"):
        converse_now(timed_gateway(bundle, clock, model, usage), clock)
    assert (model.calls, usage.records) == (1, [])


@pytest.mark.parametrize(
    "billed",
    [
        UpstreamError("ModelTimeoutException", 408, "the model did not answer within 16 s; nothing was charged"),
        UpstreamError("InternalServerException", 500, "Bedrock failed"),
        UpstreamError("ModelErrorException", 424, "the model failed"),
    ],
)
def test_an_error_after_which_bedrock_may_have_billed_is_never_retried(
    bundle: ConfigBundle, billed: UpstreamError
) -> None:
    clock, usage = Clock(), FakeUsage()
    model = TimedModel(clock, [billed, ANSWER])
    with pytest.raises(UpstreamError) as raised:
        converse_now(timed_gateway(bundle, clock, model, usage), clock)
    assert raised.value is billed
    assert (model.calls, usage.records) == (1, [])


def test_bedrock_is_not_called_when_the_rest_of_the_budget_no_longer_fits(bundle: ConfigBundle) -> None:
    """E.g. a cold start's profile directory read took too long: a retryable 503 before any cost."""
    clock, usage = Clock(), FakeUsage()
    model = TimedModel(clock, [ANSWER])
    late = clock.now - GATEWAY_BUDGET.before_model_seconds - 0.01
    with pytest.raises(ServiceUnavailable, match="nothing was charged"):
        converse_now(timed_gateway(bundle, clock, model, usage), clock, started=late)
    assert (model.calls, usage.records) == (0, [])


# --------------------------------------------------------------------------- metering failures


def test_a_record_the_usage_table_refuses_goes_to_the_fallback_and_the_tenant_is_answered(
    bundle: ConfigBundle,
) -> None:
    clock, fallback = Clock(), FakeFallback()
    model = TimedModel(clock, [ANSWER])
    answer = converse_now(timed_gateway(bundle, clock, model, FakeUsage(fail=True), fallback), clock)
    assert fallback.records == [answer.record]  # the very record, charged to the tenant as usual
    assert answer.record.cost_usd == "0.002"
    assert model.calls == 1


def test_when_neither_takes_the_record_the_call_is_refused_and_bedrock_is_spared_while_the_breaker_is_open(
    bundle: ConfigBundle,
) -> None:
    clock = Clock()
    model = TimedModel(clock, [ANSWER, ANSWER, ANSWER])
    service = timed_gateway(bundle, clock, model, FakeUsage(fail=True), FakeFallback(fail=True))
    with pytest.raises(ServiceUnavailable, match="could not be metered; it was not charged"):
        converse_now(service, clock)
    assert model.calls == 1

    # the client retries the 503: refused before Bedrock, so the retry costs nothing
    clock.now += 29
    with pytest.raises(ServiceUnavailable, match=r"not calling the model; retry in 1 s \(nothing was charged\)"):
        converse_now(service, clock)
    assert model.calls == 1

    # once the breaker's interval is over, the next request tries again
    clock.now += 1.5
    with pytest.raises(ServiceUnavailable, match="could not be metered"):
        converse_now(service, clock)
    assert model.calls == 2

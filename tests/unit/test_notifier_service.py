"""The notifier never loses a notification: failed lookups, a failed config read, a bug in the wording."""

from __future__ import annotations

from datetime import datetime

import pytest
import tollgate.services.notifier as notifier_module
from tollgate.config import ConfigBundle
from tollgate.notifications import Deployment
from tollgate.rollup import Granularity, RollupKey, Totals
from tollgate.services.notifier import NotifierService
from tollgate.telemetry import MetricRef

from tests.unit.test_notifications import DEPLOYED, REQUESTS, SUBJECT


class Rollups:
    def __init__(self, rows: dict[RollupKey, Totals] | Exception):
        self._rows = rows
        self.asked: list[tuple[Granularity, str, str]] = []

    def tenant_totals(self, granularity: Granularity, period: str, tenant_id: str) -> dict[RollupKey, Totals]:
        self.asked.append((granularity, period, tenant_id))
        if isinstance(self._rows, Exception):
            raise self._rows
        return self._rows


class Metrics:
    def __init__(self, value: float | Exception):
        self._value = value
        self.asked: list[tuple[MetricRef, datetime, datetime]] = []

    def sum(self, metric: MetricRef, start: datetime, end: datetime) -> float:
        self.asked.append((metric, start, end))
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


class Admin:
    def __init__(self, error: Exception | None = None):
        self.sent: list[tuple[str | None, str]] = []
        self._error = error

    def publish(self, subject: str | None, message: str) -> str:
        if self._error:
            raise self._error
        self.sent.append((subject, message))
        return f"m-{len(self.sent)}"


def day_rows() -> dict[RollupKey, Totals]:
    def key(profile: str, model: str) -> RollupKey:
        return RollupKey(Granularity.DAY, "2026-11-27", "initech", profile, model)

    return {
        key("initech-coder", "anthropic.claude-3-5-haiku-20241022-v1:0"): Totals(21, cost_pusd=36_884_840_000),
        key("initech-coder", "an.older-model-v1:0"): Totals(1, cost_pusd=1),
        key("initech-analytics", "meta.llama3-3-70b-instruct-v1:0"): Totals(40, cost_pusd=7_876_800_000),
    }


def service(
    bundle: ConfigBundle,
    *,
    rollups: Rollups | None = None,
    metrics: Metrics | None = None,
    admin: Admin | None = None,
    config: object = None,
    deployment: Deployment = DEPLOYED,
) -> tuple[NotifierService, Admin]:
    admin = admin or Admin()

    def load() -> ConfigBundle:
        if isinstance(config, Exception):
            raise config
        return bundle

    built = NotifierService(
        config=load,
        rollups=rollups or Rollups(day_rows()),
        metrics=metrics or Metrics(0.036884840000000004),
        admin=admin,
        deployment=deployment,
        namespace="Tollgate",
    )
    return built, admin


def test_the_money_is_the_tenants_day_rows_exactly_and_the_profiles_cost_metric(bundle: ConfigBundle) -> None:
    rollups, metrics = Rollups(day_rows()), Metrics(0.036884840000000004)
    notifier, admin = service(bundle, rollups=rollups, metrics=metrics)

    notifier.notify(REQUESTS, SUBJECT)

    ((subject, text),) = admin.sent
    assert subject == SUBJECT
    assert rollups.asked == [(Granularity.DAY, "2026-11-27", "initech")]
    ((metric, start, end),) = metrics.asked
    assert metric == MetricRef("Tollgate", "CostUSD", (("TenantId", "initech"), ("Profile", "initech-coder")))
    assert (f"{start:%H:%M}", f"{end:%H:%M}") == ("03:29", "03:34")
    assert "initech-coder, 03:29-03:34 UTC:            $0.03688484   (CloudWatch CostUSD metric)" in text
    assert "initech-coder, 2026-11-27 so far (UTC):    $0.036884840001   (exact, trend table)" in text
    assert "Initech (all profiles), 2026-11-27 so far: $0.044761640001   (exact, trend table)" in text


def test_failed_lookups_still_send_the_mail_saying_why(bundle: ConfigBundle) -> None:
    notifier, admin = service(
        bundle,
        rollups=Rollups(TimeoutError("Read timeout on endpoint URL")),
        metrics=Metrics(PermissionError("not authorized to perform: cloudwatch:GetMetricStatistics")),
    )

    notifier.notify(REQUESTS, SUBJECT)

    ((_, text),) = admin.sent
    assert text.startswith("Profile initech-coder of tenant Initech (initech) made 37 requests")
    assert "cost unavailable (PermissionError: not authorized to perform: cloudwatch:GetMetricStatistics)" in text
    assert text.count("cost unavailable (TimeoutError: Read timeout on endpoint URL)") == 2  # profile's and tenant's


def test_an_unreadable_config_still_sends_the_mail(bundle: ConfigBundle) -> None:
    notifier, admin = service(bundle, config=FileNotFoundError("/opt/tollgate-config/config.json"))

    notifier.notify(REQUESTS, SUBJECT)

    ((_, text),) = admin.sent
    assert "of tenant initech (display name unavailable: FileNotFoundError: /opt/tollgate-config/config.json)" in text
    assert "$0.044761640001   (exact, trend table)" in text


def test_a_bug_in_the_wording_sends_the_message_as_it_came(
    bundle: ConfigBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(notifier_module, "describe", broken)
    notifier, admin = service(bundle)

    notifier.notify(REQUESTS, SUBJECT)

    ((subject, text),) = admin.sent
    assert subject == SUBJECT
    assert text.startswith("Tollgate could not put this notification in words (ZeroDivisionError: division by zero)")
    assert text.endswith(REQUESTS)


def test_a_message_that_is_no_alarm_passes_unchanged(bundle: ConfigBundle) -> None:
    rollups = Rollups(day_rows())
    notifier, admin = service(bundle, rollups=rollups)

    notifier.notify("Quota review on Monday.", None)

    assert admin.sent == [(None, "Quota review on Monday.")]
    assert rollups.asked == []


def test_when_the_admins_topic_refuses_it_raises_so_that_lambda_retries(bundle: ConfigBundle) -> None:
    notifier, _ = service(bundle, admin=Admin(ConnectionError("sns unreachable")))
    with pytest.raises(ConnectionError):
        notifier.notify(REQUESTS, SUBJECT)

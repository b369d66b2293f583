"""Actions on cost alarms against moto: the tenant's key moves to its throttled plan or is disabled,
OK lifts it, the action is logged in ControlTable once per SNS message and told to the tenant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from tollgate.adapters.apigateway import ApiGatewayPlans, ApiGatewayTenantKeys
from tollgate.adapters.control import DynamoControl
from tollgate.adapters.sns import TenantNoticePublisher
from tollgate.ratelimits import rate_plans
from tollgate.services.actions import ActionsService
from tollgate.tenant_provisioning import TenantProvisioner, TenantTargets

from tests.integration.conftest import REGION, STACK, TABLES, Stack
from tests.integration.test_rate_limits import _keys, _plans, tenants  # noqa: F401 - the fixture

T0 = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


def alarm(profile: str, state: str, at: datetime = T0) -> str:
    return json.dumps(
        {
            "AlarmName": f"BedrockTokenCostAlarm-{profile}",
            "NewStateValue": state,
            "OldStateValue": "OK" if state == "ALARM" else "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [12.5 (03/12/26 16:59:00)] was greater than 10.0",
            "StateChangeTime": at.isoformat().replace("+00:00", ".000+0000"),
        }
    )


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self._real: TenantNoticePublisher | None = None

    def publish(self, tenant: str, subject: str, message: str) -> str:
        self.sent.append((tenant, subject, message))
        assert self._real is not None
        return self._real.publish(tenant, subject, message)


@pytest.fixture
def actions(stack: Stack, tenants: tuple[TenantProvisioner, TenantTargets]) -> tuple[ActionsService, Outbox]:  # noqa: F811
    prov, targets = tenants
    prov.reconcile(stack.bundle, targets)
    plans = ApiGatewayPlans(boto3.client("apigateway", region_name=REGION), STACK)
    outbox = Outbox()
    outbox._real = TenantNoticePublisher(boto3.client("sns", region_name=REGION), targets.notice_topic_arn)
    service = ActionsService(
        config=lambda: stack.bundle,
        control=DynamoControl(stack.dynamodb, TABLES["ControlTable"]),
        keys=lambda bundle: ApiGatewayTenantKeys(plans, rate_plans(bundle), STACK),
        notices=outbox,
        clock=lambda: T0 + timedelta(seconds=2),
    )
    return service, outbox


def _plan_of(tenant: str) -> str:
    apigateway = boto3.client("apigateway", region_name=REGION)
    key = _keys()[tenant]["id"]
    on = [
        k
        for k, p in _plans().items()
        if key in {m["id"] for m in apigateway.get_usage_plan_keys(usagePlanId=p["id"])["items"]}
    ]
    assert len(on) == 1, on
    return on[0]


def _control(pk: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    return client.query(
        TableName=TABLES["ControlTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]


def test_a_throttle_moves_the_key_to_the_throttled_twin_and_ok_moves_it_back(
    actions: tuple[ActionsService, Outbox],
) -> None:
    service, outbox = actions
    assert _plan_of("acme") == "tier:team"
    fired = service.handle(alarm("acme-chat", "ALARM"), "m-1")  # acme: team tier -> throttle
    assert fired.status == "throttled"
    assert _plan_of("acme") == "tier:team:throttled"
    assert _keys()["acme"]["enabled"] is True
    assert _plan_of("globex") == "tier:enterprise"  # nobody else moves
    status = _control("STATUS#acme")[0]
    assert status["status"]["S"] == "throttled"
    assert status["by_alarms"]["L"] == [{"S": "BedrockTokenCostAlarm-acme-chat"}]
    cleared = service.handle(alarm("acme-chat", "OK", T0 + timedelta(minutes=5)), "m-2")
    assert cleared.status == "normal"
    assert _plan_of("acme") == "tier:team"
    log = _control("ACTION#acme")
    assert [(i["what"]["S"], i["sk"]["S"].endswith(m)) for i, m in zip(log, ("m-1", "m-2"), strict=True)] == [
        ("throttle", True),
        ("lifted throttle", True),
    ]
    assert all(i["notified"]["BOOL"] for i in log)
    assert [(t, s) for t, s, _ in outbox.sent] == [
        ("acme", "Tollgate: cost alarm of acme-chat fired"),
        ("acme", "Tollgate: cost alarm of acme-chat cleared"),
    ]


def test_a_suspend_disables_the_key_and_ok_enables_it(actions: tuple[ActionsService, Outbox]) -> None:
    service, _ = actions
    service.handle(alarm("initech-coder", "ALARM"), "m-1")  # initech: free tier -> suspend
    assert _keys()["initech"]["enabled"] is False
    assert _control("STATUS#initech")[0]["status"]["S"] == "suspended"
    service.handle(alarm("initech-coder", "OK", T0 + timedelta(minutes=5)), "m-2")
    assert _keys()["initech"]["enabled"] is True
    assert _plan_of("initech") == "tier:free"


def test_notify_changes_no_key_and_still_tells_the_tenant(actions: tuple[ActionsService, Outbox]) -> None:
    service, outbox = actions
    service.handle(alarm("globex-reports", "ALARM"), "m-1")  # globex: enterprise -> notify
    assert _plan_of("globex") == "tier:enterprise"
    assert _keys()["globex"]["enabled"] is True
    assert [t for t, _, _ in outbox.sent] == ["globex"]
    assert _control("ACTION#globex")[0]["what"]["S"] == "cost alarm fired"


def test_a_redelivered_message_does_nothing_twice_and_a_late_old_one_changes_nothing(
    actions: tuple[ActionsService, Outbox],
) -> None:
    service, outbox = actions
    service.handle(alarm("acme-chat", "ALARM"), "m-1")
    again = service.handle(alarm("acme-chat", "ALARM"), "m-1")
    assert again.duplicate
    assert len(_control("ACTION#acme")) == 1
    assert len(outbox.sent) == 1
    service.handle(alarm("acme-chat", "OK", T0 + timedelta(minutes=5)), "m-2")
    late = service.handle(alarm("acme-chat", "ALARM"), "m-1")  # the first ALARM, delivered again after OK
    assert late.stale
    assert _plan_of("acme") == "tier:team"


def test_one_profiles_ok_does_not_lift_another_profiles_action(actions: tuple[ActionsService, Outbox]) -> None:
    service, _ = actions
    service.handle(alarm("acme-chat", "ALARM"), "m-1")
    service.handle(alarm("acme-search", "ALARM"), "m-2")
    service.handle(alarm("acme-chat", "OK", T0 + timedelta(minutes=5)), "m-3")
    assert _plan_of("acme") == "tier:team:throttled"
    service.handle(alarm("acme-search", "OK", T0 + timedelta(minutes=6)), "m-4")
    assert _plan_of("acme") == "tier:team"


def test_an_alarms_first_ok_with_nothing_to_lift_tells_nobody(actions: tuple[ActionsService, Outbox]) -> None:
    service, outbox = actions
    first = json.loads(alarm("acme-chat", "OK"))
    first["OldStateValue"] = "INSUFFICIENT_DATA"  # every alarm's first evaluation
    assert service.handle(json.dumps(first), "m-1").decision is None
    assert outbox.sent == []
    assert _control("ACTION#acme") == []
    assert _plan_of("acme") == "tier:team"

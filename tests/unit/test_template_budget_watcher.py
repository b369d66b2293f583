"""template.yaml's budget watcher says what the code assumes: a schedule, the variables its settings
need, and a role that reads budgets and trend rows, claims alerts on BUDGET# items only, and
publishes to the admin's and the tenants' topics only."""

from __future__ import annotations

from typing import Any

from tollgate.periods import budget_pk
from tollgate.settings import BudgetWatcherSettings
from tollgate_local.template import load_template

from tests.cfn import deployed_template
from tests.iam import PHYSICAL, allowed, role_statements, table_arn


def watcher() -> dict[str, Any]:
    properties: dict[str, Any] = load_template()["Resources"]["BudgetWatcherFunction"]["Properties"]
    return properties


def test_the_watcher_runs_every_5_minutes() -> None:
    schedules = [e["Properties"]["Schedule"] for e in watcher()["Events"].values() if e["Type"] == "Schedule"]
    assert schedules == ["rate(5 minutes)"]


def test_the_template_sets_every_variable_the_watchers_settings_need() -> None:
    template = load_template()
    common = template["Globals"]["Function"]["Environment"]["Variables"]
    variables = {**common, **watcher()["Environment"]["Variables"]}
    resolved = {name: value if isinstance(value, str) else f"<{name}>" for name, value in variables.items()}
    settings = BudgetWatcherSettings.from_env({**resolved, "AWS_REGION": "us-east-1"})
    assert settings.tenant_notice_topic_arn == "<TENANT_NOTICE_TOPIC_ARN>"
    assert settings.control_table == "<CONTROL_TABLE>"
    assert watcher()["Environment"]["Variables"]["DASHBOARD_URL"] == template["Outputs"]["DashboardUrl"]["Value"]


def test_the_watcher_claims_alerts_on_budget_items_only_and_mails_only_its_two_topics() -> None:
    role = role_statements(deployed_template(), "BudgetWatcherFunction")
    control = table_arn("ControlTable")
    assert allowed(role, "dynamodb:Scan", control, {})
    assert allowed(role, "dynamodb:UpdateItem", control, {"dynamodb:LeadingKeys": [budget_pk("acme")]})
    for other in ("STATUS#acme", "RES#r-1", "TPM#acme", "ACTION#acme"):
        assert not allowed(role, "dynamodb:UpdateItem", control, {"dynamodb:LeadingKeys": [other]}), other
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem"):
        assert not allowed(role, action, control, {"dynamodb:LeadingKeys": [budget_pk("acme")]}), action
    assert allowed(role, "dynamodb:Query", table_arn("TrendTable"), {})
    assert not allowed(role, "dynamodb:Scan", table_arn("UsageTable"), {})
    topics = {name for name, arn in PHYSICAL.items() if ":sns:" in arn and allowed(role, "sns:Publish", arn, {})}
    assert topics == {"AdminTopic", "TenantNoticeTopic"}

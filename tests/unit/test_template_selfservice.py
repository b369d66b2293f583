"""GET /usage and GET /budget in template.yaml: routes on the gateway's API (same authorizer), and the
gateway's role reads trend rows and only the BUDGET# / STATUS# items of ControlTable."""

from __future__ import annotations

from tollgate.periods import budget_pk
from tollgate.settings import SelfServiceSettings
from tollgate_local.template import load_template

from tests.cfn import deployed_template
from tests.iam import allowed, role_statements, table_arn


def test_the_routes_are_on_the_gateway_api() -> None:
    events = load_template()["Resources"]["GatewayFunction"]["Properties"]["Events"].values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "Api"}
    assert {("GET", "/usage"), ("GET", "/budget")} <= routes


def test_the_gateway_reads_budgets_and_status_but_no_other_control_item() -> None:
    role = role_statements(deployed_template(), "GatewayFunction")
    control = table_arn("ControlTable")
    for partition in (budget_pk("acme"), budget_pk("acme", "acme-chat"), "STATUS#acme"):
        assert allowed(role, "dynamodb:GetItem", control, {"dynamodb:LeadingKeys": [partition]}), partition
    for partition in ("ACTION#acme", "RES#r-1", "TPM#acme"):
        assert not allowed(role, "dynamodb:GetItem", control, {"dynamodb:LeadingKeys": [partition]}), partition
    assert not allowed(role, "dynamodb:Scan", control, {})
    assert allowed(role, "dynamodb:Query", table_arn("TrendTable"), {})


def test_the_template_sets_every_variable_the_routes_settings_need() -> None:
    template = load_template()
    common = template["Globals"]["Function"]["Environment"]["Variables"]
    own = template["Resources"]["GatewayFunction"]["Properties"]["Environment"]["Variables"]
    resolved = {k: v if isinstance(v, str) else f"<{k}>" for k, v in {**common, **own}.items()}
    settings = SelfServiceSettings.from_env({**resolved, "AWS_REGION": "us-east-1"})
    assert (settings.trend_table, settings.control_table) == ("<TREND_TABLE>", "<CONTROL_TABLE>")

"""Requests per minute per tenant through API Gateway usage plans, provisioned in moto.

What a deploy makes (TenantProvisioning, the code its custom resource runs): a usage plan per
customer tier with its throttled twin, an API key per tenant on its tier's plan, that key's value on
every KEY item of the tenant (so the authorizer names it with no extra read), and each tenant's
contact address subscribed to the notice topic with a filter policy on its tenant_id.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from tollgate.adapters.dynamodb import DynamoKeyStore, DynamoProfileRegistry
from tollgate.config import ConfigBundle
from tollgate.keys import issue_key
from tollgate.services.authorizer import AuthorizerService
from tollgate.tenant_provisioning import TenantProvisioner, TenantTargets

from tests.integration.conftest import REGION, STACK, Stack
from tests.integration.test_provisioning import REPO_ROOT

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/model/acme-chat/converse"


@pytest.fixture
def tenants(stack: Stack) -> tuple[TenantProvisioner, TenantTargets]:
    apigateway = boto3.client("apigateway", region_name=REGION)
    api = apigateway.create_rest_api(name=f"{STACK}-api")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name=f"{STACK}-notices")["TopicArn"]
    dynamodb = stack.dynamodb
    table = stack.key_store._table  # the fixture's tenant table
    prov = TenantProvisioner(
        apigateway=apigateway,
        sns=boto3.client("sns", region_name=REGION),
        registry=DynamoProfileRegistry(dynamodb, table),
        keys=DynamoKeyStore(dynamodb, table),
    )
    return prov, TenantTargets(STACK, api["id"], "prod", topic)


def _plans() -> dict[str, dict[str, Any]]:
    items = boto3.client("apigateway", region_name=REGION).get_usage_plans()["items"]
    return {i["tags"]["tollgate:plan"]: i for i in items}


def _keys() -> dict[str, dict[str, Any]]:
    items = boto3.client("apigateway", region_name=REGION).get_api_keys(includeValues=True)["items"]
    return {i["tags"]["tollgate:tenant"]: i for i in items}


def test_each_tier_gets_a_usage_plan_and_each_tenant_a_key_on_its_tiers_plan(
    stack: Stack, tenants: tuple[TenantProvisioner, TenantTargets]
) -> None:
    prov, targets = tenants
    prov.reconcile(stack.bundle, targets)
    plans = _plans()
    # free: 60 requests/min -> 1 per second, a bucket of 60; team 600 -> 10/s; enterprise 3000 -> 50/s
    assert plans["tier:free"]["throttle"] == {"rateLimit": 1.0, "burstLimit": 60}
    assert plans["tier:team"]["throttle"] == {"rateLimit": 10.0, "burstLimit": 600}
    assert plans["tier:enterprise"]["throttle"] == {"rateLimit": 50.0, "burstLimit": 3000}
    assert plans["tier:team:throttled"]["throttle"] == {"rateLimit": 1.0, "burstLimit": 60}
    assert all(p["apiStages"] == [{"apiId": targets.rest_api_id, "stage": "prod"}] for p in plans.values())
    keys = _keys()
    assert set(keys) == set(stack.bundle.config.tenants)
    apigateway = boto3.client("apigateway", region_name=REGION)
    for tenant, plan in (("acme", "tier:team"), ("globex", "tier:enterprise"), ("initech", "tier:free")):
        members = apigateway.get_usage_plan_keys(usagePlanId=plans[plan]["id"])["items"]
        assert [m["id"] for m in members] == [keys[tenant]["id"]]


def test_the_authorizer_names_the_tenants_usage_plan_key_from_the_key_item_it_reads(
    stack: Stack, tenants: tuple[TenantProvisioner, TenantTargets]
) -> None:
    prov, targets = tenants
    prov.reconcile(stack.bundle, targets)
    keys = _keys()
    later = issue_key("initech", datetime.now(UTC), label="issued after the deploy")
    stack.key_store.add(later.record)
    service = AuthorizerService(keys=stack.key_store, bundle=stack.bundle)
    for tenant, secret in (("acme", stack.keys["acme"]), ("initech", later.secret)):
        answer = service.authorize(f"Bearer {secret}", METHOD_ARN)
        assert answer["context"]["tenant_id"] == tenant
        assert answer["usageIdentifierKey"] == keys[tenant]["value"]


def test_reconciling_again_changes_nothing_and_keeps_a_throttled_key_throttled(
    stack: Stack, tenants: tuple[TenantProvisioner, TenantTargets]
) -> None:
    prov, targets = tenants
    prov.reconcile(stack.bundle, targets)
    apigateway = boto3.client("apigateway", region_name=REGION)
    plans, keys = _plans(), _keys()
    # what the actions function does on a cost alarm: acme's key to its tier's throttled twin
    apigateway.delete_usage_plan_key(usagePlanId=plans["tier:team"]["id"], keyId=keys["acme"]["id"])
    apigateway.create_usage_plan_key(
        usagePlanId=plans["tier:team:throttled"]["id"], keyId=keys["acme"]["id"], keyType="API_KEY"
    )
    again = prov.reconcile(stack.bundle, targets)
    assert (again.created, again.updated, again.deleted) == ([], [], [])
    members = apigateway.get_usage_plan_keys(usagePlanId=plans["tier:team:throttled"]["id"])["items"]
    assert [m["id"] for m in members] == [keys["acme"]["id"]]


def test_a_removed_tenant_loses_its_key_and_a_removed_tier_its_plans(
    stack: Stack, tenants: tuple[TenantProvisioner, TenantTargets]
) -> None:
    prov, targets = tenants
    prov.reconcile(stack.bundle, targets)
    raw = json.loads((REPO_ROOT / "config.json").read_text())
    smaller = copy.deepcopy(raw)
    del smaller["tenants"]["globex"]
    smaller["profiles"] = {k: v for k, v in raw["profiles"].items() if v["tenant"] != "globex"}
    bundle = ConfigBundle.from_texts(json.dumps(smaller), (REPO_ROOT / "models.json").read_text())
    report = prov.reconcile(bundle, targets)
    assert "API key of tenant globex" in report.deleted
    assert set(_keys()) == {"acme", "initech"}
    assert {"tier:enterprise", "tier:enterprise:throttled"}.isdisjoint(_plans())


def test_each_contact_is_subscribed_to_the_notice_topic_with_its_own_tenants_filter(
    stack: Stack, tenants: tuple[TenantProvisioner, TenantTargets]
) -> None:
    prov, targets = tenants
    prov.reconcile(stack.bundle, targets)
    sns = boto3.client("sns", region_name=REGION)
    subs = sns.list_subscriptions_by_topic(TopicArn=targets.notice_topic_arn)["Subscriptions"]
    policies = {
        s["Endpoint"]: json.loads(
            sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"]["FilterPolicy"]
        )
        for s in subs
    }
    assert policies == {
        "ops@acme.example": {"tenant_id": ["acme"]},
        "platform@globex.example": {"tenant_id": ["globex"]},
        "it@initech.example": {"tenant_id": ["initech"]},
    }
    prov.reconcile(stack.bundle, targets)
    assert len(sns.list_subscriptions_by_topic(TopicArn=targets.notice_topic_arn)["Subscriptions"]) == 3

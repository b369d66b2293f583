"""Per-tenant resources from config.json, reconciled: usage plans, API keys, contact subscriptions.

A second custom resource (``TenantProvisioning`` in template.yaml) runs this on every deploy: a
usage plan needs the API's stage, and the stage (through the gateway function, which waits for
the profiles) comes after ``ProfileProvisioning``, so one resource could not do both.

- One usage plan per customer tier (and per tenant with a limit of its own), each with its
  throttled twin (tollgate.ratelimits); one API Gateway API key per tenant, on its plan. The key's
  value (the ``usageIdentifierKey`` the authorizer returns) is kept in the tenant table: in the
  provisioner's state, and on every KEY item of the tenant, so the authorizer has it from the
  item it reads anyway (no extra call per request). It is never logged nor printed.
- A key the actions function has moved to its throttled twin, or disabled, stays so: the actions
  function owns that (a redeploy does not lift an action; the alarm's OK does).
- Each tenant's ``contact_email`` is subscribed to the TenantNoticeTopic with the filter policy
  ``{"tenant_id": [<tenant>]}``: one topic, each tenant gets its own notices only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from tollgate.adapters.apigateway import ApiGatewayPlans
from tollgate.adapters.dynamodb import DynamoKeyStore, DynamoProfileRegistry
from tollgate.config import ConfigBundle
from tollgate.provisioning import ProvisioningError, Report
from tollgate.ratelimits import THROTTLED_SUFFIX, rate_plans

logger = Logger(service="tollgate", child=True)

#: The provisioner's state item (tenant table, STATE partition) holding a tenant's usage-plan key.
USAGE_KEY_STATE = "usage_key#{tenant}"
CONTACTS_STATE = "tenant_contacts"


def usage_key_state(tenant: str) -> str:
    return USAGE_KEY_STATE.format(tenant=tenant)


def contact_filter_policy(tenant: str) -> str:
    """The subscription filter policy of a tenant's contact address (on the message attribute tenant_id)."""
    return json.dumps({"tenant_id": [tenant]})


@dataclass(frozen=True)
class TenantTargets:
    stack: str
    rest_api_id: str
    stage: str
    notice_topic_arn: str

    @property
    def api_stage(self) -> tuple[str, str]:
        return (self.rest_api_id, self.stage)


def tenant_targets_from(properties: Mapping[str, Any]) -> TenantTargets:
    missing = [k for k in ("StackName", "RestApiId", "ApiStage", "NoticeTopicArn") if not properties.get(k)]
    if missing:
        raise ProvisioningError(f"custom resource properties missing: {', '.join(missing)} (see template.yaml)")
    return TenantTargets(
        stack=str(properties["StackName"]),
        rest_api_id=str(properties["RestApiId"]),
        stage=str(properties["ApiStage"]),
        notice_topic_arn=str(properties["NoticeTopicArn"]),
    )


class TenantProvisioner:
    def __init__(self, *, apigateway: Any, sns: Any, registry: DynamoProfileRegistry, keys: DynamoKeyStore):
        self._apigateway = apigateway
        self._sns = sns
        self._registry = registry
        self._keys = keys

    def reconcile(self, bundle: ConfigBundle, targets: TenantTargets) -> Report:
        report = Report()
        plans_api = ApiGatewayPlans(self._apigateway, targets.stack)
        wanted = rate_plans(bundle)
        existing = plans_api.plans()
        for key, spec in wanted.plans.items():
            plan = existing.get(key)
            if plan is None:
                existing[key] = plans_api.create_plan(spec, targets.api_stage)
                report.created.append(f"usage plan {spec.name(targets.stack)}")
            elif plans_api.update_plan(plan, spec, targets.api_stage):
                report.updated.append(f"usage plan {spec.name(targets.stack)}")
                existing[key] = plans_api.plans()[key]
            else:
                report.unchanged.append(f"usage plan {spec.name(targets.stack)}")

        api_keys = plans_api.keys()
        for tenant_id, plan_key in sorted(wanted.tenant_plan.items()):
            api_key = api_keys.get(tenant_id)
            if api_key is None:
                api_key = plans_api.create_key(tenant_id)
                report.created.append(f"API key of tenant {tenant_id}")
            own, throttled = existing[plan_key], existing[plan_key + THROTTLED_SUFFIX]
            # A key the actions function throttled stays on the throttled twin of its (new) plan.
            members_of_throttled = {
                p.id
                for k, p in existing.items()
                if k.endswith(THROTTLED_SUFFIX) and api_key.id in plans_api.members(p.id)
            }
            target = throttled if members_of_throttled else own
            if plans_api.move_key(api_key, target, existing):
                report.updated.append(f"API key of tenant {tenant_id} on usage plan {target.name}")
            state = {"api_key_id": api_key.id, "value": api_key.value}
            if self._registry.get_state(usage_key_state(tenant_id)) != state:
                self._registry.put_state(usage_key_state(tenant_id), state)
            stamped = self._keys.set_usage_key(tenant_id, api_key.value)
            if stamped:
                report.updated.append(f"{stamped} tenant key(s) of {tenant_id} given their usage-plan key")

        self._ensure_contacts(bundle, targets, report)

        # Deletions last: keys of tenants no longer in config.json, then plans no longer wanted.
        for tenant_id, api_key in api_keys.items():
            if tenant_id not in wanted.tenant_plan:
                plans_api.delete_key(api_key)
                self._registry.put_state(usage_key_state(tenant_id), {})
                report.deleted.append(f"API key of tenant {tenant_id}")
        for key, plan in existing.items():
            if key not in wanted.plans:
                plans_api.delete_plan(plan)
                report.deleted.append(f"usage plan {plan.name}")
        logger.info("tenants reconciled", extra={"summary": report.summary()})
        return report

    def teardown(self, targets: TenantTargets) -> Report:
        report = Report()
        plans_api = ApiGatewayPlans(self._apigateway, targets.stack)
        for tenant_id, api_key in plans_api.keys().items():
            plans_api.delete_key(api_key)
            report.deleted.append(f"API key of tenant {tenant_id}")
        for plan in plans_api.plans().values():
            plans_api.delete_plan(plan)
            report.deleted.append(f"usage plan {plan.name}")
        # The notice topic (and its subscriptions) belongs to the stack and goes with it.
        return report

    # -- contact subscriptions -------------------------------------------------------------

    def _ensure_contacts(self, bundle: ConfigBundle, targets: TenantTargets, report: Report) -> None:
        wanted = {t.tenant_id: t.contact_email for t in bundle.tenants() if t.contact_email}
        previous: dict[str, str] = dict((self._registry.get_state(CONTACTS_STATE) or {}).get("contacts", {}))
        subscriptions = self._subscriptions(targets.notice_topic_arn)
        for tenant_id, email in sorted(wanted.items()):
            if (email, tenant_id) in subscriptions:
                report.unchanged.append(f"notice subscription of tenant {tenant_id}")
                continue
            self._sns.subscribe(
                TopicArn=targets.notice_topic_arn,
                Protocol="email",
                Endpoint=email,
                Attributes={"FilterPolicy": contact_filter_policy(tenant_id), "FilterPolicyScope": "MessageAttributes"},
                ReturnSubscriptionArn=True,
            )
            report.created.append(f"notice subscription {email} of tenant {tenant_id} (confirmed from AWS's mail)")
        for tenant_id, email in sorted(previous.items()):
            if wanted.get(tenant_id) == email:
                continue
            arn = subscriptions.get((email, tenant_id), "")
            if arn.startswith("arn:"):  # a pending confirmation cannot be removed; AWS drops it in 3 days
                self._sns.unsubscribe(SubscriptionArn=arn)
                report.deleted.append(f"notice subscription {email} of tenant {tenant_id}")
        self._registry.put_state(CONTACTS_STATE, {"contacts": wanted})

    def _subscriptions(self, topic_arn: str) -> dict[tuple[str, str], str]:
        """(email, tenant of its filter policy) -> subscription ARN, for the topic's email subscriptions."""
        found: dict[tuple[str, str], str] = {}
        for page in self._sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for sub in page.get("Subscriptions", []):
                if sub.get("Protocol") != "email":
                    continue
                arn = sub["SubscriptionArn"]
                tenant = ""
                if arn.startswith("arn:"):
                    attributes = self._sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                    tenant = _filtered_tenant(attributes.get("FilterPolicy", ""))
                found[(sub["Endpoint"], tenant)] = arn
        return found


def _filtered_tenant(policy: str) -> str:
    try:
        values = json.loads(policy).get("tenant_id", []) if policy else []
    except (ValueError, AttributeError):
        return ""
    return str(values[0]) if len(values) == 1 else ""

"""Provisioner function: the custom resource that reconciles per-profile resources with config.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.custom_resource import run_custom_resource
from tollgate.provisioning import targets_from
from tollgate.settings import ProvisionerSettings
from tollgate.tenant_provisioning import tenant_targets_from
from tollgate.wiring.provisioner import config_from_layer, provisioner, tenant_provisioner

logger = Logger(service="tollgate")


def provision(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    settings = ProvisionerSettings.from_env()
    properties = event["ResourceProperties"]
    if event.get("ResourceType") == "Custom::TollgateTenants":
        tenants = tenant_targets_from(properties)
        if event["RequestType"] == "Delete":
            report = tenant_provisioner(settings).teardown(tenants)
        else:
            bundle = config_from_layer(settings, str(properties["ConfigLayerVersion"]))
            report = tenant_provisioner(settings).reconcile(bundle, tenants)
        return f"{tenants.stack}-tollgate-tenants", {"Summary": report.summary()[:1000]}
    targets = targets_from(properties)
    physical_id = f"{targets.stack}-tollgate-profiles"
    if event["RequestType"] == "Delete":
        report = provisioner(settings).teardown(targets)
    else:
        bundle = config_from_layer(settings, str(properties["ConfigLayerVersion"]))
        report = provisioner(settings).reconcile(bundle, targets)
    return physical_id, {"Summary": report.summary()[:1000]}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    run_custom_resource(event, context, provision)

"""template.yaml as data: the one source the local stack and the tests read resources from."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"


@functools.cache
def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM template with CloudFormation's short tags (!Ref, !GetAtt, !Sub) as plain dicts."""
    parsed: dict[str, Any] = yaml_parse(path.read_text(encoding="utf-8"))
    return parsed


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == resource_type}


def table_definitions(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each DynamoDB table's properties, by logical name, exactly as template.yaml states them."""
    template = template or load_template()
    return {name: r["Properties"] for name, r in resources_of_type(template, "AWS::DynamoDB::Table").items()}


def create_table_args(properties: dict[str, Any], table_name: str) -> dict[str, Any]:
    """CreateTable arguments for a table of template.yaml (settings CreateTable has no say in are left out)."""
    args = {
        key: properties[key]
        for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode", "StreamSpecification")
        if key in properties
    }
    if "StreamSpecification" in args:
        args["StreamSpecification"] = {"StreamEnabled": True, **args["StreamSpecification"]}
    return {"TableName": table_name, **args}


def create_tables(dynamodb: Any, names: dict[str, str], template: dict[str, Any] | None = None) -> None:
    """Create the template's tables (logical name -> physical name), with their TTL settings."""
    for logical, properties in table_definitions(template).items():
        dynamodb.create_table(**create_table_args(properties, names[logical]))
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=names[logical], TimeToLiveSpecification=ttl)


def event_source_mapping(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The usage stream's event source mapping settings (batch size, window, retries, ...)."""
    template = template or load_template()
    mappings = resources_of_type(template, "AWS::Lambda::EventSourceMapping")
    if len(mappings) != 1:
        raise ValueError(f"expected one event source mapping in template.yaml, found {sorted(mappings)}")
    return dict(next(iter(mappings.values()))["Properties"])

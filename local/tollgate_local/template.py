"""template.yaml as data: the one source the local stack and the tests read resources from."""

from __future__ import annotations

import functools
import json
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


def _gets_attribute(value: Any, attribute: str) -> bool:
    return isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list) and value["Fn::GetAtt"][1] == attribute


def event_source_mapping(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The usage stream's event source mapping settings (batch size, window, retries, ...)."""
    template = template or load_template()
    mappings = {
        name: resource
        for name, resource in resources_of_type(template, "AWS::Lambda::EventSourceMapping").items()
        if _gets_attribute(resource["Properties"].get("EventSourceArn"), "StreamArn")
    }
    if len(mappings) != 1:
        raise ValueError(f"expected one stream event source mapping in template.yaml, found {sorted(mappings)}")
    return dict(next(iter(mappings.values()))["Properties"])


def queue_mappings(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The SQS event source mappings: logical name -> properties (EventSourceArn: !GetAtt <queue>.Arn)."""
    template = template or load_template()
    return {
        name: dict(resource["Properties"])
        for name, resource in resources_of_type(template, "AWS::Lambda::EventSourceMapping").items()
        if _gets_attribute(resource["Properties"].get("EventSourceArn"), "Arn")
        and template["Resources"][resource["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]]["Type"]
        == "AWS::SQS::Queue"
    }


def create_queues(sqs: Any, names: dict[str, str], template: dict[str, Any] | None = None) -> dict[str, str]:
    """Create the template's queues named in ``names`` (logical -> queue name) with their attributes,
    dead-letter queues first; returns logical name -> queue URL."""
    template = template or load_template()
    queues = resources_of_type(template, "AWS::SQS::Queue")
    urls: dict[str, str] = {}

    def create(logical: str) -> str:
        if logical in urls:
            return urls[logical]
        properties = dict(queues[logical].get("Properties", {}))
        attributes = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in properties.items()
                      if k != "RedrivePolicy"}  # fmt: skip
        redrive = properties.get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            arn = sqs.get_queue_attributes(QueueUrl=create(target), AttributeNames=["QueueArn"])["Attributes"]
            attributes["RedrivePolicy"] = json.dumps({**redrive, "deadLetterTargetArn": arn["QueueArn"]})
        urls[logical] = sqs.create_queue(QueueName=names[logical], Attributes=attributes)["QueueUrl"]
        return urls[logical]

    for logical in names:
        create(logical)
    return urls

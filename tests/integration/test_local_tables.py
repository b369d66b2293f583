"""The tables local mode and the tests run on are the tables template.yaml declares.

Two paths create them: `tollgate local` (SAM transform, then moto's CloudFormation, then what
moto's CloudFormation drops) and the integration fixture (tollgate_local.template.create_tables).
Both are read back with DescribeTable / DescribeTimeToLive and compared, setting by setting,
with the table's properties in template.yaml: keys, attribute types, indexes (keys and
projection), stream, TTL and billing mode. A template change that one path misses fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tollgate_local.cloudformation import deploy
from tollgate_local.template import create_tables, load_template, resources_of_type

REGION = "us-east-1"
TEMPLATE_TABLES = {
    name: resource["Properties"]
    for name, resource in resources_of_type(load_template(), "AWS::DynamoDB::Table").items()
}


def declared(properties: dict[str, Any]) -> dict[str, Any]:
    """The settings template.yaml gives a table, in DescribeTable's shape."""
    stream = properties.get("StreamSpecification")
    ttl = properties.get("TimeToLiveSpecification")
    return {
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GlobalSecondaryIndexes": sorted(
            (
                {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
                for i in properties.get("GlobalSecondaryIndexes", [])
            ),
            key=lambda i: i["IndexName"],
        ),
        "Stream": {"StreamEnabled": True, **stream} if stream else None,
        "TimeToLive": ttl["AttributeName"] if ttl and ttl["Enabled"] else None,
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }


def described(dynamodb: Any, table_name: str) -> dict[str, Any]:
    """The same settings, as the emulator reports them."""
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    return {
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "GlobalSecondaryIndexes": sorted(
            (
                {"IndexName": i["IndexName"], "KeySchema": i["KeySchema"], "Projection": i["Projection"]}
                for i in table.get("GlobalSecondaryIndexes", [])
            ),
            key=lambda i: i["IndexName"],
        ),
        "Stream": table.get("StreamSpecification"),
        "TimeToLive": ttl.get("AttributeName") if ttl["TimeToLiveStatus"] == "ENABLED" else None,
        "BillingMode": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
    }


@pytest.fixture(scope="module")
def local_stack_tables() -> Iterator[tuple[Any, dict[str, str]]]:
    """The tables as `tollgate local` makes them: the whole stack through moto's CloudFormation."""
    with mock_aws():
        services = ("s3", "cloudformation", "cloudwatch", "dynamodb", "lambda", "logs")
        clients = {name: boto3.client(name, region_name=REGION) for name in services}
        deployed = deploy(clients, "tollgate", {}, region=REGION, account_id="123456789012")
        yield clients["dynamodb"], {name: deployed.physical[name] for name in TEMPLATE_TABLES}


@pytest.fixture(scope="module")
def fixture_tables() -> Iterator[tuple[Any, dict[str, str]]]:
    """The tables as the integration fixture makes them."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        names = {name: f"t-{name}" for name in TEMPLATE_TABLES}
        create_tables(dynamodb, names)
        yield dynamodb, names


def test_the_template_declares_the_four_tables_with_ttl_on_usage_trends_and_control() -> None:
    assert sorted(TEMPLATE_TABLES) == ["ControlTable", "TenantTable", "TrendTable", "UsageTable"]
    assert {name: declared(p)["TimeToLive"] for name, p in TEMPLATE_TABLES.items()} == {
        "ControlTable": "expires_at",
        "TenantTable": None,
        "TrendTable": "expires_at",
        "UsageTable": "expires_at",
    }
    assert declared(TEMPLATE_TABLES["UsageTable"])["Stream"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}


@pytest.mark.parametrize("table", sorted(TEMPLATE_TABLES))
def test_local_mode_tables_equal_the_template(local_stack_tables: tuple[Any, dict[str, str]], table: str) -> None:
    dynamodb, names = local_stack_tables
    assert described(dynamodb, names[table]) == declared(TEMPLATE_TABLES[table])


@pytest.mark.parametrize("table", sorted(TEMPLATE_TABLES))
def test_local_mode_restores_point_in_time_recovery_that_moto_drops(
    local_stack_tables: tuple[Any, dict[str, str]], table: str
) -> None:
    dynamodb, names = local_stack_tables
    backups = dynamodb.describe_continuous_backups(TableName=names[table])["ContinuousBackupsDescription"]
    wanted = TEMPLATE_TABLES[table]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == (
        "ENABLED" if wanted else "DISABLED"
    )


@pytest.mark.parametrize("table", sorted(TEMPLATE_TABLES))
def test_integration_fixture_tables_equal_the_template(fixture_tables: tuple[Any, dict[str, str]], table: str) -> None:
    dynamodb, names = fixture_tables
    assert described(dynamodb, names[table]) == declared(TEMPLATE_TABLES[table])

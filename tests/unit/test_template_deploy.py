"""Deploying and deleting in a fresh account: access logging is a choice, the data outlives the stack.

API Gateway writes access logs with the account's CloudWatch Logs role, an account-wide setting
that a fresh account does not have: a stage with access logging then fails to create. Each
value of the ApiAccessLogs parameter must give a stage CloudFormation can create. The template
is read as CloudFormation would create it (tests/cfn.py: SAM transform, conditions decided).
"""

from __future__ import annotations

from typing import Any

import pytest
from tollgate_local.cloudformation import references

from tests.cfn import depends_on, deployed_template, resources_of_type

PSEUDO = {"AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix", "AWS::NoValue"}


def stage(template: dict[str, Any]) -> dict[str, Any]:
    (found,) = resources_of_type(template, "AWS::ApiGateway::Stage").values()
    properties: dict[str, Any] = found["Properties"]
    return properties


def test_the_default_deploys_in_a_fresh_account_without_access_logs() -> None:
    template = deployed_template()

    assert template["ParameterValues"]["ApiAccessLogs"] == "Disabled"
    assert "AccessLogSetting" not in stage(template)
    assert "ApiAccessLogGroup" not in template["Resources"]
    # nothing account-wide is touched
    assert resources_of_type(template, "AWS::ApiGateway::Account") == {}
    assert "ApiGatewayCloudWatchRole" not in template["Resources"]


def test_enabled_logs_to_the_stacks_own_log_group_and_leaves_the_account_setting_alone() -> None:
    template = deployed_template({"ApiAccessLogs": "Enabled"})

    setting = stage(template)["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert '"tenant":"$context.authorizer.tenant_id"' in setting["Format"]
    assert template["Resources"]["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert resources_of_type(template, "AWS::ApiGateway::Account") == {}
    assert "ApiGatewayCloudWatchRole" not in template["Resources"]


def test_enabled_with_account_role_sets_the_role_before_the_stage_and_keeps_it() -> None:
    template = deployed_template({"ApiAccessLogs": "EnabledWithAccountRole"})

    (account_id, account), *_ = resources_of_type(template, "AWS::ApiGateway::Account").items()
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    role = template["Resources"]["ApiGatewayCloudWatchRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    # the stage is created only once the account has the role
    (stage_id,) = resources_of_type(template, "AWS::ApiGateway::Stage")
    assert account_id in depends_on(template, stage_id)
    assert "AccessLogSetting" in stage(template)
    # deleting the stack does not reset the account setting, so the role it names stays
    assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("value", ["Disabled", "Enabled", "EnabledWithAccountRole"])
def test_every_choice_names_only_resources_that_are_created(value: str) -> None:
    template = deployed_template({"ApiAccessLogs": value})
    known = set(template["Resources"]) | set(template["ParameterValues"]) | PSEUDO

    for name, resource in template["Resources"].items():
        dangling = references(resource) - known
        assert not dangling, f"{name} refers to {dangling}, which ApiAccessLogs={value} does not create"


def test_the_data_is_kept_when_the_stack_is_deleted_or_a_resource_replaced() -> None:
    resources = deployed_template()["Resources"]
    (config_layer,) = [n for n in resources if n.startswith("ConfigLayer")]
    (code_layer,) = [n for n in resources if n.startswith("TollgateLayer")]

    for name in ("UsageTable", "TrendTable", "ArtifactsBucket", "ArtifactsBucketPolicy"):
        assert (resources[name].get("DeletionPolicy"), resources[name].get("UpdateReplacePolicy")) == (
            "Retain",
            "Retain",
        ), name
    assert resources["ArtifactsBucket"]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    # every config layer version is kept (a rollback re-applies the previous one); code layers are not
    assert resources[config_layer]["DeletionPolicy"] == "Retain"
    assert resources[code_layer].get("DeletionPolicy") != "Retain"

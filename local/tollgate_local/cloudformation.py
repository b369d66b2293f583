"""The stack's resources on moto, made from template.yaml: SAM transform, then moto's CloudFormation.

What moto cannot do is left out and said so, never quietly copied by hand:

* the API (``AWS::ApiGateway::*`` and the permissions that name it): moto ignores the OpenAPI
  body, and its data plane routes nothing; the local HTTP front (tollgate_local.front) serves
  the API from the same template section;
* the stream's event source mapping: moto would try to run the function in Docker and clear
  the stream; tollgate_local.esm polls the stream with the template's settings instead;
* a function's SNS subscription (SAM's SNS event) and its asynchronous invocation settings
  (``AWS::Lambda::EventInvokeConfig``): moto would run the function in Docker, or skip them;
  tollgate_local.sns_lambda subscribes an HTTP endpoint instead and invokes the function with
  the template's retries and on-failure destination;
* the provisioning custom resource: its function runs in-process (tollgate_local.stack) with
  the properties the template gives it, resolved here;
* ``AWS::CloudWatch::Alarm`` resources, which moto's CloudFormation skips: they are put with
  PutMetricAlarm from their resolved properties;
* ``AWS::Logs::MetricFilter`` resources, which it skips too: they are put with PutMetricFilter
  (so DescribeMetricFilters shows them); moto never applies them, the local log sink does
  (tollgate_local.logfilters);
* ``AWS::S3::BucketPolicy`` (the artifacts bucket's TLS-only policy), which moto's
  CloudFormation also skips: nothing local reads it, so it stays out;
* two settings of ``AWS::DynamoDB::Table`` that moto's CloudFormation drops (moto 5.2):
  ``TimeToLiveSpecification`` and ``PointInTimeRecoverySpecification`` are applied with
  UpdateTimeToLive and UpdateContinuousBackups. ``SSESpecification`` is left as moto has it
  (no encryption at rest to speak of in a local emulator).
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

from tollgate_local.template import load_template

#: What moto's CloudFormation says about the resource types it skips, all handled above.
MOTO_SKIPS = ("AWS::CloudWatch::Alarm", "AWS::Logs::MetricFilter", "AWS::S3::BucketPolicy")
#: Resource types the local stack does not hand to moto (see the module docstring).
LEFT_OUT = (
    "AWS::ApiGateway::",
    "AWS::Lambda::EventSourceMapping",
    "AWS::SNS::Subscription",
    "AWS::Lambda::EventInvokeConfig",
    "Custom::",
)
CODE_BUCKET = "tollgate-local-code"
CODE_KEY = "placeholder.zip"
_SUB_NAME = re.compile(r"\$\{([^}!]+)\}")


def references(value: Any) -> set[str]:
    """Logical ids (and pseudo parameters) a template value refers to with Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                found |= {name.split(".")[0] for name in _SUB_NAME.findall(text) if name not in variables}
                found |= references(variables)
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def transformed(parameters: Mapping[str, str], region: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """template.yaml through the SAM transform, with code locations pointing at a placeholder in S3.

    The region is given, not looked up in the environment (samtranslator's ``transform`` asks a
    default boto3 session). samtranslator asks IAM for AWS-managed policy ARNs; the template
    names none, so the map is empty.
    """
    sam = copy.deepcopy(template or load_template())
    for resource in sam["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = f"s3://{CODE_BUCKET}/{CODE_KEY}"
    values = dict(parameters)
    to_py27_compatible_template(sam, values)  # as samtranslator's transform() does
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    result: dict[str, Any] = undo_mark_unicode_str_in_template(
        translator.translate(sam, values, get_managed_policy_map=dict)
    )
    return result


@dataclass(frozen=True)
class Split:
    """The transformed template cut in two: what moto creates, and what the local stack emulates."""

    for_moto: dict[str, Any]
    left_out: dict[str, dict[str, Any]]


def split(cfn: dict[str, Any]) -> Split:
    resources = cfn["Resources"]
    left_out = {name for name, r in resources.items() if r["Type"].startswith(LEFT_OUT)}
    while True:  # and whatever depends on them (e.g. the API's Lambda permissions)
        dependents = {n for n, r in resources.items() if n not in left_out and references(r) & left_out}
        if not dependents:
            break
        left_out |= dependents
    for_moto = copy.deepcopy(cfn)
    for name in left_out:
        del for_moto["Resources"][name]
    for_moto["Outputs"] = {k: v for k, v in cfn.get("Outputs", {}).items() if not references(v) & left_out}
    return Split(for_moto, {name: resources[name] for name in sorted(left_out)})


def placeholder_code() -> bytes:
    """A zip for moto's Lambda (which cannot run Python here; handlers run in-process)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Tollgate local mode runs the handlers in-process from functions/.\n")
    return buffer.getvalue()


@dataclass(frozen=True)
class Deployed:
    """A created stack: physical ids by logical name, its parameters, and what moto left to us."""

    stack_name: str
    region: str
    account_id: str
    physical: dict[str, str]
    split: Split
    parameters: dict[str, str]

    def resolve(self, value: Any) -> Any:
        """A template value with Ref / GetAtt / Sub / Join resolved against the created stack."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, inner), *_ = value.items()
            if key == "Ref":
                return self._ref(inner)
            if key == "Fn::GetAtt":
                name, attribute = inner if isinstance(inner, list) else str(inner).split(".", 1)
                return self._get_att(name, attribute)
            if key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], self.resolve(inner[1]))
                return _SUB_NAME.sub(lambda m: str(variables.get(m[1]) or self._sub_name(m[1])), text)
            if key == "Fn::Join":
                separator, parts = inner
                return separator.join(str(p) for p in self.resolve(parts))
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        stage = self.split.left_out.get(name, {})
        if stage.get("Type") == "AWS::ApiGateway::Stage":
            # moto skips stages, so there is no physical id; CloudFormation's Ref of a stage is its name.
            return str(self.resolve(stage["Properties"]["StageName"]))
        raise KeyError(f"{name} is not a resource or parameter of the local stack")

    def _sub_name(self, name: str) -> str:
        if "." in name:
            resource, attribute = name.split(".", 1)
            return str(self._get_att(resource, attribute))
        return self._ref(name)

    def _get_att(self, name: str, attribute: str) -> str:
        physical = self.physical[name]
        if attribute == "Arn":
            if physical.startswith("arn:"):
                return physical
            if physical.startswith("https://sqs."):
                return f"arn:aws:sqs:{self.region}:{self.account_id}:{physical.rsplit('/', 1)[1]}"
            raise KeyError(f"no local ARN for {name} ({physical})")
        if attribute == "QueueName":
            return physical.rsplit("/", 1)[1]
        raise KeyError(f"GetAtt {name}.{attribute} is not resolved locally")


def deploy(
    clients: Mapping[str, Any], stack_name: str, parameters: Mapping[str, str], *, region: str, account_id: str
) -> Deployed:
    """Create the stack on moto (one CreateStack), then the alarms its CloudFormation skips."""
    s3, cloudformation, cloudwatch = clients["s3"], clients["cloudformation"], clients["cloudwatch"]
    s3.create_bucket(Bucket=CODE_BUCKET)
    s3.put_object(Bucket=CODE_BUCKET, Key=CODE_KEY, Body=placeholder_code())
    parts = split(transformed(parameters, region))
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(parts.for_moto),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"the local stack was not created: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    summaries = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for page in summaries for r in page["StackResourceSummaries"]
    }
    template_parameters = parts.for_moto.get("Parameters", {})
    resolved_parameters = {name: str(spec.get("Default", "")) for name, spec in template_parameters.items()}
    resolved_parameters.update(parameters)
    deployed = Deployed(
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        physical=physical,
        split=parts,
        parameters=resolved_parameters,
    )
    for name, resource in parts.for_moto["Resources"].items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            _table_settings_moto_drops(clients["dynamodb"], physical[name], resource["Properties"])
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            properties = deployed.resolve(resource["Properties"])
            properties.setdefault("AlarmName", f"{stack_name}-{name}")
            cloudwatch.put_metric_alarm(**properties)
            physical[name] = properties["AlarmName"]
        if resource["Type"] == "AWS::Logs::MetricFilter":
            properties = deployed.resolve(resource["Properties"])
            clients["logs"].put_metric_filter(
                logGroupName=properties["LogGroupName"],
                filterName=properties.get("FilterName", f"{stack_name}-{name}"),
                filterPattern=properties["FilterPattern"],
                metricTransformations=[
                    {
                        "metricName": t["MetricName"],
                        "metricNamespace": t["MetricNamespace"],
                        "metricValue": t["MetricValue"],
                    }
                    for t in properties["MetricTransformations"]
                ],
            )
            physical[name] = properties.get("FilterName", f"{stack_name}-{name}")
    if "apigateway" in clients:
        for name, resource in parts.left_out.items():
            if resource["Type"] == "AWS::ApiGateway::RestApi":
                # The local front serves the API; the REST API in moto only gives usage plans an API id.
                api_name = deployed.resolve(resource["Properties"].get("Name", f"{stack_name}-{name}"))
                physical[name] = clients["apigateway"].create_rest_api(name=str(api_name))["id"]
    return deployed


def _table_settings_moto_drops(dynamodb: Any, table: str, properties: Mapping[str, Any]) -> None:
    """Apply the table's TTL and point-in-time recovery settings, which moto's CreateStack ignores."""
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"] != (
        "ENABLED" if ttl.get("Enabled") else "DISABLED"
    ):
        dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
    recovery = properties.get("PointInTimeRecoverySpecification")
    if recovery:
        dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification=recovery)

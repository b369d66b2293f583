"""Writes events/: the sample events for every function, built by the same code as local mode.

    python -m tollgate_local.sample_events        # rewrite events/
    python -m tollgate_local.sample_events --check  # exit 1 if events/ is out of date

The tests invoke each of these events in-process (there is no Docker here for
`sam local invoke`), and check that events/ matches what this module writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tollgate.alarms import alarm_arn, alarms_for
from tollgate.config import ConfigBundle
from tollgate.keys import KeyStatus, TenantKey, hash_key
from tollgate.pricing import PriceBook, TokenCounts
from tollgate.usage import UsageRecord

from tollgate_local.apigw import ACCOUNT_ID, dumps, proxy_event, token_authorizer_event
from tollgate_local.queues import new_message_record
from tollgate_local.sns_lambda import sns_event
from tollgate_local.streams import insert_record
from tollgate_local.template import REPO_ROOT

EVENTS_DIR = REPO_ROOT / "events"
#: A key that exists only in these samples (never in a deployed stack): `make local` and the
#: tests register its hash for tenant "acme", so `sam local invoke` of these events is accepted.
SAMPLE_KEY = "tg_acmesample_sample-key-for-events-only-00001"
SAMPLE_KEY_ID = "acmesample"
SAMPLE_TENANT = "acme"
SAMPLE_KEY_LABEL = "events/ sample key (local only)"
REGION = "us-east-1"
STACK = "tollgate"
AT = datetime(2026, 11, 26, 16, 30, 5, 123000, tzinfo=UTC)
FALLBACK_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:tollgate-MeteringFallbackQueue-4D5E6F"
ALERT_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{STACK}-AlertTopic-AbC123"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/tollgate-UsageTable-1A2B3C/stream/2026-11-26T00:00:00.000"

_HEADERS = {
    "Content-Type": "application/json",
    "Host": f"tollgatelocal.execute-api.{REGION}.amazonaws.com",
    "User-Agent": "Boto3/1.43 md/Botocore#1.43 ua/2.1 os/linux lang/python#3.13",
    "X-Forwarded-Proto": "https",
}
_ACME = {"principalId": "acme", "integrationLatency": 12, "tenant_id": SAMPLE_TENANT, "key_id": SAMPLE_KEY_ID}


def sample_key_record(now: datetime) -> TenantKey:
    """What a key store keeps of SAMPLE_KEY: its hash, for tenant acme, labelled as local only."""
    return TenantKey(hash_key(SAMPLE_KEY), SAMPLE_KEY_ID, SAMPLE_TENANT, KeyStatus.ACTIVE, now, SAMPLE_KEY_LABEL)


def _api(
    name: str,
    *,
    path: str,
    resource: str,
    params: dict[str, str] | None,
    body: str,
    headers: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    all_headers = {**_HEADERS, "Authorization": f"Bearer {SAMPLE_KEY}", **(headers or {})}
    return name, proxy_event(
        method="POST",
        path=path,
        resource=resource,
        path_parameters=params,
        headers=all_headers,
        body=body,
        authorizer=_ACME,
        request_id=f"sample-{name.removesuffix('.json')}",
        now=AT,
    )


def _usage(bundle: ConfigBundle, index: int, profile_name: str, tokens: TokenCounts) -> dict[str, Any]:
    profile = bundle.profile(profile_name)
    assert profile is not None
    price = PriceBook(bundle.catalog, REGION).price(profile.model_id, profile.scope, AT)
    record = UsageRecord.charge(
        request_id=f"sample-stream-{index:03d}",
        tenant_id=profile.tenant_id,
        profile=profile.name,
        route="converse",
        key_id=SAMPLE_KEY_ID,
        requested_at=AT,
        tokens=tokens,
        price=price,
        latency_ms=640 + index,
        stop_reason="end_turn",
        retention_days=90,
    )
    return record.to_item()


def _stream(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            insert_record(
                item,
                key="request_id",
                sequence_number=f"{1000000000000000000000 + i}",
                stream_arn=STREAM_ARN,
                region=REGION,
                at=AT,
                event_id=f"{i:032x}",
            )
            for i, item in enumerate(items, start=1)
        ]
    }


def _custom_resource(request_type: str, layer_version: int) -> dict[str, Any]:
    properties = {
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{STACK}-ProvisionerFunction-AbC123",
        "ServiceTimeout": "900",
        "StackName": STACK,
        "Region": REGION,
        "AccountId": ACCOUNT_ID,
        "Namespace": "Tollgate",
        "TopicArn": ALERT_TOPIC,
        "AdminTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{STACK}-AdminTopic-AbC123",
        "DashboardName": f"{STACK}-tollgate",
        "ArtifactsBucket": f"{STACK}-artifactsbucket-abc123",
        "ConfigLayerVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{STACK}-config:{layer_version}",
        "CodeVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{STACK}-tollgate:{layer_version}",
    }
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/sample",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK}/0a1b2c3d-0000-0000-0000-000000000000",
        "RequestId": f"sample-{request_type.lower()}-request",
        "LogicalResourceId": "ProfileProvisioning",
        "ResourceType": "Custom::TollgateProfiles",
        "ResourceProperties": properties,
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = f"{STACK}-tollgate-profiles"
    if request_type == "Update":
        event["OldResourceProperties"] = _custom_resource("Create", layer_version - 1)["ResourceProperties"]
    return event


def _alarm_notification(bundle: ConfigBundle) -> dict[str, Any]:
    """What the notifier gets from the alert topic: acme-chat's cost alarm going to ALARM, a minute after AT."""
    profile = bundle.profile("acme-chat")
    assert profile is not None
    cost = alarms_for(profile, "Tollgate")[0]
    changed = AT.replace(minute=AT.minute + 1, second=2, microsecond=310000)
    window = AT.replace(minute=AT.minute - 4, second=0, microsecond=0)
    reason = (
        f"Threshold Crossed: 1 out of the last 1 datapoints [5.8124 ({window:%d/%m/%y %H:%M:%S})] was greater than "
        f"the threshold ({cost.threshold}) (minimum 1 datapoint for OK -> ALARM transition)."
    )
    message = {
        "AlarmName": cost.name,
        "AlarmDescription": cost.description,
        "AWSAccountId": ACCOUNT_ID,
        "AlarmConfigurationUpdatedTimestamp": "2026-11-26T09:12:40.512+0000",
        "NewStateValue": "ALARM",
        "NewStateReason": reason,
        "StateChangeTime": f"{changed:%Y-%m-%dT%H:%M:%S}.310+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": alarm_arn(REGION, ACCOUNT_ID, cost.name),
        "OldStateValue": "OK",
        "OKActions": [ALERT_TOPIC],
        "AlarmActions": [ALERT_TOPIC],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": cost.metric.name,
            "Namespace": cost.metric.namespace,
            "StatisticType": "Statistic",
            "Statistic": "SUM",
            "Unit": None,
            "Dimensions": [{"value": value, "name": name} for name, value in cost.metric.dimensions],
            "Period": cost.period,
            "EvaluationPeriods": cost.evaluation_periods,
            "DatapointsToAlarm": cost.datapoints_to_alarm,
            "ComparisonOperator": cost.comparison,
            "Threshold": cost.threshold,
            "TreatMissingData": cost.treat_missing_data,
            "EvaluateLowSampleCountPercentile": "",
        },
    }
    envelope = {
        "Type": "Notification",
        "MessageId": "5a0a8c1e-8f4b-5d2e-9c11-000000000001",
        "TopicArn": ALERT_TOPIC,
        "Subject": f'ALARM: "{cost.name}" in US East (N. Virginia)',
        "Message": json.dumps(message, separators=(",", ":")),
        "Timestamp": f"{changed:%Y-%m-%dT%H:%M:%S}.402Z",
        "SignatureVersion": "1",
        "Signature": "c2FtcGxl",
        "SigningCertURL": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-sample.pem",
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={ALERT_TOPIC}:sample",
    }
    return sns_event(envelope, f"{ALERT_TOPIC}:0b1c2d3e-0000-0000-0000-000000000000")


def sample_events(bundle: ConfigBundle) -> dict[str, dict[str, Any]]:
    hello = {
        "messages": [{"role": "user", "content": [{"text": "Summarise our refund policy in two sentences."}]}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.2},
    }
    converse_path = "/model/{profile}/converse"
    events = dict(
        [
            _api(
                "converse.json",
                path="/model/acme-chat/converse",
                resource=converse_path,
                params={"profile": "acme-chat"},
                body=json.dumps(hello),
            ),
            _api(
                "converse-other-tenant.json",
                path="/model/globex-assistant/converse",
                resource=converse_path,
                params={"profile": "globex-assistant"},
                body=json.dumps(hello),
            ),
            _api(
                "converse-malformed-body.json",
                path="/model/acme-chat/converse",
                resource=converse_path,
                params={"profile": "acme-chat"},
                body='{"messages": [{"role": "user", "content": ',
            ),
            _api(
                "converse-invalid-request.json",
                path="/model/acme-chat/converse",
                resource=converse_path,
                params={"profile": "acme-chat"},
                body=json.dumps({"messages": "hello", "inferenceConfig": {}}),
            ),
            _api(
                "invoke-by-profile.json",
                path="/invoke",
                resource="/invoke",
                params=None,
                body=json.dumps(hello["messages"]),
                headers={"inference-profile-id": "acme-search"},
            ),
            _api(
                "invoke-by-tags.json",
                path="/invoke",
                resource="/invoke",
                params=None,
                body=json.dumps(hello),
                headers={"tags": json.dumps([{"key": "Application", "value": "Chat"}])},
            ),
            _api("invoke-no-profile.json", path="/invoke", resource="/invoke", params=None, body=json.dumps(hello)),
        ]
    )
    events["authorizer.json"] = token_authorizer_event(
        token=f"Bearer {SAMPLE_KEY}", method="POST", path="/model/acme-chat/converse"
    )
    events["authorizer-unknown-key.json"] = token_authorizer_event(
        token="Bearer tg_unknownkey_this-key-was-never-issued-to-any",  # noqa: S106 - a sample, never issued
        method="POST",
        path="/invoke",
    )
    events["usage-stream.json"] = _stream(
        [
            _usage(bundle, 1, "acme-chat", TokenCounts(1200, 350)),
            _usage(bundle, 2, "acme-search", TokenCounts(800, 120, cache_read=2048)),
            _usage(bundle, 3, "globex-summarizer", TokenCounts(5000, 400, cache_write=1024)),
        ]
    )
    poison = _usage(bundle, 5, "acme-chat", TokenCounts(10, 10))
    del poison["output_tokens"]
    poison["cost_pusd"] = "not a number"
    events["usage-stream-with-poison.json"] = _stream(
        [
            _usage(bundle, 4, "acme-chat", TokenCounts(100, 50)),
            poison,
            _usage(bundle, 6, "initech-coder", TokenCounts(300, 90)),
        ]
    )
    # What the metering recovery function gets: records the gateway deferred (one of them not a record)
    deferred = [
        json.dumps(_usage(bundle, 7, "acme-chat", TokenCounts(900, 210)), sort_keys=True),
        '{"request_id": "x"}',
    ]
    events["metering-recovery.json"] = {
        "Records": [
            new_message_record(
                body,
                queue_arn=FALLBACK_QUEUE_ARN,
                region=REGION,
                at=AT,
                message_id=f"{i:08x}-0000-4000-8000-000000000000",
            )
            for i, body in enumerate(deferred, start=1)
        ]
    }
    events["provisioner-create.json"] = _custom_resource("Create", 1)
    events["provisioner-update.json"] = _custom_resource("Update", 2)
    events["provisioner-delete.json"] = _custom_resource("Delete", 2)
    events["notifier-alarm.json"] = _alarm_notification(bundle)
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that events/ is up to date")
    args = parser.parse_args(argv)
    bundle = ConfigBundle.load_dir(REPO_ROOT, region=REGION)
    stale = []
    EVENTS_DIR.mkdir(exist_ok=True)
    for name, event in sorted(sample_events(bundle).items()):
        path: Path = EVENTS_DIR / name
        text = dumps(event)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print(  # noqa: T201 - a command-line check
            f"events/ is out of date: {', '.join(stale)}; run python -m tollgate_local.sample_events", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

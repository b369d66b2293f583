"""The stack's data resources in an in-process moto (``mock_aws``), provisioned from config.json.

What the integration tests and the in-process benchmarks both stand on: the tables and queues of
template.yaml, the alarm and admin topics and the artifacts bucket, then the production provisioner (as the
custom resource's function wires it) creating the inference profiles, alarms and dashboard.
The functions' settings (table names, stack, namespace) are read from the environment, so
set them first.
"""

from __future__ import annotations

from collections.abc import Mapping

import boto3
from tollgate.config import ConfigBundle
from tollgate.provisioning import Targets
from tollgate.settings import ProvisionerSettings
from tollgate.wiring.provisioner import provisioner

from tollgate_local.template import create_queues, create_tables

#: The queue the gateway defers usage records to, and its dead-letter queue (logical names).
METERING_QUEUES = ("MeteringFallbackQueue", "MeteringDeadLetterQueue")


def metering_queues(stack: str, region: str) -> dict[str, str]:
    """Create the metering fallback queue and its dead-letter queue; logical name -> URL."""
    sqs = boto3.client("sqs", region_name=region)
    return create_queues(sqs, {name: f"{stack}-{name}" for name in METERING_QUEUES})


def provision_in_moto(
    bundle: ConfigBundle, stack: str, tables: Mapping[str, str], *, region: str, account_id: str, namespace: str
) -> Targets:
    """Create the tables (logical -> physical name), topic and bucket, then reconcile ``bundle``.

    The metering queues are made by :func:`metering_queues` (their URLs go into the gateway's
    METERING_FALLBACK_QUEUE_URL before it starts)."""
    create_tables(boto3.client("dynamodb", region_name=region), dict(tables))
    sns = boto3.client("sns", region_name=region)
    topic_arn = sns.create_topic(Name=f"{stack}-alerts")["TopicArn"]
    admin_topic_arn = sns.create_topic(Name=f"{stack}-admin")["TopicArn"]
    boto3.client("s3", region_name=region).create_bucket(Bucket=f"{stack}-artifacts")
    targets = Targets(
        stack=stack,
        region=region,
        account_id=account_id,
        namespace=namespace,
        topic_arn=topic_arn,
        dashboard_name=f"{stack}-tollgate",
        artifacts_bucket=f"{stack}-artifacts",
        admin_topic_arn=admin_topic_arn,
    )
    provisioner(ProvisionerSettings.from_env()).reconcile(bundle, targets)
    return targets

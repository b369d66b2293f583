"""Metering recovery: usage records from the metering fallback queue into the usage table.

The gateway sends a record here when its usage write failed after Bedrock answered (it answered
the tenant anyway: the record will land). Each message is written with the gateway's own
conditional PutItem (tollgate.adapters.dynamodb.DynamoUsageStore), idempotent by request id: a
message delivered twice, or a record whose first write did succeed after all, writes nothing
new. From the usage table on, the stream and the aggregator take it like any record.

A message that cannot be written is reported as a batch item failure (Powertools batch
processing): SQS delivers it again after its visibility timeout and, after the queue's
maxReceiveCount, moves it to the dead-letter queue, which an alarm watches.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from tollgate.config import ConfigBundle
from tollgate.ledger import plan_of
from tollgate.ports import Ledger, UsageStore
from tollgate.usage import UsageRecord

logger = Logger(service="tollgate", child=True)


class PoisonMessageError(ValueError):
    """A message that does not hold a usage record (it ends up in the dead-letter queue)."""


def decode(message: SQSRecord) -> UsageRecord:
    try:
        return UsageRecord.from_item(json.loads(message.body))
    except json.JSONDecodeError as exc:
        raise PoisonMessageError(f"message {message.message_id} is not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PoisonMessageError(f"message {message.message_id} is not a valid usage record: {problems}") from None


class MeteringRecoveryService:
    """Writes deferred records; a record of a tenant with budgets or a token limit is settled on the
    ledger with it, exactly as the gateway would have (its reservation if still open, else late)."""

    def __init__(self, *, usage: UsageStore, bundle: ConfigBundle | None = None, ledger: Ledger | None = None):
        self._usage = usage
        self._bundle = bundle
        self._ledger = ledger

    def _write(self, record: SQSRecord) -> None:  # Powertools passes the message as ``record=``
        usage = decode(record)
        tenant = self._bundle.tenant(usage.tenant_id) if self._bundle is not None else None
        profile = self._bundle.profile(usage.profile) if self._bundle is not None else None
        plan = plan_of(tenant, profile, usage.requested_at) if tenant is not None and profile is not None else None
        if plan is not None and plan.needed and self._ledger is not None:
            reservation = self._ledger.open_reservation(usage.request_id)
            self._ledger.settle(usage, plan.holds, reservation, datetime.now(UTC))
        else:
            self._usage.record(usage)
        logger.info(
            "deferred usage record written",
            extra={"request_id": usage.request_id, "tenant_id": usage.tenant_id, "cost_usd": usage.cost_usd},
        )

    def process(self, event: dict[str, Any], processor: BatchProcessor, context: Any = None) -> dict[str, Any]:
        return dict(
            process_partial_response(event=event, record_handler=self._write, processor=processor, context=context)
        )

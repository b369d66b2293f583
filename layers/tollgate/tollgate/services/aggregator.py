"""The aggregator: usage-table stream records in, trend rows and metrics out, exactly once.

1. Powertools' BatchProcessor decodes each stream record into a UsageRecord; a record that
   does not decode (a poison record) is reported as a batch item failure.
2. The decoded records are folded and written by the TrendStore in transactions that also
   put one marker per record, so a replayed record adds nothing (see DynamoTrendStore).
3. Right after each transaction commits, the metrics of exactly the records it applied are
   emitted (EMF, stamped with the request minute). Replayed records emit nothing.
4. Records whose transaction failed are reported as failures too: Lambda retries from the
   first of them, bisects, and after its retries sends the batch's location to the SQS
   on-failure destination. Records after a failed one are applied anyway; when they are
   delivered again their markers make that harmless.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from pydantic import ValidationError

from tollgate.ports import MetricsSink, TrendStore
from tollgate.rollup import fold_metrics
from tollgate.usage import UsageRecord

logger = Logger(service="tollgate", child=True)


def stream_processor() -> BatchProcessor:
    """The batch processor of the usage stream.

    A batch in which every record failed is reported record by record too (not raised), so
    Lambda always gets the ReportBatchItemFailures answer the event source mapping asks for.
    """
    return BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


class PoisonRecordError(ValueError):
    """A stream record that can never be aggregated as it is."""


def decode(record: DynamoDBRecord) -> UsageRecord | None:
    """The usage record in a stream record; None for events that are not new usage."""
    if record.event_name is not DynamoDBRecordEventName.INSERT:
        return None  # the event source mapping filters these out; ignored if one slips through
    image = record.dynamodb.new_image if record.dynamodb else None
    if not image:
        raise PoisonRecordError(f"stream record {record.event_id} has no NewImage (is the stream NEW_IMAGE?)")
    try:
        return UsageRecord.from_item(image)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PoisonRecordError(f"usage record {image.get('request_id', '?')} is invalid: {problems}") from None


class AggregatorService:
    def __init__(self, *, trends: TrendStore, metrics: MetricsSink):
        self._trends = trends
        self._metrics = metrics

    def _emit(self, committed: list[UsageRecord]) -> None:
        self._metrics.emit(fold_metrics(committed))

    def process(self, event: dict[str, Any], processor: BatchProcessor, context: Any = None) -> dict[str, Any]:
        with processor(records=event.get("Records", []), handler=decode, lambda_context=context):
            results = processor.process()
            decoded: list[tuple[UsageRecord, Any]] = [
                (result, raw) for status, result, raw in results if status == "success" and result is not None
            ]
            raw_by_id = {record.request_id: raw for record, raw in decoded}
            outcome = self._trends.apply([record for record, _ in decoded], on_commit=self._emit)
            error = outcome.errors[-1] if outcome.errors else RuntimeError("trend write failed")
            for record in outcome.failed:
                # Powertools reports failures by the data class's sequence number, not the raw dict.
                raw = DynamoDBRecord(raw_by_id[record.request_id])
                processor.failure_handler(raw, (type(error), error, error.__traceback__))
            logger.info(
                "batch aggregated",
                extra={
                    "records": len(results),
                    "applied": len(outcome.applied),
                    "replayed": len(outcome.duplicates),
                    "failed": len(processor.fail_messages),
                },
            )
        return dict(processor.response())

"""Lambda's SQS event source mapping, emulated in this process.

In AWS, an SQS event source mapping (template.yaml's ``MeteringFallbackMapping``) polls the
queue, invokes the function synchronously with up to ``BatchSize`` messages as
``{"Records": [...]}``, and deletes the messages the invocation processed. When the function
raises, none is deleted; with ``ReportBatchItemFailures`` only the messages named in
``batchItemFailures`` stay (an invalid report fails the whole batch). Messages that stay become
visible again after the queue's visibility timeout and, past the queue's redrive policy's
``maxReceiveCount``, SQS moves them to the dead-letter queue. moto's own mapping would run the
function in Docker, so local mode polls the queue here and calls the handler in-process; the
visibility timeout and the redrive to the dead-letter queue are moto's own (it implements both).

Where this differs from Lambda: one poller, one ReceiveMessage (at most 10 messages) per
invocation, every POLL_INTERVAL_SECONDS; :meth:`QueueMappingSettings.from_template` refuses
the settings that would need more (a batching window, batches over 10, filters, scaling
limits, a disabled mapping).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tollgate_local.functions import LocalLambdaContext

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
POLL_INTERVAL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 2.0
_RECEIVE_LIMIT = 10  # the most one ReceiveMessage returns
_UNSUPPORTED = ("FilterCriteria", "ScalingConfig", "MetricsConfig", "ProvisionedPollerConfig")


@dataclass(frozen=True)
class QueueMappingSettings:
    batch_size: int = 10
    report_batch_item_failures: bool = False

    @classmethod
    def from_template(cls, properties: Mapping[str, Any]) -> QueueMappingSettings:
        """The Properties of an ``AWS::Lambda::EventSourceMapping`` on an SQS queue."""
        for name in _UNSUPPORTED:
            if name in properties:
                raise ValueError(f"{name} is not emulated locally for SQS event sources")
        if properties.get("Enabled", True) is not True:
            raise ValueError("a disabled SQS event source mapping is not emulated locally")
        if float(properties.get("MaximumBatchingWindowInSeconds", 0)) != 0:
            raise ValueError("MaximumBatchingWindowInSeconds is not emulated locally for SQS (only 0)")
        batch_size = int(properties.get("BatchSize", 10))
        if not 1 <= batch_size <= _RECEIVE_LIMIT:
            raise ValueError(f"BatchSize {batch_size}: only 1..10 is emulated locally for SQS (no batching window)")
        response_types = list(properties.get("FunctionResponseTypes", []))
        if set(response_types) - {"ReportBatchItemFailures"}:
            raise ValueError(f"FunctionResponseTypes {response_types} are not emulated locally")
        return cls(batch_size=batch_size, report_batch_item_failures="ReportBatchItemFailures" in response_types)


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": list(value.get("BinaryListValues", [])),
        "dataType": value.get("DataType", "String"),
    }


def lambda_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """A message from ReceiveMessage as Lambda passes it on (camelCase, attributes as strings)."""
    attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {k: _lambda_attribute(v) for k, v in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def new_message_record(body: str, *, queue_arn: str, region: str, at: datetime, message_id: str) -> dict[str, Any]:
    """A record for a message received for the first time (sample events and tests)."""
    stamp = str(int(at.timestamp() * 1000))
    message = {
        "MessageId": message_id,
        "ReceiptHandle": f"AQEB{uuid.uuid5(uuid.NAMESPACE_URL, message_id).hex}",
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": stamp,
            "SenderId": "AROAEXAMPLE:tollgate-gateway",
            "ApproximateFirstReceiveTimestamp": stamp,
        },
    }
    return lambda_record(message, queue_arn=queue_arn, region=region)


def failed_message_ids(response: Any, records: list[dict[str, Any]]) -> set[str] | None:
    """The messages a ReportBatchItemFailures response keeps in the queue; None: the whole batch failed."""
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return set()
    if not isinstance(failures, list):
        return None
    ids = {record["messageId"] for record in records}
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return None
        failed.add(identifier)
    return failed


class QueueMapping:
    """Polls an SQS queue and invokes a handler with its messages, as Lambda's mapping does."""

    def __init__(
        self,
        settings: QueueMappingSettings,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        *,
        function_name: str,
        region: str,
        account_id: str,
        context_factory: Callable[[], LocalLambdaContext] | None = None,
    ):
        self.settings = settings
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._queue_arn = f"arn:aws:sqs:{region}:{account_id}:{queue_url.rsplit('/', 1)[1]}"
        self._region = region
        self._handler = handler
        self.function_name = function_name
        self._context_factory = context_factory or (
            lambda: LocalLambdaContext(function_name=function_name, region=region, account_id=account_id)
        )
        self._run_lock = threading.Lock()
        self._counts = dict.fromkeys(("invocations", "messages_deleted", "messages_failed"), 0)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def run_once(self) -> int:
        """Receive one batch (if any), invoke the handler, delete what it processed; the messages received."""
        with self._run_lock:
            received = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self.settings.batch_size,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                return 0
            records = [lambda_record(m, queue_arn=self._queue_arn, region=self._region) for m in received]
            self._counts["invocations"] += 1
            event = json.loads(json.dumps({"Records": records}))  # a copy, as Lambda's JSON would be
            try:
                response = self._handler(event, self._context_factory())
            except Exception as error:
                log.warning("%s failed on %d messages: %r", self.function_name, len(records), error)
                failed: set[str] | None = None
            else:
                failed = failed_message_ids(response, records) if self.settings.report_batch_item_failures else set()
            kept = {r["messageId"] for r in records} if failed is None else failed
            done = [m for m in received if m["MessageId"] not in kept]
            if done:
                self._sqs.delete_message_batch(
                    QueueUrl=self._queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            self._counts["messages_deleted"] += len(done)
            self._counts["messages_failed"] += len(kept)
            return len(received)

    def stats(self) -> dict[str, int]:
        return dict(self._counts)

    # ------------------------------------------------------------------ background thread

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"the queue mapping of {self.function_name} is already running")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sqs-esm-{self.function_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(STOP_TIMEOUT_SECONDS)

    def _loop(self) -> None:
        stopping = self._stopping
        while not stopping.is_set():
            try:
                while self.run_once() and not stopping.is_set():
                    pass  # drain what is there, then wait
            except Exception:
                log.exception("queue mapping of %s: polling failed", self.function_name)
            stopping.wait(POLL_INTERVAL_SECONDS)

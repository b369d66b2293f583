"""Lambda's DynamoDB Streams event source mapping, emulated in this process.

In AWS, the event source mapping (template.yaml's ``UsageStreamMapping``) polls each shard of
the usage table's stream, drops records its filter criteria reject (they count as processed
and take no room in a batch), gathers the rest into batches (``BatchSize`` records or
``MaximumBatchingWindowInSeconds`` of waiting, whichever comes first), invokes the function
synchronously with ``{"Records": [...]}`` and moves the shard's checkpoint on only when the
batch is done. A failed batch is retried, bisected (``BisectBatchOnFunctionError``) or, with
``ReportBatchItemFailures``, retried from the first failed record; when ``MaximumRetryAttempts``
is spent, a description of the batch (not the records) goes to the ``OnFailure`` destination
and the shard moves on.

moto's own EventSourceMapping would run the function in Docker and empty the stream, so local
mode reads the stream itself (:class:`tollgate_local.streams.StreamReader`) and calls the
handler here. Where this differs from Lambda:

* the checkpoint is this object's memory: records are read once and kept until finished, and
  a new mapping starts again at TRIM_HORIZON;
* one shard is processed at a time, in order (``ParallelizationFactor`` 1); the 6 MB payload
  limit, ``MaximumRecordAgeInSeconds`` and tumbling windows are not emulated and
  :meth:`MappingSettings.from_template` refuses templates that set them;
* the on-failure destination must be an SQS queue;
* retries back off 50 ms, doubling to at most 1 s (Lambda does not document its back-off).
"""

from __future__ import annotations

import json
import logging
import operator
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tollgate_local.functions import LocalLambdaContext
from tollgate_local.streams import StreamReader

log = logging.getLogger(__name__)

Record = dict[str, Any]
Handler = Callable[[dict[str, Any], Any], Any]

POLL_INTERVAL_SECONDS = 0.2
STOP_TIMEOUT_SECONDS = 2.0
FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 1.0
GET_RECORDS_LIMIT = 1000  # the most one GetRecords call returns

# ---------------------------------------------------------------------------- filtering

_SUPPORTED_OPERATORS = ("exists", "prefix", "anything-but", "numeric")
_NUMERIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MISSING = object()


def parse_filter_pattern(text: str) -> dict[str, Any]:
    """A ``FilterCriteria`` pattern (a JSON string), checked against the rules emulated here.

    Supported, as Lambda documents them: nested keys, lists of exact values (strings, numbers,
    booleans, null), ``{"exists": bool}``, ``{"prefix": str}``, ``{"anything-but": value or
    [values]}`` and ``{"numeric": [op, n, ...]}``. Anything else raises ValueError naming it.
    """
    try:
        pattern = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"filter pattern {text!r} is not JSON: {error}") from error
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"filter pattern {text!r} must be a non-empty JSON object")
    _check_pattern(pattern, text, "")
    return pattern


def _check_pattern(pattern: Mapping[str, Any], text: str, path: str) -> None:
    for key, rules in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(rules, dict) and rules:
            _check_pattern(rules, text, where)
        elif isinstance(rules, list) and rules:
            for rule in rules:
                _check_rule(rule, text, where)
        else:
            raise ValueError(
                f"filter pattern {text!r}: {where} must be a non-empty object or list of values, not {rules!r}"
            )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_rule(rule: Any, text: str, where: str) -> None:
    if _is_scalar(rule):
        return
    if not isinstance(rule, dict) or len(rule) != 1:
        raise ValueError(f"filter pattern {text!r}: rule {rule!r} at {where} must be a value or a one-key object")
    ((name, argument),) = rule.items()
    if name not in _SUPPORTED_OPERATORS or (name == "anything-but" and isinstance(argument, dict)):
        shown = f"anything-but/{next(iter(argument), '')}" if name == "anything-but" else name
        raise ValueError(
            f"filter pattern {text!r}: operator {shown!r} at {where} is not supported by the local event "
            f"source mapping (supported: exact values, {', '.join(_SUPPORTED_OPERATORS)})"
        )
    valid = {
        "exists": lambda: isinstance(argument, bool),
        "prefix": lambda: isinstance(argument, str),
        "anything-but": lambda: all(_is_scalar(a) for a in (argument if isinstance(argument, list) else [argument])),
        "numeric": lambda: _valid_numeric(argument),
    }[name]()
    if not valid:
        raise ValueError(f"filter pattern {text!r}: invalid {name!r} rule {rule!r} at {where}")


def _valid_numeric(argument: Any) -> bool:
    return (
        isinstance(argument, list)
        and len(argument) in (2, 4)
        and all(op in _NUMERIC_OPERATORS for op in argument[::2])
        and all(_is_number(bound) for bound in argument[1::2])
    )


def matches(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether a record matches a parsed pattern: every key of the pattern holds (AND), and a
    key holds when any of its rules does (OR); a list in the record matches if any element does."""
    for key, rules in pattern.items():
        value = record.get(key, _MISSING)
        if isinstance(rules, dict):
            if not matches(rules, value if isinstance(value, Mapping) else {}):
                return False
        elif not any(_rule_matches(rule, value) for rule in rules):
            return False
    return True


def _rule_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict) and "exists" in rule:
        return (value is not _MISSING) is rule["exists"]
    if value is _MISSING:
        return False  # every other rule, anything-but included, needs the key to be there
    return any(_value_matches(rule, v) for v in (value if isinstance(value, list) else [value]))


def _same(expected: Any, value: Any) -> bool:
    """JSON equality: 1 matches 1.0, but never "1" nor true."""
    if _is_number(expected) and _is_number(value):
        return bool(expected == value)
    return type(expected) is type(value) and bool(expected == value)


def _value_matches(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _same(rule, value)
    ((name, argument),) = rule.items()
    if name == "prefix":
        return isinstance(value, str) and value.startswith(argument)
    if name == "anything-but":
        return not any(_same(excluded, value) for excluded in (argument if isinstance(argument, list) else [argument]))
    pairs = zip(argument[::2], argument[1::2], strict=True)  # numeric: every (operator, bound) holds
    return _is_number(value) and all(_NUMERIC_OPERATORS[op](value, bound) for op, bound in pairs)


# ---------------------------------------------------------------------------- settings

# Properties of AWS::Lambda::EventSourceMapping this emulator does not implement, with the one
# value it can honour (the AWS default, or what StreamReader does).
_FIXED_PROPERTIES: dict[str, Any] = {
    "StartingPosition": "TRIM_HORIZON",
    "ParallelizationFactor": 1,
    "MaximumRecordAgeInSeconds": -1,
    "TumblingWindowInSeconds": 0,
    "Enabled": True,
}


@dataclass(frozen=True)
class MappingSettings:
    """The event source mapping's batching, retry and filter settings (AWS defaults otherwise)."""

    batch_size: int = 100
    batching_window_seconds: float = 0
    maximum_retry_attempts: int = -1  # -1: retry until the record expires (here: forever)
    bisect_on_function_error: bool = False
    report_batch_item_failures: bool = False
    filter_patterns: tuple[dict[str, Any], ...] = ()  # parsed; a record passes if any matches
    on_failure_destination: Any = None  # the template's value: an ARN or an intrinsic (!GetAtt)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"BatchSize must be 1..10000, not {self.batch_size}")
        if not 0 <= self.batching_window_seconds <= 300:
            raise ValueError(f"MaximumBatchingWindowInSeconds must be 0..300, not {self.batching_window_seconds}")
        if not -1 <= self.maximum_retry_attempts <= 10_000:
            raise ValueError(f"MaximumRetryAttempts must be -1..10000, not {self.maximum_retry_attempts}")
        destination = self.on_failure_destination
        if isinstance(destination, str) and destination.split(":")[2:3] != ["sqs"]:
            raise ValueError(f"on-failure destination {destination!r}: only SQS queues are emulated")

    @classmethod
    def from_template(cls, properties: Mapping[str, Any]) -> MappingSettings:
        """The Properties of an AWS::Lambda::EventSourceMapping resource.

        Raises ValueError for settings this emulator would silently get wrong (see
        ``_FIXED_PROPERTIES``) and for filter patterns it does not support.
        """
        for name, honoured in _FIXED_PROPERTIES.items():
            if name in properties and properties[name] != honoured:
                raise ValueError(f"{name}: {properties[name]!r} is not emulated locally (only {honoured!r})")
        response_types = list(properties.get("FunctionResponseTypes", []))
        if set(response_types) - {"ReportBatchItemFailures"}:
            raise ValueError(f"FunctionResponseTypes {response_types} are not emulated locally")
        filters = properties.get("FilterCriteria", {}).get("Filters", [])
        return cls(
            batch_size=int(properties.get("BatchSize", 100)),
            batching_window_seconds=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
            maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            bisect_on_function_error=bool(properties.get("BisectBatchOnFunctionError", False)),
            report_batch_item_failures="ReportBatchItemFailures" in response_types,
            filter_patterns=tuple(parse_filter_pattern(f["Pattern"]) for f in filters),
            on_failure_destination=properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
        )

    def accepts(self, record: Mapping[str, Any]) -> bool:
        """Whether the filter criteria let the record through (no filters: every record)."""
        return not self.filter_patterns or any(matches(pattern, record) for pattern in self.filter_patterns)

    def exhausted(self, failures: int) -> bool:
        """Whether a batch that failed this many (counted) times is past MaximumRetryAttempts."""
        return self.maximum_retry_attempts >= 0 and failures > self.maximum_retry_attempts


# ---------------------------------------------------------------------------- the mapping


@dataclass
class _Batch:
    """Records invoked together, and their history (a retry sends exactly these records again)."""

    records: list[Record]
    failures: int = 0  # failed invocations counted against MaximumRetryAttempts
    invocations: int = 0  # approximateInvokeCount of the on-failure record
    last_context: LocalLambdaContext | None = None


@dataclass
class _Shard:
    shard_id: str
    buffered: list[tuple[float, Record]] = field(default_factory=list)  # (buffered at, record), not yet batched
    in_flight: list[_Batch] = field(default_factory=list)  # the batch being tried, then its bisected siblings

    @property
    def lag(self) -> int:
        return len(self.buffered) + sum(len(batch.records) for batch in list(self.in_flight))


def _sequence_number(record: Mapping[str, Any]) -> str:
    sequence: str = record["dynamodb"]["SequenceNumber"]
    return sequence


def _arrival(record: Mapping[str, Any]) -> str:
    created = datetime.fromtimestamp(record["dynamodb"]["ApproximateCreationDateTime"], UTC)
    return created.strftime("%Y-%m-%dT%H:%M:%SZ")


def on_failure_record(batch: _Batch, *, shard_id: str, stream_arn: str, function_arn: str) -> dict[str, Any]:
    """What Lambda sends to the on-failure destination for a discarded stream batch: where the
    records are (shard, sequence numbers), never the records themselves."""
    first, last = batch.records[0], batch.records[-1]
    request_id = batch.last_context.aws_request_id if batch.last_context else ""
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": batch.invocations,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": _sequence_number(first),
            "endSequenceNumber": _sequence_number(last),
            "approximateArrivalOfFirstRecord": _arrival(first),
            "approximateArrivalOfLastRecord": _arrival(last),
            "batchSize": len(batch.records),
            "streamArn": stream_arn,
        },
    }


def records_done(response: Any, records: list[Record]) -> int | None:
    """How many leading records of a batch a ReportBatchItemFailures response lets Lambda checkpoint.

    ``len(records)`` when all succeeded (None, {}, a missing, null or empty batchItemFailures);
    the index of the lowest failed sequence number when items failed; None, meaning the whole
    batch failed, when the response is not an object or an itemIdentifier is missing, empty or
    not a sequence number of the batch.
    """
    if response is None:
        return len(records)
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return len(records)
    if not isinstance(failures, list):
        return None
    positions = {_sequence_number(record): index for index, record in enumerate(records)}
    failed = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return None
        failed.append(positions[identifier])
    return min(failed)


class StreamMapping:
    """Polls a DynamoDB stream and invokes a handler with the records, as Lambda's mapping does.

    Invocation outcomes, per AWS's documentation:

    * the handler returns: the batch succeeded, unless ``ReportBatchItemFailures`` is on and the
      response says otherwise (see :func:`records_done`): then the records before the lowest
      failed sequence number are done and the rest of the batch is retried;
    * the handler raises, or its failure report is invalid: the whole batch failed. With
      ``BisectBatchOnFunctionError`` a batch of two or more records is split in two halves,
      tried one after the other; splitting does not count against ``MaximumRetryAttempts``
      ("Splitting batches doesn't consume the retry quota") and the halves keep the count so far.
      Otherwise the same batch is retried.

    A failed invocation that is not a split counts one retry attempt; when a batch has failed
    ``MaximumRetryAttempts + 1`` times it is discarded: described to the SQS on-failure
    destination (if the settings name one, else only logged) and the shard moves on.
    A partially failed batch's remainder is treated the same way (with bisect on, Lambda
    "bisects at the returned sequence number", which is that remainder).
    """

    def __init__(
        self,
        settings: MappingSettings,
        reader: StreamReader,
        handler: Handler,
        *,
        sqs_client: Any,
        queue_url: str | None,
        function_name: str,
        context_factory: Callable[[], LocalLambdaContext] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if settings.on_failure_destination is not None and (sqs_client is None or not queue_url):
            raise ValueError("the settings name an on-failure destination: pass its sqs_client and queue_url")
        self.settings = settings
        self._reader = reader
        self._handler = handler
        self._sqs = sqs_client
        self._queue_url = queue_url
        self.function_name = function_name
        _, _, _, region, account_id, _ = reader.stream_arn.split(":", 5)
        self._context_factory = context_factory or (
            lambda: LocalLambdaContext(function_name=function_name, region=region, account_id=account_id)
        )
        self._clock = clock
        self._sleep = sleep
        self._shards: dict[str, _Shard] = {}
        self._run_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("invocations", "records_delivered", "records_filtered", "retries", "bisections", "sent_to_dlq"), 0
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ polling

    def run_once(self, now: float | None = None) -> int:
        """Read new records, then deliver every batch that is due; the number of records finished.

        A batch is due when BatchSize records are buffered, or when the first buffered record has
        waited MaximumBatchingWindowInSeconds (``now`` defaults to the clock). Failed batches are
        retried (after the back-off) within this call until they succeed or are discarded, so a
        record is finished when the function has processed it or it has been discarded; filtered
        records are not counted here (see ``stats()["records_filtered"]``).
        """
        return self._run(now, threading.Event())

    def _run(self, now: float | None, stopping: threading.Event) -> int:
        with self._run_lock:
            now = self._clock() if now is None else now
            self._read(now)
            return sum(self._drain(shard, now, stopping) for shard in list(self._shards.values()))

    def _read(self, now: float) -> None:
        filtered = 0
        for shard_id, records in self._reader.poll_shards(GET_RECORDS_LIMIT).items():
            shard = self._shards.setdefault(shard_id, _Shard(shard_id))
            for record in records:
                if self.settings.accepts(record):
                    shard.buffered.append((now, record))
                else:
                    filtered += 1  # Lambda checkpoints past records its filters drop
        self._count(records_filtered=filtered)

    # ------------------------------------------------------------------ delivery

    def _drain(self, shard: _Shard, now: float, stopping: threading.Event) -> int:
        finished = 0
        while not stopping.is_set():
            if not shard.in_flight:
                batch = self._due_batch(shard, now)
                if batch is None:
                    break
                shard.in_flight.append(batch)
            finished += self._try(shard, shard.in_flight[0])
        return finished

    def _due_batch(self, shard: _Shard, now: float) -> _Batch | None:
        if not shard.buffered:
            return None
        full = len(shard.buffered) >= self.settings.batch_size
        waited = now - shard.buffered[0][0] >= self.settings.batching_window_seconds
        if not (full or waited):
            return None
        taken = shard.buffered[: self.settings.batch_size]
        del shard.buffered[: self.settings.batch_size]
        return _Batch([record for _, record in taken])

    def _try(self, shard: _Shard, batch: _Batch) -> int:
        """Invoke the head batch of a shard once and act on the outcome; the records finished."""
        if self.settings.exhausted(batch.failures):  # discarding failed last time (SQS error)
            return self._discard(shard, batch)
        done = self._invoke(batch)
        if done is not None:
            self._count(records_delivered=done)
            if done == len(batch.records):
                shard.in_flight.pop(0)
                return done
            batch.records = batch.records[done:]  # checkpoint at the lowest failed record
            return done + self._failed(shard, batch)
        if self.settings.bisect_on_function_error and len(batch.records) > 1:
            half = (len(batch.records) + 1) // 2
            shard.in_flight[0:1] = [
                _Batch(batch.records[:half], failures=batch.failures),
                _Batch(batch.records[half:], failures=batch.failures),
            ]
            self._count(bisections=1)
            return 0
        return self._failed(shard, batch)

    def _invoke(self, batch: _Batch) -> int | None:
        """Call the handler; how many leading records are done (None: the whole batch failed)."""
        context = self._context_factory()
        batch.last_context = context
        batch.invocations += 1
        self._count(invocations=1)
        event = json.loads(json.dumps({"Records": batch.records}))  # a copy, as Lambda's JSON would be
        try:
            response = self._handler(event, context)
        except Exception as error:
            log.warning(
                "%s failed on %d records (%s..%s): %r",
                self.function_name,
                len(batch.records),
                _sequence_number(batch.records[0]),
                _sequence_number(batch.records[-1]),
                error,
            )
            return None
        if not self.settings.report_batch_item_failures:
            return len(batch.records)  # Lambda ignores the response without ReportBatchItemFailures
        return records_done(response, batch.records)

    def _failed(self, shard: _Shard, batch: _Batch) -> int:
        """Count a failed attempt: retry after a back-off, or discard once retries are spent."""
        batch.failures += 1
        if self.settings.exhausted(batch.failures):
            return self._discard(shard, batch)
        self._count(retries=1)
        self._sleep(min(FIRST_BACKOFF_SECONDS * 2 ** (batch.failures - 1), MAX_BACKOFF_SECONDS))
        return 0

    def _discard(self, shard: _Shard, batch: _Batch) -> int:
        if self.settings.on_failure_destination is None:
            log.warning(
                "%s: retries exhausted, %d records dropped (no on-failure destination)",
                self.function_name,
                len(batch.records),
            )
        else:
            context = batch.last_context or self._context_factory()
            record = on_failure_record(
                batch,
                shard_id=shard.shard_id,
                stream_arn=self._reader.stream_arn,
                function_arn=context.invoked_function_arn,
            )
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(record))
            self._count(sent_to_dlq=len(batch.records))
        shard.in_flight.pop(0)
        return len(batch.records)

    # ------------------------------------------------------------------ background thread

    def start(self) -> None:
        """Poll in a daemon thread every POLL_INTERVAL_SECONDS until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError(f"the event source mapping of {self.function_name} is already running")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"esm-{self.function_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling: the current invocation finishes, pending retries wait for the next start."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            log.warning("event source mapping of %s still busy after %ss", self.function_name, STOP_TIMEOUT_SECONDS)

    def _loop(self) -> None:
        stopping = self._stopping
        while not stopping.is_set():
            try:
                self._run(None, stopping)
            except Exception:
                log.exception("event source mapping of %s: polling failed", self.function_name)
            stopping.wait(POLL_INTERVAL_SECONDS)

    # ------------------------------------------------------------------ counters

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for name, increment in increments.items():
                self._counts[name] += increment

    def stats(self) -> dict[str, int]:
        """Invocations; records delivered (processed by the function, once each), filtered out and
        sent to the on-failure destination; retries (failed invocations retried, splits excluded);
        bisections (splits); lag (records read but not finished)."""
        with self._stats_lock:
            counts = dict(self._counts)
        counts["lag"] = sum(shard.lag for shard in list(self._shards.values()))
        return counts

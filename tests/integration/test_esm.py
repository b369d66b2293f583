"""The local event source mapping against a moto stream: filtering, batching, retries, bisect, on-failure."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tollgate_local import runtime
from tollgate_local.esm import Handler, MappingSettings, StreamMapping, matches, parse_filter_pattern
from tollgate_local.runtime import LocalFunction, LogSink
from tollgate_local.streams import StreamReader
from tollgate_local.template import load_template

REGION = "us-east-1"
TABLE = "esm-test-usage"
FUNCTION = "esm-test-aggregator"
INSERTS_ONLY = {"FilterCriteria": {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]}}


@dataclass
class Aws:
    dynamodb: Any
    sqs: Any
    queue_url: str
    queue_arn: str
    stream_arn: str

    @property
    def streams(self) -> Any:
        return boto3.client("dynamodbstreams", region_name=REGION)

    def reader(self) -> StreamReader:
        return StreamReader(self.streams, self.stream_arn, REGION)

    def put(self, *names: str) -> None:
        for name in names:
            self.dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": name}, "n": {"N": "1"}})

    def shard_id(self) -> str:
        (shard,) = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        shard_id: str = shard["ShardId"]
        return shard_id

    def sequence_numbers(self) -> dict[str, str]:
        """The sequence number of each key's INSERT record."""
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=self.shard_id(), ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator)["Records"]
        return {key(r): r["dynamodb"]["SequenceNumber"] for r in records if r["eventName"] == "INSERT"}

    def failures(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="esm-test-failures")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield Aws(dynamodb, sqs, queue_url, queue_arn, table["LatestStreamArn"])


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def key(record: dict[str, Any]) -> str:
    value: str = record["dynamodb"]["Keys"]["pk"]["S"]
    return value


@dataclass
class FakeHandler:
    """Records every invocation; raises for poison keys; ``report`` answers with batchItemFailures."""

    poison: set[str] = field(default_factory=set)
    report: list[Any] = field(default_factory=list)  # responses to return, in turn, before succeeding
    batches: list[list[str]] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)  # keys of the batches answered with plain success

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        names = [key(record) for record in event["Records"]]
        self.batches.append(names)
        if self.poison & set(names):
            raise RuntimeError(f"poison record in {names}")
        if self.report:
            return self.report.pop(0)(event["Records"])
        self.processed.extend(names)
        return {"batchItemFailures": []}


def mapping(
    aws: Aws,
    settings: MappingSettings,
    handler: Handler,
    clock: Clock | None = None,
    sleeps: list[float] | None = None,
) -> StreamMapping:
    """A mapping on the test stream with a fake clock; its back-off sleeps are recorded, never slept."""
    return StreamMapping(
        settings,
        aws.reader(),
        handler,
        sqs_client=aws.sqs,
        queue_url=aws.queue_url,
        function_name=FUNCTION,
        clock=clock or Clock(),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def keys(count: int) -> list[str]:
    return [f"item-{index:03d}" for index in range(count)]


# ---------------------------------------------------------------------------- settings


def test_settings_from_template_are_the_template_values() -> None:
    properties = load_template()["Resources"]["UsageStreamMapping"]["Properties"]

    assert MappingSettings.from_template(properties) == MappingSettings(
        batch_size=100,
        batching_window_seconds=5,
        maximum_retry_attempts=5,
        bisect_on_function_error=True,
        report_batch_item_failures=True,
        filter_patterns=({"eventName": ["INSERT"]},),
        on_failure_destination={"Fn::GetAtt": ["AggregationFailureQueue", "Arn"]},
    )


def test_settings_default_to_aws_defaults() -> None:
    settings = MappingSettings.from_template({})

    assert settings == MappingSettings()
    assert (settings.batch_size, settings.batching_window_seconds, settings.maximum_retry_attempts) == (100, 0, -1)
    assert not settings.bisect_on_function_error
    assert not settings.report_batch_item_failures
    assert settings.filter_patterns == ()
    assert settings.on_failure_destination is None


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"StartingPosition": "LATEST"}, "StartingPosition"),
        ({"ParallelizationFactor": 2}, "ParallelizationFactor"),
        ({"MaximumRecordAgeInSeconds": 60}, "MaximumRecordAgeInSeconds"),
        ({"BatchSize": 0}, "BatchSize"),
        ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:1:t"}}}, "only SQS"),
    ],
)
def test_settings_refuse_what_is_not_emulated(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MappingSettings.from_template(properties)


# ---------------------------------------------------------------------------- filter patterns

RECORD = {
    "eventName": "INSERT",
    "dynamodb": {
        "Keys": {"pk": {"S": "tenant#acme"}},
        "NewImage": {"tenant": {"S": "acme"}, "cost": {"N": "12"}, "tags": ["a", "b"]},
        "SizeBytes": 120,
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{"eventName": ["INSERT"]}', True),
        ('{"eventName": ["MODIFY", "REMOVE"]}', False),
        ('{"dynamodb": {"NewImage": {"tenant": {"S": ["acme", "globex"]}}}}', True),
        ('{"dynamodb": {"NewImage": {"tenant": {"S": ["globex"]}}}}', False),
        ('{"dynamodb": {"SizeBytes": [120]}}', True),
        ('{"dynamodb": {"SizeBytes": ["120"]}}', False),
        ('{"dynamodb": {"NewImage": {"tags": ["b"]}}}', True),
        ('{"dynamodb": {"NewImage": {"cost": [{"exists": true}]}}}', True),
        ('{"dynamodb": {"NewImage": {"gone": [{"exists": false}]}}}', True),
        ('{"dynamodb": {"OldImage": {"cost": [{"exists": false}]}}}', True),
        ('{"dynamodb": {"OldImage": {"cost": [{"exists": true}]}}}', False),
        ('{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "tenant#"}]}}}}', True),
        ('{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "key#"}]}}}}', False),
        ('{"eventName": [{"anything-but": ["REMOVE", "MODIFY"]}]}', True),
        ('{"eventName": [{"anything-but": "INSERT"}]}', False),
        ('{"userIdentity": [{"anything-but": ["x"]}]}', False),
        ('{"dynamodb": {"SizeBytes": [{"numeric": [">", 100, "<=", 120]}]}}', True),
        ('{"dynamodb": {"SizeBytes": [{"numeric": ["<", 100]}]}}', False),
        ('{"eventName": ["INSERT"], "dynamodb": {"SizeBytes": [1]}}', False),
    ],
)
def test_filter_patterns_match_as_lambda_does(pattern: str, expected: bool) -> None:
    assert matches(parse_filter_pattern(pattern), RECORD) is expected


def test_filters_are_ored() -> None:
    settings = MappingSettings(
        filter_patterns=(
            parse_filter_pattern('{"eventName": ["REMOVE"]}'),
            parse_filter_pattern('{"eventName": ["INSERT"]}'),
        )
    )

    assert settings.accepts(RECORD)
    assert not settings.accepts({**RECORD, "eventName": "MODIFY"})


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ('{"key": [{"suffix": ".png"}]}', "'suffix'"),
        ('{"key": [{"equals-ignore-case": "a"}]}', "'equals-ignore-case'"),
        ('{"key": [{"anything-but": {"prefix": "a"}}]}', "'anything-but/prefix'"),
        ('{"key": [{"numeric": ["!=", 1]}]}', "invalid 'numeric'"),
        ('{"key": "INSERT"}', "must be a non-empty object or list"),
        ('{"key": []}', "must be a non-empty object or list"),
        ("[]", "non-empty JSON object"),
        ("{eventName", "not JSON"),
    ],
)
def test_unsupported_filter_patterns_are_refused_by_name(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        MappingSettings.from_template({"FilterCriteria": {"Filters": [{"Pattern": pattern}]}})


# ---------------------------------------------------------------------------- the mapping on a moto stream


def test_filter_drops_modify_and_remove(aws: Aws) -> None:
    handler = FakeHandler()
    esm = mapping(aws, MappingSettings.from_template(INSERTS_ONLY), handler)
    aws.put(*keys(3))
    aws.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "item-000"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    aws.dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "item-001"}})

    assert esm.run_once() == 3

    assert handler.batches == [keys(3)]
    assert esm.stats() == {
        "invocations": 1,
        "records_delivered": 3,
        "records_filtered": 2,
        "retries": 0,
        "bisections": 0,
        "sent_to_dlq": 0,
        "lag": 0,
    }


def test_records_arrive_as_lambda_delivers_them(aws: Aws) -> None:
    events: list[dict[str, Any]] = []
    esm = mapping(aws, MappingSettings(), lambda event, _context: events.append(event))
    aws.put("item-000")

    esm.run_once()

    (record,) = events[0]["Records"]
    assert record["eventName"] == "INSERT"
    assert record["eventVersion"] == "1.1"
    assert record["eventSourceARN"] == aws.stream_arn
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"] == {"pk": {"S": "item-000"}, "n": {"N": "1"}}


def test_batch_size_and_window_are_honoured(aws: Aws) -> None:
    clock = Clock(now=100.0)
    handler = FakeHandler()
    esm = mapping(aws, MappingSettings(batch_size=3, batching_window_seconds=5), handler, clock)
    aws.put(*keys(7))

    assert esm.run_once() == 6  # two full batches go at once; one record waits for the window
    assert handler.batches == [keys(7)[0:3], keys(7)[3:6]]
    assert esm.stats()["lag"] == 1

    clock.now = 104.9
    aws.put("item-007")
    assert esm.run_once() == 0  # the window runs from the first buffered record (t=100)
    assert esm.stats()["lag"] == 2

    clock.now = 105.0
    assert esm.run_once() == 2
    assert handler.batches[2:] == [["item-006", "item-007"]]
    assert esm.stats()["lag"] == 0


def test_without_window_every_poll_delivers_at_once(aws: Aws) -> None:
    handler = FakeHandler()
    esm = mapping(aws, MappingSettings(), handler)
    aws.put(*keys(5))
    assert esm.run_once() == 5
    aws.put("item-005")
    assert esm.run_once() == 1

    assert handler.batches == [keys(5), ["item-005"]]


def failing(*names: str) -> Any:
    """A batchItemFailures response naming the given keys' sequence numbers."""
    return lambda records: {
        "batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records if key(r) in names]
    }


def test_partial_failure_retries_from_the_lowest_failed_record_only(aws: Aws) -> None:
    handler = FakeHandler(report=[failing("item-007", "item-004")])
    esm = mapping(aws, MappingSettings(report_batch_item_failures=True, maximum_retry_attempts=2), handler)
    aws.put(*keys(10))

    assert esm.run_once() == 10

    assert handler.batches == [keys(10), keys(10)[4:]]  # item-000..003 are not delivered again
    assert handler.processed == keys(10)[4:]
    assert esm.stats()["records_delivered"] == 10
    assert esm.stats()["retries"] == 1


def test_failure_report_is_ignored_without_report_batch_item_failures(aws: Aws) -> None:
    handler = FakeHandler(report=[failing("item-001")])
    esm = mapping(aws, MappingSettings(), handler)
    aws.put(*keys(3))

    assert esm.run_once() == 3
    assert handler.batches == [keys(3)]


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "123"}]},  # not a sequence number of the batch
        {"batchItemFailures": [{"id": "x"}]},
        "not an object",
    ],
)
def test_invalid_failure_report_fails_the_whole_batch(aws: Aws, response: Any) -> None:
    handler = FakeHandler(report=[lambda _records: response])
    esm = mapping(aws, MappingSettings(report_batch_item_failures=True), handler)
    aws.put(*keys(4))

    assert esm.run_once() == 4

    assert handler.batches == [keys(4), keys(4)]


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}])
def test_empty_failure_report_is_success(aws: Aws, response: Any) -> None:
    handler = FakeHandler(report=[lambda _records: response])
    esm = mapping(aws, MappingSettings(report_batch_item_failures=True), handler)
    aws.put(*keys(2))

    assert esm.run_once() == 2
    assert handler.batches == [keys(2)]


def test_poison_record_is_bisected_alone_into_the_failure_queue(aws: Aws) -> None:
    """template.yaml's settings: the poison record is isolated, retried 5 times, then described in SQS."""
    properties = load_template()["Resources"]["UsageStreamMapping"]["Properties"]
    settings = replace(MappingSettings.from_template(properties), on_failure_destination=aws.queue_arn)
    clock = Clock()
    handler = FakeHandler(poison={"item-013"})
    esm = mapping(aws, settings, handler, clock)
    aws.put(*keys(20))
    aws.dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "item-002"}})

    assert esm.run_once() == 0  # waiting for the 5 s batching window
    clock.now = 5.0
    assert esm.run_once() == 20

    everything_else = [k for k in keys(20) if k != "item-013"]
    assert handler.processed == everything_else  # each once, in stream order
    assert handler.batches.count(["item-013"]) == 6  # first try + MaximumRetryAttempts (5)
    (failure,) = aws.failures()
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 6
    assert failure["requestContext"]["functionArn"] == f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}"
    assert failure["requestContext"]["requestId"]
    assert failure["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert failure["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", failure["timestamp"])
    info = failure["DDBStreamBatchInfo"]
    assert info == {
        "shardId": aws.shard_id(),
        "startSequenceNumber": aws.sequence_numbers()["item-013"],
        "endSequenceNumber": aws.sequence_numbers()["item-013"],
        "approximateArrivalOfFirstRecord": info["approximateArrivalOfFirstRecord"],
        "approximateArrivalOfLastRecord": info["approximateArrivalOfFirstRecord"],
        "batchSize": 1,
        "streamArn": aws.stream_arn,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["approximateArrivalOfFirstRecord"])
    assert esm.stats() == {
        "invocations": 14,  # 20 -> 10 ok + 10 -> 5 + 5 ok -> 3 ok + 2 -> 1 (x6) + 1 ok
        "records_delivered": 19,
        "records_filtered": 1,
        "retries": 5,
        "bisections": 4,
        "sent_to_dlq": 1,
        "lag": 0,
    }


def test_without_bisect_the_whole_batch_goes_to_the_failure_queue(aws: Aws) -> None:
    handler = FakeHandler(poison={"item-001"})
    settings = MappingSettings(maximum_retry_attempts=2, on_failure_destination=aws.queue_arn)
    sleeps: list[float] = []
    esm = mapping(aws, settings, handler, sleeps=sleeps)
    aws.put(*keys(3))

    assert esm.run_once() == 3

    assert handler.batches == [keys(3)] * 3
    assert sleeps == [0.05, 0.1]  # a back-off before each retry
    (failure,) = aws.failures()
    sequences = aws.sequence_numbers()
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        sequences["item-000"],
        sequences["item-002"],
        3,
    )
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert esm.stats()["sent_to_dlq"] == 3


def test_partially_failed_remainder_goes_to_the_failure_queue_when_retries_run_out(aws: Aws) -> None:
    handler = FakeHandler(report=[failing("item-002")] * 2)
    settings = MappingSettings(
        maximum_retry_attempts=1,
        bisect_on_function_error=True,
        report_batch_item_failures=True,
        on_failure_destination=aws.queue_arn,
    )
    esm = mapping(aws, settings, handler)
    aws.put(*keys(5))

    assert esm.run_once() == 5

    assert handler.batches == [keys(5), keys(5)[2:]]  # bisected "at the returned sequence number"
    (failure,) = aws.failures()
    sequences = aws.sequence_numbers()
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        sequences["item-002"],
        sequences["item-004"],
        3,
    )
    assert esm.stats()["records_delivered"] == 2
    assert esm.stats()["sent_to_dlq"] == 3


def test_without_destination_exhausted_records_are_dropped(aws: Aws) -> None:
    handler = FakeHandler(poison={"item-000"})
    esm = mapping(aws, MappingSettings(maximum_retry_attempts=0), handler)
    aws.put(*keys(2))

    assert esm.run_once() == 2
    assert handler.batches == [keys(2)]
    assert aws.failures() == []
    assert esm.stats()["sent_to_dlq"] == 0


# ---------------------------------------------------------------------------- background thread


def wait_for(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_thread_delivers_until_stopped(aws: Aws) -> None:
    handler = FakeHandler()
    esm = StreamMapping(
        MappingSettings(), aws.reader(), handler, sqs_client=aws.sqs, queue_url=None, function_name=FUNCTION
    )
    esm.start()
    try:
        aws.put(*keys(3))
        wait_for(lambda: len(handler.processed) == 3)
    finally:
        started = time.monotonic()
        esm.stop()
    assert time.monotonic() - started < 2
    aws.put("item-003")
    time.sleep(0.3)
    assert handler.processed == keys(3)


class FlakyReader(StreamReader):
    """A reader whose first poll fails, as a stream endpoint that is briefly down would."""

    failed = False

    def poll_shards(self, limit: int = 1000) -> dict[str, list[dict[str, Any]]]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("stream endpoint down")
        return super().poll_shards(limit)


def test_polling_errors_are_logged_and_polling_goes_on(aws: Aws, caplog: pytest.LogCaptureFixture) -> None:
    handler = FakeHandler()
    reader = FlakyReader(aws.streams, aws.stream_arn, REGION)
    esm = StreamMapping(MappingSettings(), reader, handler, sqs_client=aws.sqs, queue_url=None, function_name=FUNCTION)
    aws.put(*keys(2))
    with caplog.at_level(logging.ERROR, logger="tollgate_local.esm"):
        esm.start()
        try:
            wait_for(lambda: len(handler.processed) == 2)
        finally:
            esm.stop()

    assert any("polling failed" in r.getMessage() and r.exc_info for r in caplog.records)


# ---------------------------------------------------------------------------- with the local runtime


def test_the_failure_messages_request_id_is_the_one_in_the_functions_log(
    aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On call: from a message in the failure queue to the failed invocation's log lines, as stack.py wires it."""

    def handler(event: dict[str, Any], context: Any) -> Any:
        print(json.dumps({"level": "ERROR", "function_request_id": context.aws_request_id}))
        raise RuntimeError("poison")

    module = types.ModuleType("fake_aggregator")
    module.lambda_handler = handler  # type: ignore[attr-defined]
    monkeypatch.setattr(runtime, "load_handler_module", lambda directory: module)
    monkeypatch.setattr(runtime, "_router", None)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # install_router replaces it; put back afterwards
    sink = LogSink(tmp_path, cloudwatch=None)
    aggregator = LocalFunction("AggregatorFunction", "-", FUNCTION, sink, region=REGION, account_id="1", timeout=60)
    esm = StreamMapping(
        MappingSettings(maximum_retry_attempts=1, on_failure_destination=aws.queue_arn),
        aws.reader(),
        aggregator.invoke,
        sqs_client=aws.sqs,
        queue_url=aws.queue_url,
        function_name=FUNCTION,
        context_factory=aggregator.new_context,
        sleep=lambda seconds: None,
    )
    aws.put("item-000")

    assert esm.run_once() == 1

    (failure,) = aws.failures()
    logged = [json.loads(line) for line in (tmp_path / "AggregatorFunction.log").read_text().splitlines()]
    assert len(logged) == 2  # the first try and the retry, each with its own request id
    assert failure["requestContext"]["requestId"] == logged[-1]["function_request_id"]

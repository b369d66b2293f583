"""The local stack's moto server answers concurrent requests as AWS does: never a 500.

moto's DynamoDB backend is not thread-safe: TransactWriteItems deep-copies the tables it
writes (to roll back on failure) while other requests may change them, and a read changes
them too (a table's items are a defaultdict: GetItem/BatchGetItem of a missing key adds an
empty partition). moto then answers 500 with a traceback ("dictionary changed size during
iteration"). In `make load` that is the aggregator's transaction, `tollgate load` waiting for
the exactly-once markers (BatchGetItem of keys not written yet) and the gateway's PutItem,
all at the same moment.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate_local.moto_server import LocalMotoServer
from tollgate_local.template import create_tables

#: Against moto's own ThreadedMotoServer this fails within a second or two, every time on a
#: 2-core machine; the test stops at the first failure.
HAMMER_SECONDS = 4.0


@pytest.fixture
def moto_url() -> Iterator[str]:
    server = LocalMotoServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def tables(moto_url: str) -> dict[str, str]:
    """The stack's tables (moto's backends are this process's: names of their own per test)."""
    run = uuid.uuid4().hex[:8]
    names = {
        logical: f"{logical.lower()}-{run}" for logical in ("UsageTable", "TrendTable", "TenantTable", "ControlTable")
    }
    create_tables(dynamodb(moto_url), names)
    return names


def dynamodb(url: str) -> Any:
    return boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=url, aws_access_key_id="local",
        aws_secret_access_key="local", config=Config(retries={"max_attempts": 1}),  # a 500 must show, not be retried
    )  # fmt: skip


def test_concurrent_transactions_reads_and_puts_never_get_a_500(
    moto_url: str, tables: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    # Given the stack's tables
    failures: list[str] = []
    calls = {"transactions": 0, "marker reads": 0, "puts": 0}
    stop = threading.Event()

    def repeat(kind: str, call: Any) -> None:
        while not stop.is_set():
            try:
                call()
                calls[kind] += 1
            except Exception as error:  # any failure is the finding
                failures.append(f"{kind}: {error}"[:200])
                stop.set()

    def aggregator() -> Any:  # as DynamoTrendStore.apply: a marker per record plus ADD updates, in one transaction
        client = dynamodb(moto_url)

        def transaction() -> None:
            batch = uuid.uuid4().hex
            items: list[dict[str, Any]] = [
                {"Put": {"TableName": tables["TrendTable"], "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": {"pk": {"S": f"AGG#{batch}-{i}"}, "sk": {"S": "AGG"}}}}
                for i in range(10)
            ]  # fmt: skip
            items.append({"Update": {"TableName": tables["TrendTable"], "Key": {"pk": {"S": "DAY#1"}, "sk": {"S": "t"}},
                                     "UpdateExpression": "ADD requests :n",
                                     "ExpressionAttributeValues": {":n": {"N": "10"}}}})  # fmt: skip
            client.transact_write_items(TransactItems=items)

        return transaction

    def waiting_for_rollups() -> Any:  # what `tollgate load` polls: markers of requests not rolled up yet
        trends = DynamoTrendStore(dynamodb(moto_url), tables["TrendTable"])
        return lambda: trends.aggregated([uuid.uuid4().hex for _ in range(50)])

    def gateway() -> Any:  # one usage record per request
        client = dynamodb(moto_url)
        return lambda: client.put_item(TableName=tables["UsageTable"], Item={"request_id": {"S": uuid.uuid4().hex}})

    # When all three run at once, from their own threads
    threads = [
        threading.Thread(target=repeat, args=("transactions", aggregator())),
        threading.Thread(target=repeat, args=("marker reads", waiting_for_rollups())),
        threading.Thread(target=repeat, args=("marker reads", waiting_for_rollups())),
        threading.Thread(target=repeat, args=("puts", gateway())),
    ]
    for thread in threads:
        thread.start()
    stop.wait(HAMMER_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()

    # Then every call succeeded, and moto logged no traceback
    assert failures == []
    assert min(calls.values()) >= 10, calls  # really concurrent, really many
    assert "Traceback" not in capfd.readouterr().err
    client = dynamodb(moto_url)
    assert client.scan(TableName=tables["UsageTable"], Select="COUNT")["Count"] == calls["puts"]
    day = client.get_item(TableName=tables["TrendTable"], Key={"pk": {"S": "DAY#1"}, "sk": {"S": "t"}})["Item"]
    assert int(day["requests"]["N"]) == 10 * calls["transactions"]


def test_a_request_is_answered_while_another_waits_on_an_sns_subscriber(moto_url: str, tables: dict[str, str]) -> None:
    """SNS delivers to HTTP subscribers inside the Publish call; a subscriber that calls moto back
    (as an alarm action would) must not wait for that Publish to end."""
    answered: list[int] = []

    class Subscriber(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            found = dynamodb(moto_url).describe_table(TableName=tables["TenantTable"])  # calls moto back
            answered.append(found["ResponseMetadata"]["HTTPStatusCode"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    subscriber = ThreadingHTTPServer(("127.0.0.1", 0), Subscriber)
    threading.Thread(target=subscriber.serve_forever, daemon=True).start()
    try:
        sns = boto3.client(
            "sns", region_name="us-east-1", endpoint_url=moto_url, aws_access_key_id="local",
            aws_secret_access_key="local", config=Config(read_timeout=10, retries={"max_attempts": 1}),
        )  # fmt: skip
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"http://127.0.0.1:{subscriber.server_address[1]}/")
        started = time.monotonic()
        sns.publish(TopicArn=topic, Message="ALARM")
        assert answered == [200]
        assert time.monotonic() - started < 5
    finally:
        subscriber.shutdown()
        subscriber.server_close()

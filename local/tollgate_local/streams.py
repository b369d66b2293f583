"""DynamoDB stream records in the shape Lambda delivers them to a function."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeSerializer

_serializer = TypeSerializer()

#: How often the reader looks for new shards (DescribeStream) while none of its shards has closed.
DISCOVERY_INTERVAL_SECONDS = 10.0


def lambda_record(raw: Mapping[str, Any], *, stream_arn: str, region: str) -> dict[str, Any]:
    """A record from GetRecords as Lambda passes it on.

    GetRecords (and moto) give ApproximateCreationDateTime as a datetime and no
    eventSourceARN; Lambda sends epoch seconds and the stream ARN.
    """
    dynamodb = dict(raw["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",  # what Lambda delivers (GetRecords says 1.0 in moto)
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", region),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def insert_record(
    item: Mapping[str, Any],
    *,
    key: str,
    sequence_number: str,
    stream_arn: str,
    region: str,
    at: datetime,
    event_id: str,
) -> dict[str, Any]:
    """An INSERT record for a new item (used for sample events and tests)."""
    image = {k: _serializer.serialize(v) for k, v in item.items() if v is not None}
    return {
        "eventID": event_id,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": {
            "ApproximateCreationDateTime": int(at.timestamp()),
            "Keys": {key: image[key]},
            "NewImage": image,
            "SequenceNumber": sequence_number,
            "SizeBytes": len(repr(image)),
            "StreamViewType": "NEW_IMAGE",
        },
        "eventSourceARN": stream_arn,
    }


class StreamReader:
    """Reads a DynamoDB stream shard by shard from where it left off (what Lambda's poller does).

    Shards are listed (DescribeStream) at the first poll, then again when a shard has closed
    (its children hold the records that follow) or DISCOVERY_INTERVAL_SECONDS have passed.
    """

    def __init__(
        self, streams_client: Any, stream_arn: str, region: str, *, clock: Callable[[], float] = time.monotonic
    ):
        self._client = streams_client
        self.stream_arn = stream_arn
        self._region = region
        self._clock = clock
        self._iterators: dict[str, str | None] = {}
        self._next_discovery: float | None = None  # None: at the next poll

    def _discover(self) -> None:
        started = self._clock()
        description = self._client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        self._next_discovery = started + DISCOVERY_INTERVAL_SECONDS  # only once it worked: a failure is retried

    def poll(self, limit: int = 1000) -> list[dict[str, Any]]:
        """New records of every shard, in order, shaped as Lambda delivers them."""
        return [record for records in self.poll_shards(limit).values() for record in records]

    def poll_shards(self, limit: int = 1000) -> dict[str, list[dict[str, Any]]]:
        """New records by shard id (shards with none left out), in order, shaped as Lambda delivers them."""
        if self._next_discovery is None or self._clock() >= self._next_discovery:
            self._discover()
        found: dict[str, list[dict[str, Any]]] = {}
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            page = self._client.get_records(ShardIterator=iterator, Limit=limit)
            self._iterators[shard_id] = page.get("NextShardIterator")
            if self._iterators[shard_id] is None:
                self._next_discovery = None  # the shard has closed: look for its children
            if page.get("Records"):
                found[shard_id] = [
                    lambda_record(raw, stream_arn=self.stream_arn, region=self._region) for raw in page["Records"]
                ]
        return found

"""StreamReader lists the stream's shards only when it needs to, not at every poll."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tollgate_local.streams import DISCOVERY_INTERVAL_SECONDS, StreamReader

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"


def raw(sequence: int) -> dict[str, Any]:
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": str(sequence), "ApproximateCreationDateTime": datetime(2024, 1, 1, tzinfo=UTC)},
    }


class Streams:
    """DynamoDB Streams with shards the test controls: shard id -> records, and which are closed."""

    def __init__(self) -> None:
        self.shards: dict[str, list[dict[str, Any]]] = {"shard-1": []}
        self.closed: set[str] = set()
        self.describes = 0

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        self.describes += 1
        return {"StreamDescription": {"Shards": [{"ShardId": shard} for shard in self.shards]}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str) -> dict[str, Any]:
        return {"ShardIterator": f"{ShardId}@0"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, position = ShardIterator.split("@")
        records = self.shards[shard][int(position) :]
        done = int(position) + len(records)
        exhausted = shard in self.closed and done == len(self.shards[shard])
        return {"Records": records, **({} if exhausted else {"NextShardIterator": f"{shard}@{done}"})}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sequences(found: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {shard: [r["dynamodb"]["SequenceNumber"] for r in records] for shard, records in found.items()}


def test_shards_are_listed_at_the_first_poll_then_only_every_discovery_interval() -> None:
    streams, clock = Streams(), Clock()
    reader = StreamReader(streams, ARN, "us-east-1", clock=clock)
    streams.shards["shard-1"].append(raw(1))
    assert sequences(reader.poll_shards()) == {"shard-1": ["1"]}
    streams.shards["shard-1"].append(raw(2))
    streams.shards["shard-2"] = [raw(3)]
    polls = [sequences(reader.poll_shards()) for _ in range(5)]
    assert polls == [{"shard-1": ["2"]}, {}, {}, {}, {}]  # shard-2 is not known yet
    assert streams.describes == 1

    clock.now += DISCOVERY_INTERVAL_SECONDS
    assert sequences(reader.poll_shards()) == {"shard-2": ["3"]}
    assert streams.describes == 2


def test_a_closed_shard_makes_the_next_poll_look_for_its_children() -> None:
    streams, clock = Streams(), Clock()
    reader = StreamReader(streams, ARN, "us-east-1", clock=clock)
    streams.shards["shard-1"].append(raw(1))
    streams.closed.add("shard-1")
    assert sequences(reader.poll_shards()) == {"shard-1": ["1"]}  # ... and shard-1 has closed
    streams.shards["shard-2"] = [raw(2)]
    assert sequences(reader.poll_shards()) == {"shard-2": ["2"]}  # at once, not after the interval
    assert streams.describes == 2
    assert reader.poll() == []
    assert streams.describes == 2


def test_a_failed_look_is_tried_again_at_the_next_poll() -> None:
    streams, clock = Streams(), Clock()
    reader = StreamReader(streams, ARN, "us-east-1", clock=clock)
    describe = streams.describe_stream

    def down(StreamArn: str) -> dict[str, Any]:
        raise ConnectionError("stream endpoint down")

    streams.describe_stream = down  # type: ignore[method-assign]
    streams.shards["shard-1"].append(raw(1))
    with pytest.raises(ConnectionError):
        reader.poll()
    streams.describe_stream = describe  # type: ignore[method-assign]
    assert sequences(reader.poll_shards()) == {"shard-1": ["1"]}

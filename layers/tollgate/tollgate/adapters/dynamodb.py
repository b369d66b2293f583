"""DynamoDB adapters: usage records, trend rows (exactly once), tenant keys, profile directory."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from tollgate.keys import KeyStatus, TenantKey
from tollgate.ports import ApplyOutcome, Provisioned
from tollgate.pricing import TokenCounts
from tollgate.rollup import Granularity, RollupKey, Totals, fold, plan_chunks
from tollgate.usage import UsageRecord, iso_utc

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_ddb(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def from_ddb(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _paginate(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        for item in page.get("Items", []):
            yield from_ddb(item)


# --------------------------------------------------------------------------- usage records


class RecordConflictError(RuntimeError):
    """A different record already exists under the same request id (should never happen)."""


class DynamoUsageStore:
    def __init__(self, client: Any, table: str):
        self._client = client
        self._table = table

    def record(self, record: UsageRecord) -> None:
        item = to_ddb(record.to_item())
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(request_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            existing: Mapping[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            # A retried write of the very same record (the first attempt succeeded but its answer
            # was lost) is fine; anything else under the same id is a bug worth paging for.
            if existing is not None and from_ddb(existing) != from_ddb(item):
                raise RecordConflictError(f"request id {record.request_id} already holds a different record") from exc

    def get(self, request_id: str) -> UsageRecord | None:
        found = self._client.get_item(
            TableName=self._table, Key=to_ddb({"request_id": request_id}), ConsistentRead=True
        )
        return UsageRecord.from_item(from_ddb(found["Item"])) if "Item" in found else None

    def scan(self) -> Iterator[UsageRecord]:
        for item in _paginate(self._client, "scan", TableName=self._table, ConsistentRead=True):
            yield UsageRecord.from_item(item)


# --------------------------------------------------------------------------- trend rows


MARKER_PREFIX = "AGG#"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem
_COUNTERS: tuple[tuple[str, Callable[[Totals], int]], ...] = (
    ("requests", lambda t: t.requests),
    ("input_tokens", lambda t: t.tokens.input),
    ("output_tokens", lambda t: t.tokens.output),
    ("cache_read_tokens", lambda t: t.tokens.cache_read),
    ("cache_write_tokens", lambda t: t.tokens.cache_write),
    ("total_tokens", lambda t: t.tokens.total),
    ("cost_pusd", lambda t: t.cost_pusd),
)


def rollup_pk(granularity: Granularity, period: str) -> str:
    return f"{granularity}#{period}"


def rollup_sk(key: RollupKey) -> str:
    return f"{key.tenant_id}#{key.profile}#{key.model_id}"


@dataclass(frozen=True)
class TrendRow:
    key: RollupKey
    totals: Totals

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> TrendRow:
        key = RollupKey(
            Granularity(item["granularity"]),
            str(item["period"]),
            str(item["tenant_id"]),
            str(item["profile"]),
            str(item["model_id"]),
        )
        tokens = TokenCounts(
            int(item.get("input_tokens", 0)),
            int(item.get("output_tokens", 0)),
            int(item.get("cache_read_tokens", 0)),
            int(item.get("cache_write_tokens", 0)),
        )
        return cls(key, Totals(int(item.get("requests", 0)), tokens, int(item.get("cost_pusd", 0))))


#: Cancellation reasons worth another try of the same transaction.
_TRANSIENT = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}


class DynamoTrendStore:
    """Adds usage records to hour/day/month rows, exactly once per record.

    Each transaction puts one marker item per record (``AGG#<request id>``, conditional on not
    existing) together with the ADD updates of the rows the records fold into. Either all of
    it commits or none of it does, so a record's tokens and cost are added at most once; a
    replayed record fails its marker's condition, is dropped from the chunk, and the rest is
    retried without it.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        marker_ttl_days: int = 7,
        clock: Clock = utcnow,
        max_transient_retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._table = table
        self._marker_ttl = timedelta(days=marker_ttl_days)
        self._clock = clock
        self._max_retries = max_transient_retries
        self._sleep = sleep

    # -- write ------------------------------------------------------------------------------

    def apply(
        self, records: Sequence[UsageRecord], on_commit: Callable[[list[UsageRecord]], None] | None = None
    ) -> ApplyOutcome:
        outcome = ApplyOutcome()
        for chunk in plan_chunks(records):
            committed = self._apply_chunk(chunk, outcome)
            if committed and on_commit is not None:
                on_commit(committed)
        return outcome

    def _apply_chunk(self, chunk: list[UsageRecord], outcome: ApplyOutcome) -> list[UsageRecord]:
        pending = list(chunk)
        transient_retries = 0
        while pending:
            try:
                self._client.transact_write_items(TransactItems=self._items(pending))
            except ClientError as exc:
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if _code(exc) == "TransactionCanceledException" and reasons:
                    seen = {i for i, code in enumerate(reasons[: len(pending)]) if code == "ConditionalCheckFailed"}
                    if seen:
                        outcome.duplicates.extend(pending[i] for i in sorted(seen))
                        pending = [r for i, r in enumerate(pending) if i not in seen]
                        continue
                    if set(reasons) & _TRANSIENT and transient_retries < self._max_retries:
                        transient_retries += 1
                        self._sleep(0.05 * 2**transient_retries)
                        continue
                outcome.failed.extend(pending)
                outcome.errors.append(exc)
                return []
            outcome.applied.extend(pending)
            return pending
        return []

    def _items(self, records: Sequence[UsageRecord]) -> list[dict[str, Any]]:
        now = self._clock()
        markers = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_ddb(
                        {
                            "pk": MARKER_PREFIX + r.request_id,
                            "sk": "AGG",
                            "aggregated_at": iso_utc(now),
                            "expires_at": int((now + self._marker_ttl).timestamp()),
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for r in records
        ]
        updates = [self._update(key, totals, now) for key, totals in sorted(fold(records).items())]
        return markers + updates

    def _update(self, key: RollupKey, totals: Totals, now: datetime) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds, sets = [], []
        for index, (attr, getter) in enumerate(_COUNTERS):
            names[f"#c{index}"] = attr
            values[f":c{index}"] = getter(totals)
            adds.append(f"#c{index} :c{index}")
        labels = {
            "tenant_id": key.tenant_id,
            "profile": key.profile,
            "model_id": key.model_id,
            "granularity": str(key.granularity),
            "period": key.period,
            "tenant_sk": f"{key.granularity}#{key.period}#{key.profile}#{key.model_id}",
            "updated_at": iso_utc(now),
        }
        for index, (attr, value) in enumerate(labels.items()):
            names[f"#l{index}"] = attr
            values[f":l{index}"] = value
            sets.append(f"#l{index} = :l{index}")
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_ddb({"pk": rollup_pk(key.granularity, key.period), "sk": rollup_sk(key)}),
                "UpdateExpression": "ADD " + ", ".join(adds) + " SET " + ", ".join(sets),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_ddb(values),
            }
        }

    # -- read -------------------------------------------------------------------------------

    def rows(self, granularity: Granularity, period: str) -> list[TrendRow]:
        items = _paginate(
            self._client,
            "query",
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_ddb({":pk": rollup_pk(granularity, period)}),
            ConsistentRead=True,
        )
        return [TrendRow.from_item(item) for item in items]

    def tenant_totals(self, granularity: Granularity, period: str, tenant_id: str) -> dict[RollupKey, Totals]:
        """One tenant's rows of one period: its sort keys start with ``<tenant>#`` (tenant ids have no '#')."""
        items = _paginate(
            self._client,
            "query",
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tenant)",
            ExpressionAttributeValues=to_ddb({":pk": rollup_pk(granularity, period), ":tenant": f"{tenant_id}#"}),
            ConsistentRead=True,
        )
        return {row.key: row.totals for row in map(TrendRow.from_item, items)}

    def all_rows(self, granularity: Granularity) -> list[TrendRow]:
        items = _paginate(
            self._client,
            "scan",
            TableName=self._table,
            FilterExpression="granularity = :g",
            ExpressionAttributeValues=to_ddb({":g": str(granularity)}),
            ConsistentRead=True,
        )
        return [TrendRow.from_item(item) for item in items]

    def aggregated(self, request_ids: Iterable[str]) -> set[str]:
        """Those of ``request_ids`` whose usage record is in the rollups (their marker exists).

        One BatchGetItem per 100 ids (DynamoDB's limit), unprocessed keys asked again.
        """
        wanted = sorted(set(request_ids))
        found: set[str] = set()
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            keys = [to_ddb({"pk": MARKER_PREFIX + rid, "sk": "AGG"}) for rid in chunk]
            request: dict[str, Any] = {
                self._table: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "pk"}
            }
            for attempt in itertools.count():
                answer = self._client.batch_get_item(RequestItems=request)
                markers = answer["Responses"][self._table]
                found.update(str(item["pk"]["S"]).removeprefix(MARKER_PREFIX) for item in markers)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))  # DynamoDB throttled part of the batch: back off
        return found


# --------------------------------------------------------------------------- tenant keys

KEY_PREFIX = "KEY#"


def _key_from_item(item: Mapping[str, Any]) -> TenantKey:
    revoked = item.get("revoked_at")
    return TenantKey(
        key_hash=str(item["pk"]).removeprefix(KEY_PREFIX),
        key_id=str(item["key_id"]),
        tenant_id=str(item["tenant_id"]),
        status=KeyStatus(item["status"]),
        created_at=datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00")),
        label=str(item.get("label", "")),
        revoked_at=datetime.fromisoformat(str(revoked).replace("Z", "+00:00")) if revoked else None,
    )


class DynamoKeyStore:
    def __init__(self, client: Any, table: str, clock: Clock = utcnow):
        self._client = client
        self._table = table
        self._clock = clock

    def find(self, key_hash: str) -> TenantKey | None:
        found = self._client.get_item(TableName=self._table, Key=to_ddb({"pk": KEY_PREFIX + key_hash, "sk": "KEY"}))
        return _key_from_item(from_ddb(found["Item"])) if "Item" in found else None

    def add(self, key: TenantKey) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_ddb(
                {
                    "pk": KEY_PREFIX + key.key_hash,
                    "sk": "KEY",
                    "key_id": key.key_id,
                    "tenant_id": key.tenant_id,
                    "status": str(key.status),
                    "created_at": iso_utc(key.created_at),
                    "label": key.label,
                    "gsi1pk": f"TENANT#{key.tenant_id}",
                    "gsi1sk": f"KEY#{iso_utc(key.created_at)}#{key.key_id}",
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def list(self, tenant_id: str | None = None) -> list[TenantKey]:
        if tenant_id is None:
            items = _paginate(
                self._client,
                "scan",
                TableName=self._table,
                FilterExpression="begins_with(pk, :p)",
                ExpressionAttributeValues=to_ddb({":p": KEY_PREFIX}),
            )
        else:
            items = _paginate(
                self._client,
                "query",
                TableName=self._table,
                IndexName="by-tenant",
                KeyConditionExpression="gsi1pk = :t",
                ExpressionAttributeValues=to_ddb({":t": f"TENANT#{tenant_id}"}),
            )
        return sorted((_key_from_item(i) for i in items), key=lambda k: (k.tenant_id, k.created_at))

    def revoke(self, key_id: str) -> TenantKey | None:
        matches = list(
            _paginate(
                self._client,
                "query",
                TableName=self._table,
                IndexName="by-key-id",
                KeyConditionExpression="key_id = :k",
                ExpressionAttributeValues=to_ddb({":k": key_id}),
            )
        )
        if not matches:
            return None
        now = iso_utc(self._clock())
        updated = self._client.update_item(
            TableName=self._table,
            Key=to_ddb({"pk": matches[0]["pk"], "sk": "KEY"}),
            UpdateExpression="SET #s = :revoked, revoked_at = if_not_exists(revoked_at, :now)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_ddb({":revoked": str(KeyStatus.REVOKED), ":now": now}),
            ReturnValues="ALL_NEW",
        )
        return _key_from_item(from_ddb(updated["Attributes"]))


# --------------------------------------------------------------------------- profile directory

REGISTRY_PK = "REGISTRY"
PROFILE_PREFIX = "PROFILE#"


@dataclass(frozen=True)
class ProfileEntry:
    """What the provisioner records about a profile it created in Bedrock."""

    profile: str
    arn: str
    tenant_id: str
    model_id: str
    scope: str
    source_arn: str


class DynamoProfileRegistry:
    """The provisioner's write side of the profile directory (REGISTRY items in the tenant table)."""

    def __init__(self, client: Any, table: str):
        self._client = client
        self._table = table

    def entries(self, *, consistent: bool = True) -> dict[str, ProfileEntry]:
        items = _paginate(
            self._client,
            "query",
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_ddb({":pk": REGISTRY_PK}),
            ConsistentRead=consistent,
        )
        entries = {}
        for item in items:
            if not str(item["sk"]).startswith(PROFILE_PREFIX):
                continue
            entry = ProfileEntry(
                profile=str(item["profile"]),
                arn=str(item["arn"]),
                tenant_id=str(item["tenant_id"]),
                model_id=str(item["model_id"]),
                scope=str(item["scope"]),
                source_arn=str(item["source_arn"]),
            )
            entries[entry.profile] = entry
        return entries

    def put(self, entry: ProfileEntry, now: datetime) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_ddb(
                {
                    "pk": REGISTRY_PK,
                    "sk": PROFILE_PREFIX + entry.profile,
                    "profile": entry.profile,
                    "arn": entry.arn,
                    "tenant_id": entry.tenant_id,
                    "model_id": entry.model_id,
                    "scope": entry.scope,
                    "source_arn": entry.source_arn,
                    "updated_at": iso_utc(now),
                }
            ),
        )

    def delete(self, profile: str) -> None:
        self._client.delete_item(TableName=self._table, Key=to_ddb({"pk": REGISTRY_PK, "sk": PROFILE_PREFIX + profile}))

    def get_state(self, name: str) -> dict[str, Any] | None:
        found = self._client.get_item(
            TableName=self._table, Key=to_ddb({"pk": "STATE", "sk": name}), ConsistentRead=True
        )
        return from_ddb(found["Item"]) if "Item" in found else None

    def put_state(self, name: str, values: Mapping[str, Any]) -> None:
        self._client.put_item(TableName=self._table, Item=to_ddb({"pk": "STATE", "sk": name, **values}))


class CachedProfileDirectory:
    """The gateway's read side: profile name -> provisioned ARN and model, read once per container.

    One Query at cold start; again after ``ttl_seconds``, or early (at most every
    ``miss_refresh_seconds``) when asked for a profile it does not know yet (one added by a
    deploy that finished after this container started) or when the caller asks to refresh
    (the entry no longer matches config.json, or Bedrock no longer knows the ARN).
    """

    def __init__(
        self,
        registry: DynamoProfileRegistry,
        *,
        ttl_seconds: int = 300,
        miss_refresh_seconds: int = 10,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._registry = registry
        self._ttl = ttl_seconds
        self._miss_refresh = miss_refresh_seconds
        self._monotonic = monotonic
        self._entries: dict[str, Provisioned] = {}
        self._loaded_at: float | None = None
        self.loads = 0

    def _load(self) -> None:
        self._entries = {
            name: Provisioned(entry.arn, entry.model_id, entry.scope)
            for name, entry in self._registry.entries(consistent=False).items()
        }
        self._loaded_at = self._monotonic()
        self.loads += 1

    def lookup(self, profile: str, *, refresh: bool = False) -> Provisioned | None:
        now = self._monotonic()
        if (
            self._loaded_at is None
            or now - self._loaded_at >= self._ttl
            or ((refresh or profile not in self._entries) and now - self._loaded_at >= self._miss_refresh)
        ):
            self._load()
        return self._entries.get(profile)

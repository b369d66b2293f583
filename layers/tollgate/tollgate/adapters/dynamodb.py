"""DynamoDB adapters: usage records, trend rows (exactly once), tenant keys, profile directory."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from tollgate.keys import KeyAlreadyRevokedError, KeyStatus, TenantKey
from tollgate.ports import ApplyOutcome, Provisioned
from tollgate.pricing import TokenCounts
from tollgate.rollup import MARKER_TTL, Granularity, RollupKey, Totals, fold, plan_chunks
from tollgate.usage import UsageRecord, iso_utc

if TYPE_CHECKING:
    from tollgate.services.redrive import FailedBatch

logger = Logger(service="tollgate", child=True)

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


BATCH_GET_LIMIT = 100  # keys per BatchGetItem


def _batch_get(
    client: Any, table: str, keys: list[dict[str, Any]], projection: str | None = None
) -> Iterator[dict[str, Any]]:
    """BatchGetItem of at most 100 keys, consistent, asking again for what DynamoDB left unprocessed."""
    request: dict[str, Any] = {
        table: {"Keys": keys, "ConsistentRead": True, **({"ProjectionExpression": projection} if projection else {})}
    }
    for attempt in itertools.count():
        answer = client.batch_get_item(RequestItems=request)
        for item in answer["Responses"][table]:
            yield from_ddb(item)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return
        time.sleep(min(0.05 * 2**attempt, 1.0))  # DynamoDB throttled part of the batch: back off


# --------------------------------------------------------------------------- usage records

#: The usage table's index by tenant and request time (template.yaml).
USAGE_BY_TENANT_INDEX = "by-tenant"


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

    def request_ids_between(self, tenant_id: str, start: datetime, end: datetime) -> list[str]:
        """A tenant's request ids with a request time from ``start`` to ``end`` (the by-tenant index)."""
        items = _paginate(
            self._client,
            "query",
            TableName=self._table,
            IndexName=USAGE_BY_TENANT_INDEX,
            KeyConditionExpression="tenant_id = :t AND requested_at BETWEEN :a AND :b",
            ExpressionAttributeValues=to_ddb({":t": tenant_id, ":a": iso_utc(start), ":b": iso_utc(end)}),
            ProjectionExpression="request_id",
        )
        return [str(item["request_id"]) for item in items]

    def items(self, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The items of these request ids that exist, as plain values (BatchGetItem, 100 keys a call)."""
        found: dict[str, dict[str, Any]] = {}
        wanted = sorted(set(request_ids))
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            keys = [to_ddb({"request_id": rid}) for rid in wanted[start : start + BATCH_GET_LIMIT]]
            for item in _batch_get(self._client, self._table, keys):
                found[str(item["request_id"])] = item
        return found

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
MARKER_SK = "AGG"
_COUNTERS: tuple[tuple[str, Callable[[Totals], int]], ...] = (
    ("requests", lambda t: t.requests),
    ("input_tokens", lambda t: t.tokens.input),
    ("output_tokens", lambda t: t.tokens.output),
    ("cache_read_tokens", lambda t: t.tokens.cache_read),
    ("cache_write_tokens", lambda t: t.tokens.cache_write),
    ("cache_write_1h_tokens", lambda t: t.tokens.cache_write_1h),
    ("total_tokens", lambda t: t.tokens.total),
    ("cost_pusd", lambda t: t.cost_pusd),
)


def rollup_pk(granularity: Granularity, period: str) -> str:
    return f"{granularity}#{period}"


def rollup_sk(key: RollupKey) -> str:
    """``tenant#profile#model``, and ``#tier`` for a tier other than the default (rows written
    before tiers were priced are the default tier's, under the same key)."""
    base = f"{key.tenant_id}#{key.profile}#{key.model_id}"
    return base if key.tier == "default" else f"{base}#{key.tier}"


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
            str(item.get("tier", "default")),
        )
        tokens = TokenCounts(
            int(item.get("input_tokens", 0)),
            int(item.get("output_tokens", 0)),
            int(item.get("cache_read_tokens", 0)),
            int(item.get("cache_write_tokens", 0)),
            int(item.get("cache_write_1h_tokens", 0)),
        )
        return cls(key, Totals(int(item.get("requests", 0)), tokens, int(item.get("cost_pusd", 0))))


#: Cancellation reasons worth another try of the same transaction.
_TRANSIENT = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
#: Errors DynamoDB answers before it writes anything; any other error leaves the outcome unknown.
_NOT_WRITTEN = {
    "ValidationException",
    "ResourceNotFoundException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "AccessDeniedException",
    "IdempotentParameterMismatchException",
    "TransactionInProgressException",
}


def _token_of(reason: Mapping[str, Any]) -> str | None:
    """The transaction token of the marker a cancellation reason returned (ALL_OLD), if any."""
    if reason.get("Code") != "ConditionalCheckFailed" or not reason.get("Item"):
        return None
    return str(from_ddb(reason["Item"]).get("txn", "")) or None


class DynamoTrendStore:
    """Adds usage records to hour/day/month rows, exactly once per record, and says which it added.

    Each transaction puts one marker item per record (``AGG#<request id>``, conditional on not
    existing) together with the ADD updates of the rows the records fold into. Either all of
    it commits or none of it does, so a record's tokens and cost are added at most once; a
    replayed record fails its marker's condition, is dropped from the chunk, and the rest is
    retried without it.

    Metrics are emitted for exactly the records a transaction committed, so the store must know
    that it committed even when DynamoDB's answer is lost (a timeout or a 500 after the commit,
    which botocore retries: the retry then fails on the markers the first attempt wrote). Each
    chunk's markers carry a token of that chunk's transaction: a marker that holds our own token
    means our transaction committed (all of it: transactions are all-or-nothing). It is read
    from the cancellation reasons (ReturnValuesOnConditionCheckFailure), or, after an error that
    leaves the outcome unknown, by reading the markers back.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        clock: Clock = utcnow,
        max_transient_retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        new_token: Callable[[], str] = lambda: uuid.uuid4().hex,
    ):
        self._client = client
        self._table = table
        self._clock = clock
        self._max_retries = max_transient_retries
        self._sleep = sleep
        self._new_token = new_token

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
        token = self._new_token()
        transient_retries = 0
        while pending:
            try:
                self._client.transact_write_items(TransactItems=self._items(pending, token))
            except ClientError as exc:
                reasons = exc.response.get("CancellationReasons", [])
                if _code(exc) == "TransactionCanceledException" and reasons:
                    markers = reasons[: len(pending)]
                    if any(_token_of(reason) == token for reason in markers):
                        # An earlier attempt of this very transaction committed and its answer was lost.
                        break
                    seen = {i for i, reason in enumerate(markers) if reason.get("Code") == "ConditionalCheckFailed"}
                    if seen:
                        outcome.duplicates.extend(pending[i] for i in sorted(seen))
                        pending = [r for i, r in enumerate(pending) if i not in seen]
                        continue
                    codes = {str(reason.get("Code", "None")) for reason in reasons}
                    if codes & _TRANSIENT and transient_retries < self._max_retries:
                        transient_retries += 1
                        self._sleep(0.05 * 2**transient_retries)
                        continue
                    return self._failed(pending, exc, outcome)  # cancelled: nothing was written
                if _code(exc) in _NOT_WRITTEN:
                    return self._failed(pending, exc, outcome)
                if not self._committed(pending, token):
                    return self._failed(pending, exc, outcome)
            except BotoCoreError as exc:  # timeouts, dropped connections: the outcome is unknown
                if not self._committed(pending, token):
                    return self._failed(pending, exc, outcome)
            break
        outcome.applied.extend(pending)
        return pending

    def _committed(self, records: Sequence[UsageRecord], token: str) -> bool:
        """After an error that leaves it unknown: did our transaction commit? (Its markers hold our token.)"""
        try:
            tokens = self._marker_tokens(r.request_id for r in records)
        except (ClientError, BotoCoreError):
            logger.warning(
                "trend transaction outcome unknown and its markers unreadable: if it committed, the metrics "
                "of these records are not emitted (their rollups are right)",
                extra={"request_ids": [r.request_id for r in records]},
            )
            return False
        return any(found == token for found in tokens.values())

    @staticmethod
    def _failed(pending: list[UsageRecord], error: BaseException, outcome: ApplyOutcome) -> list[UsageRecord]:
        outcome.failed.extend(pending)
        outcome.errors.append(error)
        return []

    def _items(self, records: Sequence[UsageRecord], token: str) -> list[dict[str, Any]]:
        now = self._clock()
        markers = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_ddb(
                        {
                            "pk": MARKER_PREFIX + r.request_id,
                            "sk": MARKER_SK,
                            "txn": token,
                            "aggregated_at": iso_utc(now),
                            "expires_at": int((now + MARKER_TTL).timestamp()),
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    # A marker that is there already says whose transaction wrote it (see _apply_chunk).
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
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
            "tier": key.tier,
            "granularity": str(key.granularity),
            "period": key.period,
            "tenant_sk": f"{key.granularity}#{key.period}#{key.profile}#{key.model_id}"
            + ("" if key.tier == "default" else f"#{key.tier}"),
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
        """Those of ``request_ids`` whose usage record is in the rollups (their marker exists)."""
        return set(self._marker_tokens(request_ids))

    def _marker_tokens(self, request_ids: Iterable[str]) -> dict[str, str]:
        """The marker of each of ``request_ids`` that has one: request id -> token of the transaction.

        One BatchGetItem per 100 ids (DynamoDB's limit), unprocessed keys asked again.
        """
        wanted = sorted(set(request_ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            keys = [
                to_ddb({"pk": MARKER_PREFIX + rid, "sk": MARKER_SK}) for rid in wanted[start : start + BATCH_GET_LIMIT]
            ]
            for marker in _batch_get(self._client, self._table, keys, projection="pk, txn"):
                found[str(marker["pk"]).removeprefix(MARKER_PREFIX)] = str(marker.get("txn", ""))
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
        usage_key=str(item.get("usage_key", "")),
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
        """Store a new key, with its tenant's usage-plan key (from the provisioner's state) if there is one."""
        usage_key = key.usage_key or self._tenant_usage_key(key.tenant_id)
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
                    **({"usage_key": usage_key} if usage_key else {}),
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def _tenant_usage_key(self, tenant_id: str) -> str:
        found = self._client.get_item(
            TableName=self._table, Key=to_ddb({"pk": STATE_PK, "sk": f"usage_key#{tenant_id}"}), ConsistentRead=True
        )
        return str(from_ddb(found["Item"]).get("value", "")) if "Item" in found else ""

    def set_usage_key(self, tenant_id: str, usage_key: str) -> int:
        """Put the tenant's usage-plan key on each of its KEY items that lacks it; how many were changed."""
        changed = 0
        items = _paginate(
            self._client,
            "query",
            TableName=self._table,
            IndexName="by-tenant",
            KeyConditionExpression="gsi1pk = :t",
            ExpressionAttributeValues=to_ddb({":t": f"TENANT#{tenant_id}"}),
        )
        for item in items:
            if not str(item["pk"]).startswith(KEY_PREFIX) or item.get("usage_key") == usage_key:
                continue
            self._client.update_item(
                TableName=self._table,
                Key=to_ddb({"pk": item["pk"], "sk": item["sk"]}),
                UpdateExpression="SET usage_key = :u",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_ddb({":u": usage_key}),
            )
            changed += 1
        return changed

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
        key = to_ddb({"pk": matches[0]["pk"], "sk": "KEY"})
        try:
            updated = self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #s = :revoked, revoked_at = :now",
                ConditionExpression="#s <> :revoked",  # a second revocation changes nothing, and says so
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_ddb({":revoked": str(KeyStatus.REVOKED), ":now": iso_utc(self._clock())}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            current = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)["Item"]
            raise KeyAlreadyRevokedError(_key_from_item(from_ddb(current))) from None
        return _key_from_item(from_ddb(updated["Attributes"]))


# --------------------------------------------------------------------------- profile directory

REGISTRY_PK = "REGISTRY"
#: The provisioner's own bookkeeping (what it applied, the dashboard's digest, the admin email).
STATE_PK = "STATE"
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
            TableName=self._table, Key=to_ddb({"pk": STATE_PK, "sk": name}), ConsistentRead=True
        )
        return from_ddb(found["Item"]) if "Item" in found else None

    def put_state(self, name: str, values: Mapping[str, Any]) -> None:
        self._client.put_item(TableName=self._table, Item=to_ddb({"pk": STATE_PK, "sk": name, **values}))


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


# --------------------------------------------------------------------------- usage stream


class UsageStreamBatches:
    """Reads a failed batch's records back from the usage table's stream, by sequence number.

    The stream keeps records 24 hours; after that (or once the stream is gone) it answers None
    and the records are looked up in the usage table instead (tollgate.services.redrive).
    """

    #: GetRecords calls that return nothing before the reader stops looking (an open shard).
    MAX_EMPTY_POLLS = 3

    def __init__(self, streams_client: Any):
        self._client = streams_client

    def request_ids(self, batch: FailedBatch) -> list[str] | None:
        try:
            iterator = self._client.get_shard_iterator(
                StreamArn=batch.stream_arn,
                ShardId=batch.shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=batch.start_sequence,
            )["ShardIterator"]
        except ClientError as exc:
            if _code(exc) in ("TrimmedDataAccessException", "ResourceNotFoundException", "ValidationException"):
                return None
            raise
        end = int(batch.end_sequence)
        ids: list[str] = []
        empty = 0
        while iterator and empty < self.MAX_EMPTY_POLLS:
            try:
                page = self._client.get_records(ShardIterator=iterator, Limit=1000)
            except ClientError as exc:
                if _code(exc) in ("TrimmedDataAccessException", "ExpiredIteratorException"):
                    return None
                raise
            records = page.get("Records", [])
            empty = 0 if records else empty + 1
            for record in records:
                sequence = int(record["dynamodb"]["SequenceNumber"])
                if sequence > end:
                    return ids
                if record.get("eventName") == "INSERT":
                    ids.append(str(record["dynamodb"]["Keys"]["request_id"]["S"]))
                if sequence == end:
                    return ids
            iterator = page.get("NextShardIterator")
        return None  # the end of the batch was never reached: not to be trusted as the whole batch

"""The budget ledger on DynamoDB (ControlTable): TransactWriteItems of tollgate.ledger's items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from tollgate.adapters.dynamodb import RecordConflictError, _code, from_ddb, to_ddb
from tollgate.ledger import (
    RELEASE_AT_ATTR,
    RELEASE_INDEX,
    RES_SHARD_ATTR,
    RES_SHARDS,
    BudgetHold,
    Plan,
    Reservation,
    refusal,
    release_items,
    res_key,
    reserve_items,
    settle_items,
)
from tollgate.usage import UsageRecord

logger = Logger(service="tollgate", child=True)

Settled = Literal["settled", "late", "duplicate"]


def _serialize(item: Mapping[str, Any], table: str) -> dict[str, Any]:
    """A tollgate.ledger item (plain values) as TransactWriteItems wants it."""
    ((action, body),) = item.items()
    wire = dict(body, TableName=table)
    for name in ("Key", "Item", "ExpressionAttributeValues"):
        if name in wire:
            wire[name] = to_ddb(wire[name])
    return {action: wire}


def _reasons(exc: ClientError) -> list[dict[str, Any]]:
    return list(exc.response.get("CancellationReasons") or [])  # type: ignore[arg-type]


def _failed(reasons: list[dict[str, Any]], index: int) -> bool:
    return index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed"


class DynamoLedger:
    """One TransactWriteItems per step: reserve, settle (or late settle), release."""

    def __init__(self, client: Any, control_table: str, usage_table: str):
        self._client = client
        self._control = control_table
        self._usage = usage_table

    def _transact(self, items: Sequence[Mapping[str, Any]], tables: Sequence[str]) -> None:
        self._client.transact_write_items(
            TransactItems=[_serialize(item, table) for item, table in zip(items, tables, strict=True)]
        )

    def reserve(self, plan: Plan, reservation: Reservation, now: datetime) -> None:
        """Reserve, or raise BudgetExceeded / TokenRateExceeded naming the item that refused."""
        items = reserve_items(plan, reservation, now)
        try:
            self._transact(items, [self._control] * len(items))
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            reasons = _reasons(exc)
            for index in range(len(reservation.holds)):
                if _failed(reasons, index):
                    old = reasons[index].get("Item")
                    raise refusal(plan, reservation, index, from_ddb(old) if old else None, now) from None
            raise

    def settle(
        self,
        record: UsageRecord,
        holds: Sequence[BudgetHold],
        reservation: Reservation | None,
        now: datetime,
    ) -> Settled:
        """Usage record + budget settle (+ delete RES) in one transaction; a late settle if RES was released."""
        usage_item = record.to_item()
        for attempt in ("settled", "late"):
            res = reservation if attempt == "settled" else None
            items = settle_items(usage_item, record, holds, res, now)
            tables = [self._usage] + [self._control] * (len(items) - 1)
            try:
                self._transact(items, tables)
                if attempt == "late":
                    logger.warning(
                        "late settle: the reservation was released before", extra={"request_id": record.request_id}
                    )
                return attempt
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = _reasons(exc)
                if _failed(reasons, 0):
                    self._same_record(record, usage_item)
                    return "duplicate"
                if res is None or not _failed(reasons, len(items) - 1):
                    raise
        raise AssertionError("unreachable")

    def _same_record(self, record: UsageRecord, usage_item: Mapping[str, Any]) -> None:
        found = self._client.get_item(
            TableName=self._usage, Key=to_ddb({"request_id": record.request_id}), ConsistentRead=True
        ).get("Item")
        if found is not None and from_ddb(found) != from_ddb(to_ddb(usage_item)):
            raise RecordConflictError(f"request id {record.request_id} already holds a different record")

    def release(self, reservation: Reservation, now: datetime) -> bool:
        """Give the reservation back; False if it was settled or released already."""
        items = release_items(reservation, now)
        try:
            self._transact(items, [self._control] * len(items))
            return True
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException" and _failed(_reasons(exc), 0):
                return False
            raise

    def open_reservation(self, request_id: str) -> Reservation | None:
        key = res_key(request_id)
        item = self._client.get_item(
            TableName=self._control, Key=to_ddb({"pk": key.pk, "sk": key.sk}), ConsistentRead=True
        ).get("Item")
        return Reservation.from_item(from_ddb(item)) if item else None

    def expired(self, now: datetime) -> list[Reservation]:
        """Open reservations whose release time has passed (the sparse by-release index, every shard)."""
        found = []
        for shard in range(RES_SHARDS):
            paginator = self._client.get_paginator("query")
            for page in paginator.paginate(
                TableName=self._control,
                IndexName=RELEASE_INDEX,
                KeyConditionExpression="#s = :s AND #r <= :now",
                ExpressionAttributeNames={"#s": RES_SHARD_ATTR, "#r": RELEASE_AT_ATTR},
                ExpressionAttributeValues=to_ddb({":s": str(shard), ":now": int(now.timestamp())}),
            ):
                found += [Reservation.from_item(from_ddb(item)) for item in page.get("Items", [])]
        return found

"""The budget items of ControlTable as the budget watcher reads them and claims its alerts on them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from tollgate.adapters.dynamodb import _paginate, from_ddb
from tollgate.budget_items import LedgerEntry
from tollgate.periods import ALERTED_ATTR, BUDGET_PREFIX, COMMITTED_ATTR, LIMIT_ATTR, SPENT_ATTR, LedgerKey

#: ControlTable partition of the action in force on a tenant (ISSUE10: STATUS#<tenant> / STATUS).
STATUS_PREFIX = "STATUS#"


def _entry(item: dict[str, Any]) -> LedgerEntry:
    limit = item.get(LIMIT_ATTR)
    return LedgerEntry(
        spent_pusd=int(item.get(SPENT_ATTR, 0)),
        alerted=frozenset(item.get(ALERTED_ATTR, set())),
        committed_pusd=int(item.get(COMMITTED_ATTR, 0)),
        limit_pusd=int(limit) if limit is not None else None,
    )


class DynamoBudgetLedger:
    def __init__(self, client: Any, table: str):
        self._client = client
        self._table = table

    def entries(self) -> dict[LedgerKey, LedgerEntry]:
        """Every BUDGET# item: a Scan (ControlTable is small; the design says so), strongly consistent."""
        items = _paginate(
            self._client,
            "scan",
            TableName=self._table,
            FilterExpression="begins_with(pk, :budget)",
            ExpressionAttributeValues={":budget": {"S": BUDGET_PREFIX}},
            ConsistentRead=True,
        )
        return {LedgerKey(item["pk"], item["sk"]): _entry(item) for item in items}

    def entry(self, key: LedgerKey) -> LedgerEntry:
        """One budget item (an absent one: nothing spent yet this period)."""
        found = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}}, ConsistentRead=True
        ).get("Item")
        return _entry(from_ddb(found)) if found else LedgerEntry()

    def status(self, tenant_id: str) -> dict[str, Any] | None:
        """The action in force on the tenant (STATUS#<tenant>, written by the actions function), if any."""
        found = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": f"{STATUS_PREFIX}{tenant_id}"}, "sk": {"S": "STATUS"}}
        ).get("Item")
        if not found:
            return None
        item = from_ddb(found)
        return {k: (int(v) if isinstance(v, Decimal) else v) for k, v in item.items() if k not in ("pk", "sk")}

    def claim(self, key: LedgerKey, token: str) -> bool:
        """ADD the token to ``alerted`` unless it is in it; never creates an item (no spend, no alert)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
                UpdateExpression="ADD #alerted :token",
                ConditionExpression="attribute_exists(pk) AND NOT contains(#alerted, :t)",
                ExpressionAttributeNames={"#alerted": ALERTED_ATTR},
                ExpressionAttributeValues={":token": {"SS": [token]}, ":t": {"S": token}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def unclaim(self, key: LedgerKey, token: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
            UpdateExpression="DELETE #alerted :token",
            ExpressionAttributeNames={"#alerted": ALERTED_ATTR},
            ExpressionAttributeValues={":token": {"SS": [token]}},
        )

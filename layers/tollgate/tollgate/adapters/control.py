"""ControlTable: the actions in force on tenants (STATUS#) and their log (ACTION#)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from tollgate.actions import CHANGED_PREFIX, IN_FORCE_PREFIX, STATUS_SK, StaleChange, action_pk, status_pk
from tollgate.adapters.dynamodb import from_ddb, to_ddb


class DynamoControl:
    def __init__(self, client: Any, table: str):
        self._client = client
        self._table = table

    def set_in_force(
        self, tenant: str, alarm: str, action: str | None, changed_at: str, now: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Put (or, with None, remove) an alarm's action on the tenant's STATUS item, unless the item saw a
        later change of that alarm; the alarms in force (alarm -> action) before and after it."""
        names = {"#a": IN_FORCE_PREFIX + alarm, "#t": CHANGED_PREFIX + alarm}
        values: dict[str, Any] = {":t": {"S": changed_at}, ":now": {"S": now}, ":tenant": {"S": tenant}}
        update = "SET #t = :t, updated_at = :now, tenant_id = :tenant"
        if action is None:
            update += " REMOVE #a"
        else:
            update += ", #a = :act"
            values[":act"] = {"S": action}
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": status_pk(tenant)}, "sk": {"S": STATUS_SK}},
                UpdateExpression=update,
                # The same change again (a redelivery) passes: applying it twice is harmless.
                ConditionExpression="attribute_not_exists(#t) OR #t <= :t",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StaleChange(alarm) from None
            raise
        item = from_ddb(answer.get("Attributes", {}))
        before = {k[len(IN_FORCE_PREFIX) :]: str(v) for k, v in item.items() if k.startswith(IN_FORCE_PREFIX)}
        after = {k: v for k, v in before.items() if k != alarm}
        if action is not None:
            after[alarm] = action
        return before, after

    def set_status(self, tenant: str, status: str, by: list[str], since: str | None) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": status_pk(tenant)}, "sk": {"S": STATUS_SK}},
            UpdateExpression="SET #s = :s, by_alarms = :by, since = :since",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_ddb({":s": status, ":by": by, ":since": since or ""}),
        )

    def record_action(self, tenant: str, sk: str, item: Mapping[str, Any]) -> bool:
        """Write the ACTION item once per alarm message; False when it was already written and notified."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_ddb({"pk": action_pk(tenant), "sk": sk, **item, "notified": False}),
                ConditionExpression="attribute_not_exists(pk) OR notified = :false",
                ExpressionAttributeValues={":false": {"BOOL": False}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_notified(self, tenant: str, sk: str, message_id: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"pk": {"S": action_pk(tenant)}, "sk": {"S": sk}},
            UpdateExpression="SET notified = :true, notice_id = :id",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":id": {"S": message_id}},
        )

    def actions(self, tenant: str) -> list[dict[str, Any]]:
        items = []
        for page in self._client.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": action_pk(tenant)}},
        ):
            items += [from_ddb(i) for i in page.get("Items", [])]
        return items

    def status(self, tenant: str) -> dict[str, Any] | None:
        got = self._client.get_item(TableName=self._table, Key={"pk": {"S": status_pk(tenant)}, "sk": {"S": STATUS_SK}})
        return from_ddb(got["Item"]) if "Item" in got else None

    def statuses(self) -> list[dict[str, Any]]:
        """Every tenant's STATUS item (one per tenant that ever had a cost alarm change: a small Scan)."""
        items = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :p) AND sk = :s",
            ExpressionAttributeValues={":p": {"S": status_pk("")}, ":s": {"S": STATUS_SK}},
        ):
            items += [from_ddb(i) for i in page.get("Items", [])]
        return items

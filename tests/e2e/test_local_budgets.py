"""Budget alerts through `make local`: the watcher runs on the stack's schedule and mails the admin
once when a tenant's month passes 50 %. The spend is seeded on the BUDGET item as the gateway's
ledger (branch i10-ledger) ADDs it with each usage record, in the shape ISSUE10.md's Ledger gives."""

from __future__ import annotations

import email.policy
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from tollgate.periods import SPENT_ATTR, ledger_key, period_of
from tollgate_local.launch import local_stack_process

pytestmark = pytest.mark.e2e
USD = 10**12
ADMIN = json.loads((Path(__file__).parents[2] / "config.json").read_text())["admin_email"]
CONTACT = json.loads((Path(__file__).parents[2] / "config.json").read_text())["tenants"]["acme"]["contact_email"]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack_process(tmp_path_factory.mktemp("tollgate")) as launched:
        yield {**launched.state, "dir": launched.state_dir}


def budget_mails(outbox: Path, to: str = ADMIN) -> list[tuple[str, str]]:
    """The budget mails one address got (the admin's, or a tenant contact's)."""
    parser = BytesParser(policy=email.policy.default)
    found = []
    for path in sorted(outbox.glob("*.eml")):
        mail = parser.parsebytes(path.read_bytes())
        if str(mail["Subject"]).startswith("Budget ") and str(mail["To"]) == to:
            body = mail.get_body(("plain",))
            assert body is not None
            found.append((str(mail["Subject"]), str(body.get_content()).replace("\r\n", "\n")))
    return found


def test_a_month_past_50_percent_mails_the_admin_once(local: dict[str, Any]) -> None:
    dynamodb = boto3.client(
        "dynamodb", region_name=local["region"], endpoint_url=local["aws_endpoint_url"],
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip
    table = local["resources"]["ControlTable"]
    key = ledger_key("acme", None, period_of("month", datetime.now(UTC), "America/New_York"))
    outbox = Path(local["outbox"]) if Path(local["outbox"]).is_absolute() else local["dir"] / "outbox"

    def add(pusd: int) -> None:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
            UpdateExpression="ADD #spent :a, committed_pusd :a SET tenant_id = :t",
            ExpressionAttributeNames={"#spent": SPENT_ATTR},
            ExpressionAttributeValues={":a": {"N": str(pusd)}, ":t": {"S": "acme"}},
        )

    add(200 * USD)  # 40 % of the team tier's $500: no alert
    time.sleep(12)  # two runs of the watcher (TOLLGATE_SCHEDULE_INTERVAL, 5 s)
    assert budget_mails(outbox) == []
    add(60 * USD)  # 52 %
    deadline = time.monotonic() + 30
    while not budget_mails(outbox) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(12)  # later runs send nothing more
    mails = budget_mails(outbox)
    assert len(mails) == 1, mails
    subject, text = mails[0]
    assert subject.startswith("Budget 50% reached")
    assert "acme" in subject
    assert "has spent $260.00 of its monthly budget of $500.00" in text
    assert "Resets:" in text
    # The tenant's contact gets its own copy (TenantNoticeTopic, filter policy on tenant_id), once.
    assert len(budget_mails(outbox, CONTACT)) == 1


def call(local: dict[str, Any], path: str, tenant: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{local['api_url']}{path}", headers={"Authorization": f"Bearer {local['tenants'][tenant]['api_key']}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_usage_and_budget_through_the_local_api_with_a_tenant_key(local: dict[str, Any]) -> None:
    status, budget = call(local, "/budget", "acme")
    assert status == 200, budget
    assert budget["tenant_id"] == "acme"
    (month,) = [b for b in budget["budgets"] if b["period"] == "month" and b["profile"] is None]
    assert month["limit_usd"] == "500"
    assert month["resets_at_utc"].endswith("Z")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    status, usage = call(local, f"/usage?from={today}&to={today}&granularity=day", "acme")
    assert status == 200, usage
    assert usage["tenant_id"] == "acme"
    assert all(row["profile"].startswith("acme") for row in usage["rows"])
    status, refused = call(local, "/usage?tenant=globex", "acme")
    assert status == 400
    assert "unknown parameter 'tenant'" in refused["message"]

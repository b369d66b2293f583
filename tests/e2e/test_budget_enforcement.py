"""End to end: an enforced budget under 50 concurrent requests through the local API (stock boto3).

The sample config's initech (free tier) enforces a daily budget of 2.00 USD. With maxTokens
12000 an initech-coder request's worst case is about 0.198 USD: the budget fits 10 of them.
Locally the gateway is one warm container that answers one invocation at a time
(tollgate_local.runtime), so reservations do not overlap here as they do on Lambda (the
in-process test tests/integration/test_ledger.py runs them truly concurrently); what this test
shows is the whole path: the stock client's errors, the ledger and records reconciling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tollgate.adapters.dynamodb import from_ddb
from tollgate.config import ConfigBundle
from tollgate.ledger import worst_case
from tollgate.periods import COMMITTED_ATTR, SPENT_ATTR, ledger_key, periods_of
from tollgate.pricing import PriceBook
from tollgate_cli.load import bearer_token, bedrock_client
from tollgate_local.launch import local_stack_process
from tollgate_local.template import REPO_ROOT

pytestmark = pytest.mark.e2e

PARAMS: dict[str, Any] = {
    "messages": [{"role": "user", "content": [{"text": "Refactor the billing module"}]}],
    "inferenceConfig": {"maxTokens": 12000},
}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack_process(tmp_path_factory.mktemp("tollgate-budget")) as launched:
        yield launched.state


def aws(local: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service, region_name=local["region"], endpoint_url=local["aws_endpoint_url"],
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip


def test_50_concurrent_requests_through_the_local_api_never_overspend_and_refusals_name_the_budget(
    local: dict[str, Any],
) -> None:
    bundle = ConfigBundle.load_dir(REPO_ROOT, region=local["region"])
    profile, tenant = bundle.profile("initech-coder"), bundle.tenant("initech")
    assert profile is not None
    assert tenant is not None
    now = datetime.now(UTC)
    model = bundle.catalog.models[profile.model_id]
    worst = worst_case(PARAMS, profile, model, PriceBook(bundle.catalog, local["region"]), now).amount_pusd
    limit = tenant.budget.daily_pusd
    assert limit is not None
    assert limit // worst == 10  # the budget fits 10 worst cases
    key = local["tenants"]["initech"]["api_key"]
    client = bedrock_client(local["api_url"], key, local["region"])
    served: list[Decimal] = []
    refused: list[ClientError] = []
    dropped: list[Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def call() -> None:
        start.wait()
        try:
            answer = client.converse(modelId="initech-coder", **PARAMS)
            with lock:
                served.append(Decimal(answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-cost-usd"]))
        except ClientError as exc:
            with lock:
                refused.append(exc)
        except Exception as exc:  # a connection the front dropped: counted, so the test says so
            with lock:
                dropped.append(exc)

    with bearer_token(key):
        threads = [threading.Thread(target=call) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    kinds = sorted({e.response["Error"]["Code"] for e in refused})
    dynamodb = aws(local, "dynamodb")
    control = local["resources"]["ControlTable"]

    def open_reservations() -> int:
        items = dynamodb.scan(TableName=control)["Items"]
        return sum(1 for i in items if i["pk"]["S"].startswith("RES#"))

    # A request the local front gave up on (its one warm gateway answers one at a time, so under
    # load some of 50 queued requests pass API Gateway's timeout) may still be finishing: wait.
    deadline = time.monotonic() + 60
    while open_reservations() and time.monotonic() < deadline:
        time.sleep(0.5)
    day = ledger_key("initech", None, periods_of(now, tenant.time_zone)["day"])
    item = from_ddb(
        dynamodb.get_item(TableName=control, Key={"pk": {"S": day.pk}, "sk": {"S": day.sk}}, ConsistentRead=True)[
            "Item"
        ]
    )
    spent = int(item[SPENT_ATTR])
    records = [
        int(from_ddb(i)["cost_pusd"])
        for i in dynamodb.scan(TableName=local["resources"]["UsageTable"])["Items"]
        if i["tenant_id"]["S"] == "initech"
    ]
    print(
        f"\nlocal API, 50 concurrent: served {len(served)}, refused {len(refused)} {kinds}, "
        f"spent {spent} pusd of {limit}, worst case {worst}, overspend {max(0, spent - limit)} pusd"
    )
    assert dropped == []
    assert len(served) + len(refused) == 50
    assert len(served) >= 10
    # refusals are Bedrock-shaped: over budget, over tokens/min, or the local front's timeouts
    assert set(kinds) <= {
        "ServiceQuotaExceededException",
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
    }
    throttled = [e for e in refused if e.response["Error"]["Code"] == "ThrottlingException"]
    assert all(e.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after") for e in throttled)
    assert spent - limit <= worst
    assert spent == sum(records)  # the budget is exactly the usage records
    assert sum(served) * 10**12 <= spent  # every answer the callers got was booked
    assert int(item[COMMITTED_ATTR]) == spent  # nothing left reserved
    assert open_reservations() == 0


def test_a_request_the_budget_cannot_cover_is_refused_as_service_quota_exceeded_and_not_charged(
    local: dict[str, Any],
) -> None:
    key = local["tenants"]["initech"]["api_key"]
    client = bedrock_client(local["api_url"], key, local["region"])
    long_prompt = "word " * 80_000  # 400 KB: its worst case alone is above initech's 2.00 USD a day
    with bearer_token(key), pytest.raises(client.exceptions.ServiceQuotaExceededException) as refused:
        client.converse(
            modelId="initech-coder",
            messages=[{"role": "user", "content": [{"text": long_prompt}]}],
            inferenceConfig={"maxTokens": 1000},
        )
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "tenant initech's daily budget" in error["Error"]["Message"]
    assert "nothing was charged" in error["Error"]["Message"]

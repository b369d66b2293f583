"""End to end, requests per minute per tenant: a burst through `tollgate local`'s API.

initech is on the free tier (60 requests a minute: a usage plan of 1 request a second into a bucket
of 60). A burst of 90 requests at once gets 60-odd served and the rest refused 429
ThrottlingException by the front (as API Gateway would, before the gateway function): the served
ones are charged, one usage record each, and the refused ones are not. acme (team tier, 600 a
minute) sending the same burst at the same time is not slowed by initech's limit.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from tollgate_local.launch import local_stack_process

pytestmark = pytest.mark.e2e
BURST = 90
BODY = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack_process(tmp_path_factory.mktemp("tollgate-limits")) as launched:
        yield {**launched.state, "dir": launched.state_dir}


def send(local: dict[str, Any], tenant: str, profile: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"{local['api_url']}/model/{profile}/converse",
        data=BODY,
        method="POST",
        headers={"Authorization": f"Bearer {local['tenants'][tenant]['api_key']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def records_of(local: dict[str, Any], tenant: str) -> int:
    dynamodb = boto3.client("dynamodb", endpoint_url=local["aws_endpoint_url"], region_name=local["region"])
    table = local["resources"]["UsageTable"]
    items = dynamodb.get_paginator("scan").paginate(
        TableName=table, FilterExpression="tenant_id = :t", ExpressionAttributeValues={":t": {"S": tenant}}
    )
    return sum(page["Count"] for page in items)


def test_a_burst_above_the_free_tiers_rate_is_partly_refused_429_and_nothing_is_charged_for_it(
    local: dict[str, Any],
) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        initech = list(pool.map(lambda _: send(local, "initech", "initech-coder"), range(BURST)))
        acme = list(pool.map(lambda _: send(local, "acme", "acme-search"), range(BURST)))
    seconds = time.monotonic() - started
    served = [r for r in initech if r[0] == 200]
    refused = [r for r in initech if r[0] == 429]
    print(f"initech burst: sent {BURST}, served {len(served)}, 429 {len(refused)} in {seconds:.1f} s")
    assert len(served) + len(refused) == BURST
    # a full bucket of 60, plus what 1 request/s refills while the burst runs
    assert 60 <= len(served) <= 60 + seconds + 1
    assert refused
    _, headers, body = refused[0]
    assert headers["x-amzn-ErrorType"] == "ThrottlingException"
    assert "too many requests" in json.loads(body)["message"]
    assert all(r[0] == 200 for r in acme)  # another tenant's plan, its own bucket
    deadline = time.monotonic() + 30
    while records_of(local, "initech") < len(served) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert records_of(local, "initech") == len(served)  # one record per served request, none for a 429

"""End to end: `tollgate local` in its own process, the stock boto3 client over real HTTP."""

from __future__ import annotations

import email.policy
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.money import usd
from tollgate.rollup import Granularity, period_of
from tollgate_cli.load import Caller, bearer_token, bedrock_client, run_load, wait_for_rollups
from tollgate_local.launch import local_stack_process

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def aws(local: dict[str, Any], service: str) -> Any:
    """A client of the local stack's moto server."""
    return boto3.client(
        service, region_name=local["region"], endpoint_url=local["aws_endpoint_url"],
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack_process(tmp_path_factory.mktemp("tollgate")) as launched:
        yield {**launched.state, "dir": launched.state_dir, "process": launched.process}


def test_local_json_has_the_shape_product_md_documents(local: dict[str, Any]) -> None:
    written = json.loads((local["dir"] / "local.json").read_text())
    assert {"api_url", "aws_endpoint_url", "region", "tenants", "resources", "outbox"} <= written.keys()
    assert written["api_url"].startswith("http://127.0.0.1:")
    assert set(written["tenants"]) == {"acme", "globex", "initech"}
    assert written["tenants"]["initech"]["profiles"] == ["initech-analytics", "initech-coder"]
    assert all(info["api_key"].startswith("tg_") for info in written["tenants"].values())
    assert {"UsageTable", "TrendTable", "TenantTable", "AlertTopic", "AggregationFailureQueue"} <= set(
        written["resources"]
    )
    assert Path(written["outbox"]) == local["dir"] / "outbox"


def test_a_request_becomes_a_record_a_rollup_and_a_metric(
    local: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = local["tenants"]["acme"]
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", tenant["api_key"])
    client = boto3.client("bedrock-runtime", region_name=local["region"], endpoint_url=local["api_url"])
    answer = client.converse(modelId="acme-chat", messages=[{"role": "user", "content": [{"text": "Hello there"}]}])
    answered = time.monotonic()
    cost = answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-cost-usd"]
    request_id = answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-request-id"]
    dynamodb = aws(local, "dynamodb")
    record = dynamodb.get_item(TableName=local["resources"]["UsageTable"], Key={"request_id": {"S": request_id}})
    assert record["Item"]["cost_usd"]["S"] == cost

    day = period_of(Granularity.DAY, datetime.now(UTC))

    def rolled_up() -> bool:
        rows = dynamodb.query(
            TableName=local["resources"]["TrendTable"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"DAY#{day}"}},
        )["Items"]
        return any(r["profile"]["S"] == "acme-chat" for r in rows)

    wait_for(rolled_up, 30, "the rollup")
    to_rollup = time.monotonic() - answered
    cloudwatch = aws(local, "cloudwatch")

    def metric() -> bool:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="Tollgate", MetricName="Requests",
            Dimensions=[{"Name": "TenantId", "Value": "acme"}, {"Name": "Profile", "Value": "acme-chat"}],
            StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum"],
        )["Datapoints"]  # fmt: skip
        return sum(p["Sum"] for p in points) == 1

    wait_for(metric, 30, "the Requests metric")
    print(f"\nrequest -> rollup {to_rollup:.1f} s, request -> metric {time.monotonic() - answered:.1f} s")


def test_tollgate_load_sends_each_tenants_calls_with_its_own_key(local: dict[str, Any]) -> None:
    callers = [Caller(t, info["api_key"], tuple(info["profiles"])) for t, info in local["tenants"].items()]
    tallies = run_load(local["api_url"], local["region"], callers, requests=12)
    assert {t: (tally.succeeded, tally.failed) for t, tally in tallies.items()} == {
        t: (tally.requests, 0) for t, tally in tallies.items()
    }
    assert sum(tally.requests for tally in tallies.values()) == 12
    assert all(tally.cost_usd > 0 for tally in tallies.values() if tally.requests)
    trends = DynamoTrendStore(aws(local, "dynamodb"), local["resources"]["TrendTable"])
    answered = [rid for tally in tallies.values() for rid in tally.request_ids]
    assert len(answered) == 12
    assert wait_for_rollups(trends, answered, timeout=30)[0] == 12


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str

    @property
    def transition(self) -> tuple[str, str]:
        """(old state, new state), from the mail's 'Alarm <name> went OLD -> NEW at ...' line."""
        found = re.search(r"^Alarm \S+ went (\w+) -> (\w+) at ", self.text, re.M)
        assert found is not None, self.text
        return found[1], found[2]

    def amount(self, label: str) -> Decimal:
        """The dollar amount on the money line that starts with ``label``."""
        found = re.search(rf"^  {re.escape(label)}:\s+\$([0-9.]+)   \(", self.text, re.M)
        assert found is not None, f"no amount for {label!r} in:\n{self.text}"
        return Decimal(found[1])


def alarm_mails(outbox: Path, alarm: str) -> list[Mail]:
    """The mails about ``alarm`` (their subject names it, as CloudWatch's does), oldest first."""
    parser = BytesParser(policy=email.policy.default)
    found = []
    for path in sorted(outbox.glob("*.eml")):
        mail = parser.parsebytes(path.read_bytes())
        if f'"{alarm}"' in mail["Subject"]:
            body = mail.get_body(("plain",))
            assert body is not None
            found.append(Mail(mail["Subject"], str(body.get_content()).replace("\r\n", "\n")))
    return found


def test_a_burst_over_the_requests_per_minute_threshold_mails_one_alarm_in_words_then_one_ok(
    local: dict[str, Any],
) -> None:
    """initech-coder allows 20 requests a minute (config.json); 21 in one minute alarm once, then recover."""
    alarm, outbox = "BedrockRequestsPerMinuteAlarm-initech-coder", local["dir"] / "outbox"
    wait_for(lambda: len(alarm_mails(outbox, alarm)) == 1, 30, "the first evaluation's OK mail")
    second = datetime.now(UTC).second
    if not 16 <= second <= 35:  # the whole burst in one minute, past the evaluator's late-data lag
        time.sleep((60 - second + 16) % 60)
    key = local["tenants"]["initech"]["api_key"]
    client = bedrock_client(local["api_url"], key, local["region"])
    charged = Decimal(0)
    with bearer_token(key):
        for sent in range(1, 22):
            answer = client.converse(
                modelId="initech-coder", messages=[{"role": "user", "content": [{"text": f"fix #{sent}"}]}]
            )
            charged += Decimal(answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-cost-usd"])
    crossed = time.monotonic()
    wait_for(lambda: len(alarm_mails(outbox, alarm)) == 2, 40, "the ALARM mail")
    alarmed = time.monotonic()
    wait_for(lambda: len(alarm_mails(outbox, alarm)) == 3, 100, "the OK mail")
    recovered = time.monotonic()
    mails = alarm_mails(outbox, alarm)
    assert [m.transition for m in mails] == [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM"), ("ALARM", "OK")]
    assert [m.subject.split(":")[0] for m in mails] == ["OK", "ALARM", "OK"]

    # The ALARM mail says whose, what crossed, and the money, exactly as the trend table has it
    mail = mails[1]
    headline = re.match(
        r"Profile initech-coder of tenant Initech \(initech\) made (\d+) requests in the minute from \d\d:\d\d UTC, "
        r"over its limit of 20 requests per minute\.\n",
        mail.text,
    )
    assert headline is not None, mail.text
    assert int(headline[1]) >= 21  # the burst, and any of the load test's calls in the same minute
    day = period_of(Granularity.DAY, datetime.now(UTC))
    rows = DynamoTrendStore(aws(local, "dynamodb"), local["resources"]["TrendTable"]).rows(Granularity.DAY, day)
    # all 21 requests were rolled up before their metric could cross, and initech made none since
    assert mail.amount(f"Initech (all profiles), {day} so far") == usd(
        sum(r.totals.cost_pusd for r in rows if r.key.tenant_id == "initech")
    )
    assert mail.amount(f"initech-coder, {day} so far (UTC)") == usd(
        sum(r.totals.cost_pusd for r in rows if r.key.profile == "initech-coder")
    )
    window = re.search(r"^  initech-coder, (\d\d:\d\d-\d\d:\d\d UTC):", mail.text, re.M)
    assert window is not None
    assert mail.amount(f"initech-coder, {window[1]}") >= charged  # the burst is in the last 5 minutes' cost
    assert f"Dashboard: {local['dashboard_url']}\n" in mail.text
    assert f"Detail:    tollgate report --period {day} --by profile --local\n" in mail.text
    print(f"\nthreshold crossed -> ALARM mail {alarmed - crossed:.1f} s, ALARM -> OK mail {recovered - alarmed:.1f} s")


def test_ctrl_c_stops_everything_and_frees_the_ports(local: dict[str, Any]) -> None:
    """Runs last in this module: it stops the shared stack."""
    process: subprocess.Popen[bytes] = local["process"]
    ports = [urlsplit(local[key]).port for key in ("api_url", "aws_endpoint_url", "bedrock_endpoint_url")]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers after Ctrl-C"

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
from tollgate_cli.main import main
from tollgate_local.functions import LocalLambdaContext, load_handler_module
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


# --------------------------------------------------------------------------- sam local invoke against make local


def test_the_sam_env_files_hold_every_functions_variables_and_the_local_endpoints(local: dict[str, Any]) -> None:
    logical_of = {physical: logical for logical, physical in local["resources"].items()}
    in_moto = {
        logical_of[f["FunctionName"]]: f.get("Environment", {}).get("Variables", {})
        for f in aws(local, "lambda").list_functions()["Functions"]
    }
    assert {"AuthorizerFunction", "GatewayFunction", "AggregatorFunction", "ProvisionerFunction"} <= set(in_moto)
    for file, host in (("sam-env.json", "127.0.0.1"), ("sam-env-docker-desktop.json", "host.docker.internal")):
        aws_url = local["aws_endpoint_url"].replace("127.0.0.1", host)
        bedrock_url = local["bedrock_endpoint_url"].replace("127.0.0.1", host)
        endpoints = {"AWS_ENDPOINT_URL": aws_url, "AWS_ENDPOINT_URL_BEDROCK": bedrock_url,
                     "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock_url}  # fmt: skip
        written = json.loads((local["dir"] / file).read_text())
        # as strings, as Lambda holds them (moto's Lambda keeps a template's number as a number)
        expected = {
            logical: {**{k: str(v) for k, v in variables.items()}, **endpoints}
            for logical, variables in in_moto.items()
        }
        assert written == expected, file
    assert local["sam_env_vars"]["host network"].endswith("sam-env.json")


def sam_local_invoke(
    local: dict[str, Any], function: str, event: str, monkeypatch: pytest.MonkeyPatch, sam_local_environment: Any
) -> Any:
    """`sam local invoke <function> -e events/<event> --env-vars <state>/sam-env.json --region <region>
    --docker-network host`, but in this process (no Docker here): the environment SAM CLI computes
    for the container, then the handler. /opt/tollgate-config (the config layer) is the repository's."""
    env_vars = json.loads((local["dir"] / "sam-env.json").read_text())
    for name, value in sam_local_environment(function, env_vars, region=local["region"]).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TOLLGATE_CONFIG_DIR", str(ROOT))
    handler = load_handler_module({"AuthorizerFunction": "authorizer", "GatewayFunction": "gateway"}[function])
    return handler.lambda_handler(json.loads((ROOT / "events" / event).read_text()), LocalLambdaContext(function))


def test_sam_local_invoke_authorizer_accepts_the_events_sample_key_against_make_local(
    local: dict[str, Any], monkeypatch: pytest.MonkeyPatch, sam_local_environment: Any
) -> None:
    policy = sam_local_invoke(local, "AuthorizerFunction", "authorizer.json", monkeypatch, sam_local_environment)
    assert policy["principalId"] == "acme"
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["context"] == {"tenant_id": "acme", "key_id": "acmesample"}
    refused = sam_local_invoke(
        local, "AuthorizerFunction", "authorizer-unknown-key.json", monkeypatch, sam_local_environment
    )
    assert refused["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_sam_local_invoke_gateway_with_the_converse_event_charges_make_locals_usage_table(
    local: dict[str, Any], monkeypatch: pytest.MonkeyPatch, sam_local_environment: Any
) -> None:
    answer = sam_local_invoke(local, "GatewayFunction", "converse.json", monkeypatch, sam_local_environment)
    assert answer["statusCode"] == 200, answer["body"]
    (cost,) = {k.lower(): v for k, v in answer["multiValueHeaders"].items()}["x-tollgate-cost-usd"]
    record = aws(local, "dynamodb").get_item(
        TableName=local["resources"]["UsageTable"], Key={"request_id": {"S": "sample-converse"}}
    )["Item"]
    assert record["cost_usd"]["S"] == cost
    assert record["key_id"]["S"] == "acmesample"


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
                modelId="initech-coder",
                messages=[{"role": "user", "content": [{"text": f"fix #{sent}"}]}],
                # initech's free tier enforces a 2 USD daily budget: without maxTokens each request
                # would reserve the model's whole maximum output (about 1 USD)
                inferenceConfig={"maxTokens": 100},
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


def test_the_failed_aggregation_runbook_poison_record_fixed_then_redriven(
    local: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README "Failed aggregation": a record the aggregator cannot read ends in the failure queue;
    `tollgate redrive` names it and keeps it; once it is corrected, re-driving rolls it up once."""
    dynamodb, sqs = aws(local, "dynamodb"), aws(local, "sqs")
    usage, queue = local["resources"]["UsageTable"], local["resources"]["AggregationFailureQueue"]
    # Given a usage item with a negative cost (as a bug or a hand edit could write it), copied from a real one
    key = local["tenants"]["acme"]["api_key"]
    client = bedrock_client(local["api_url"], key, local["region"])
    with bearer_token(key):
        answer = client.converse(
            modelId="acme-chat", messages=[{"role": "user", "content": [{"text": "a record to copy"}]}]
        )
    request_id = answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-request-id"]
    sample = dynamodb.get_item(TableName=usage, Key={"request_id": {"S": request_id}})["Item"]
    poison = {**sample, "request_id": {"S": "e2e-poison-1"}, "cost_pusd": {"N": "-1"}}
    dynamodb.put_item(TableName=usage, Item=poison)
    depth = lambda: int(  # noqa: E731
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    wait_for(lambda: depth() == 1, 60, "the poison record's batch in the failure queue")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tollgate").symlink_to(local["dir"])  # where `tollgate --local` looks
    redrive = ["--dir", str(ROOT), "redrive", "--local"]

    # When it is re-driven as it is, then it is named and kept
    assert main(redrive) == 1
    assert "record e2e-poison-1 cannot be aggregated: cost_pusd" in capsys.readouterr().err
    assert depth() == 1
    # And once the item is corrected, re-driving adds it to the rollups, once, and empties the queue
    dynamodb.update_item(
        TableName=usage,
        Key={"request_id": {"S": "e2e-poison-1"}},
        UpdateExpression="SET cost_pusd = :c",
        ExpressionAttributeValues={":c": sample["cost_pusd"]},
    )
    assert main(redrive) == 0
    assert "re-driven" in capsys.readouterr().out
    trends = DynamoTrendStore(aws(local, "dynamodb"), local["resources"]["TrendTable"])
    assert trends.aggregated(["e2e-poison-1"]) == {"e2e-poison-1"}
    assert main(redrive) == 0
    assert "nothing to re-drive" in capsys.readouterr().out


def test_ctrl_c_stops_everything_and_frees_the_ports(local: dict[str, Any]) -> None:
    """Runs last in this module: it stops the shared stack."""
    process: subprocess.Popen[bytes] = local["process"]
    ports = [urlsplit(local[key]).port for key in ("api_url", "aws_endpoint_url", "bedrock_endpoint_url")]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers after Ctrl-C"
    # and what points at those ports is gone with them
    assert [f.name for f in local["dir"].iterdir() if f.name == "local.json" or f.name.startswith("sam-env")] == []

"""End to end, actions on a cost alarm through `tollgate local`: throttle, then lift on OK.

acme is on the team tier (600 requests a minute; on_cost_alarm "throttle"). The cost alarm of
acme-chat goes to ALARM: the message CloudWatch publishes to AlertTopic is published there (moto's
SetAlarmState runs no actions, and spending $10 in 5 minutes would take long), SNS invokes the
actions function (the local stack's bridge), which moves acme's API key to the team plan's
throttled twin (60 a minute): the local front, which reads the plans from moto, then refuses a
burst of 90 after 60-odd. OK lifts it: the same burst is all served again. Each change reaches
acme's contact only (the notice topic's filter policy), and is logged in ControlTable.
"""

from __future__ import annotations

import email.policy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.parser import BytesParser
from typing import Any

import boto3
import pytest
from tollgate_local.launch import local_stack_process

from tests.e2e.test_rate_limited_burst import send

pytestmark = pytest.mark.e2e
BURST = 90
ALARM_NAME = "BedrockTokenCostAlarm-acme-chat"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with local_stack_process(tmp_path_factory.mktemp("tollgate-actions")) as launched:
        yield {**launched.state, "dir": launched.state_dir}


def aws(local: dict[str, Any], service: str) -> Any:
    return boto3.client(service, endpoint_url=local["aws_endpoint_url"], region_name=local["region"])


def alarm_changes(local: dict[str, Any], state: str) -> None:
    """What CloudWatch publishes to the alarm's topic when the alarm changes state."""
    topic = local["resources"]["AlertTopic"]
    message = {
        "AlarmName": ALARM_NAME,
        "NewStateValue": state,
        "OldStateValue": "OK" if state == "ALARM" else "ALARM",
        "NewStateReason": "Threshold Crossed: 1 datapoint [12.5 (03/12/26 17:00:00)] was greater than 10.0",
        "StateChangeTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "+0000"),
        "AlarmArn": f"arn:aws:cloudwatch:{local['region']}:123456789012:alarm:{ALARM_NAME}",
    }
    aws(local, "sns").publish(TopicArn=topic, Subject=f'{state}: "{ALARM_NAME}"', Message=json.dumps(message))


def burst(local: dict[str, Any]) -> tuple[int, int]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [r[0] for r in pool.map(lambda _: send(local, "acme", "acme-chat"), range(BURST))]
    return codes.count(200), codes.count(429)


def status(local: dict[str, Any]) -> str | None:
    got = aws(local, "dynamodb").get_item(
        TableName=local["resources"]["ControlTable"], Key={"pk": {"S": "STATUS#acme"}, "sk": {"S": "STATUS"}}
    )
    return got.get("Item", {}).get("status", {}).get("S")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def notices(local: dict[str, Any]) -> list[tuple[str, str]]:
    parser = BytesParser(policy=email.policy.default)
    found = []
    for path in sorted((local["dir"] / "outbox").glob("*.eml")):
        mail = parser.parsebytes(path.read_bytes())
        if "cost alarm of acme-chat" in str(mail["Subject"]):
            found.append((str(mail["To"]), str(mail["Subject"])))
    return found


def test_a_cost_alarm_throttles_the_tenants_key_and_ok_lifts_it(local: dict[str, Any]) -> None:
    before = burst(local)
    assert before == (BURST, 0)  # the team plan: a bucket of 600
    time.sleep(1.5)
    alarm_changes(local, "ALARM")
    wait_for(lambda: status(local) == "throttled", 30, "the throttle")
    time.sleep(2.5)  # the local front re-reads plans and keys every second
    throttled = burst(local)
    print(f"\nacme burst of {BURST}: before {before}, throttled {throttled} (served, 429)")
    assert 55 <= throttled[0] <= 70  # the throttled twin: 60 a minute, a bucket of 60
    assert throttled[1] >= BURST - 70
    alarm_changes(local, "OK")
    wait_for(lambda: status(local) == "normal", 30, "the lift")
    time.sleep(2.5)
    lifted = burst(local)
    print(f"lifted {lifted} (served, 429)")
    assert lifted == (BURST, 0)
    wait_for(lambda: len(notices(local)) == 2, 30, "the two notices")
    contact = "ops@acme.example"
    assert notices(local) == [
        (contact, "Tollgate: cost alarm of acme-chat fired"),
        (contact, "Tollgate: cost alarm of acme-chat cleared"),
    ]
    log = aws(local, "dynamodb").query(
        TableName=local["resources"]["ControlTable"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "ACTION#acme"}},
    )["Items"]
    assert [i["what"]["S"] for i in log] == ["throttle", "lifted throttle"]


def test_tollgate_report_shows_the_actions_and_the_status_in_force(local: dict[str, Any], tmp_path: Any) -> None:
    (tmp_path / ".tollgate").symlink_to(local["dir"])  # `--local` reads ./.tollgate/local.json
    shown = subprocess.run(
        [sys.executable, "-m", "tollgate_cli.main", "report", "--local", "--period", "today"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200"},  # one action a line (rich wraps at the terminal's width)
    ).stdout
    print(shown)
    section = shown[shown.index("Actions on cost alarms") :]
    assert "acme: normal" in section
    assert f"throttle ({ALARM_NAME} ALARM)" in section
    assert f"lifted throttle ({ALARM_NAME} OK)" in section

"""The local stack's notification path, in this process: AlertTopic -> notifier (SNS -> Lambda bridge) -> AdminTopic.

When the notifier fails entirely, what Lambda does follows (the template's EventInvokeConfig):
retries, then the invocation record in the NotificationFailureQueue, whose alarm mails the
admin CloudWatch's own message through the admin topic. The mail still arrives.
"""

from __future__ import annotations

import email.policy
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tollgate.config import ConfigBundle
from tollgate_local import runtime
from tollgate_local.stack import LocalStack
from tollgate_local.template import REPO_ROOT, load_template, resources_of_type

from tests.integration.conftest import load_event

# moto's CloudFormation warns of the types it skips; the local stack handles them (tollgate_local.cloudformation)
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
# Each alarm mails its first OK: 3 per profile of config.json, and the template's own (AggregationFailureAlarm,
# NotificationFailureAlarm, the metering alarms ...), counted from the files rather than written down.
ALARMS_AT_START = 3 * len(ConfigBundle.load_dir(REPO_ROOT).profiles()) + len(
    resources_of_type(load_template(REPO_ROOT / "template.yaml"), "AWS::CloudWatch::Alarm")
)


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalStack, dict[str, Any]]]:
    monkeypatch.setattr(runtime, "_router", None)  # install_router replaces sys.stdout: put both back afterwards
    monkeypatch.setattr(sys, "stdout", sys.stdout)
    saved = dict(os.environ)  # the stack sets its endpoints in the environment, as `tollgate local` does
    with mock_aws():
        pass  # the stack's moto server runs in this process and shares its backends: start them empty
    stack = LocalStack(port=0, state_dir=tmp_path, alarm_interval=0.5, retry_delays=(0.1, 0.2))
    try:
        yield stack, stack.start()
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def client(state: dict[str, Any], service: str) -> Any:
    return boto3.client(service, region_name=state["region"], endpoint_url=state["aws_endpoint_url"])


def mails(state: dict[str, Any]) -> list[EmailMessage]:
    parser = BytesParser(policy=email.policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in sorted(Path(state["outbox"]).glob("*.eml"))]  # type: ignore[misc]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def test_the_admin_gets_every_alarm_in_words_through_the_notifier(local: tuple[LocalStack, dict[str, Any]]) -> None:
    _, state = local
    started = wait_for(lambda: len(mails(state)) >= ALARMS_AT_START and mails(state), 30, "the first OK mails")
    assert len(started) == ALARMS_AT_START
    by_subject = {m["Subject"]: text_of(m) for m in started}
    coder = by_subject['OK: "BedrockRequestsPerMinuteAlarm-initech-coder" in US East (N. Virginia)']
    assert coder.startswith("Profile initech-coder of tenant Initech (initech) is back within its limit of 20 requests")
    assert "Detail:    tollgate report --period " in coder
    assert coder.split("Detail:    tollgate report --period ")[1].split("\n")[0].endswith("--by profile --local")
    assert f"Dashboard: {state['dashboard_url']}" in coder
    # the notifier's own failure alarm goes to the admin topic directly, as CloudWatch's mail
    raw = by_subject['OK: "tollgate-local-NotificationFailureAlarm" in US East (N. Virginia)']
    assert raw.startswith('You are receiving this email because your Amazon CloudWatch Alarm "tollgate-local-')


def test_when_the_notifier_fails_the_alarm_is_kept_and_the_admin_still_gets_a_mail(
    local: tuple[LocalStack, dict[str, Any]],
) -> None:
    stack, state = local
    wait_for(lambda: len(mails(state)) >= ALARMS_AT_START, 30, "the first OK mails")
    # Given a notifier that cannot publish (its topic is gone, say), in a fresh container
    os.environ["ADMIN_TOPIC_ARN"] = f"arn:aws:sns:{state['region']}:123456789012:no-such-topic"
    stack.functions["NotifierFunction"].new_container()

    # When an alarm reaches the alert topic
    sample = load_event("notifier-alarm.json")["Records"][0]["Sns"]
    client(state, "sns").publish(
        TopicArn=state["resources"]["AlertTopic"], Message=sample["Message"], Subject=sample["Subject"]
    )

    # Then, after Lambda's retries, the notification is kept in the failure queue, whole
    sqs, queue = client(state, "sqs"), state["resources"]["NotificationFailureQueue"]
    (kept,) = wait_for(lambda: sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0).get("Messages"), 20, "kept")
    record = json.loads(kept["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3  # once, and MaximumRetryAttempts 2
    assert record["requestPayload"]["Records"][0]["Sns"]["Message"] == sample["Message"]
    assert record["responsePayload"]["errorType"] == "NotFoundException"

    # And its alarm mails the admin CloudWatch's message straight through the admin topic
    subject = 'ALARM: "tollgate-local-NotificationFailureAlarm" in US East (N. Virginia)'
    (mail,) = wait_for(lambda: [m for m in mails(state) if m["Subject"] == subject], 45, "the failure alarm's mail")
    text = text_of(mail)
    assert text.startswith('You are receiving this email because your Amazon CloudWatch Alarm "tollgate-local-')
    assert 'see README "Notifications that failed"' in text

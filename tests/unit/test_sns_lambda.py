"""Local mode's SNS -> Lambda: the template's subscriptions, the SNS event, Lambda's async retries and destination."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tollgate_local.cloudformation import split, transformed
from tollgate_local.functions import LocalLambdaContext
from tollgate_local.sns_lambda import AsyncInvoker, InvokeConfig, Subscriber, sns_event, subscribers

ENVELOPE = {
    "Type": "Notification",
    "MessageId": "m-1",
    "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
    "Message": '{"AlarmName": "a"}',
    "Timestamp": "2026-11-27T03:33:44.500Z",
    "SignatureVersion": "1",
    "Signature": "c2ln",
    "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
    "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
}


@dataclass
class Function:
    """A function that fails its first ``failures`` invocations."""

    failures: int
    name: str = "NotifierFunction"
    physical_name: str = "tollgate-local-NotifierFunction-1"
    calls: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def new_context(self) -> LocalLambdaContext:
        return LocalLambdaContext(function_name=self.physical_name)

    def invoke(self, event: Any, context: Any = None) -> Any:
        self.calls.append((dict(event), context.aws_request_id))
        if len(self.calls) <= self.failures:
            raise RuntimeError(f"failure {len(self.calls)}")
        return None


class Queue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:  # boto3's names
        self.sent.append({"QueueUrl": QueueUrl, **json.loads(MessageBody)})
        return {"MessageId": "q-1"}


def run(function: Function, config: InvokeConfig, queue: Queue, clock: list[float] | None = None) -> str:
    now = clock or [0.0]
    invoker = AsyncInvoker(
        function, config, sqs_client=queue, queue_url="https://sqs/q", retry_delays=(0.0,), monotonic=lambda: now[0]
    )
    invoker.start()
    request_id = invoker.submit(sns_event(ENVELOPE, "arn:sub"))
    assert invoker.wait_idle(5)
    invoker.stop()
    return request_id


def test_the_templates_sns_subscription_and_invoke_config_are_what_local_mode_emulates() -> None:
    left_out = split(transformed({}, "us-east-1")).left_out
    assert subscribers(left_out) == [
        Subscriber("ActionsFunction", "AlertTopic"),
        Subscriber("NotifierFunction", "AlertTopic"),
    ]
    assert InvokeConfig.of("ActionsFunction", left_out) == InvokeConfig(2, 3600, "NotificationFailureQueue")
    assert InvokeConfig.of("NotifierFunction", left_out) == InvokeConfig(2, 3600, "NotificationFailureQueue")
    assert InvokeConfig.of("AggregatorFunction", left_out) == InvokeConfig()  # Lambda's defaults, no destination


def test_the_event_is_the_one_lambda_gets_from_sns() -> None:
    (record,) = sns_event(ENVELOPE, "arn:aws:sns:us-east-1:123456789012:alerts:sub-1")["Records"]
    assert (record["EventSource"], record["EventVersion"]) == ("aws:sns", "1.0")
    assert record["EventSubscriptionArn"] == "arn:aws:sns:us-east-1:123456789012:alerts:sub-1"
    assert record["Sns"] == {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "Subject": None,  # published without one
        "Message": '{"AlarmName": "a"}',
        "Timestamp": "2026-11-27T03:33:44.500Z",
        "SignatureVersion": "1",
        "Signature": "c2ln",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
        "MessageAttributes": {},
    }


def test_a_failed_invocation_is_retried_with_the_same_request_id() -> None:
    function, queue = Function(failures=2), Queue()
    request_id = run(function, InvokeConfig(2, 3600, "NotificationFailureQueue"), queue)
    assert [rid for _, rid in function.calls] == [request_id] * 3
    assert queue.sent == []


def test_after_its_retries_the_event_goes_to_the_on_failure_queue_as_lambdas_invocation_record() -> None:
    function, queue = Function(failures=99), Queue()
    request_id = run(function, InvokeConfig(2, 3600, "NotificationFailureQueue"), queue)

    assert len(function.calls) == 3
    (record,) = queue.sent
    assert record["QueueUrl"] == "https://sqs/q"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:tollgate-local-NotifierFunction-1:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == sns_event(ENVELOPE, "arn:sub")  # the alarm message, kept whole
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert (record["responsePayload"]["errorType"], record["responsePayload"]["errorMessage"]) == (
        "RuntimeError",
        "failure 3",
    )


def test_an_event_older_than_the_maximum_age_is_not_tried_again() -> None:
    clock, queue = [0.0], Queue()

    class Ageing(Function):
        def invoke(self, event: Any, context: Any = None) -> Any:
            clock[0] += 100.0  # each attempt takes 100 s of the event's life
            return super().invoke(event, context)

    ageing = Ageing(failures=99)
    run(ageing, InvokeConfig(5, 150, "NotificationFailureQueue"), queue, clock)
    assert len(ageing.calls) == 2
    (record,) = queue.sent
    assert (record["requestContext"]["condition"], record["requestContext"]["approximateInvokeCount"]) == (
        "EventAgeExceeded",
        2,
    )

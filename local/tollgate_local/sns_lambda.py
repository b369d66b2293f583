"""SNS -> Lambda in local mode: a function subscribed to a topic, invoked as SNS and Lambda invoke it.

moto would run a Lambda subscriber in Docker (not here), but it POSTs every notification to an
HTTP subscription. SAM's SNS events become ``AWS::SNS::Subscription`` resources (Protocol
lambda), and ``EventInvokeConfig`` an ``AWS::Lambda::EventInvokeConfig``; the local stack leaves
both out of moto's stack (tollgate_local.cloudformation) and emulates them from those very
resources:

* **SNS**: :class:`SnsBridge` is an HTTP endpoint per subscribed function, subscribed to the
  topic; each notification becomes the event Lambda receives from SNS (one record,
  ``EventSource`` ``aws:sns``, ``Sns`` with the message, subject, ids and timestamps).
* **Asynchronous invocation** (how SNS invokes functions): the POST is answered at once and the
  event queued; :class:`AsyncInvoker` invokes it, retries a failure MaximumRetryAttempts times
  with the same request id, drops it once older than MaximumEventAgeInSeconds, and then sends
  Lambda's invocation record (``requestContext.condition`` RetriesExhausted or
  EventAgeExceeded, ``requestPayload`` the event, ``responsePayload`` the error) to the
  OnFailure SQS destination.

Differences from AWS: retries wait ``retry_delays`` (1 s, then 2 s) instead of about one and
two minutes, so that a failure shows within seconds; one event at a time per function (Lambda
may run several at once); only SQS destinations, no OnSuccess; SNS's own delivery retries
(for when Lambda cannot be reached) cannot arise in one process.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import quote, unquote, urlsplit

logger = logging.getLogger(__name__)

PATH: Final = "/sns/"
#: Lambda's defaults when a function has no EventInvokeConfig.
DEFAULT_RETRIES: Final = 2
DEFAULT_MAX_AGE: Final = 21600
RETRY_DELAYS: Final = (1.0, 2.0)


class Invocable(Protocol):
    """What the invoker needs of a function (tollgate_local.runtime.LocalFunction)."""

    name: str
    physical_name: str

    def new_context(self) -> Any: ...

    def invoke(self, event: Mapping[str, Any], context: Any = None) -> Any: ...


@dataclass(frozen=True)
class Subscriber:
    """A function subscribed to a topic in template.yaml, by logical names."""

    function: str
    topic: str


def subscribers(resources: Mapping[str, Mapping[str, Any]]) -> list[Subscriber]:
    """The functions subscribed to topics: ``AWS::SNS::Subscription`` resources of protocol lambda."""
    found = []
    for name, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::SNS::Subscription" or resource["Properties"].get("Protocol") != "lambda":
            continue
        properties = resource["Properties"]
        endpoint, topic = properties["Endpoint"], properties["TopicArn"]
        if not (isinstance(endpoint, dict) and "Fn::GetAtt" in endpoint and isinstance(topic, dict) and "Ref" in topic):
            raise ValueError(f"{name}: expected Endpoint !GetAtt <function>.Arn and TopicArn !Ref <topic>")
        function = endpoint["Fn::GetAtt"]
        found.append(Subscriber(function[0] if isinstance(function, list) else function.split(".")[0], topic["Ref"]))
    return found


@dataclass(frozen=True)
class InvokeConfig:
    """A function's asynchronous invocation settings (``AWS::Lambda::EventInvokeConfig``)."""

    max_retries: int = DEFAULT_RETRIES
    max_age_seconds: float = DEFAULT_MAX_AGE
    #: The OnFailure destination, as the template names it (a queue's logical name), or None.
    on_failure_queue: str | None = None

    @classmethod
    def of(cls, function: str, resources: Mapping[str, Mapping[str, Any]]) -> InvokeConfig:
        for resource in resources.values():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::EventInvokeConfig" and properties.get("FunctionName") == {
                "Ref": function
            }:
                destination = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
                queue_name = None
                if destination is not None:
                    target = destination.get("Fn::GetAtt") if isinstance(destination, dict) else None
                    if not target:
                        raise ValueError(f"{function}: the OnFailure destination must be !GetAtt <queue>.Arn")
                    queue_name = target[0] if isinstance(target, list) else target.split(".")[0]
                return cls(
                    int(properties.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
                    float(properties.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE)),
                    queue_name,
                )
        return cls()


def sns_event(envelope: Mapping[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The event Lambda gives a function subscribed to a topic, from the envelope SNS POSTs over HTTP."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId") or str(uuid.uuid4()),
                    "TopicArn": envelope.get("TopicArn", ""),
                    "Subject": envelope.get("Subject"),  # null when published without one, as in Lambda
                    "Message": envelope.get("Message", ""),
                    "Timestamp": envelope.get("Timestamp") or _now(),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "MessageAttributes": dict(envelope.get("MessageAttributes") or {}),
                },
            }
        ]
    }


def _now() -> str:
    moment = datetime.now(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


@dataclass
class _Event:
    payload: dict[str, Any]
    received: float  # time.monotonic() when SNS handed it over
    request_id: str


class AsyncInvoker:
    """Lambda's asynchronous invocation of one function: a queue, retries, the on-failure destination."""

    def __init__(
        self,
        function: Invocable,
        config: InvokeConfig,
        *,
        sqs_client: Any = None,
        queue_url: str | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if config.on_failure_queue and not (sqs_client and queue_url):
            raise ValueError(f"{function.name}: an OnFailure queue needs an SQS client and the queue's URL")
        self._function = function
        self._config = config
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._delays = tuple(retry_delays) or (0.0,)
        self._monotonic = monotonic
        self._events: queue.Queue[_Event | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"async:{function.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the invocation under way (queued events are dropped, as a deleted function's are)."""
        self._stopping.set()
        self._events.put(None)
        self._thread.join(timeout=10)

    def submit(self, event: Mapping[str, Any]) -> str:
        """Queue one event (what Lambda's Invoke with InvocationType Event does); its request id."""
        request_id = str(uuid.uuid4())
        self._events.put(_Event(dict(event), self._monotonic(), request_id))
        return request_id

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every submitted event is done (delivered or given up); for tests and benchmarks."""
        deadline = self._monotonic() + timeout
        while self._events.unfinished_tasks:
            if self._monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _run(self) -> None:
        while (event := self._events.get()) is not None:
            try:
                self._deliver(event)
            except Exception:
                logger.exception("%s: an asynchronous event was lost", self._function.name)
            finally:
                self._events.task_done()
        self._events.task_done()

    def _deliver(self, event: _Event) -> None:
        attempts, error = 0, None
        for attempt in range(self._config.max_retries + 1):
            if self._monotonic() - event.received > self._config.max_age_seconds:
                self._give_up(event, "EventAgeExceeded", attempts, error)
                return
            if attempt and self._stopping.wait(self._delays[min(attempt - 1, len(self._delays) - 1)]):
                return
            context = self._function.new_context()
            context.aws_request_id = event.request_id  # a retry keeps the event's request id, as in Lambda
            attempts += 1
            try:
                self._function.invoke(event.payload, context)
                return
            except Exception as failure:  # the function's error: retried, then kept
                error = failure
                logger.warning("%s failed (attempt %d): %s", self._function.name, attempts, failure)
        self._give_up(event, "RetriesExhausted", attempts, error)

    def _give_up(self, event: _Event, condition: str, attempts: int, error: BaseException | None) -> None:
        if not self._config.on_failure_queue:
            logger.error("%s: event %s dropped (%s, no OnFailure destination)", self._function.name, event.request_id,
                         condition)  # fmt: skip
            return
        record: dict[str, Any] = {
            "version": "1.0",
            "timestamp": _now(),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": f"{self._function.new_context().invoked_function_arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event.payload,
        }
        if error is not None:
            record["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
            record["responsePayload"] = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "requestId": event.request_id,
                "stackTrace": traceback.format_exception(error)[1:],
            }
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=json.dumps(record))
        logger.error("%s: event %s sent to its OnFailure queue (%s)", self._function.name, event.request_id, condition)


class SnsBridge:
    """The HTTP endpoints SNS POSTs to, one per subscribed function, handing each event to its invoker."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._server = _Server((host, port), _Handler)
        self._server.routes = {}
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sns-bridge", daemon=True)  # fmt: skip

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url_for(self, function: str) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}{quote(function, safe='')}"

    def route(self, function: str, invoker: AsyncInvoker, subscription_arn: str) -> None:
        """Send the notifications POSTed to ``url_for(function)`` to ``invoker``, as ``subscription_arn``."""
        self._server.routes[function] = (invoker, subscription_arn)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, tuple[AsyncInvoker, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        function = unquote(path[len(PATH) :]) if path.startswith(PATH) else ""
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if function not in self.server.routes:
            self._answer(HTTPStatus.NOT_FOUND, f"no function subscribed at {path}")
            return
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            self._answer(HTTPStatus.BAD_REQUEST, "expected an SNS message (JSON)")
            return
        kind = envelope.get("Type")
        if kind == "Notification":
            invoker, subscription_arn = self.server.routes[function]
            invoker.submit(sns_event(envelope, subscription_arn))
        elif kind not in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
            self._answer(HTTPStatus.BAD_REQUEST, f"unknown SNS message type {kind!r}")
            return
        self._answer(HTTPStatus.OK, "")

    def _answer(self, status: HTTPStatus, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("sns bridge: " + format, *args)

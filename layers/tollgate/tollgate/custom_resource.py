"""CloudFormation custom resource plumbing: always answer, and answer once.

A custom resource that never answers leaves the stack hanging for an hour, so the answer is
sent on success, on any exception, and by a watchdog shortly before the Lambda times out.
Written by hand (a PUT of a small JSON document to a pre-signed URL): the AWS-provided
``cfnresponse`` module only exists for inline code, and crhelper is unmaintained.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="tollgate", child=True)

Opener = Callable[..., Any]
#: Seconds before the Lambda deadline at which the watchdog gives up and reports FAILED.
WATCHDOG_MARGIN = 10.0


class Responder:
    def __init__(self, event: Mapping[str, Any], opener: Opener = urllib.request.urlopen):
        self._event = event
        self._opener = opener
        self._lock = threading.Lock()
        self.sent: dict[str, Any] | None = None

    def send(self, status: str, physical_id: str, reason: str = "", data: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            if self.sent is not None:
                return
            body = {
                "Status": status,
                "Reason": (reason or f"{status}; details in CloudWatch Logs")[:3800],
                "PhysicalResourceId": physical_id,
                "StackId": self._event["StackId"],
                "RequestId": self._event["RequestId"],
                "LogicalResourceId": self._event["LogicalResourceId"],
                "NoEcho": False,
                "Data": dict(data or {}),
            }
            payload = json.dumps(body).encode()
            request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's pre-signed S3 URL
                self._event["ResponseURL"],
                data=payload,
                method="PUT",
                headers={"Content-Type": "", "Content-Length": str(len(payload))},
            )
            with self._opener(request, timeout=30) as response:
                response.read()
            self.sent = body
            logger.info("custom resource answered", extra={"status": status, "reason": body["Reason"]})


Handler = Callable[[Mapping[str, Any]], tuple[str, dict[str, Any]]]


def run_custom_resource(
    event: Mapping[str, Any], context: Any, handler: Handler, opener: Opener = urllib.request.urlopen
) -> dict[str, Any] | None:
    """Run ``handler(event) -> (physical id, data)`` and report the outcome to CloudFormation."""
    responder = Responder(event, opener)
    fallback_id = str(event.get("PhysicalResourceId") or event.get("LogicalResourceId") or "tollgate")
    watchdog: threading.Timer | None = None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is not None:
        seconds = max(remaining() / 1000 - WATCHDOG_MARGIN, 1.0)
        watchdog = threading.Timer(
            seconds, responder.send, args=("FAILED", fallback_id, "timed out before finishing; see CloudWatch Logs")
        )
        watchdog.daemon = True
        watchdog.start()
    try:
        physical_id, data = handler(event)
        responder.send("SUCCESS", physical_id, "", data)
    except Exception as exc:
        logger.exception("custom resource failed")
        responder.send("FAILED", fallback_id, f"{type(exc).__name__}: {exc}")
    finally:
        if watchdog is not None:
            watchdog.cancel()
    return responder.sent

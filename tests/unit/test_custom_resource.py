"""The custom resource always answers CloudFormation, exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from tollgate.custom_resource import run_custom_resource

EVENT = {
    "RequestType": "Create",
    "ResponseURL": "https://example.invalid/response",
    "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
    "RequestId": "req-1",
    "LogicalResourceId": "ProfileProvisioning",
    "ResourceProperties": {},
}


class Recorder:
    """Stands in for urllib's urlopen and keeps every PUT."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.answered = threading.Event()

    def __call__(self, request: Any, timeout: float) -> Any:
        assert request.get_method() == "PUT"
        self.bodies.append(json.loads(request.data))
        self.answered.set()

        class Response:
            def __enter__(self) -> Response:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def read(self) -> bytes:
                return b""

        return Response()


class Context:
    def __init__(self, remaining_ms: int):
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def test_success_reports_the_physical_id_and_data() -> None:
    sent = Recorder()
    run_custom_resource(EVENT, Context(60_000), lambda e: ("phys-1", {"Summary": "2 created"}), opener=sent)
    (body,) = sent.bodies
    assert (body["Status"], body["PhysicalResourceId"], body["Data"]) == ("SUCCESS", "phys-1", {"Summary": "2 created"})
    assert body["RequestId"] == "req-1"


def test_an_exception_is_reported_as_failed_with_its_message() -> None:
    def broken(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        raise ValueError("config.json: profiles.x.model: unknown")

    sent = Recorder()
    run_custom_resource(EVENT, Context(60_000), broken, opener=sent)
    (body,) = sent.bodies
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "ValueError: config.json: profiles.x.model: unknown"


def test_the_watchdog_answers_before_lambda_times_out_and_only_once() -> None:
    sent = Recorder()

    def slow(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        assert sent.answered.wait(timeout=30), "the watchdog never answered"
        return "late", {}  # finishes after the watchdog's answer: must not send a second one

    # 10.5 s left with a 10 s margin: the watchdog fires after about a second
    run_custom_resource(EVENT, Context(10_500), slow, opener=sent)
    (body,) = sent.bodies
    assert body["Status"] == "FAILED"
    assert "timed out" in body["Reason"]

"""The local Lambda runtime: what a handler's invocation returns, logs and delivers."""

from __future__ import annotations

import json
import logging
import sys
import types
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tollgate_local import runtime
from tollgate_local.functions import LocalLambdaContext
from tollgate_local.logfilters import MetricFilter
from tollgate_local.runtime import LocalFunction, LogSink, emf_metric_data

EMF = json.dumps(
    {
        "_aws": {
            "Timestamp": 1_700_000_000_000,
            "CloudWatchMetrics": [
                {"Namespace": "Tollgate", "Dimensions": [["tenant"]], "Metrics": [{"Name": "CostUSD", "Unit": "None"}]}
            ],
        },
        "tenant": "acme",
        "CostUSD": 0.1,
    }
)


class CloudWatch:
    def __init__(self, error: Exception | None = None):
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> None:
        if self.error:
            raise self.error
        self.calls.append(kwargs)


@pytest.fixture(autouse=True)
def own_router(monkeypatch: pytest.MonkeyPatch) -> None:
    """A router over this test's stdout, put back afterwards (install_router replaces sys.stdout)."""
    monkeypatch.setattr(runtime, "_router", None)
    monkeypatch.setattr(sys, "stdout", sys.stdout)


def function(monkeypatch: pytest.MonkeyPatch, handler: Callable[[Any, Any], Any], sink: Any) -> LocalFunction:
    module = types.ModuleType("fake_app")
    module.lambda_handler = handler  # type: ignore[attr-defined]
    monkeypatch.setattr(runtime, "load_handler_module", lambda directory: module)
    return LocalFunction(
        "TestFunction", "test", "tollgate-test-Test", sink, region="us-east-1", account_id="123456789012", timeout=3
    )


def emitting(result: Any = None, error: Exception | None = None) -> Callable[[Any, Any], Any]:
    def handler(event: Any, context: Any) -> Any:
        print("working on it")
        print(EMF)
        if error:
            raise error
        return result

    return handler


def test_handler_output_goes_to_the_log_file_and_emf_to_cloudwatch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cloudwatch = CloudWatch()
    fn = function(monkeypatch, emitting({"ok": True}), LogSink(tmp_path, cloudwatch))
    assert fn.invoke({}) == {"ok": True}
    assert (tmp_path / "TestFunction.log").read_text().splitlines() == ["working on it", EMF]
    ((call),) = cloudwatch.calls
    assert call["Namespace"] == "Tollgate"
    assert [(d["MetricName"], d["Value"]) for d in call["MetricData"]] == [("CostUSD", 0.1)]


@pytest.mark.parametrize("broken", ["PutMetricData", "log file"])
@pytest.mark.parametrize("error", [None, ValueError("the handler's own error")])
def test_a_failing_delivery_never_changes_the_outcome(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    broken: str,
    error: Exception | None,
) -> None:
    """As in AWS, where log and metric ingestion is not part of the invocation."""
    if broken == "PutMetricData":
        sink = LogSink(tmp_path, CloudWatch(ConnectionError("CloudWatch is down")))
    else:
        sink = LogSink(tmp_path, CloudWatch())
        (tmp_path / "TestFunction.log").mkdir()  # the log file cannot be opened
    fn = function(monkeypatch, emitting({"ok": True}, error), sink)

    if error is None:
        assert fn.invoke({}) == {"ok": True}
    else:
        with pytest.raises(ValueError, match="the handler's own error"):
            fn.invoke({})
    assert any("could not be delivered" in r.getMessage() and r.exc_info for r in caplog.records)


def test_delivery_happens_once_the_function_is_free(monkeypatch: pytest.MonkeyPatch) -> None:
    class Sink:
        held: list[bool] = []

        def deliver(self, name: str, text: str) -> None:
            self.held.append(fn._lock.locked())

    sink = Sink()
    fn = function(monkeypatch, emitting(), sink)
    fn.invoke({})
    assert sink.held == [False]


def test_an_authorizers_unauthorized_is_quiet_but_a_real_error_has_its_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fn = function(monkeypatch, emitting(error=Exception("Unauthorized")), LogSink(tmp_path, CloudWatch()))
    with caplog.at_level(logging.INFO), pytest.raises(Exception, match="Unauthorized"):
        fn.invoke({})
    assert caplog.records == []

    fn = function(monkeypatch, emitting(error=KeyError("tenant")), LogSink(tmp_path, CloudWatch()))
    with pytest.raises(KeyError):
        fn.invoke({})
    (record,) = caplog.records
    assert (record.levelno, record.getMessage(), bool(record.exc_info)) == (logging.ERROR, "TestFunction raised", True)


def test_invoke_uses_the_context_it_is_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Any] = []
    fn = function(monkeypatch, lambda event, context: seen.append(context), LogSink(tmp_path, CloudWatch()))
    given = fn.new_context()
    fn.invoke({}, given)
    fn.invoke({})
    assert seen[0] is given
    assert isinstance(seen[1], LocalLambdaContext)
    assert seen[1].aws_request_id != given.aws_request_id
    assert (given.function_name, given.timeout_seconds, given.log_group_name) == (
        "tollgate-test-Test",
        3,
        "/aws/lambda/tollgate-test-Test",
    )


def test_emf_metric_data_reads_only_emf_documents() -> None:
    lines = ["plain text", '{"level": "INFO", "message": "not EMF"}', '{"_aws": broken', EMF, EMF]
    by_namespace = emf_metric_data(lines, number=Decimal)
    (datums,) = by_namespace.values()
    assert [(d["MetricName"], d["Dimensions"], d["Value"]) for d in datums] == [
        ("CostUSD", [{"Name": "tenant", "Value": "acme"}], Decimal("0.1"))
    ] * 2


def test_the_metric_filters_of_a_functions_log_group_count_its_matching_lines(tmp_path: Path) -> None:
    counted = MetricFilter.from_template(
        "Unmetered",
        {
            "FilterPattern": '{ $.metering = "unmetered" }',
            "MetricTransformations": [
                {"MetricNamespace": "Tollgate", "MetricName": "UnmeteredCalls", "MetricValue": "1", "Unit": "Count"}
            ],
        },
    )
    cloudwatch = CloudWatch()
    sink = LogSink(tmp_path, cloudwatch, {"GatewayFunction": [counted]})
    line = json.dumps({"level": "ERROR", "metering": "unmetered"})
    sink.deliver("GatewayFunction", f"{line}\nnot json\n{json.dumps({'metering': 'deferred'})}\n{line}\n")
    sink.deliver("AggregatorFunction", f"{line}\n")  # another log group: its filters only
    ((call),) = cloudwatch.calls
    assert call["Namespace"] == "Tollgate"
    assert [(d["MetricName"], d["Value"], d["Unit"]) for d in call["MetricData"]] == [
        ("UnmeteredCalls", 1.0, "Count")
    ] * 2

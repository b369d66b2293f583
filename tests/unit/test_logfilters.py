"""The local metric-filter matcher (a hand-written subset of CloudWatch Logs' JSON filter patterns)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from tollgate_local.logfilters import FilterPattern, FilterPatternError, MetricFilter, metric_filters_by_function
from tollgate_local.template import load_template

EVENT = json.dumps(
    {
        "level": "ERROR",
        "metering": "unmetered",
        "latency": 250,
        "ok": False,
        "gone": None,
        "record": {"tenant_id": "acme", "tokens": [3, 5]},
    }
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ $.metering = "unmetered" }', True),
        ('{ $.metering = "deferred" }', False),
        ("{ $.metering = unmetered }", True),
        ('{ $.metering = "un*" }', True),
        ('{ $.metering = "*metered" }', True),
        ('{ $.metering != "deferred" }', True),
        ('{ $.missing != "deferred" }', False),  # a comparison on an absent field never holds
        ('{ $.record.tenant_id = "acme" }', True),
        ("{ $.record.tokens[1] = 5 }", True),
        ("{ $.record.tokens[2] = 5 }", False),
        ("{ $.latency > 200 }", True),
        ("{ $.latency <= 200 }", False),
        ('{ $.latency = "250" }', False),  # a string never equals a number field
        ("{ $.ok IS FALSE }", True),
        ("{ $.gone IS NULL }", True),
        ("{ $.ok IS TRUE }", False),
        ("{ $.record EXISTS }", True),
        ("{ $.nothing NOT EXISTS }", True),
        ('{ $.metering = "unmetered" && $.latency > 100 }', True),
        ('{ $.metering = "deferred" || $.level = "ERROR" }', True),
        ('{ ($.metering = "deferred" || $.level = "ERROR") && $.latency < 100 }', False),
    ],
)
def test_json_patterns_match_as_cloudwatch_documents(pattern: str, expected: bool) -> None:
    assert FilterPattern.parse(pattern).matches(EVENT) is expected


def test_lines_that_are_not_json_objects_never_match() -> None:
    pattern = FilterPattern.parse('{ $.metering = "unmetered" }')
    assert not pattern.matches('unmetered: {"metering": "unmetered"}')
    assert not pattern.matches('["unmetered"]')


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("ERROR", "only JSON patterns"),
        ('{ $.a = "x" && $.b = "y" || $.c = "z" }', "mixes && and ||"),
        ("{ $.a = %abc% }", "regular expressions"),
        ('{ $.a > "x" }', "compares numbers"),
        ("{ $.a = }", "ends too early"),
        ('{ metering = "x" }', "expected a selector"),
    ],
)
def test_what_is_not_emulated_is_refused_by_name(pattern: str, message: str) -> None:
    with pytest.raises(FilterPatternError, match=message):
        FilterPattern.parse(pattern)


def test_a_metric_filter_puts_one_datapoint_per_matching_line() -> None:
    metric_filter = MetricFilter.from_template(
        "F",
        {
            "FilterPattern": "{ $.latency > 0 }",
            "MetricTransformations": [
                {"MetricNamespace": "N", "MetricName": "Latency", "MetricValue": "$.latency", "Unit": "Milliseconds"}
            ],
        },
    )
    at = datetime(2026, 11, 26, tzinfo=UTC)
    datums = metric_filter.datums([EVENT, '{"latency": 7}', '{"latency": "slow"}', "not json"], at)
    assert [d["Value"] for d in datums] == [250.0, 7.0]
    assert datums[0] == {"MetricName": "Latency", "Value": 250.0, "Unit": "Milliseconds", "Timestamp": at}


def test_the_templates_metric_filters_are_found_by_the_function_whose_log_group_they_watch() -> None:
    sam = load_template()
    parameters = {name: str(spec.get("Default", "")) for name, spec in sam["Parameters"].items()}

    def resolve(value: object) -> object:
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                return parameters[value["Ref"]]
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    filters = metric_filters_by_function(sam, resolve)
    assert set(filters) == {"GatewayFunction"}
    assert {(f.namespace, f.metric_name) for f in filters["GatewayFunction"]} == {
        ("Tollgate", "UnmeteredCalls"),
        ("Tollgate", "DeferredMeteringCalls"),
    }

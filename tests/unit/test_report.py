"""`tollgate report`: the period a user names, and sums that match the trend rows exactly."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date

import pytest
from rich.console import Console
from tollgate.adapters.dynamodb import TrendRow
from tollgate.pricing import TokenCounts
from tollgate.rollup import Granularity, RollupKey, Totals
from tollgate_cli import main
from tollgate_cli.report import GroupBy, Period, action_lines, columns, group, to_csv, to_json
from tollgate_cli.target import Target

TODAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("today", date(2026, 11, 26), date(2026, 11, 26)),
        ("yesterday", date(2026, 11, 25), date(2026, 11, 25)),
        ("month", date(2026, 11, 1), date(2026, 11, 26)),
        ("last-month", date(2026, 10, 1), date(2026, 10, 31)),
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026-11-03", date(2026, 11, 3), date(2026, 11, 3)),
        ("2026-10-30..2026-11-02", date(2026, 10, 30), date(2026, 11, 2)),
    ],
)
def test_periods(text: str, start: date, end: date) -> None:
    assert Period.parse(text, TODAY) == Period(start, end)


def test_a_period_spans_its_days_across_a_month_end() -> None:
    assert Period.parse("2026-10-30..2026-11-02", TODAY).days() == [
        "2026-10-30",
        "2026-10-31",
        "2026-11-01",
        "2026-11-02",
    ]


@pytest.mark.parametrize(
    ("text", "message"), [("2026-13", "not a period"), ("2026-11-05..2026-11-01", "before it starts")]
)
def test_bad_periods_say_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Period.parse(text, TODAY)


def row(day: str, tenant: str, profile: str, model: str, requests: int, tokens: int, cost_pusd: int) -> TrendRow:
    return TrendRow(
        RollupKey(Granularity.DAY, day, tenant, profile, model),
        Totals(requests, TokenCounts(tokens, tokens // 2, 0, 0), cost_pusd),
    )


ROWS = [
    row("2026-11-01", "acme", "acme-chat", "m1", 3, 100, 1_000_000_001),
    row("2026-11-02", "acme", "acme-chat", "m1", 2, 50, 2_000_000_002),
    row("2026-11-02", "acme", "acme-search", "m2", 1, 10, 7),
    row("2026-11-02", "globex", "globex-assistant", "m3", 5, 500, 9_000_000_000_000),
]


def test_grouping_sums_exactly_and_sorts_by_cost() -> None:
    by_tenant = group(ROWS, GroupBy.TENANT)
    assert [(line.tenant, line.totals.requests, line.totals.cost_pusd) for line in by_tenant] == [
        ("globex", 5, 9_000_000_000_000),
        ("acme", 6, 3_000_000_010),
    ]
    by_profile = group(ROWS, GroupBy.PROFILE)
    assert [(line.profile, line.totals.cost_pusd) for line in by_profile] == [
        ("globex-assistant", 9_000_000_000_000),
        ("acme-chat", 3_000_000_003),
        ("acme-search", 7),
    ]
    assert sum(line.totals.cost_pusd for line in by_profile) == sum(r.totals.cost_pusd for r in ROWS)


def test_a_report_by_tier_splits_a_profiles_cost_by_the_tier_that_served_it() -> None:
    key = RollupKey(Granularity.DAY, "2026-11-02", "globex", "globex-fast", "openai.gpt-oss-120b-1:0")
    rows = [
        TrendRow(key, Totals(3, TokenCounts(300, 30), 1_000)),
        TrendRow(replace(key, tier="priority"), Totals(2, TokenCounts(200, 20), 5_000)),
        TrendRow(replace(key, tier="flex", period="2026-11-01"), Totals(1, TokenCounts(100, 10), 250)),
        TrendRow(replace(key, tier="priority", period="2026-11-01"), Totals(1, TokenCounts(100, 10), 2_500)),
    ]
    lines = group(rows, GroupBy.TIER)
    assert [(line.tier, line.totals.requests, line.totals.cost_pusd) for line in lines] == [
        ("priority", 3, 7_500),
        ("default", 3, 1_000),
        ("flex", 1, 250),
    ]
    assert "tier" in columns(GroupBy.TIER)
    assert [r["tier"] for r in csv.DictReader(io.StringIO(to_csv(lines, GroupBy.TIER)))] == [
        "priority",
        "default",
        "flex",
    ]


def test_csv_and_json_carry_exact_decimal_dollars() -> None:
    lines = group(ROWS, GroupBy.PROFILE)
    parsed = list(csv.DictReader(io.StringIO(to_csv(lines, GroupBy.PROFILE))))
    assert parsed[1] == {
        "tenant": "acme", "profile": "acme-chat", "requests": "5", "input_tokens": "150", "output_tokens": "75",
        "cache_read_tokens": "0", "cache_write_tokens": "0", "cache_write_1h_tokens": "0", "total_tokens": "225",
        "cost_usd": "0.003000000003",
    }  # fmt: skip
    document = json.loads(to_json(lines, GroupBy.PROFILE, Period(date(2026, 11, 1), date(2026, 11, 2))))
    assert document["total_cost_usd"] == "9.00300000001"
    assert document["period"] == {"start": "2026-11-01", "end": "2026-11-02", "timezone": "UTC"}
    assert [line["cost_usd"] for line in document["lines"]] == ["9", "0.003000000003", "0.000000000007"]


def test_only_day_rows_are_summed() -> None:
    hour = TrendRow(RollupKey(Granularity.HOUR, "2026-11-01T10", "acme", "p", "m"), Totals(1, TokenCounts(), 1))
    with pytest.raises(ValueError, match="DAY rows"):
        group([hour], GroupBy.TENANT)


def test_the_table_shows_every_cost_whole_and_totals_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(main, "out", Console(file=buffer, width=80, no_color=True))
    lines = group(ROWS, GroupBy.PROFILE)
    main._print_report(lines, GroupBy.PROFILE, Period(date(2026, 11, 1), date(2026, 11, 2)), Target("t", "r", "u", {}))
    text = buffer.getvalue()
    assert "…" not in text
    table = {line.split()[1]: line.split() for line in text.splitlines() if line.strip().startswith(("acme", "globex"))}
    # tenant, profile, requests, input, output, cache read, cache write 5m and 1h, total tokens, cost (1 pUSD)
    assert table["acme-chat"] == ["acme", "acme-chat", "5", "150", "75", "0", "0", "0", "225", "$0.003000000003"]
    assert table["acme-search"][-1] == "$0.000000000007"
    assert table["globex-assistant"][-1] == "$9.000000000000"
    (total,) = [line.split() for line in text.splitlines() if line.strip().startswith("total")]
    assert total == ["total", "11", "660", "330", "0", "0", "0", "990", "$9.003000000010"]


def test_the_report_lists_each_tenants_status_in_force_and_the_periods_actions() -> None:
    statuses = [
        {"tenant_id": "initech", "status": "normal", "by_alarms": [], "since": ""},
        {
            "tenant_id": "acme",
            "status": "throttled",
            "by_alarms": ["BedrockTokenCostAlarm-acme-chat"],
            "since": "2026-12-03T17:00:00+00:00",
        },
    ]
    actions = {
        "acme": [
            {
                "sk": "2026-12-02T09:00:00+00:00#m-0",
                "what": "lifted throttle",
                "alarm": "BedrockTokenCostAlarm-acme-chat",
                "state": "OK",
            },
            {
                "sk": "2026-12-03T17:00:00+00:00#m-1",
                "what": "throttle",
                "alarm": "BedrockTokenCostAlarm-acme-chat",
                "state": "ALARM",
            },
        ],
        "initech": [],
    }
    lines = action_lines(statuses, actions, Period.parse("2026-12-03", date(2026, 12, 3)))
    assert lines == [
        "acme: throttled since 2026-12-03T17:00:00+00:00 by BedrockTokenCostAlarm-acme-chat",
        "  2026-12-03T17:00:00+00:00  throttle (BedrockTokenCostAlarm-acme-chat ALARM)",  # not the day before
        "initech: normal",
    ]

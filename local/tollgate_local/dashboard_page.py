"""The deployed CloudWatch dashboard as one self-contained HTML page, for local mode.

moto stores a dashboard but has no console to show it, so this module reads it back with
GetDashboard and draws it the way the CloudWatch console would, from the data moto holds:

* the widgets sit on CloudWatch's 24-column grid at their own ``x``/``y``/``width``/``height``;
* ``text`` widgets: a small Markdown subset (headings, paragraphs, ``code``, **bold**);
* ``metric`` widgets: each line's datapoints from GetMetricData (plain MetricStat queries, the
  only kind moto answers), over the last ``range_minutes``; ``timeSeries`` as an SVG line chart
  (stacked areas when ``stacked``), ``singleValue`` as numbers, ``bar`` as horizontal bars,
  largest first. ``setPeriodToTimeRange`` makes one period of the whole range, as in CloudWatch;
  without it ``bar`` and ``singleValue`` show each line's latest value;
* ``alarm`` widgets: each alarm's state, from the caller (the local alarm evaluator) or
  DescribeAlarms.

The page has no external resources (inline CSS and SVG only) and reloads itself every
``REFRESH_SECONDS``. Every string taken from the dashboard body is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

GRID_COLUMNS = 24
ROW_PX = 44
REFRESH_SECONDS = 15
#: GetMetricData takes at most 500 queries per call; DescribeAlarms at most 100 names.
MAX_QUERIES_PER_CALL = 500
MAX_ALARM_NAMES_PER_CALL = 100
MONEY_METRICS = frozenset({"CostUSD"})
#: CloudWatch's defaults for a widget that names no stat or period.
DEFAULT_STAT = "Average"
DEFAULT_PERIOD = 300
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)
STATE_CLASSES = {"OK": "ok", "ALARM": "alarm", "INSUFFICIENT_DATA": "insufficient"}
UNKNOWN_STATE = "UNKNOWN"

Point = tuple[datetime, float]
MetricKey = tuple[str, str, dict[str, str], str, int]


@dataclass(frozen=True)
class _MetricLine:
    """One line of a metric widget: ``[namespace, name, dim, value, ..., {options}]``."""

    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int
    label: str

    @property
    def money(self) -> bool:
        return self.metric in MONEY_METRICS


@dataclass(frozen=True)
class _Query:
    line: _MetricLine
    period: int
    start: datetime
    end: datetime

    def request(self, query_id: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.line.namespace,
                    "MetricName": self.line.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.line.dimensions],
                },
                "Period": self.period,
                "Stat": self.line.stat,
            },
            "ReturnData": True,
        }


@dataclass(frozen=True)
class _Series:
    line: _MetricLine
    colour: str
    points: list[Point]


def _metric_lines(properties: Mapping[str, Any]) -> list[_MetricLine]:
    """The lines of one metric widget, with the widget's stat and period unless a line sets its own.

    Only fully written lines are understood; CloudWatch's ``"."``/``"..."`` shorthands and
    metric math (which moto cannot answer) raise ValueError.
    """
    widget_stat = str(properties.get("stat", DEFAULT_STAT))
    widget_period = int(properties.get("period", DEFAULT_PERIOD))
    lines = []
    for raw in properties.get("metrics", []):
        parts = list(raw)
        options: Mapping[str, Any] = parts.pop() if parts and isinstance(parts[-1], Mapping) else {}
        if len(parts) < 2 or len(parts) % 2 or any(not isinstance(p, str) or p in {".", "..."} for p in parts):
            raise ValueError(f"unsupported metric line {raw!r}: expected [namespace, name, dim, value, ..., {{...}}]")
        namespace, metric, *dims = parts
        values = dims[1::2]
        lines.append(
            _MetricLine(
                namespace=namespace,
                metric=metric,
                dimensions=tuple(zip(dims[::2], values, strict=True)),
                stat=str(options.get("stat", widget_stat)),
                period=int(options.get("period", widget_period)),
                label=str(options.get("label") or " ".join([metric, *values])),
            )
        )
    return lines


def widget_metrics(body: Mapping[str, Any]) -> list[MetricKey]:
    """Every metric line the dashboard names: (namespace, metric, dimensions, stat, period)."""
    return [
        (line.namespace, line.metric, dict(line.dimensions), line.stat, line.period)
        for widget in body.get("widgets", [])
        if widget.get("type") == "metric"
        for line in _metric_lines(widget["properties"])
    ]


def render_dashboard(
    cloudwatch_client: Any,
    dashboard_name: str,
    *,
    now: datetime | None = None,
    range_minutes: int = 60,
    alarm_states: Mapping[str, str] | None = None,
) -> str:
    """The dashboard as a self-contained HTML page, with the metrics of the last ``range_minutes``."""
    end = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    span = timedelta(minutes=range_minutes)
    body = json.loads(cloudwatch_client.get_dashboard(DashboardName=dashboard_name)["DashboardBody"])
    widgets: list[Mapping[str, Any]] = body.get("widgets", [])

    plans = [_plan(widget["properties"], end, span) if widget.get("type") == "metric" else [] for widget in widgets]
    fetched = iter(_fetch(cloudwatch_client, [query for plan in plans for query in plan]))
    if alarm_states is None:
        alarm_states = _describe_states(
            cloudwatch_client,
            [
                _alarm_name(arn)
                for widget in widgets
                if widget.get("type") == "alarm"
                for arn in widget["properties"].get("alarms", [])
            ],
        )

    no_data = f"no data in the last {range_minutes} minutes"
    sections = []
    for widget, plan in zip(widgets, plans, strict=True):
        kind = widget.get("type")
        properties: Mapping[str, Any] = widget.get("properties", {})
        if kind == "text":
            content = _markdown(str(properties.get("markdown", "")))
        elif kind == "metric":
            series = [_Series(query.line, PALETTE[i % len(PALETTE)], next(fetched)) for i, query in enumerate(plan)]
            first = min((query.start for query in plan), default=end - span)
            content = _metric_content(widget, series, first, end, no_data)
        elif kind == "alarm":
            content = _alarm_list([_alarm_name(arn) for arn in properties.get("alarms", [])], alarm_states)
        else:
            content = f'<p class="muted">{_esc(kind)} widgets are not drawn locally</p>'
        sections.append(_section(widget, properties.get("title"), content))

    return _PAGE.format(
        name=_esc(dashboard_name),
        refresh=REFRESH_SECONDS,
        css=_CSS,
        grid=f"grid-template-columns:repeat({GRID_COLUMNS},minmax(0,1fr));grid-auto-rows:minmax({ROW_PX}px,auto)",
        range=f"{end - span:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC (last {range_minutes} minutes)",
        generated=f"{end:%Y-%m-%d %H:%M:%S} UTC",
        widgets="\n".join(sections),
    )


# ---------------------------------------------------------------------------------------------
# Fetching


def _plan(properties: Mapping[str, Any], end: datetime, span: timedelta) -> list[_Query]:
    """One query per line: whole-range for ``setPeriodToTimeRange``, else periods aligned to the clock."""
    whole_range = properties.get("view") in {"bar", "singleValue"} and bool(properties.get("setPeriodToTimeRange"))
    queries = []
    for line in _metric_lines(properties):
        if whole_range:
            queries.append(_Query(line, int(span.total_seconds()), end - span, end))
        else:
            first = int((end - span).timestamp())
            start = datetime.fromtimestamp(first - first % line.period, UTC)
            queries.append(_Query(line, line.period, start, end))
    return queries


def _fetch(client: Any, queries: Sequence[_Query]) -> list[list[Point]]:
    """Each query's datapoints, ascending: one GetMetricData call per time window and 500 queries."""
    points: list[list[Point]] = [[] for _ in queries]
    by_window = sorted(range(len(queries)), key=lambda i: (queries[i].start, queries[i].end))
    for (start, end), group in groupby(by_window, key=lambda i: (queries[i].start, queries[i].end)):
        indexes = list(group)
        for offset in range(0, len(indexes), MAX_QUERIES_PER_CALL):
            batch = indexes[offset : offset + MAX_QUERIES_PER_CALL]
            pages = client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=[queries[i].request(f"q{i}") for i in batch],
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page["MetricDataResults"]:
                    points[int(result["Id"][1:])].extend(zip(result["Timestamps"], result["Values"], strict=True))
    return [sorted(series) for series in points]


def _alarm_name(arn: str) -> str:
    """``arn:aws:cloudwatch:region:account:alarm:NAME`` -> NAME (which may hold colons)."""
    return arn.split(":", 6)[-1]


def _describe_states(client: Any, names: Sequence[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for offset in range(0, len(names), MAX_ALARM_NAMES_PER_CALL):
        pages = client.get_paginator("describe_alarms").paginate(
            AlarmNames=list(names[offset : offset + MAX_ALARM_NAMES_PER_CALL]),
            AlarmTypes=["MetricAlarm", "CompositeAlarm"],
        )
        for page in pages:
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                states[alarm["AlarmName"]] = alarm["StateValue"]
    return states


# ---------------------------------------------------------------------------------------------
# Widgets


def _section(widget: Mapping[str, Any], title: object, content: str) -> str:
    """The widget's box at its place on the grid (CloudWatch places a widget without x or y itself)."""
    column = f"{int(widget['x']) + 1} / " if "x" in widget else ""
    row = f"{int(widget['y']) + 1} / " if "y" in widget else ""
    style = f"grid-column:{column}span {_width(widget)};grid-row:{row}span {_height(widget)}"
    heading = f"<h2>{_esc(title)}</h2>" if title else ""
    return f'<section class="widget widget-{_esc(widget.get("type"))}" style="{style}">{heading}{content}</section>'


def _width(widget: Mapping[str, Any]) -> int:
    return int(widget.get("width", 6))


def _height(widget: Mapping[str, Any]) -> int:
    return int(widget.get("height", 6))


def _metric_content(
    widget: Mapping[str, Any], series: list[_Series], start: datetime, end: datetime, no_data: str
) -> str:
    properties: Mapping[str, Any] = widget["properties"]
    if not any(s.points for s in series):
        return f'<p class="no-data">{_esc(no_data)}</p>'
    view = properties.get("view", "timeSeries")
    if view == "singleValue":
        return _single_values(series)
    if view == "bar":
        return _bars(series)
    chart = _chart(series, start, end, bool(properties.get("stacked")), width=_width(widget), height=_height(widget))
    return chart + _legend(series)


def _latest(series: _Series) -> float | None:
    return series.points[-1][1] if series.points else None


def _single_values(series: list[_Series]) -> str:
    items = "".join(
        f'<div class="single"><div class="single-label">{_esc(s.line.label)}</div>'
        f'<div class="single-value" style="color:{s.colour}">{_value_text(_latest(s), s.line.money)}</div></div>'
        for s in series
    )
    return f'<div class="singles">{items}</div>'


def _bars(series: list[_Series]) -> str:
    valued = sorted(
        ((value, s) for s in series if (value := _latest(s)) is not None), key=lambda pair: pair[0], reverse=True
    )
    top = max((value for value, _ in valued), default=0.0)
    rows = "".join(
        f'<div class="bar-row"><span class="bar-label">{_esc(s.line.label)}</span>'
        f'<span class="bar-track"><span class="bar" style="width:{_percent(value, top):.1f}%;background:{s.colour}">'
        f'</span></span><span class="bar-value">{_value_text(value, s.line.money)}</span></div>'
        for value, s in valued
    )
    return f'<div class="bars">{rows}</div>'


def _percent(value: float, top: float) -> float:
    return max(0.0, value) / top * 100 if top > 0 else 0.0


def _summary(stat: str, values: Sequence[float]) -> tuple[str, float]:
    """What a legend shows for a line: the total of sums, else the extreme or the latest value."""
    if stat in {"Sum", "SampleCount"}:
        return "total", math.fsum(values)
    if stat == "Maximum":
        return "max", max(values)
    if stat == "Minimum":
        return "min", min(values)
    return "latest", values[-1]


def _legend(series: list[_Series]) -> str:
    items = []
    for s in series:
        if s.points:
            kind, value = _summary(s.line.stat, [v for _, v in s.points])
            figure = f"{kind} {_value_text(value, s.line.money)}"
        else:
            figure = "no data"
        items.append(
            f'<li><span class="swatch" style="background:{s.colour}"></span>{_esc(s.line.label)} '
            f'<span class="legend-value">{figure}</span></li>'
        )
    return f'<ul class="legend">{"".join(items)}</ul>'


# ---------------------------------------------------------------------------------------------
# SVG time series

_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 14, 10, 24
_TIME_STEPS_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)


@dataclass(frozen=True)
class _Frame:
    """The chart's coordinate system: time and value ranges mapped into an SVG viewBox."""

    width: int
    height: int
    t0: float
    t1: float
    lo: float
    hi: float

    def x(self, when: datetime | float) -> float:
        t = when.timestamp() if isinstance(when, datetime) else when
        return _LEFT + (t - self.t0) / (self.t1 - self.t0) * (self.width - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        return _TOP + (self.hi - value) / (self.hi - self.lo) * (self.height - _TOP - _BOTTOM)


def _chart(series: list[_Series], start: datetime, end: datetime, stacked: bool, *, width: int, height: int) -> str:
    layers = _stack(series, start, end) if stacked else []
    values = [v for layer in layers for _, v in layer] or [v for s in series for _, v in s.points]
    ticks, lo, hi = _value_ticks(min(0.0, *values), max(0.0, *values))
    frame = _Frame(max(240, width * 60), max(120, height * ROW_PX - 90), start.timestamp(), end.timestamp(), lo, hi)
    money = any(s.line.money for s in series)
    parts = [
        f'<svg class="chart" viewBox="0 0 {frame.width} {frame.height}" role="img" xmlns="http://www.w3.org/2000/svg">',
        _axes(frame, ticks, money),
    ]
    if stacked:
        parts += [
            _area(frame, s, lower, upper) for s, lower, upper in zip(series, [None, *layers[:-1]], layers, strict=True)
        ]
    else:
        parts += [_line(frame, s) for s in series if s.points]
    parts.append("</svg>")
    return "".join(parts)


def _stack(series: list[_Series], start: datetime, end: datetime) -> list[list[tuple[float, float]]]:
    """Cumulative layers on a grid of the smallest period; a period without data counts as 0."""
    step = min(s.line.period for s in series)
    grid = range(int(start.timestamp()), int(end.timestamp()) + 1, step)
    layers: list[list[tuple[float, float]]] = []
    below = [0.0] * len(grid)
    for s in series:
        sums = [0.0] * len(grid)
        for when, value in s.points:
            index = (int(when.timestamp()) - grid.start) // step
            if 0 <= index < len(grid):
                sums[index] += value
        below = [b + v for b, v in zip(below, sums, strict=True)]
        layers.append([(float(t), v) for t, v in zip(grid, below, strict=True)])
    return layers


def _value_ticks(lo: float, hi: float) -> tuple[list[float], float, float]:
    """About five round ticks (1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [k * step for k in range(first, last + 1)], first * step, last * step


def _time_ticks(t0: float, t1: float) -> list[float]:
    step = 60 * next((m for m in _TIME_STEPS_MINUTES if (t1 - t0) / (60 * m) <= 6), _TIME_STEPS_MINUTES[-1])
    return [float(t) for t in range(math.ceil(t0 / step) * step, int(t1) + 1, step)]


def _axes(frame: _Frame, value_ticks: list[float], money: bool) -> str:
    right, bottom = frame.width - _RIGHT, frame.height - _BOTTOM
    parts = []
    for tick in value_ticks:
        y = frame.y(tick)
        parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_value_text(tick, money)}</text>'
        )
    time_format = "%H:%M" if frame.t1 - frame.t0 <= 86400 else "%m-%d %H:%M"
    for tick in _time_ticks(frame.t0, frame.t1):
        x = frame.x(tick)
        label = datetime.fromtimestamp(tick, UTC).strftime(time_format)
        parts.append(f'<line class="axis" x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{label}</text>')
    parts.append(f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    parts.append(f'<text class="tick" x="4" y="{bottom + 16}">UTC</text>')
    return "".join(parts)


def _runs(points: list[Point], period: int) -> Iterator[list[Point]]:
    """The points split where a period or more has no data, so a line does not bridge gaps."""
    run: list[Point] = []
    for point in points:
        if run and (point[0] - run[-1][0]).total_seconds() > period:
            yield run
            run = []
        run.append(point)
    yield run


def _line(frame: _Frame, s: _Series) -> str:
    path = " ".join(
        ("M" if i == 0 else "L") + f"{frame.x(t):.1f},{frame.y(v):.1f}"
        for run in _runs(s.points, s.line.period)
        for i, (t, v) in enumerate(run)
    )
    dots = "".join(f'<circle cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" r="2"/>' for t, v in s.points)
    return (
        f'<g class="series" stroke="{s.colour}" fill="{s.colour}"><title>{_esc(s.line.label)}</title>'
        f'<path class="line" d="{path}"/>{dots}</g>'
    )


def _area(frame: _Frame, s: _Series, lower: list[tuple[float, float]] | None, upper: list[tuple[float, float]]) -> str:
    base = lower or [(t, 0.0) for t, _ in upper]
    top = " L".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in upper)
    bottom = " L".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in reversed(base))
    return (
        f'<g class="series" stroke="{s.colour}" fill="{s.colour}"><title>{_esc(s.line.label)}</title>'
        f'<path class="area" d="M{top} L{bottom} Z"/><path class="line" d="M{top}"/></g>'
    )


# ---------------------------------------------------------------------------------------------
# Alarms, Markdown, formatting


def _alarm_list(names: list[str], states: Mapping[str, str]) -> str:
    items = []
    for name in names:
        state = states.get(name, UNKNOWN_STATE)
        css = STATE_CLASSES.get(state, "unknown")
        items.append(
            f'<li><span class="state {css}">{_esc(state)}</span><span class="alarm-name">{_esc(name)}</span></li>'
        )
    in_alarm = sum(states.get(name) == "ALARM" for name in names)
    return f'<p class="muted">{in_alarm} of {len(names)} in ALARM</p><ul class="alarms">{"".join(items)}</ul>'


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _markdown(text: str) -> str:
    """Headings, paragraphs, `code` and **bold**; everything else is shown as escaped text."""
    blocks: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    for raw in text.splitlines():
        line = raw.strip()
        heading = _HEADING.match(line)
        if heading or not line:
            flush()
        if heading:
            level = min(len(heading.group(1)) + 1, 6)  # the page title is the only <h1>
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line:
            paragraph.append(line)
    flush()
    return f'<div class="markdown">{"".join(blocks)}</div>'


def _inline(text: str) -> str:
    pieces = _CODE.split(text)  # odd indexes are the insides of `code` spans
    return "".join(
        f"<code>{_esc(piece)}</code>" if i % 2 else _BOLD.sub(r"<strong>\1</strong>", _esc(piece))
        for i, piece in enumerate(pieces)
    )


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _value_text(value: float | None, money: bool) -> str:
    if value is None:
        return "-"
    return _usd(value) if money else _number(value)


def _usd(value: float) -> str:
    """US dollars with 2 to 6 decimals: $0.123456, $5.00, -$0.10."""
    whole, _, decimals = f"{abs(value):,.6f}".partition(".")
    sign = "-" if round(value, 6) < 0 else ""
    return f"{sign}${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def _number(value: float) -> str:
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:13px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
  background:#f2f3f3;color:#16191f}
header{padding:14px 20px;background:#232f3e;color:#fff}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#d5dbdb;font-size:12px}
main{padding:12px 16px}
.grid{display:grid;gap:8px}
.widget{background:#fff;border:1px solid #d5dbdb;border-radius:4px;padding:8px 12px;min-width:0;
  display:flex;flex-direction:column}
.widget h2{margin:0 0 6px;font-size:14px;font-weight:600}
.markdown h2{font-size:18px;margin:2px 0 6px}
.markdown h3,.markdown h4,.markdown h5,.markdown h6{font-size:15px;margin:4px 0}
.markdown p{margin:0 0 6px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f2f3f3;padding:0 3px;border-radius:3px}
.muted{color:#687078;margin:0 0 6px}
.no-data{flex:1;display:flex;align-items:center;justify-content:center;color:#687078;margin:0;min-height:80px}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:#eaeded}.chart .axis{stroke:#879596}
.chart .tick{font-size:11px;fill:#545b64}
.chart .line{fill:none;stroke-width:1.8}.chart .area{fill-opacity:.45;stroke:none}
.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.legend-value{color:#545b64;font-variant-numeric:tabular-nums}
.singles{display:flex;flex-wrap:wrap;gap:12px 28px}
.single-label{color:#545b64;font-size:12px}.single-value{font-size:26px;font-weight:600}
.bars{display:flex;flex-direction:column;gap:6px}
.bar-row{display:grid;grid-template-columns:minmax(60px,30%) 1fr auto;gap:8px;align-items:center}
.bar-label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bar-track{background:#f2f3f3;height:16px;border-radius:2px}.bar{display:block;height:100%;border-radius:2px}
.bar-value{font-variant-numeric:tabular-nums}
.alarms{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:4px 16px}
.alarms li{display:flex;gap:8px;align-items:center;min-width:0}
.alarm-name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.state{font-size:11px;font-weight:700;padding:1px 6px;border-radius:3px;color:#fff;background:#687078}
.state.ok{background:#1d8102}.state.alarm{background:#d13212}.state.insufficient{background:#8d6605}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · CloudWatch dashboard (local)</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{name}</h1>
<p>CloudWatch dashboard, drawn locally from moto · {range} · generated at {generated} · refreshes every {refresh} s</p>
</header>
<main><div class="grid" style="{grid}">
{widgets}
</div></main>
</body>
</html>
"""

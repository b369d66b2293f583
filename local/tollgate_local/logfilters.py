"""CloudWatch Logs metric filters for local mode: the part of CloudWatch Logs moto leaves out.

moto's CloudFormation skips ``AWS::Logs::MetricFilter`` and moto never applies a filter to log
events. Local mode reads the template's metric filters and applies them to the lines a function
prints (tollgate_local.runtime.LogSink), putting one datapoint per matching line, as CloudWatch
Logs does, so that alarms on those metrics fire locally.

The matcher is written by hand: no library implements CloudWatch's filter pattern syntax. It
covers the JSON patterns of "Filter pattern syntax for metric filters" that this stack can use,
and refuses anything else by name (rather than matching it wrongly):

* ``{ <expression> }``: the line must be a JSON object;
* comparisons ``<selector> <op> <value>``: selectors ``$.a.b`` and ``$.a[0]``; ``=`` and ``!=``
  with a string (``"quoted"`` or a bare word; ``*`` matches any text) compare with string
  fields; ``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=`` with a number compare with number fields;
* ``<selector> IS TRUE | IS FALSE | IS NULL``, ``<selector> EXISTS``, ``<selector> NOT EXISTS``;
* ``&&`` and ``||`` with parentheses. Mixing the two without parentheses is refused (CloudWatch
  does not document which binds tighter).

A comparison on a field the event does not have is false, ``!=`` included (as CloudWatch: a
metric filter never counts an event for a field it lacks). Not supported: term and space-
delimited patterns, regular expressions (``%...%``), ``$.*`` wildcards in selectors, and the
DefaultValue and Dimensions of a metric transformation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_MISSING = object()
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\))
      | (?P<selector>\$(?:\.[A-Za-z_][\w-]*|\[\d+\])+)
      | (?P<word>[^\s()&|=!<>"]+)
    )""",
    re.VERBOSE,
)
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


class FilterPatternError(ValueError):
    """A filter pattern this emulator does not support (or that is not valid)."""


def _tokens(text: str, pattern: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise FilterPatternError(f"filter pattern {pattern!r}: cannot read {text[position:].strip()!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


@dataclass(frozen=True)
class _Comparison:
    path: tuple[str | int, ...]
    op: str  # = != < > <= >= IS EXISTS NOTEXISTS
    value: Any

    def holds(self, event: Any) -> bool:
        field = _select(event, self.path)
        if self.op == "EXISTS":
            return field is not _MISSING
        if self.op == "NOTEXISTS":
            return field is _MISSING
        if field is _MISSING:
            return False
        if self.op == "IS":
            return field is self.value  # True, False or None
        if isinstance(self.value, str):
            if not isinstance(field, str):
                return False
            regex = "^" + ".*".join(re.escape(part) for part in self.value.split("*")) + "$"
            same = re.match(regex, field, re.DOTALL) is not None
            return same if self.op == "=" else not same
        if isinstance(field, bool) or not isinstance(field, int | float):
            return False
        return _COMPARISONS[self.op](float(field), float(self.value))


@dataclass(frozen=True)
class _Junction:
    op: str  # && or ||
    parts: tuple[Any, ...]

    def holds(self, event: Any) -> bool:
        results = (part.holds(event) for part in self.parts)
        return all(results) if self.op == "&&" else any(results)


def _select(event: Any, path: tuple[str | int, ...]) -> Any:
    value = event
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value


def _path(selector: str) -> tuple[str | int, ...]:
    return tuple(
        int(index) if index else name for name, index in re.findall(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]", selector)
    )


class _Parser:
    def __init__(self, pattern: str, tokens: list[tuple[str, str]]):
        self.pattern = pattern
        self.tokens = tokens
        self.position = 0

    def fail(self, why: str) -> FilterPatternError:
        return FilterPatternError(f"filter pattern {self.pattern!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.fail("ends too early")
        self.position += 1
        return token

    def expression(self) -> Any:
        parts = [self.term()]
        junction = None
        while (token := self.peek()) is not None and token[1] in ("&&", "||"):
            self.take()
            if junction not in (None, token[1]):
                raise self.fail("mixes && and || without parentheses; add them")
            junction = token[1]
            parts.append(self.term())
        return parts[0] if junction is None else _Junction(junction, tuple(parts))

    def term(self) -> Any:
        kind, text = self.take()
        if text == "(":
            inner = self.expression()
            if self.take()[1] != ")":
                raise self.fail("a parenthesis is not closed")
            return inner
        if kind != "selector":
            raise self.fail(f"expected a selector such as $.field, found {text!r}")
        path = _path(text)
        kind, op = self.take()
        if kind == "word" and op.upper() in ("IS", "EXISTS", "NOT"):
            return self.keyword(path, op.upper())
        if op not in _COMPARISONS:
            raise self.fail(f"{op!r} is not a comparison operator")
        kind, raw = self.take()
        if kind == "string":
            value: Any = json.loads(raw)
        elif kind == "word" and raw.startswith("%"):
            raise self.fail("regular expressions (%...%) are not supported locally")
        elif kind == "word":
            value = _number(raw)
            if value is None:
                value = raw
        else:
            raise self.fail(f"expected a value after {op!r}, found {raw!r}")
        if isinstance(value, str) and op not in ("=", "!="):
            raise self.fail(f"{op!r} compares numbers, not {raw!r}")
        return _Comparison(path, op, value)

    def keyword(self, path: tuple[str | int, ...], word: str) -> _Comparison:
        if word == "EXISTS":
            return _Comparison(path, "EXISTS", None)
        if word == "NOT":
            if self.take()[1].upper() != "EXISTS":
                raise self.fail("NOT must be followed by EXISTS")
            return _Comparison(path, "NOTEXISTS", None)
        value = self.take()[1].upper()
        if value not in ("TRUE", "FALSE", "NULL"):
            raise self.fail(f"IS must be followed by TRUE, FALSE or NULL, not {value!r}")
        return _Comparison(path, "IS", {"TRUE": True, "FALSE": False, "NULL": None}[value])


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class FilterPattern:
    """A parsed JSON filter pattern; :meth:`matches` says whether a log line is counted."""

    text: str
    _root: Any

    @classmethod
    def parse(cls, text: str) -> FilterPattern:
        stripped = text.strip()
        if not (stripped.startswith("{") and stripped.endswith("}")):
            raise FilterPatternError(
                f"filter pattern {text!r}: only JSON patterns ({{ $.field = value }}) are supported locally"
            )
        parser = _Parser(text, _tokens(stripped[1:-1], text))
        root = parser.expression()
        if parser.peek() is not None:
            raise parser.fail(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
        return cls(text, root)

    def matches(self, line: str) -> bool:
        return self.event(line) is not None

    def event(self, line: str) -> dict[str, Any] | None:
        """The line as a JSON object if the pattern counts it, else None."""
        try:
            event = json.loads(line)
        except ValueError:
            return None
        return event if isinstance(event, dict) and self._root.holds(event) else None


@dataclass(frozen=True)
class MetricFilter:
    """One metric filter of the template: which lines count, and into which metric."""

    name: str
    pattern: FilterPattern
    namespace: str
    metric_name: str
    metric_value: str  # a number, or a selector ($.field) of the matched event
    unit: str = "None"

    @classmethod
    def from_template(cls, name: str, properties: Mapping[str, Any]) -> MetricFilter:
        """From resolved ``AWS::Logs::MetricFilter`` properties (namespace a plain string)."""
        (transformation,) = properties["MetricTransformations"]
        for unsupported in ("DefaultValue", "Dimensions"):
            if unsupported in transformation:
                raise FilterPatternError(f"metric filter {name}: {unsupported} is not emulated locally")
        value = str(transformation["MetricValue"])
        if _number(value) is None and not re.fullmatch(r"\$(\.[A-Za-z_][\w-]*|\[\d+\])+", value):
            raise FilterPatternError(f"metric filter {name}: MetricValue {value!r} must be a number or $.field")
        return cls(
            name=name,
            pattern=FilterPattern.parse(str(properties["FilterPattern"])),
            namespace=str(transformation["MetricNamespace"]),
            metric_name=str(transformation["MetricName"]),
            metric_value=value,
            unit=str(transformation.get("Unit", "None")),
        )

    def datums(self, lines: Iterable[str], at: datetime) -> list[dict[str, Any]]:
        """A PutMetricData datum per line the pattern counts (a selector value that is no number: none)."""
        found = []
        for line in lines:
            event = self.pattern.event(line)
            if event is None:
                continue
            value = _number(self.metric_value)
            if value is None:
                selected = _select(event, _path(self.metric_value))
                value = (
                    float(selected) if isinstance(selected, int | float) and not isinstance(selected, bool) else None
                )
            if value is not None:
                found.append({"MetricName": self.metric_name, "Value": value, "Unit": self.unit, "Timestamp": at})
        return found


def metric_filters_by_function(
    template: Mapping[str, Any], resolve: Callable[[Any], Any]
) -> dict[str, list[MetricFilter]]:
    """The template's metric filters, by the logical name of the function whose log group they watch.

    ``resolve`` resolves a property value's intrinsics (e.g. ``!Ref MetricNamespace``).
    """
    resources = template["Resources"]
    functions_by_group: dict[str, list[str]] = {}
    for name, resource in resources.items():
        group = resource.get("Properties", {}).get("LoggingConfig", {}).get("LogGroup")
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(group, dict) and "Ref" in group:
            functions_by_group.setdefault(group["Ref"], []).append(name)
    found: dict[str, list[MetricFilter]] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Logs::MetricFilter":
            continue
        group = resource["Properties"]["LogGroupName"]
        watched = functions_by_group.get(group.get("Ref", "") if isinstance(group, dict) else "", [])
        if not watched:
            raise FilterPatternError(f"metric filter {name}: its log group is no function's LoggingConfig.LogGroup")
        properties = {k: v for k, v in resource["Properties"].items() if k != "LogGroupName"}
        metric_filter = MetricFilter.from_template(name, resolve(properties))
        for function in watched:
            found.setdefault(function, []).append(metric_filter)
    return found

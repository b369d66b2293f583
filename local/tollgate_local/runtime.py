"""What Lambda and CloudWatch Logs do around a handler, for handlers run in this process.

* Each function is imported once (a warm container) from functions/<name>/app.py and
  invoked with a Lambda-shaped context; invocations are serialised per function, as one
  container handles one event at a time.
* What a handler prints goes to ``.tollgate/logs/<function>.log`` (its "log group"),
  and Embedded Metric Format documents among it are turned into PutMetricData calls, which
  is what CloudWatch Logs does with EMF; the template's metric filters on the function's log
  group are applied to its lines too (tollgate_local.logfilters). Output is routed per thread,
  so concurrent functions never mix their logs.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from tollgate_local.apigw import UNAUTHORIZED
from tollgate_local.functions import LocalLambdaContext, load_handler_module
from tollgate_local.logfilters import MetricFilter

log = logging.getLogger("tollgate.local")

_MAX_DATUMS = 1000  # PutMetricData's limit per call


class _ThreadRouter(io.TextIOBase):
    """sys.stdout that sends a thread's writes to the sink it has set, and all others through."""

    def __init__(self, passthrough: TextIO):
        self._passthrough = passthrough
        self._local = threading.local()

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        sink: list[str] = []
        previous = getattr(self._local, "sink", None)
        self._local.sink = sink
        try:
            yield sink
        finally:
            self._local.sink = previous

    def write(self, text: str) -> int:
        sink = getattr(self._local, "sink", None)
        if sink is None:
            return self._passthrough.write(text)
        sink.append(text)
        return len(text)

    def flush(self) -> None:
        self._passthrough.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


_router: _ThreadRouter | None = None
_router_lock = threading.Lock()


def install_router() -> _ThreadRouter:
    """Route sys.stdout per thread (idempotent). Must run before handler modules make their loggers."""
    global _router
    with _router_lock:
        if _router is None:
            _router = _ThreadRouter(sys.stdout)
            sys.stdout = _router
        return _router


def emf_datums(
    document: Mapping[str, Any], number: Callable[[Any], Any] = float
) -> tuple[str, list[dict[str, Any]]] | None:
    """The namespace and PutMetricData datums of one EMF document, or None if it is not EMF.

    As CloudWatch Logs extracts them: one datum per metric per dimension set, the dimension
    values and metric values read from the document's top level, stamped with _aws.Timestamp.
    Assumes one namespace per document (what Powertools writes). Values are made ``number``s
    (``Decimal`` for exact sums in tests).
    """
    meta = document.get("_aws")
    if not isinstance(meta, Mapping) or "CloudWatchMetrics" not in meta:
        return None
    stamp = datetime.fromtimestamp(int(meta["Timestamp"]) / 1000, UTC)
    namespace = ""
    datums: list[dict[str, Any]] = []
    for directive in meta["CloudWatchMetrics"]:
        namespace = directive["Namespace"]
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                datum: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Timestamp": stamp,
                    "Unit": metric.get("Unit", "None"),
                }
                if isinstance(value, list):
                    datum["Values"] = [number(v) for v in value]
                else:
                    datum["Value"] = number(value)
                datums.append(datum)
    return namespace, datums


def emf_metric_data(lines: Iterable[str], number: Callable[[Any], Any] = float) -> dict[str, list[dict[str, Any]]]:
    """The PutMetricData datums, by namespace, of the EMF documents among log lines (others are skipped)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        if '"_aws"' not in line:
            continue  # cannot be EMF: not worth parsing
        try:
            document = json.loads(line, parse_float=number)
        except ValueError:
            continue
        found = emf_datums(document, number) if isinstance(document, dict) else None
        if found:
            by_namespace.setdefault(found[0], []).extend(found[1])
    return by_namespace


class LogSink:
    """A function's log file plus the EMF forwarder and the metric filters of its log group."""

    def __init__(
        self, log_dir: Path, cloudwatch: Any, metric_filters: Mapping[str, Iterable[MetricFilter]] | None = None
    ):
        """``metric_filters``: by function name (as LocalFunction names it: the logical name)."""
        self._dir = log_dir
        self._cloudwatch = cloudwatch
        self._filters = {name: list(filters) for name, filters in (metric_filters or {}).items()}
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def deliver(self, function: str, text: str) -> None:
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            return
        with self._lock, (self._dir / f"{function}.log").open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        by_namespace = emf_metric_data(lines)
        now = datetime.now(UTC)
        for metric_filter in self._filters.get(function, []):
            by_namespace.setdefault(metric_filter.namespace, []).extend(metric_filter.datums(lines, now))
        for namespace, datums in by_namespace.items():
            for start in range(0, len(datums), _MAX_DATUMS):
                if datums[start : start + _MAX_DATUMS]:
                    self._cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=datums[start : start + _MAX_DATUMS]
                    )


class LocalFunction:
    """One function of template.yaml, warm, invoked in-process."""

    def __init__(
        self,
        name: str,
        directory: str,
        physical_name: str,
        sink: LogSink,
        *,
        region: str,
        account_id: str,
        timeout: float,
    ):
        self.name = name
        self.physical_name = physical_name
        self._sink = sink
        self._region = region
        self._account_id = account_id
        self._timeout = timeout
        self._lock = threading.Lock()
        self._router = install_router()
        self._directory = directory
        self._module: ModuleType = load_handler_module(directory)

    def new_container(self) -> None:
        """What Lambda does after a configuration change: the next invocation runs in a fresh container
        (the handler module imported anew, so its cached clients and settings are read again)."""
        with self._lock:
            self._module = load_handler_module(self._directory)

    def new_context(self) -> LocalLambdaContext:
        """The context Lambda gives one invocation of this function (a new aws_request_id each time)."""
        return LocalLambdaContext(
            function_name=self.physical_name,
            timeout_seconds=self._timeout,
            region=self._region,
            account_id=self._account_id,
            log_group_name=f"/aws/lambda/{self.physical_name}",
        )

    def invoke(self, event: Mapping[str, Any], context: LocalLambdaContext | None = None) -> Any:
        """Call the handler with ``context`` (default: a new one); its exception (if any) is re-raised.

        What it printed goes to the log sink once the function is free again; as in AWS, log and
        metric delivery never changes the invocation's outcome (a failure there is only logged).
        """
        context = context or self.new_context()
        handler: Callable[[Any, Any], Any] = self._module.lambda_handler
        output: list[str] = []
        try:
            with self._lock, self._router.capture() as output:
                try:
                    return handler(dict(event), context)
                except Exception as error:
                    if str(error) == UNAUTHORIZED:  # an authorizer's ordinary 401, not a failure
                        log.debug("%s answered Unauthorized", self.name)
                    else:
                        log.exception("%s raised", self.name)
                    raise
        finally:
            try:
                self._sink.deliver(self.name, "".join(output))
            except Exception:
                log.exception("%s: its log lines and metrics could not be delivered", self.name)

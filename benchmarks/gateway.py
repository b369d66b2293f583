"""1. The gateway's hot path in-process: AWS calls, CPU, wall time and allocations per warm request."""

from __future__ import annotations

import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tollgate_cli.load import request_body
from tollgate_local.apigw import authorized_event

from benchmarks.aws_calls import counting
from benchmarks.inprocess import Function, InProcessStack
from benchmarks.report import heading, kib, ms, percentile, table

#: What PRODUCT.md promises for a warm request.
EXPECTED_CALLS = Counter({"bedrock-runtime Converse": 1, "dynamodb PutItem": 1})


@dataclass
class GatewayFigures:
    requests: int
    cold_calls: Counter[str] = field(default_factory=Counter)
    warm_calls: Counter[str] = field(default_factory=Counter)
    calls_per_request: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    emulator_cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    peak_bytes: list[float] = field(default_factory=list)
    retained_bytes: int = 0
    cold_wall: float = 0.0
    refused: Counter[int] = field(default_factory=Counter)  # status code -> count, for non-200 answers

    @property
    def own_cpu(self) -> list[float]:
        return [total - moto for total, moto in zip(self.cpu, self.emulator_cpu, strict=True)]


class Workload:
    """Converse events as API Gateway delivers them (authorizer context set), over every profile of config.json."""

    def __init__(self, stack: InProcessStack, seed: int = 7):
        self._rng = random.Random(seed)
        self._profiles = stack.bundle.profiles()
        self._caching = {p.name for p in self._profiles if stack.bundle.catalog.models[p.model_id].prompt_caching}
        self._sent = 0

    def next_event(self) -> dict[str, Any]:
        index, self._sent = self._sent, self._sent + 1
        profile = self._profiles[index % len(self._profiles)]
        body = request_body(self._rng, index, profile.name in self._caching)
        return authorized_event(
            profile.name, profile.tenant_id, body, request_id=f"bench-gw-{index:05d}", key_id="benchkey01"
        )


def _send(gateway: Function, event: dict[str, Any], figures: GatewayFigures) -> None:
    status = int(gateway(event)["statusCode"])
    if status != 200:
        figures.refused[status] += 1


def measure_gateway(stack: InProcessStack, requests: int) -> GatewayFigures:
    figures = GatewayFigures(requests=requests)
    gateway, workload = Function("gateway"), Workload(stack)
    with counting() as cold:
        started = time.perf_counter()
        _send(gateway, workload.next_event(), figures)  # the container's first request warms it
        figures.cold_wall = time.perf_counter() - started
    figures.cold_calls = cold.by_operation()
    _timed_pass(gateway, workload, figures)
    _memory_pass(gateway, workload, figures)
    return figures


def _timed_pass(gateway: Function, workload: Workload, figures: GatewayFigures) -> None:
    events = [workload.next_event() for _ in range(figures.requests)]
    with counting() as calls:
        for event in events:
            before, moto = len(calls), calls.emulator_cpu
            cpu, wall = time.process_time(), time.perf_counter()
            _send(gateway, event, figures)
            figures.wall.append(time.perf_counter() - wall)
            figures.cpu.append(time.process_time() - cpu)
            figures.emulator_cpu.append(calls.emulator_cpu - moto)
            figures.calls_per_request.append(len(calls) - before)
    figures.warm_calls = calls.by_operation()


def _memory_pass(gateway: Function, workload: Workload, figures: GatewayFigures) -> None:
    """A separate pass: tracemalloc slows every allocation, so it must not skew the timings."""
    events = [workload.next_event() for _ in range(figures.requests)]
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for event in events:
            tracemalloc.reset_peak()
            current, _ = tracemalloc.get_traced_memory()
            _send(gateway, event, figures)
            figures.peak_bytes.append(tracemalloc.get_traced_memory()[1] - current)
        figures.retained_bytes = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()


def _spread(label: str, values: list[float], show: Callable[[float], str]) -> list[str]:
    return [label, show(percentile(values, 50)), show(percentile(values, 95)), show(max(values))]


def _calls_table(figures: GatewayFigures) -> str:
    n = figures.requests
    names = sorted(set(figures.cold_calls) | set(figures.warm_calls))
    rows = [[name, figures.cold_calls[name], f"{figures.warm_calls[name] / n:.2f}"] for name in names]
    rows.append(["**total**", figures.cold_calls.total(), f"{figures.warm_calls.total() / n:.2f}"])
    return table(["AWS API call", "first (cold) request", f"per warm request (mean of {n})"], rows)


def _verdict(figures: GatewayFigures) -> str:
    n, expected = figures.requests, EXPECTED_CALLS.total()
    exact = sum(1 for count in figures.calls_per_request if count == expected)
    as_promised = exact == n and figures.warm_calls == Counter({k: v * n for k, v in EXPECTED_CALLS.items()})
    refused = ", ".join(f"{status}: {count}" for status, count in sorted(figures.refused.items())) or "none"
    return (
        f"Warm requests with exactly {expected} AWS calls (Converse + PutItem): {exact}/{n} "
        f"({'as expected' if as_promised else '**NOT as expected**'}). Non-200 answers: {refused}. "
        f"The first (cold) request took {ms(figures.cold_wall)}."
    )


def render_gateway(figures: GatewayFigures) -> str:
    n = figures.requests
    timing = [
        _spread("CPU, whole process (`process_time`)", figures.cpu, ms),
        _spread("… of which moto emulating DynamoDB (not spent in Lambda)", figures.emulator_cpu, ms),
        _spread("CPU without moto: handler, Powertools, botocore", figures.own_cpu, ms),
        _spread("wall time (Bedrock stand-in over loopback HTTP)", figures.wall, ms),
        _spread("tracemalloc peak above the request's start (separate pass)", figures.peak_bytes, kib),
    ]
    return "\n".join(
        [
            heading(f"1. Gateway hot path, in-process (real handler, moto, Bedrock stand-in), {n} warm requests"),
            _calls_table(figures),
            "",
            _verdict(figures),
            "",
            table(["per warm request", "p50", "p95", "max"], timing),
            "",
            f"The stand-in runs in its own process, so its CPU and allocations are not counted. Allocations "
            f"include moto's PutItem; still allocated after the {n}-request tracemalloc pass: "
            f"{kib(figures.retained_bytes)} (mostly the items and stream records moto keeps).",
        ]
    )

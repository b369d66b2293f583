"""1. The gateway's hot path in-process: AWS calls, CPU, wall time and allocations per warm request."""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollgate.config import ConfigBundle
from tollgate_cli.load import request_body
from tollgate_local.apigw import authorized_event
from tollgate_local.template import REPO_ROOT

from benchmarks.aws_calls import counting
from benchmarks.inprocess import Function, InProcessStack, environment
from benchmarks.report import heading, kib, ms, percentile, table


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
    #: Per warm request of the timed pass: the ledger mode of its tenant, its AWS calls besides Converse.
    modes: list[str] = field(default_factory=list)
    ledger_calls: list[Counter[str]] = field(default_factory=list)

    @property
    def own_cpu(self) -> list[float]:
        return [total - moto for total, moto in zip(self.cpu, self.emulator_cpu, strict=True)]


class Workload:
    """Converse events as API Gateway delivers them (authorizer context set), over every profile of config.json."""

    def __init__(self, stack: InProcessStack, seed: int = 7, prefix: str = "bench-gw"):
        self._prefix = prefix
        self._rng = random.Random(seed)
        self.stack = stack
        self._profiles = stack.bundle.profiles()
        self._caching = {p.name for p in self._profiles if stack.bundle.catalog.models[p.model_id].prompt_caching}
        self._sent = 0

    def next_event(self) -> dict[str, Any]:
        index, self._sent = self._sent, self._sent + 1
        profile = self._profiles[index % len(self._profiles)]
        body = request_body(self._rng, index, profile.name in self._caching)
        return authorized_event(
            profile.name, profile.tenant_id, body, request_id=f"{self._prefix}-{index:05d}", key_id="benchkey01"
        )


def _send(gateway: Function, event: dict[str, Any], figures: GatewayFigures) -> None:
    status = int(gateway(event)["statusCode"])
    if status != 200:
        figures.refused[status] += 1


def measure_gateway(stack: InProcessStack, requests: int, prefix: str = "bench-gw") -> GatewayFigures:
    figures = GatewayFigures(requests=requests)
    gateway, workload = Function("gateway"), Workload(stack, prefix=prefix)
    with counting() as cold:
        started = time.perf_counter()
        _send(gateway, workload.next_event(), figures)  # the container's first request warms it
        figures.cold_wall = time.perf_counter() - started
    figures.cold_calls = cold.by_operation()
    _timed_pass(gateway, workload, figures)
    _memory_pass(gateway, workload, figures)
    return figures


def ledger_mode(stack: InProcessStack, tenant_id: str) -> str:
    """What the tenant's requests do on the ledger (tollgate.ledger): the hot path's calls depend on it."""
    tenant = stack.bundle.tenant(tenant_id)
    assert tenant is not None
    if tenant.budget.enforced or tenant.rate_limits.tokens_per_min is not None:
        return "enforce" if tenant.budget.enforced else "tokens/min limit"
    return "alert budget" if tenant.budget.active else "no budget"


def _timed_pass(gateway: Function, workload: Workload, figures: GatewayFigures) -> None:
    events = [workload.next_event() for _ in range(figures.requests)]
    with counting() as calls:
        for event in events:
            figures.modes.append(ledger_mode(workload.stack, event["requestContext"]["authorizer"]["tenant_id"]))
            before, moto = len(calls), calls.emulator_cpu
            cpu, wall = time.process_time(), time.perf_counter()
            _send(gateway, event, figures)
            figures.wall.append(time.perf_counter() - wall)
            figures.cpu.append(time.process_time() - cpu)
            figures.emulator_cpu.append(calls.emulator_cpu - moto)
            figures.calls_per_request.append(len(calls) - before)
            figures.ledger_calls.append(
                Counter(c.name for c in calls.calls[before:] if c.name != "bedrock-runtime Converse")
            )
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


#: The ISSUE10 design's hot path besides Converse, by the tenant's ledger mode.
EXPECTED_LEDGER_CALLS = {
    "no budget": Counter({"dynamodb PutItem": 1}),
    "alert budget": Counter({"dynamodb TransactWriteItems": 1}),
    "enforce": Counter({"dynamodb TransactWriteItems": 2}),
    "tokens/min limit": Counter({"dynamodb TransactWriteItems": 2}),
}


def _verdict(figures: GatewayFigures) -> str:
    n = figures.requests
    exact = sum(
        1
        for mode, calls in zip(figures.modes, figures.ledger_calls, strict=True)
        if calls == EXPECTED_LEDGER_CALLS[mode]
    )
    as_promised = exact == n
    refused = ", ".join(f"{status}: {count}" for status, count in sorted(figures.refused.items())) or "none"
    return (
        f"Warm requests with exactly Converse + the calls of their tenant's ledger mode (below): {exact}/{n} "
        f"({'as expected' if as_promised else '**NOT as expected**'}). Non-200 answers: {refused}. "
        f"The first (cold) request took {ms(figures.cold_wall)}."
    )


def _by_mode(figures: GatewayFigures) -> str:
    rows = []
    for mode in sorted(set(figures.modes)):
        picked = [i for i, m in enumerate(figures.modes) if m == mode]
        calls: Counter[str] = Counter()
        for i in picked:
            calls += figures.ledger_calls[i]
        shown = ", ".join(f"{name} {count / len(picked):.2f}" for name, count in sorted(calls.items()))
        own = [figures.own_cpu[i] for i in picked]
        rows.append([mode, len(picked), f"{calls.total() / len(picked):.2f}", shown, ms(percentile(own, 50))])
    return table(
        ["tenant's ledger mode", "requests", "AWS calls besides Converse", "which (per request)", "CPU p50 w/o moto"],
        rows,
    )


def render_gateway(figures: GatewayFigures, title: str = "") -> str:
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
            heading(
                f"1{title and ' ' + title}. Gateway hot path, in-process (real handler, moto, Bedrock stand-in), "
                f"{n} warm requests"
            ),
            _calls_table(figures),
            "",
            _verdict(figures),
            "",
            "By the tenant's budget (config.json): enforce and tokens/min reserve before Bedrock and settle "
            "after (2 TransactWriteItems); an alert budget books with the record (1 TransactWriteItems); "
            "no budget: 1 PutItem.",
            "",
            _by_mode(figures),
            "",
            table(["per warm request", "p50", "p95", "max"], timing),
            "",
            f"The stand-in runs in its own process, so its CPU and allocations are not counted. Allocations "
            f"include moto's PutItem; still allocated after the {n}-request tracemalloc pass: "
            f"{kib(figures.retained_bytes)} (mostly the items and stream records moto keeps).",
        ]
    )


def without_budgets(directory: Path) -> Path:
    """config.json with every budget and rate limit taken out (the ledger off), in ``directory``."""
    config = json.loads((REPO_ROOT / "config.json").read_text())
    for layer in [config.get("defaults", {}), *config.get("customer_tiers", {}).values(), *config["tenants"].values(),
                  *config["profiles"].values()]:  # fmt: skip
        layer.pop("budget", None)
        layer.pop("rate_limits", None)
    (directory / "config.json").write_text(json.dumps(config))
    shutil.copy(REPO_ROOT / "models.json", directory / "models.json")
    return directory


def measure_gateway_without_budgets(stack: InProcessStack, requests: int) -> GatewayFigures:
    """The same workload with the ledger off: what enforcement adds to the hot path."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = without_budgets(Path(scratch))
        with environment({"TOLLGATE_CONFIG_DIR": str(directory)}):
            off = InProcessStack(bundle=ConfigBundle.load_dir(directory, region=stack.bundle.region))
            return measure_gateway(off, requests, prefix="bench-gw-off")

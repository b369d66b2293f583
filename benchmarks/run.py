"""``make bench``: measured figures as Markdown tables. ``python -m benchmarks.run [--quick]``.

Speed and memory targets are read from these tables, not asserted by timed tests.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from benchmarks.aggregator import measure_aggregator, render_aggregator
from benchmarks.cold_start import measure_cold_start, render_cold_start
from benchmarks.gateway import measure_gateway, measure_gateway_without_budgets, render_gateway
from benchmarks.inprocess import in_process_stack
from benchmarks.local_stack import measure_local, render_local
from benchmarks.report import machine


@dataclass(frozen=True)
class Sizes:
    gateway_requests: int
    aggregator_repeats: int
    http_requests: int
    propagation_samples: int
    cold_start_samples: int
    alarm_rounds: int  # rounds of threshold bursts, one per profile each, at other seconds of the minute


FULL = Sizes(
    gateway_requests=200, aggregator_repeats=3, http_requests=50, propagation_samples=5, cold_start_samples=7,
    alarm_rounds=2,
)  # fmt: skip
QUICK = Sizes(
    gateway_requests=30, aggregator_repeats=1, http_requests=10, propagation_samples=3, cold_start_samples=3,
    alarm_rounds=1,
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests and samples (under a minute)")
    sizes = QUICK if parser.parse_args(argv).quick else FULL
    started = time.monotonic()
    print(f"# Tollgate benchmarks{' (quick)' if sizes is QUICK else ''} — {machine()}", flush=True)
    print(render_cold_start(measure_cold_start(sizes.cold_start_samples), sizes.cold_start_samples), flush=True)
    with in_process_stack() as stack:
        print(render_gateway(measure_gateway(stack, sizes.gateway_requests), "a, budgets on"), flush=True)
        off = measure_gateway_without_budgets(stack, sizes.gateway_requests)
        print(render_gateway(off, "b, no budgets or rate limits (ledger off)"), flush=True)
        print(render_aggregator(measure_aggregator(stack, sizes.aggregator_repeats)), flush=True)
    print(render_local(measure_local(sizes.http_requests, sizes.propagation_samples, sizes.alarm_rounds)), flush=True)
    print(f"\n(benchmarks took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

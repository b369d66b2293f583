"""2. The aggregator on stream batches: DynamoDB calls, items written, CPU per record; and a redelivery."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from tollgate.rollup import Granularity, Totals, total
from tollgate.services.aggregator import decode
from tollgate.usage import UsageRecord
from tollgate_local.streams import insert_record
from tollgate_local.template import event_source_mapping

from benchmarks.aws_calls import ApiCalls, counting
from benchmarks.inprocess import Function, InProcessStack
from benchmarks.report import heading, table
from benchmarks.standin import REGION

BATCH = int(event_source_mapping()["BatchSize"])  # records per stream batch, as template.yaml sets it
GROUPS = (1, 10, 100)
REPLAYED_GROUPS = 10
TRANSACT = "dynamodb TransactWriteItems"


@dataclass(frozen=True)
class Run:
    records: int
    calls: ApiCalls
    printed: str
    failures: int
    cpu: float
    wall: float


@dataclass(frozen=True)
class Delivery:
    label: str
    groups: int
    records: int
    calls: Counter[str]
    committed: int  # transactions that committed
    cancelled: int  # transaction attempts DynamoDB cancelled (e.g. replayed markers)
    markers: int  # marker items written by committed transactions
    updates: int  # rollup updates written by committed transactions
    metric_documents: int  # EMF documents printed
    failures: int  # batchItemFailures reported
    cpu_per_record: float  # seconds (process_time), median over the repeats
    moto_per_record: float  # seconds of that spent in moto's emulation, median over the repeats
    wall: float  # seconds per batch, median over the repeats


def real_records(stack: InProcessStack) -> tuple[list[dict[str, Any]], list[UsageRecord]]:
    """The usage stream as the gateway wrote it (Lambda's shape), and its records as the aggregator decodes them.

    They are the records the gateway benchmark wrote: run measure_gateway on the same stack first.
    """
    raw = stack.stream().poll()
    if len(raw) < 2:
        raise RuntimeError("the usage stream is empty: run measure_gateway on this stack before measure_aggregator")
    decoded = [decode(DynamoDBRecord(record)) for record in raw]
    return raw, [record for record in decoded if record is not None]


def synthetic_batch(templates: Sequence[UsageRecord], groups: int, tag: str, stream_arn: str) -> list[dict[str, Any]]:
    """BATCH stream records in ``groups`` distinct (tenant, profile, model) groups.

    Group g copies one real record (its model, tokens, cost and request time, so it folds into
    exactly one hour, one day and one month row) under its own tenant and profile names.
    """
    records = []
    for index in range(BATCH):
        group = index % groups
        record = templates[group % len(templates)].model_copy(
            update={
                "request_id": f"bench-agg-{tag}-{index:03d}",
                "tenant_id": f"bench-tenant-{group:03d}",
                "profile": f"bench-profile-{group:03d}",
            }
        )
        records.append(
            insert_record(
                record.to_item(),
                key="request_id",
                sequence_number=f"{10**21 + index}",
                stream_arn=stream_arn,
                region=REGION,
                at=record.requested_at,
                event_id=f"{tag}-{index:03d}",
            )
        )
    return records


def deliver(aggregator: Function, records: list[dict[str, Any]]) -> Run:
    """One invocation with ``records``, measured."""
    with counting() as calls:
        cpu, wall = time.process_time(), time.perf_counter()
        result = aggregator({"Records": records})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Run(len(records), calls, aggregator.output, len(result["batchItemFailures"]), cpu, wall)


def summarise(label: str, groups: int, runs: list[Run]) -> Delivery:
    """The first run's calls and items (every repeat makes the same ones); medians of CPU and wall time."""
    first = runs[0]
    transactions = [call for call in first.calls.calls if call.name == TRANSACT]
    committed = [call.params["TransactItems"] for call in transactions if call.error is None]
    return Delivery(
        label=label,
        groups=groups,
        records=first.records,
        calls=first.calls.by_operation(),
        committed=len(committed),
        cancelled=len(transactions) - len(committed),
        markers=sum(1 for items in committed for item in items if "Put" in item),
        updates=sum(1 for items in committed for item in items if "Update" in item),
        metric_documents=sum(1 for line in first.printed.splitlines() if '"_aws"' in line),
        failures=first.failures,
        cpu_per_record=statistics.median(run.cpu / run.records for run in runs),
        moto_per_record=statistics.median(run.calls.emulator_cpu / run.records for run in runs),
        wall=statistics.median(run.wall for run in runs),
    )


@dataclass(frozen=True)
class AggregatorFigures:
    deliveries: list[Delivery]
    before_replay: Totals
    after_replay: Totals


def measure_aggregator(stack: InProcessStack, repeats: int) -> AggregatorFigures:
    raw, templates = real_records(stack)
    aggregator = Function("aggregator")
    deliver(aggregator, raw[:1])  # the container's first invocation warms it
    stream_arn = raw[0]["eventSourceARN"]
    real_groups = len({(r.tenant_id, r.profile, r.model_id) for r in templates[1 : BATCH + 1]})
    deliveries = [summarise("gateway-written records", real_groups, [deliver(aggregator, raw[1 : BATCH + 1])])]
    replayed: list[dict[str, Any]] = []
    for groups in GROUPS:
        batches = [synthetic_batch(templates, groups, f"k{groups}r{run}", stream_arn) for run in range(repeats)]
        deliveries.append(summarise(f"synthetic, k={groups}", groups, [deliver(aggregator, b) for b in batches]))
        replayed = batches[0] if groups == REPLAYED_GROUPS else replayed
    before = _day_totals(stack)
    again = [deliver(aggregator, replayed)]
    redelivery = summarise(f"the k={REPLAYED_GROUPS} batch delivered again", REPLAYED_GROUPS, again)
    return AggregatorFigures([*deliveries, redelivery], before, _day_totals(stack))


def _day_totals(stack: InProcessStack) -> Totals:
    return total(row.totals for row in stack.trends.all_rows(Granularity.DAY))


def _calls(calls: Counter[str]) -> str:
    return ", ".join(f"{name.removeprefix('dynamodb ')} x{count}" for name, count in sorted(calls.items()))


def _row(d: Delivery) -> list[object]:
    written = d.markers + d.updates
    return [
        d.label, d.records, d.groups, _calls(d.calls), f"{d.committed} / {d.cancelled}", written,
        f"{written / d.records:.2f}", d.updates, d.metric_documents, d.failures,
        f"{(d.cpu_per_record - d.moto_per_record) * 1000:.2f} ms", f"{d.moto_per_record * 1000:.2f} ms",
        f"{d.wall * 1000:.0f} ms",
    ]  # fmt: skip


def render_aggregator(figures: AggregatorFigures) -> str:
    before, after = figures.before_replay, figures.after_replay
    same = "unchanged" if before == after else "**CHANGED**"
    headers = [
        "batch", "records", "groups", "DynamoDB calls", "transactions committed / cancelled", "items written",
        "items per record", "rollup updates", "EMF documents", "failures", "CPU per record without moto",
        "moto CPU per record", "wall per batch",
    ]  # fmt: skip
    return "\n".join(
        [
            heading(f"2. Aggregator, in-process (real handler, moto): stream batches of up to {BATCH} records"),
            table(headers, [_row(d) for d in figures.deliveries]),
            "",
            "Groups are distinct (tenant, profile, model); each folds into one hour, one day and one month row. "
            "CPU is `process_time` (median of the repeats), split into moto's emulation and the rest "
            "(handler, Powertools, botocore); moto's TransactWriteItems deep-copies its tables, so its share "
            "and the wall time grow with the table, not with Tollgate's work.",
            f"Redelivery: DAY rollups before {before.requests} requests / {before.cost_pusd} pUSD, "
            f"after {after.requests} requests / {after.cost_pusd} pUSD ({same}).",
        ]
    )

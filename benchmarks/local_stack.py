"""3. The local stack end to end: `tollgate local` in its own process, the stock boto3 client over HTTP.

The stack is started exactly as tests/e2e/test_local_stack.py starts it
(tollgate_local.launch: no AWS_* variables, any free port, its own state directory), with
alarms evaluated as often as under `make local`, and is always stopped.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from tollgate.adapters.dynamodb import DynamoTrendStore
from tollgate.config import ConfigBundle
from tollgate.rollup import Granularity, period_of
from tollgate_cli.load import bearer_token, bedrock_client, request_body
from tollgate_local.launch import local_stack_process
from tollgate_local.stack import DEFAULT_ALARM_INTERVAL
from tollgate_local.template import REPO_ROOT, event_source_mapping

from benchmarks.report import heading, ms, percentile, table

LATENCY_TENANT, LATENCY_PROFILE = "acme", "acme-chat"
SAMPLE_TENANT, SAMPLE_PROFILE = "globex", "globex-summarizer"  # a profile the latency run leaves alone
PROPAGATION_TIMEOUT = 40.0
POLL = 0.05
SPACING = 0.5  # seconds between one sample's last stage and the next sample's request


class BenchmarkError(RuntimeError):
    pass


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition`` held (polled every POLL seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(POLL)
    raise BenchmarkError(f"{what} did not happen within {timeout:.0f} s")


class Probe:
    """Reads the local stack's moto: usage records, DAY rollups, CloudWatch metrics."""

    def __init__(self, local: dict[str, Any]):
        aws = {"region_name": local["region"], "endpoint_url": local["aws_endpoint_url"],
               "aws_access_key_id": "local", "aws_secret_access_key": "local"}  # fmt: skip
        self._dynamodb = boto3.client("dynamodb", **aws)
        self._cloudwatch = boto3.client("cloudwatch", **aws)
        self._usage_table = local["resources"]["UsageTable"]
        self._trends = DynamoTrendStore(self._dynamodb, local["resources"]["TrendTable"])

    def has_record(self, request_id: str) -> bool:
        found = self._dynamodb.get_item(TableName=self._usage_table, Key={"request_id": {"S": request_id}})
        return "Item" in found

    def day_requests(self, profile: str) -> int:
        day = period_of(Granularity.DAY, datetime.now(UTC))
        return sum(row.totals.requests for row in self._trends.rows(Granularity.DAY, day) if row.key.profile == profile)

    def metric_requests(self, tenant: str, profile: str) -> float:
        now = datetime.now(UTC)
        points = self._cloudwatch.get_metric_statistics(
            Namespace="Tollgate", MetricName="Requests",
            Dimensions=[{"Name": "TenantId", "Value": tenant}, {"Name": "Profile", "Value": profile}],
            StartTime=now - timedelta(minutes=15), EndTime=now + timedelta(minutes=2), Period=60, Statistics=["Sum"],
        )["Datapoints"]  # fmt: skip
        return float(sum(p["Sum"] for p in points))


@dataclass(frozen=True)
class AlarmSample:
    """One burst over a profile's requests-per-minute threshold, and when its ALARM mail landed."""

    profile: str
    second: float  # of the minute, when the response that crossed the threshold arrived
    to_mail: float  # seconds from that response to the ALARM mail's file in the outbox


@dataclass
class LocalFigures:
    requests: int
    startup: float = 0.0
    first: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # error code -> count, in the latency run
    stages: dict[str, list[float]] = field(default_factory=dict)
    alarm_interval: float = DEFAULT_ALARM_INTERVAL
    alarms: list[AlarmSample] = field(default_factory=list)


class Tenant:
    """One tenant's stock bedrock-runtime client, with its key as AWS_BEARER_TOKEN_BEDROCK."""

    def __init__(self, local: dict[str, Any], tenant: str):
        self._key = local["tenants"][tenant]["api_key"]
        self._client = bedrock_client(local["api_url"], self._key, local["region"])
        self._rng = random.Random(tenant)
        self.sent = 0

    def converse(self, profile: str) -> tuple[float, str]:
        """Seconds the call took, and the request id the gateway gave it."""
        body = request_body(self._rng, self.sent, caching=False)
        with bearer_token(self._key):
            started = time.perf_counter()
            answer = self._client.converse(modelId=profile, **body)
            elapsed = time.perf_counter() - started
        self.sent += 1
        return elapsed, str(answer["ResponseMetadata"]["HTTPHeaders"]["x-tollgate-request-id"])


def measure_local(requests: int, samples: int, alarm_rounds: int) -> LocalFigures:
    figures = LocalFigures(requests=requests)
    with (
        tempfile.TemporaryDirectory(prefix="tollgate-bench-") as folder,
        local_stack_process(Path(folder), alarm_interval=figures.alarm_interval) as launched,
    ):
        local = launched.state
        figures.startup = launched.startup_seconds
        probe = Probe(local)
        _latency_run(Tenant(local, LATENCY_TENANT), probe, figures)
        _propagation_samples(Tenant(local, SAMPLE_TENANT), probe, samples, figures)
        _alarm_range(local, alarm_rounds, figures)
    return figures


#: Seconds of the minute at which the bursts start, one per profile per round (a profile's alarm is
#: back to OK about 20 s into the next minute, so each round has a minute to itself, and one more).
ALARM_ROUNDS = ((2, 12, 22, 32, 42, 51), (7, 17, 27, 37, 46, 55))


def _alarm_range(local: dict[str, Any], rounds: int, figures: LocalFigures) -> None:
    """Bursts just over each profile's requests-per-minute threshold, started at different seconds of the minute.

    Every profile has its own alarm, so one round sends a burst to each of them in one minute, each
    at its own second; the next round (other seconds) waits until every alarm is OK again.
    """
    bundle = ConfigBundle.load_dir(REPO_ROOT)
    profiles = bundle.profiles()
    tenants = {t: Tenant(local, t) for t in bundle.config.tenants}
    outbox = Path(local["outbox"])
    crossings: list[tuple[str, float]] = []  # (profile, wall-clock time of the crossing response)
    for number, seconds in enumerate(ALARM_ROUNDS[:rounds]):
        _wait_for_minute_start(extra_minutes=1 if number else 0)
        order = profiles[number:] + profiles[:number]  # each round gives each profile other seconds
        for second, profile in zip(seconds, order, strict=True):
            now = datetime.now(UTC)
            time.sleep(max(0.0, second - now.second - now.microsecond / 1e6))
            for _ in range(profile.requests_per_min_threshold + 1):
                tenants[profile.tenant_id].converse(profile.name)
            crossings.append((profile.name, time.time()))
    for index, (profile, crossed) in enumerate(crossings):
        nth = sum(1 for p, _ in crossings[: index + 1] if p == profile)
        landed = wait_for_value(lambda p=profile, n=nth: _alarm_mail_time(outbox, p, n), 90, f"{profile}'s ALARM mail")
        at = datetime.fromtimestamp(crossed, UTC)
        figures.alarms.append(AlarmSample(profile, at.second + at.microsecond / 1e6, landed - crossed))


def _wait_for_minute_start(extra_minutes: int) -> None:
    """Sleep to the start of the next minute (and ``extra_minutes`` more)."""
    now = datetime.now(UTC)
    time.sleep(60 * extra_minutes + 60 - now.second - now.microsecond / 1e6)


def _alarm_mail_time(outbox: Path, profile: str, nth: int) -> float | None:
    """When the ``nth`` ALARM mail of ``profile``'s requests alarm was written (its file's mtime), if it was."""
    marker = f"-alarm-bedrockrequestsperminutealarm-{profile}-in-"  # the mailbox names files by subject
    found = sorted(path for path in outbox.glob("*.eml") if marker in path.name)
    return found[nth - 1].stat().st_mtime if len(found) >= nth else None


def wait_for_value(read: Callable[[], float | None], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = read()
        if value is not None:
            return value
        time.sleep(POLL)
    raise BenchmarkError(f"{what} did not happen within {timeout:.0f} s")


def _latency_run(tenant: Tenant, probe: Probe, figures: LocalFigures) -> None:
    figures.first, _ = tenant.converse(LATENCY_PROFILE)
    for _ in range(figures.requests):
        try:
            figures.latencies.append(tenant.converse(LATENCY_PROFILE)[0])
        except ClientError as error:  # counted and shown, not hidden
            figures.errors[str(error.response.get("Error", {}).get("Code"))] += 1
    # let the stream mapping finish these before the samples, so they time only their own record
    sent = tenant.sent  # answered requests only
    wait_for(lambda: probe.day_requests(LATENCY_PROFILE) >= sent, PROPAGATION_TIMEOUT, "the latency run's rollups")


def _propagation_samples(tenant: Tenant, probe: Probe, samples: int, figures: LocalFigures) -> None:
    for _ in range(samples):
        for stage, elapsed in _sample(tenant, probe).items():
            figures.stages.setdefault(stage, []).append(elapsed)
        time.sleep(SPACING)


def _sample(tenant: Tenant, probe: Probe) -> dict[str, float]:
    """One request, then the seconds from its response to each stage of its journey."""
    _, request_id = tenant.converse(SAMPLE_PROFILE)
    answered, sent = time.monotonic(), tenant.sent
    stages: dict[str, Callable[[], bool]] = {
        "usage record in the usage table": lambda: probe.has_record(request_id),
        "DAY rollup row counts it (trend table)": lambda: probe.day_requests(SAMPLE_PROFILE) >= sent,
        "Requests metric counts it (moto CloudWatch)": lambda: probe.metric_requests(SAMPLE_TENANT, SAMPLE_PROFILE)
        >= sent,
    }
    return _times_until(stages, answered)


def _times_until(stages: dict[str, Callable[[], bool]], since: float) -> dict[str, float]:
    """For each stage, seconds from ``since`` to the first poll that saw it done (polled together)."""
    done: dict[str, float] = {}
    while len(done) < len(stages):
        if time.monotonic() - since > PROPAGATION_TIMEOUT:
            missing = ", ".join(stage for stage in stages if stage not in done)
            raise BenchmarkError(f"not seen within {PROPAGATION_TIMEOUT:.0f} s: {missing}")
        for stage, condition in stages.items():
            if stage not in done and condition():
                done[stage] = time.monotonic() - since
        time.sleep(POLL)
    return done


def _errors(errors: Counter[str]) -> str:
    return ", ".join(f"{code} x{count}" for code, count in sorted(errors.items())) or "none"


def render_local(figures: LocalFigures) -> str:
    window = event_source_mapping().get("MaximumBatchingWindowInSeconds", 0)
    lat = figures.latencies or [float("nan")]  # every request refused: the errors column says why
    samples = len(next(iter(figures.stages.values()), []))
    latency = [
        [f"Converse, `{LATENCY_PROFILE}`", ms(figures.first), ms(percentile(lat, 50)), ms(percentile(lat, 95)),
         ms(max(lat)), len(figures.latencies), _errors(figures.errors)]
    ]  # fmt: skip
    stages = [[stage, f"{percentile(t, 50):.2f} s", f"{max(t):.2f} s"] for stage, t in figures.stages.items()]
    return "\n".join(
        [
            heading(
                f"3. Local stack over real HTTP (`tollgate local` subprocess, stock boto3 bedrock-runtime client), "
                f"{figures.requests} requests"
            ),
            f"Stack start to `local.json`: {figures.startup:.1f} s.",
            "",
            table(["HTTP call", "first", "p50", "p95", "max", "answered", "errors"], latency),
            "",
            table([f"after the response (`{SAMPLE_PROFILE}`, {samples} samples spaced out)", "p50", "max"], stages),
            "",
            f"The template's MaximumBatchingWindowInSeconds is {window} s: the stream mapping waits that long "
            f"for a batch to fill, which dominates the rollup and metric times (polled every {POLL * 1000:.0f} ms).",
            "",
            _render_alarms(figures),
        ]
    )


def _render_alarms(figures: LocalFigures) -> str:
    samples = sorted(figures.alarms, key=lambda a: a.second)
    times = [a.to_mail for a in samples] or [float("nan")]
    rows = [[f":{a.second:04.1f}", f"`{a.profile}`", f"{a.to_mail:.1f} s"] for a in samples]
    return "\n".join(
        [
            table(["threshold crossed at second", "profile (requests/min alarm)", "-> ALARM mail in the outbox"], rows),
            "",
            f"Threshold-crossing response -> ALARM mail, {len(samples)} bursts, alarms evaluated every "
            f"{figures.alarm_interval:g} s (as `make local`): min {min(times):.1f} s, median "
            f"{statistics.median(times):.1f} s, max {max(times):.1f} s. A minute is judged from 15 s into it (the "
            "evaluator's late-data lag), so a burst early in a minute waits for that; later ones wait for the "
            "stream's batching window and the next evaluation.",
        ]
    )

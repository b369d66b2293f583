"""``tollgate``: check the configuration, manage tenant keys, report costs, send workloads, run locally."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from tollgate.adapters.cloudwatch import CloudWatchMetricsSink
from tollgate.adapters.control import DynamoControl
from tollgate.adapters.dynamodb import DynamoKeyStore, DynamoTrendStore, DynamoUsageStore, UsageStreamBatches
from tollgate.advice import advise
from tollgate.config import Budget, ConfigBundle, ConfigError
from tollgate.keys import KEY_ID_PATTERN, KeyAlreadyRevokedError, TenantKey, hash_key, issue_key, key_id_of
from tollgate.money import format_usd, usd
from tollgate.rollup import Granularity, period_of
from tollgate.services.redrive import FailedBatch, NotAFailedBatchError, Redriver

from tollgate_cli import prices, prices_cli, report, tables
from tollgate_cli.aws_price_list import PriceListUnreachableError
from tollgate_cli.aws_price_list import fetch as fetch_price_list
from tollgate_cli.load import Caller, run_load, wait_for_rollups
from tollgate_cli.price_list import PriceListShapeError
from tollgate_cli.target import (
    SAMCONFIG_FILE,
    Chosen,
    SamConfig,
    Target,
    TargetError,
    choose_region,
    local_target,
    resolve,
)

out = Console()
err = Console(stderr=True)


class UsageError(Exception):
    """A mistake in how the command was called; the message says how to call it."""


# ------------------------------------------------------------------------------ config


def _region_to_check(args: argparse.Namespace) -> Chosen | str:
    """The stack's region, found as for a deployed stack (see tollgate_cli.target); else why there is none."""
    try:
        return choose_region(args.region, SamConfig.read(Path(args.dir) / SAMCONFIG_FILE))
    except TargetError as error:
        return str(error)


def cmd_config_check(args: argparse.Namespace) -> int:
    bundle = ConfigBundle.load_dir(Path(args.dir))
    region = _region_to_check(args)
    if isinstance(region, Chosen):
        try:
            bundle = bundle.in_region(region.value)
        except ConfigError as error:
            err.print(
                f"[red]configuration error[/red]: models.json does not price every profile in {region.value} "
                f"(region from {region.source}), where the stack runs; a deploy there would be refused\n"
                + escape(str(error)),
                highlight=False,
            )
            return 2
    profiles = bundle.profiles()
    where = (
        f"every profile is priced in {region.value} (region from {region.source})"
        if isinstance(region, Chosen)
        else "checked no region"
    )
    out.print(
        f"[green]ok[/green] config.json and models.json are valid: {len(bundle.config.tenants)} tenants, "
        f"{len(profiles)} profiles, {len(bundle.catalog.models)} models; {where}",
        highlight=False,
    )
    shown = tables.table(
        "profiles: what their tenants may ask Bedrock for, and their alarm thresholds",
        ("profile", "tenant", "model", "scope", "tiers", "cache TTLs", "latency", "cost/5min", "tokens/min",
         "requests/min"),
        right=("cost/5min", "tokens/min", "requests/min"),
    )  # fmt: skip
    costs = tables.usd_cells([p.cost_threshold for p in profiles])
    for p, cost in zip(profiles, costs, strict=True):
        caching = bundle.catalog.models[p.model_id].prompt_caching
        shown.add_row(
            p.name, p.tenant_id, p.model_id, p.scope, ", ".join(p.allow.tiers),
            ", ".join(p.allow.cache_ttls) if caching else "(no caching)", ", ".join(p.allow.latency),
            cost, str(p.tokens_per_min_threshold), str(p.requests_per_min_threshold),
        )  # fmt: skip
    tables.print_table(out, shown)
    tables.print_table(out, _effective_limits(bundle))
    if not isinstance(region, Chosen):
        err.print(
            "[yellow]warning[/yellow]: checked no region, so not whether models.json prices every profile where the "
            "stack runs (a deploy there refuses a profile it does not price). Give the region with "
            f"`tollgate config check --region REGION` (`make deploy REGION=...`), or where `sam deploy` finds it: "
            f"region in samconfig.toml, AWS_REGION, or your AWS profile's region. ({escape(region)})",
            highlight=False,
        )
    for advice in advise(bundle, datetime.now(UTC).date(), region.value if isinstance(region, Chosen) else None):
        err.print(f"[yellow]warning[/yellow]: {escape(advice.message)}", highlight=False)
    return 0


def _budget_cells(budget: Budget) -> tuple[str, str, str]:
    if not budget.active:
        return "-", "-", "-"
    monthly = format_usd(budget.monthly_pusd) if budget.monthly_pusd is not None else "-"
    daily = format_usd(budget.daily_pusd) if budget.daily_pusd is not None else "-"
    return monthly, daily, budget.mode


def _effective_limits(bundle: ConfigBundle) -> Any:
    """Each tenant's and profile's limits after defaults < customer tier < tenant < profile."""
    shown = tables.table(
        "effective limits: budgets (USD, tenant-local periods), rate limits, action on a cost alarm",
        ("tenant / profile", "customer tier", "time zone", "monthly", "daily", "mode", "alerts", "requests/min",
         "tokens/min", "on cost alarm"),
        right=("monthly", "daily", "requests/min", "tokens/min"),
    )  # fmt: skip
    for tenant in bundle.tenants():
        limits = tenant.rate_limits
        shown.add_row(
            tenant.tenant_id, tenant.customer_tier or "-", tenant.time_zone, *_budget_cells(tenant.budget),
            ", ".join(map(str, tenant.budget.alerts)) if tenant.budget.active else "-",
            str(limits.requests_per_min or "-"), str(limits.tokens_per_min or "-"), tenant.on_cost_alarm,
        )  # fmt: skip
        for profile in bundle.profiles_of(tenant.tenant_id):
            own = profile.budget
            shown.add_row(
                f"  {profile.name}", "", "", *_budget_cells(own),
                ", ".join(map(str, own.alerts)) if own.active else "-", "", "", profile.on_cost_alarm,
            )  # fmt: skip
    return shown


# ------------------------------------------------------------------------------ keys


def _target(args: argparse.Namespace) -> Target:
    return resolve(local=args.local, stack=args.stack, region=args.region, root=Path(args.dir))


def _keys(target: Target) -> DynamoKeyStore:
    return DynamoKeyStore(target.client("dynamodb"), target.resource("TenantTable"))


def cmd_keys_issue(args: argparse.Namespace) -> int:
    bundle = ConfigBundle.load_dir(Path(args.dir))
    if args.tenant not in bundle.config.tenants:
        known = ", ".join(sorted(bundle.config.tenants))
        raise UsageError(f"tenant {args.tenant!r} is not in config.json (tenants: {known}); add it and deploy first")
    target = _target(args)
    issued = issue_key(args.tenant, datetime.now(UTC), label=args.label)
    _keys(target).add(issued.record)
    err.print(f"issued key [bold]{issued.record.key_id}[/bold] for tenant {args.tenant} on {target.name}.")
    err.print("It is shown once and stored only as a hash: give it to the tenant now.")
    print(issued.secret)  # stdout alone, so that `KEY=$(tollgate keys issue acme)` works
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    if args.tenant is not None:
        tenants = ConfigBundle.load_dir(Path(args.dir)).config.tenants
        if args.tenant not in tenants:
            raise UsageError(f"tenant {args.tenant!r} is not in config.json (tenants: {', '.join(sorted(tenants))})")
    target = _target(args)
    keys = _keys(target).list(args.tenant)
    if not keys:
        whose = f"tenant {args.tenant} has" if args.tenant else "there are"
        how = f"tollgate keys issue {args.tenant}" if args.tenant else "tollgate keys issue TENANT"
        err.print(f"{whose} no keys on {target.name}; issue one with `{how}`", highlight=False)
        return 0
    shown = tables.table("tenant keys", ("key id", "tenant", "status", "created", "label", "revoked"))
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        shown.add_row(
            k.key_id, k.tenant_id, str(k.status), k.created_at.isoformat(timespec="seconds"), k.label, revoked
        )
    tables.print_table(out, shown)
    return 0


def _key_to_revoke(given: str, keys: DynamoKeyStore, target: Target) -> str:
    """The key id to revoke, from a key id or a whole key; a whole key (a secret) is never echoed."""
    if key_id_of(given) is not None:
        found: TenantKey | None = keys.find(hash_key(given))
        if found is None:
            raise UsageError(
                f"the key given (key id {key_id_of(given)}) is not on {target.name}: it was never issued there, "
                "or it is mistyped; `tollgate keys list` shows the key ids"
            )
        return found.key_id
    if not KEY_ID_PATTERN.match(given):
        raise UsageError(
            "that is neither a key id (10 letters and digits, as `tollgate keys list` shows) nor a whole key "
            "(tg_<key id>_<secret>); it is not shown here, in case it is a secret"
        )
    return given


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    target = _target(args)
    keys = _keys(target)
    key_id = _key_to_revoke(args.key, keys, target)
    try:
        revoked = keys.revoke(key_id)
    except KeyAlreadyRevokedError as already:
        when = already.key.revoked_at.isoformat(timespec="seconds") if already.key.revoked_at else "an unknown time"
        err.print(
            f"[red]error:[/red] key {key_id} of tenant {already.key.tenant_id} was already revoked, at {when}; "
            "nothing changed",
            highlight=False,
        )
        return 1
    if revoked is None:
        raise UsageError(f"no key {key_id} on {target.name}; `tollgate keys list` shows the key ids")
    err.print(
        f"revoked key {revoked.key_id} of tenant {revoked.tenant_id}. The API refuses it once the authorizer's "
        "cached answer expires (AuthorizerCacheSeconds, 60 s by default).",
        highlight=False,
    )
    return 0


# ------------------------------------------------------------------------------ report


def cmd_report(args: argparse.Namespace) -> int:
    try:
        period = report.Period.parse(args.period, datetime.now(UTC).date())
    except ValueError as error:
        raise UsageError(str(error)) from None
    by = report.GroupBy(args.by)
    target = _target(args)
    trends = DynamoTrendStore(target.client("dynamodb"), target.resource("TrendTable"))
    lines = report.group(report.rows_for(trends, period), by)
    if args.format == "json":
        print(report.to_json(lines, by, period))
    elif args.format == "csv":
        sys.stdout.write(report.to_csv(lines, by))
    else:
        _print_report(lines, by, period, target)
        _print_actions(period, target)
    return 0


def _print_actions(period: report.Period, target: Target) -> None:
    """The actions on cost alarms (ControlTable): each tenant's status in force and the period's actions."""
    if "ControlTable" not in target.resources:  # a stack from before issue 10
        return
    control = DynamoControl(target.client("dynamodb"), target.resource("ControlTable"))
    statuses = control.statuses()
    actions = {str(s.get("tenant_id", "")): control.actions(str(s.get("tenant_id", ""))) for s in statuses}
    lines = report.action_lines(statuses, actions, period)
    out.print(f"\nActions on cost alarms, {period} (UTC):")
    for line in lines or ["none"]:
        out.print(f"  {line}")


_LABELS = ("tenant", "profile", "model", "tier")
#: Column headers that differ from the column's name with spaces for underscores.
_HEADERS = {
    "cache_read_tokens": "cache read",
    "cache_write_tokens": "cache write 5m",
    "cache_write_1h_tokens": "cache write 1h",
}


def _print_report(
    lines: Sequence[report.ReportLine], by: report.GroupBy, period: report.Period, target: Target
) -> None:
    if not lines:
        out.print(f"no usage in {period} on {target.name}")
        return
    columns = [c for c in report.columns(by) if c != "cost_usd"]  # cost: shown aligned, below
    headers = [_HEADERS.get(c, c.replace("_", " ")) for c in columns]
    shown = tables.table(
        f"Bedrock cost by {by}, {period} (UTC), {target.name}",
        [*headers, "cost (USD)"],
        right=[h for c, h in zip(columns, headers, strict=True) if c not in _LABELS] + ["cost (USD)"],
        footers=True,
    )
    records = [report.record(line, by) for line in lines]
    costs = tables.usd_cells([usd(line.totals.cost_pusd) for line in lines] + [report.total_usd(lines)])
    for record, cost in zip(records, costs, strict=False):
        shown.add_row(*(str(record[c]) for c in columns), cost)
    footers = ["" if c in _LABELS else str(sum(int(r[c]) for r in records)) for c in columns]
    for column, footer in zip(shown.columns, ["total", *footers[1:], costs[-1]], strict=True):
        column.footer = footer
    tables.print_table(out, shown)


# ------------------------------------------------------------------------------ load


def _callers(args: argparse.Namespace, target: Target, bundle: ConfigBundle) -> list[Caller]:
    caching = frozenset(p.name for p in bundle.profiles() if bundle.catalog.models[p.model_id].prompt_caching)
    if args.key:
        malformed = [item for item in args.key if "=" not in item]
        if malformed:
            raise UsageError(f"--key takes TENANT=KEY, not {malformed[0]!r}")
        keys = dict(item.split("=", 1) for item in args.key)
    else:
        if not target.tenants:
            raise UsageError(
                "no tenant keys: pass --key TENANT=KEY for each tenant (issue them with `tollgate keys issue`)"
            )
        keys = {tenant: info["api_key"] for tenant, info in target.tenants.items()}
    callers = []
    for tenant, key in sorted(keys.items()):
        if tenant not in bundle.config.tenants:
            raise UsageError(f"tenant {tenant!r} is not in config.json")
        profiles = tuple(
            p.name for p in bundle.profiles() if p.tenant_id == tenant and (not args.profile or p.name in args.profile)
        )
        if profiles:
            callers.append(Caller(tenant, key, profiles, caching))
    if not callers:
        raise UsageError(f"no profile matches {args.profile}; `tollgate config check` lists them")
    return callers


def cmd_load(args: argparse.Namespace) -> int:
    target = _target(args)
    bundle = ConfigBundle.load_dir(Path(args.dir))
    callers = _callers(args, target, bundle)
    with Progress(
        TextColumn("[bold]sending[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as progress:
        task = progress.add_task("requests", total=args.requests)
        tallies = run_load(
            target.api_url,
            target.region,
            callers,
            requests=args.requests,
            seed=args.seed,
            on_done=lambda: progress.advance(task),
        )
    columns = ("tenant", "requests", "ok", "throttled (429)", "failed", "input tokens", "output tokens",
               "cache tokens", "cost (USD)")  # fmt: skip
    shown = tables.table(f"{args.requests} requests through {target.api_url}", columns, right=columns[1:], footers=True)
    fields = ("requests", "succeeded", "throttled", "failed", "input_tokens", "output_tokens", "cache_tokens")
    sums = [sum(getattr(t, f) for t in tallies.values()) for f in fields]
    ordered = sorted(tallies.items())
    costs = tables.usd_cells([t.cost_usd for _, t in ordered] + [sum((t.cost_usd for _, t in ordered), Decimal(0))])
    for column, footer in zip(shown.columns, ["total", *map(str, sums), costs[-1]], strict=True):
        column.footer = footer
    for (tenant, t), cost in zip(ordered, costs, strict=False):
        shown.add_row(tenant, *(str(getattr(t, f)) for f in fields), cost)
    tables.print_table(out, shown)
    errors: dict[str, int] = {}
    for t in tallies.values():
        for code, n in t.errors.items():
            errors[code] = errors.get(code, 0) + n
    if errors:
        err.print("errors: " + ", ".join(f"{code} x{n}" for code, n in sorted(errors.items())))
    out.print("Costs are what the gateway charged (x-tollgate-cost-usd).", soft_wrap=True)
    rolled_up = _wait_for_rollups(target, [rid for t in tallies.values() for rid in t.request_ids], args.wait)
    return 0 if sums[3] == 0 and rolled_up else 1


def _wait_for_rollups(target: Target, request_ids: list[str], timeout: float) -> bool:
    """Wait until the trend table holds every answered request, so that the report that follows is whole."""
    if timeout <= 0 or not request_ids:
        return True
    trends = DynamoTrendStore(target.client("dynamodb"), target.resource("TrendTable"))
    with Progress(
        TextColumn("[bold]rolling up[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as progress:
        task = progress.add_task("rollups", total=len(request_ids))
        try:
            done, waited = wait_for_rollups(
                trends, request_ids, timeout=timeout, on_progress=lambda n: progress.update(task, completed=n)
            )
        except (BotoCoreError, ClientError) as error:
            err.print(f"could not read the trend table to wait for the rollups ({error}); use --wait 0 to skip")
            return False
    if done < len(request_ids):
        err.print(
            f"[red]only {done} of {len(request_ids)} requests were rolled up after {waited:.0f} s[/red]: the "
            "aggregator is behind or failing; see the AggregationFailureQueue and the aggregator's log"
        )
        return False
    out.print(f"All {done} answered requests are in the rollups ({waited:.1f} s after the last answer).")
    return True


# ------------------------------------------------------------------------------ redrive


def _tenants_around(bundle: ConfigBundle, trends: DynamoTrendStore) -> Callable[[FailedBatch], list[str]]:
    """The tenants whose records a failed batch may hold: config.json's, and any with rollups in its months."""

    def tenants(batch: FailedBatch) -> list[str]:
        found = set(bundle.config.tenants)
        for month in {period_of(Granularity.MONTH, at) for at in batch.window}:
            found.update(row.key.tenant_id for row in trends.rows(Granularity.MONTH, month))
        return sorted(found)

    return tenants


def _receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message of the failure queue, each once (they stay invisible while this run works on them)."""
    received: dict[str, dict[str, Any]] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=REDRIVE_VISIBILITY, WaitTimeSeconds=1
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in received]
        if not fresh:
            return list(received.values())
        received.update((m["MessageId"], m) for m in fresh)


#: Seconds a received message stays invisible to other readers while it is re-driven.
REDRIVE_VISIBILITY = 300


def cmd_redrive(args: argparse.Namespace) -> int:
    target = _target(args)
    bundle = ConfigBundle.load_dir(Path(args.dir))
    sqs = target.client("sqs")
    queue_url = target.resource("AggregationFailureQueue")
    trends = DynamoTrendStore(target.client("dynamodb"), target.resource("TrendTable"))
    redriver = Redriver(
        stream=UsageStreamBatches(target.client("dynamodbstreams")),
        usage=DynamoUsageStore(target.client("dynamodb"), target.resource("UsageTable")),
        trends=trends,
        metrics=CloudWatchMetricsSink(target.client("cloudwatch"), target.namespace),
        tenants=_tenants_around(bundle, trends),
    )
    shown = tables.table(
        f"failed aggregation batches{' (dry run: nothing changed)' if args.dry_run else ''}, {target.name}",
        ("message", "arrived (UTC)", "records", "found in", "added", "already in rollups", "outcome"),
        right=("records", "added", "already in rollups"),
    )
    problems: list[str] = []
    kept = 0
    for message in _receive_all(sqs, queue_url):
        try:
            batch = FailedBatch.from_message(message["MessageId"], message["ReceiptHandle"], message["Body"])
            result = redriver.redrive(batch, dry_run=args.dry_run)
        except NotAFailedBatchError as error:
            batch, result = None, None
            problems.append(str(error))
        if result is not None and result.done and not args.dry_run:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:  # visible again at once, for the next run (or another reader)
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        if batch is None or result is None:
            shown.add_row(message["MessageId"][:8], "", "", "", "", "", "kept: not a batch")
            kept += 1
            continue
        outcome = "would be re-driven" if args.dry_run and result.done else "re-driven" if result.done else "kept"
        kept += 0 if result.done else 1
        label = batch.message_id[:8]
        shown.add_row(
            label,
            batch.first_arrival.isoformat(timespec="seconds").replace("+00:00", ""),
            str(result.found),
            result.source,
            str(len(result.applied)),
            str(result.already),
            outcome,
        )
        problems.extend(f"{label}: record {rid} cannot be aggregated: {why}" for rid, why in result.poison)
        problems.extend(f"{label}: record {rid}: its rollup write failed again" for rid in result.failed)
        if result.missing:
            problems.append(f"{label}: {len(result.missing)} of its records are no longer in the usage table (TTL)")
        if result.refused:
            problems.append(f"{label}: refused: {result.refused}")
    if not shown.rows:
        out.print(f"the failure queue of {target.name} is empty: nothing to re-drive", soft_wrap=True)
        return 0
    tables.print_table(out, shown)
    for problem in problems:
        err.print(problem, highlight=False, soft_wrap=True)
    if kept:
        err.print(
            f"{kept} message(s) kept in the queue: fix what is named above (a poison record: correct or delete its "
            "item in the usage table), then run `tollgate redrive` again.",
            soft_wrap=True,
        )
    return 1 if kept else 0


# ------------------------------------------------------------------------------ prices


def _on(text: str | None) -> date:
    if text is None:
        return prices_cli.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--on {text!r} is not a date; write YYYY-MM-DD") from None


def _book_region(flag: str | None, local: bool, root: str) -> Chosen:
    """The region whose prices apply: the local stack's, or as for a deployed stack (target.choose_region)."""
    if local:
        return Chosen(local_target().region, "the local stack")
    return choose_region(flag, SamConfig.read(Path(root) / SAMCONFIG_FILE))


def cmd_prices(args: argparse.Namespace) -> int:
    bundle = ConfigBundle.load_dir(Path(args.dir))
    region = _book_region(args.book_region, args.book_local, args.dir)
    if args.model is not None and args.model not in bundle.catalog.models:
        known = ", ".join(sorted(bundle.catalog.models))
        raise UsageError(f"model {args.model!r} is not in models.json (models: {known})")
    listing = prices.book(bundle.catalog, region.value, _on(args.on), args.model)
    prices_cli.print_book(out, err, listing, region.source, as_json=args.format == "json")
    return 0


def cmd_prices_what_if(args: argparse.Namespace) -> int:
    try:
        period = report.Period.parse(args.period, prices_cli.today())
    except ValueError as error:
        raise UsageError(str(error)) from None
    bundle = ConfigBundle.load_dir(Path(args.dir))
    new = ConfigBundle.load(Path(args.dir) / "config.json", Path(args.models_json))  # named by its own file
    target = _target(args)
    result, found, gaps, warning = prices_cli.what_if(
        target, sorted(bundle.config.tenants), new.catalog, period, prices_cli.today()
    )
    prices_cli.print_what_if(out, err, result, found, gaps, warning, period=period, target=target,
                             new_book=args.models_json, as_json=args.format == "json")  # fmt: skip
    return 1 if result.unpriced else 0


def cmd_prices_propose(args: argparse.Namespace) -> int:
    bundle = ConfigBundle.load_dir(Path(args.dir))
    region = _book_region(args.region, args.local, args.dir)
    try:
        if args.fixture:
            entries, read_from = prices_cli.read_fixtures(args.fixture), ", ".join(args.fixture)
        else:
            entries, read_from = fetch_price_list(region.value), "pricing:GetProducts"
    except PriceListShapeError as error:
        raise UsageError(str(error)) from None
    except PriceListUnreachableError as error:
        err.print(
            f"[red]error:[/red] {error}\nRun it where AWS is reachable, or on saved responses: `aws pricing "
            "get-products --region us-east-1 --service-code AmazonBedrock --filters "
            f"Type=TERM_MATCH,Field=regionCode,Value={region.value} > bedrock.json`, the same with --service-code "
            "AmazonBedrockFoundationModels > marketplace.json, then `tollgate prices propose --fixture bedrock.json "
            "--fixture marketplace.json`",
            highlight=False,
        )
        return 1
    proposal = prices_cli.make_proposal(bundle.catalog, region.value, _on(args.on), entries)
    prices_cli.print_proposal(out, err, proposal, read_from=read_from)
    return 0


# ------------------------------------------------------------------------------ faults, local


#: The stand-in's fault settings, by the flag that sets each.
_FAULT_FLAGS = {"throttle_rate": "--throttle", "error_rate": "--errors", "latency_ms": "--latency"}


def cmd_faults(args: argparse.Namespace) -> int:
    from tollgate_local.bedrock import Faults  # local only: the stand-in's own rules for its settings

    changes = {k: v for k, v in (("throttle_rate", args.throttle), ("error_rate", args.errors),
                                 ("latency_ms", args.latency)) if v is not None}  # fmt: skip
    try:
        Faults().changed(changes)  # checked before sending, so that a typo is named by its flag
    except ValueError as error:
        message = str(error)
        for key, flag in _FAULT_FLAGS.items():
            message = message.replace(key, flag)
        raise UsageError(message) from None
    target = _target(argparse.Namespace(local=True, stack=None, region=None, dir=args.dir))
    url = target.extras.get("bedrock_endpoint_url")
    if not url:
        raise UsageError("the local stack did not record its Bedrock stand-in; restart `make local`")
    if not str(url).startswith("http://127.0.0.1:"):
        raise UsageError(f"the stand-in's URL {url} is not on loopback; faults are a local-only control")
    request = urllib.request.Request(  # noqa: S310 - checked above: http on loopback
        f"{url}/_local/faults",
        data=json.dumps(changes).encode() if changes else None,
        method="POST" if changes else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback stand-in only
            print(json.dumps(json.loads(response.read()), indent=2))
    except urllib.error.HTTPError as refused:  # the stand-in's own answer, not a guess about AWS
        body = refused.read().decode("utf-8", "replace")
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            message = body or refused.reason
        raise UsageError(f"the Bedrock stand-in ({url}) refused: {message}") from None
    except urllib.error.URLError as error:
        raise TargetError(
            f"the Bedrock stand-in at {url} does not answer ({error.reason}); is `make local` still running?"
        ) from None
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from tollgate_local.stack import run_foreground

    return run_foreground(
        port=args.port, root=Path(args.dir), state_dir=Path(args.state_dir) if args.state_dir else None
    )


# ------------------------------------------------------------------------------ parser


def _target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where")
    where.add_argument("--local", action="store_true", help="the stack started by `make local`")
    where.add_argument("--stack", help="a deployed stack's name (default: samconfig.toml's stack_name, or tollgate)")
    where.add_argument(
        "--region",
        help="the deployed stack's region (default: samconfig.toml's region, then AWS_REGION, AWS_DEFAULT_REGION, "
        "the AWS profile's region)",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tollgate", description=__doc__)
    root.add_argument("--dir", default=".", help="folder holding config.json and models.json (default: .)")
    commands = root.add_subparsers(dest="command", required=True)

    config = commands.add_parser("config", help="validate config.json and models.json").add_subparsers(
        dest="action", required=True
    )
    check = config.add_parser(
        "check",
        help="validate both files (names the file, place and problem), check that every profile is priced in the "
        "stack's region, and warn of models near their end of life and of unchecked prices",
    )
    check.add_argument(
        "--region",
        help="the region the stack runs in (default: samconfig.toml's region, then AWS_REGION, AWS_DEFAULT_REGION, "
        "the AWS profile's region)",
    )
    check.set_defaults(run=cmd_config_check)

    keys = commands.add_parser("keys", help="issue, list and revoke tenant API keys").add_subparsers(
        dest="action", required=True
    )
    issue = keys.add_parser("issue", help="issue a key (printed once on stdout)")
    issue.add_argument("tenant")
    issue.add_argument("--label", default="", help="a note kept with the key")
    issue.set_defaults(run=cmd_keys_issue)
    listing = keys.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant")
    listing.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key, by its key id or the whole key (never echoed)")
    revoke.add_argument("key", metavar="KEY_ID_OR_KEY")
    revoke.set_defaults(run=cmd_keys_revoke)
    for sub in (issue, listing, revoke):
        _target_options(sub)

    rep = commands.add_parser("report", help="cost per tenant/profile/model for a period, from the trend tables")
    rep.add_argument("--period", default="month", help="today, yesterday, month (default), last-month, YYYY-MM, "
                     "YYYY-MM-DD or FROM..TO (UTC days)")  # fmt: skip
    rep.add_argument("--by", choices=[g.value for g in report.GroupBy], default="profile")
    rep.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _target_options(rep)
    rep.set_defaults(run=cmd_report)

    load = commands.add_parser("load", help="send a workload through the HTTP API with boto3's bedrock-runtime")
    load.add_argument("--requests", type=int, default=200)
    load.add_argument("--seed", type=int, default=1)
    load.add_argument("--profile", action="append", help="only these profiles (repeatable)")
    load.add_argument(
        "--key", action="append", help="TENANT=KEY (deployed stacks; local keys are read from local.json)"
    )
    load.add_argument(
        "--wait", type=float, default=60.0, metavar="SECONDS",
        help="then wait up to this long for the rollups to hold every answered request (0: do not wait)",
    )  # fmt: skip
    _target_options(load)
    load.set_defaults(run=cmd_load)

    redrive = commands.add_parser(
        "redrive", help="roll up again the batches in the AggregationFailureQueue (exactly once), then delete them"
    )
    redrive.add_argument("--dry-run", action="store_true", help="show what would be added; change nothing")
    _target_options(redrive)
    redrive.set_defaults(run=cmd_redrive)

    book = commands.add_parser(
        "prices", help="the price book where the stack runs; what a price change would do; proposals from AWS"
    )
    book.add_argument(
        "--region", dest="book_region", metavar="REGION", help="the stack's region (default: as for a deployed stack)"
    )
    book.add_argument("--local", dest="book_local", action="store_true", help="the local stack's region")
    book.add_argument("--model", help="only this model id")
    book.add_argument("--on", metavar="YYYY-MM-DD", help="the rows in force that day (default: today, UTC)")
    book.add_argument("--format", choices=["table", "json"], default="table")
    book.set_defaults(run=cmd_prices)
    price_actions = book.add_subparsers(dest="action", metavar="{what-if,propose}")
    what_if = price_actions.add_parser(
        "what-if", help="re-price a period's usage records with another models.json: per tenant and profile"
    )
    what_if.add_argument("models_json", metavar="NEW_MODELS_JSON", help="a models.json with the changed prices")
    what_if.add_argument("--period", default="month", help="as for `tollgate report` (default: month)")
    what_if.add_argument("--format", choices=["table", "json"], default="table")
    _target_options(what_if)
    what_if.set_defaults(run=cmd_prices_what_if)
    propose = price_actions.add_parser(
        "propose", help="new models.json rows where the AWS Price List API's prices differ from the book"
    )
    propose.add_argument("--region", help="the region whose prices to read (default: as for a deployed stack)")
    propose.add_argument("--local", action="store_true", help="the local stack's region")
    propose.add_argument("--on", metavar="YYYY-MM-DD", help="compare with the rows in force that day (default: today)")
    propose.add_argument(
        "--fixture", action="append", metavar="FILE",
        help="a saved GetProducts response instead of asking AWS (repeatable: one per service code or page)",
    )  # fmt: skip
    propose.set_defaults(run=cmd_prices_propose)

    faults = commands.add_parser("faults", help="local only: show or set the Bedrock stand-in's injected faults")
    faults.add_argument("--throttle", type=float, help="share of calls throttled (0..1)")
    faults.add_argument("--errors", type=float, help="share of calls answered with a 500 (0..1)")
    faults.add_argument("--latency", type=int, help="added latency in ms (0..60000)")
    faults.add_argument("--local", action="store_true", help="accepted, and the default: faults are local-only")
    faults.set_defaults(run=cmd_faults)

    local = commands.add_parser("local", help="run the whole system on this machine (what `make local` runs)")
    local.add_argument("--port", type=int, help="the API's port (default: TOLLGATE_PORT or 3000; 0: any free port)")
    local.add_argument("--state-dir", help="where local.json, the outbox and logs go (default: .tollgate)")
    local.set_defaults(run=cmd_local)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except ConfigError as error:
        err.print(f"[red]configuration error[/red]\n{error}", highlight=False)
        return 2
    except (UsageError, TargetError) as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        return 2
    except (BotoCoreError, ClientError, urllib.error.URLError) as error:
        err.print(
            f"[red]error:[/red] {error}\nThe local stack: is `make local` still running? "
            "A deployed stack: check the AWS credentials, --region and --stack.",
            highlight=False,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-profile resources from config.json, reconciled: inference profiles, alarms, dashboard.

CloudFormation cannot read config.json, so a custom resource runs ``Provisioner.reconcile``
on every deploy whose configuration (or code) changed, and ``teardown`` when the stack is
deleted. Reconciling compares what config.json asks for with what exists, found by the
``tollgate:stack`` tag, and then creates and updates first and deletes last. It is
idempotent: running it twice changes nothing the second time. The local emulator runs the
very same code against moto and the Bedrock stand-in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from tollgate.adapters.bedrock import BedrockProfiles, OwnedProfile
from tollgate.adapters.dynamodb import DynamoProfileRegistry, ProfileEntry
from tollgate.alarms import ALARM_NAME_FORMATS, STACK_TAG, AlarmSpec, alarm_specs
from tollgate.config import ConfigBundle, ResolvedProfile
from tollgate.dashboard import dashboard_body

logger = Logger(service="tollgate", child=True)

MAX_PROFILE_NAME = 64
#: DescribeAlarms and DeleteAlarms take at most 100 alarm names a call.
MAX_ALARM_NAMES_PER_CALL = 100
#: Geography prefix of Bedrock's system-defined cross-region inference profiles, by region prefix.
_GEOGRAPHIES = {"us-gov": "us-gov", "us": "us", "ca": "ca", "eu": "eu", "ap": "apac"}


class ProvisioningError(RuntimeError):
    pass


def model_source_arn(model_id: str, scope: str, region: str, account_id: str) -> str:
    """What an application inference profile copies from, for a model and pricing scope."""
    if scope == "in-region":
        return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"
    if scope == "global":
        return f"arn:aws:bedrock:{region}:{account_id}:inference-profile/global.{model_id}"
    for prefix, geography in _GEOGRAPHIES.items():
        if region.startswith(prefix + "-"):
            return f"arn:aws:bedrock:{region}:{account_id}:inference-profile/{geography}.{model_id}"
    raise ProvisioningError(
        f"no cross-region inference profile geography is known for region {region}; "
        "use scope 'in-region' or 'global' for profiles in this region"
    )


def inference_profile_name(stack: str, profile: str) -> str:
    """``<stack>-<profile>``, shortened with a hash when longer than Bedrock allows."""
    name = f"{stack}-{profile}"
    if len(name) <= MAX_PROFILE_NAME:
        return name
    digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
    keep = MAX_PROFILE_NAME - len(profile) - len(digest) - 2
    return f"{stack[:keep]}-{digest}-{profile}"


@dataclass(frozen=True)
class Targets:
    """Where this stack's per-profile resources go (from the custom resource's properties)."""

    stack: str
    region: str
    account_id: str
    namespace: str
    topic_arn: str
    dashboard_name: str
    #: Where a snapshot of every applied configuration is kept ("" for none).
    artifacts_bucket: str = ""
    #: The topic the admin's e-mail is subscribed to ("": topic_arn, as before AdminTopic existed).
    admin_topic_arn: str = ""

    @property
    def stack_tag(self) -> tuple[str, str]:
        return (STACK_TAG, self.stack)

    @property
    def admin_topic(self) -> str:
        return self.admin_topic_arn or self.topic_arn


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in vars(self).items() if v]
        return ", ".join(parts) or "nothing to do"


def config_digest(bundle: ConfigBundle) -> str:
    canonical = json.dumps(
        {"config": bundle.config.model_dump(mode="json"), "models": bundle.catalog.model_dump(mode="json")},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Provisioner:
    def __init__(
        self,
        *,
        profiles: BedrockProfiles,
        cloudwatch: Any,
        sns: Any,
        registry: DynamoProfileRegistry,
        s3: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._s3 = s3
        self._profiles = profiles
        self._cloudwatch = cloudwatch
        self._sns = sns
        self._registry = registry
        self._clock = clock

    # -- the whole thing -----------------------------------------------------------------

    def reconcile(self, bundle: ConfigBundle, targets: Targets) -> Report:
        # Every profile must be priced where the stack runs: else fail the deploy before changing anything.
        bundle = bundle.in_region(targets.region)
        report = Report()
        # Everything that can refuse the config does so before anything changes.
        body = dashboard_body(
            bundle,
            namespace=targets.namespace,
            region=targets.region,
            account_id=targets.account_id,
            stack=targets.stack,
        )
        specs = alarm_specs(bundle, targets.namespace)
        owners: dict[str, str | None] = {}  # alarm ARN -> its stack tag, looked up at most once a run
        existing_alarms = self._check_alarm_ownership(specs, targets, owners)
        wanted = {p.name: p for p in bundle.profiles()}
        owned = {p.profile: p for p in self._profiles.owned(targets.stack_tag)}
        directory = self._registry.entries()

        for profile in wanted.values():
            self._ensure_profile(profile, owned.get(profile.name), directory.get(profile.name), targets, report)
        for spec in specs:
            self._ensure_alarm(spec, existing_alarms.get(spec.name), targets, report)
        self._ensure_dashboard(json.dumps(body, sort_keys=True), targets, report)
        self._ensure_admin_email(bundle.config.admin_email, targets, report)

        # Deletions last: a failure above leaves everything that worked before in place.
        for name, existing in owned.items():
            if name not in wanted:
                self._profiles.delete(existing.arn)
                self._registry.delete(name)
                report.deleted.append(f"inference profile {existing.name}")
        wanted_alarms = {s.name for s in specs}
        stale_alarms = self._owned_alarm_names(targets, owners, skip=wanted_alarms)
        if stale_alarms:
            for batch in _batches(stale_alarms, MAX_ALARM_NAMES_PER_CALL):
                self._cloudwatch.delete_alarms(AlarmNames=batch)
            report.deleted.extend(f"alarm {n}" for n in stale_alarms)
        for name in set(directory) - set(wanted) - set(owned):
            self._registry.delete(name)

        digest = config_digest(bundle)
        applied_at = self._clock()
        self._registry.put_state("applied", {"config_digest": digest, "applied_at": applied_at.isoformat()})
        self._snapshot(bundle, targets, digest, applied_at, report)
        logger.info("reconciled", extra={"summary": report.summary()})
        return report

    def _snapshot(self, bundle: ConfigBundle, targets: Targets, digest: str, at: datetime, report: Report) -> None:
        """Keep what was applied, and when, in the artifacts bucket (an audit trail of prices)."""
        if self._s3 is None or not targets.artifacts_bucket:
            return
        body = json.dumps(
            {
                "applied_at": at.isoformat(),
                "config_digest": digest,
                "changes": vars(report),
                "config": bundle.config.model_dump(mode="json"),
                "models": bundle.catalog.model_dump(mode="json"),
            },
            indent=2,
        ).encode()
        stamp = at.strftime("%Y%m%dT%H%M%SZ")
        for key in (f"config/applied/{stamp}-{digest[:12]}.json", "config/current.json"):
            self._s3.put_object(Bucket=targets.artifacts_bucket, Key=key, Body=body, ContentType="application/json")

    def teardown(self, targets: Targets) -> Report:
        report = Report()
        for existing in self._profiles.owned(targets.stack_tag):
            self._profiles.delete(existing.arn)
            report.deleted.append(f"inference profile {existing.name}")
        for name in self._registry.entries():
            self._registry.delete(name)
        alarms = self._owned_alarm_names(targets, {})
        for batch in _batches(alarms, MAX_ALARM_NAMES_PER_CALL):
            self._cloudwatch.delete_alarms(AlarmNames=batch)
        report.deleted.extend(f"alarm {n}" for n in alarms)
        try:
            self._cloudwatch.delete_dashboards(DashboardNames=[targets.dashboard_name])
            report.deleted.append(f"dashboard {targets.dashboard_name}")
        except (self._cloudwatch.exceptions.DashboardNotFoundError, self._cloudwatch.exceptions.ResourceNotFound):
            pass  # already gone: CloudFormation may repeat a Delete, and it must still succeed
        self._registry.put_state("dashboard", {})  # a stack created again under this name creates it anew
        # The SNS topic (and with it every subscription) belongs to the stack and goes with it.
        return report

    # -- inference profiles --------------------------------------------------------------

    def _ensure_profile(
        self,
        profile: ResolvedProfile,
        existing: OwnedProfile | None,
        listed: ProfileEntry | None,
        targets: Targets,
        report: Report,
    ) -> None:
        source = model_source_arn(profile.model_id, profile.scope, targets.region, targets.account_id)
        tags = {
            **profile.tags,
            STACK_TAG: targets.stack,
            "tollgate:tenant": profile.tenant_id,
            "tollgate:profile": profile.name,
            "tollgate:source": source,
        }
        name = inference_profile_name(targets.stack, profile.name)
        if existing is not None and existing.source_arn != source:
            # The model of a profile cannot be changed in place: replace it (the ARN changes,
            # the directory is updated below, and the gateway re-reads it).
            self._profiles.delete(existing.arn)
            report.deleted.append(f"inference profile {existing.name} (model changed)")
            existing = None
        if existing is None:
            description = profile.description or f"Tollgate profile {profile.name} of tenant {profile.tenant_id}"
            arn = self._profiles.create(name, description, source, tags)
            report.created.append(f"inference profile {name}")
        else:
            arn = existing.arn
            if self._profiles.retag(arn, existing.tags, tags):
                report.updated.append(f"inference profile {name} tags")
            else:
                report.unchanged.append(f"inference profile {name}")
        entry = ProfileEntry(profile.name, arn, profile.tenant_id, profile.model_id, profile.scope, source)
        if entry != listed:  # the gateways' directory already says this: nothing to write
            self._registry.put(entry, self._clock())

    # -- alarms ----------------------------------------------------------------------------

    def _alarms(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self._cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"], **kwargs):
            yield from page.get("MetricAlarms", [])

    def _owner(self, alarm_arn: str, owners: dict[str, str | None]) -> str | None:
        """The stack an alarm belongs to (its tag); ``owners`` keeps what this run looked up."""
        if alarm_arn not in owners:
            tags = self._cloudwatch.list_tags_for_resource(ResourceARN=alarm_arn).get("Tags", [])
            owners[alarm_arn] = next((t["Value"] for t in tags if t["Key"] == STACK_TAG), None)
        return owners[alarm_arn]

    def _owned_alarm_names(
        self, targets: Targets, owners: dict[str, str | None], skip: frozenset[str] | set[str] = frozenset()
    ) -> list[str]:
        """This stack's alarms with one of Tollgate's names, but those in ``skip`` (whose tags are not read)."""
        names = []
        for name_format in ALARM_NAME_FORMATS:
            for alarm in self._alarms(AlarmNamePrefix=name_format.format(profile="")):
                if alarm["AlarmName"] in skip:
                    continue
                if self._owner(alarm["AlarmArn"], owners) == targets.stack:
                    names.append(alarm["AlarmName"])
        return sorted(names)

    def _check_alarm_ownership(
        self, specs: list[AlarmSpec], targets: Targets, owners: dict[str, str | None]
    ) -> dict[str, dict[str, Any]]:
        """Alarm names are per account and region: never take over another stack's alarm.

        Returns the alarms of ``specs`` that exist already. One that is already exactly what this
        stack would put (its actions notify this stack's topic) is left alone, so its tags need
        not be read; any other is this stack's own, or the deploy stops here.
        """
        by_name = {s.name: s for s in specs}
        existing: dict[str, dict[str, Any]] = {}
        for batch in _batches(list(by_name), MAX_ALARM_NAMES_PER_CALL):
            for alarm in self._alarms(AlarmNames=batch):
                args = by_name[alarm["AlarmName"]].put_metric_alarm_args(targets.topic_arn, targets.stack)
                if _alarm_matches(alarm, args):
                    existing[alarm["AlarmName"]] = alarm
                    continue
                owner = self._owner(alarm["AlarmArn"], owners)
                if owner != targets.stack:
                    raise ProvisioningError(
                        f"alarm {alarm['AlarmName']} already exists and belongs to "
                        f"{'stack ' + owner if owner else 'no Tollgate stack'}; rename the profile in config.json "
                        "or delete that alarm"
                    )
                existing[alarm["AlarmName"]] = alarm
        return existing

    def _ensure_alarm(self, spec: AlarmSpec, existing: dict[str, Any] | None, targets: Targets, report: Report) -> None:
        args = spec.put_metric_alarm_args(targets.topic_arn, targets.stack)
        if existing is not None and _alarm_matches(existing, args):
            report.unchanged.append(f"alarm {spec.name}")
            return
        self._cloudwatch.put_metric_alarm(**args)
        (report.created if existing is None else report.updated).append(f"alarm {spec.name}")

    # -- dashboard -------------------------------------------------------------------------

    def _ensure_dashboard(self, body: str, targets: Targets, report: Report) -> None:
        """Put the dashboard (always: that also restores one deleted by hand) and report what changed.

        What was put last is remembered as a digest in the registry, so a redeploy that changes
        nothing says so without reading the dashboard back.
        """
        digest = hashlib.sha256(body.encode()).hexdigest()
        previous = self._registry.get_state("dashboard") or {}
        self._cloudwatch.put_dashboard(DashboardName=targets.dashboard_name, DashboardBody=body)
        label = f"dashboard {targets.dashboard_name}"
        if previous.get("name") != targets.dashboard_name:
            report.created.append(label)
        elif previous.get("digest") != digest:
            report.updated.append(label)
        else:
            report.unchanged.append(label)
        self._registry.put_state("dashboard", {"name": targets.dashboard_name, "digest": digest})

    # -- notifications ---------------------------------------------------------------------

    def _ensure_admin_email(self, email: str, targets: Targets, report: Report) -> None:
        """Subscribe ``email`` to the admin topic, and retire the subscriptions this stack made before.

        Those are the previous address (as before), and the address on the alert topic, where it was
        subscribed before the admin topic existed (state without "topic"). A retired subscription of
        the same address is removed only once its replacement is confirmed: until the admin clicks
        the link AWS mails, the old one is all that reaches them.
        """
        topic = targets.admin_topic
        subscriptions = self._email_subscriptions(topic)
        if email not in subscriptions:
            self._sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email, ReturnSubscriptionArn=True)
            report.created.append(f"email subscription {email} (confirm it from the mail AWS sends)")
            subscriptions = self._email_subscriptions(topic)
        confirmed = subscriptions.get(email, "").startswith("arn:")
        state = self._registry.get_state("admin_email") or {}
        managed = [(str(state["email"]), str(state.get("topic") or targets.topic_arn))] if state.get("email") else []
        managed += [(str(e), str(t)) for e, t in state.get("retiring", [])]
        retiring: list[list[str]] = []
        for old_email, old_topic in dict.fromkeys(managed):
            if (old_email, old_topic) == (email, topic):
                continue
            if old_email == email and not confirmed:
                retiring.append([old_email, old_topic])
                continue
            old_arn = (subscriptions if old_topic == topic else self._email_subscriptions(old_topic)).get(old_email)
            if old_arn and old_arn.startswith("arn:"):
                # A pending confirmation cannot be removed; AWS drops it after three days.
                self._sns.unsubscribe(SubscriptionArn=old_arn)
                moved = "" if old_topic == topic else " (on the alarm topic, before the admin topic)"
                report.deleted.append(f"email subscription {old_email}{moved}")
        if retiring:
            report.unchanged.append(f"email subscription {email} on the old topic, until the new one is confirmed")
        self._registry.put_state("admin_email", {"email": email, "topic": topic, "retiring": retiring})

    def _email_subscriptions(self, topic_arn: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for page in self._sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for sub in page.get("Subscriptions", []):
                if sub.get("Protocol") == "email":
                    found[sub["Endpoint"]] = sub["SubscriptionArn"]
        return found


def _alarm_matches(alarm: Mapping[str, Any], args: Mapping[str, Any]) -> bool:
    """Whether an existing alarm (as DescribeAlarms returns it) already is what ``args`` would put."""
    for key, wanted in args.items():
        if key == "Tags":
            continue  # ignored by PutMetricAlarm on an existing alarm; ownership is checked apart
        current = alarm.get(key)
        if key == "Dimensions":
            if sorted((d["Name"], d["Value"]) for d in current or []) != sorted(
                (d["Name"], d["Value"]) for d in wanted
            ):
                return False
        elif key in ("AlarmActions", "OKActions"):
            if sorted(current or []) != sorted(wanted):
                return False
        elif key == "Threshold":
            if current is None or float(current) != float(wanted):
                return False
        elif current != wanted:
            return False
    # Nothing set by hand that a put would remove.
    return not (
        alarm.get("InsufficientDataActions")
        or alarm.get("Metrics")
        or alarm.get("ExtendedStatistic")
        or alarm.get("Unit")
        or alarm.get("ThresholdMetricId")
    )


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def targets_from(properties: Mapping[str, Any]) -> Targets:
    missing = [
        k
        for k in ("StackName", "Region", "AccountId", "Namespace", "TopicArn", "DashboardName")
        if not properties.get(k)
    ]
    if missing:
        raise ProvisioningError(f"custom resource properties missing: {', '.join(missing)} (see template.yaml)")
    return Targets(
        stack=str(properties["StackName"]),
        region=str(properties["Region"]),
        account_id=str(properties["AccountId"]),
        namespace=str(properties["Namespace"]),
        topic_arn=str(properties["TopicArn"]),
        dashboard_name=str(properties["DashboardName"]),
        artifacts_bucket=str(properties.get("ArtifactsBucket", "")),
        # Absent in the properties of stacks deployed before AdminTopic (e.g. during their rollback).
        admin_topic_arn=str(properties.get("AdminTopicArn") or ""),
    )

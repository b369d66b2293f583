"""The notifier: each message of the alert topic, in words, to the admin's topic.

1. A CloudWatch alarm message is parsed (tollgate.notifications); any other message passes
   unchanged.
2. For a profile's alarm, the money is looked up: the profile's CostUSD metric over the last
   5 minutes, and the day's rollups of its tenant (exact). Each lookup that fails becomes
   "cost unavailable (why)" in the mail; it never stops the mail.
3. The mail is written; if writing it fails (a bug), the message goes out as it came, with
   the error on top.
4. It is published to the admin's topic. Only a failed publish raises: then Lambda retries
   the event, and after its retries puts it in the on-failure queue, whose alarm mails the
   admin directly (template.yaml, NotificationFailureAlarm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aws_lambda_powertools import Logger

from tollgate.config import ConfigBundle
from tollgate.money import usd
from tollgate.notifications import (
    AlarmMessage,
    Amount,
    Deployment,
    Notification,
    ProfileOwner,
    Spend,
    Unavailable,
    describe,
    metric_usd,
    owner_of,
    parse_alarm,
    spend_window,
    unchanged,
    undescribed,
)
from tollgate.ports import MetricReader, Publisher, TenantRollups
from tollgate.rollup import Granularity
from tollgate.telemetry import MetricName, MetricRef, profile_dimensions

logger = Logger(service="tollgate", child=True)
T = TypeVar("T")


class NotifierService:
    def __init__(
        self,
        *,
        config: Callable[[], ConfigBundle],
        rollups: TenantRollups,
        metrics: MetricReader,
        admin: Publisher,
        deployment: Deployment,
        namespace: str,
    ):
        self._load_config = config
        self._config: ConfigBundle | None = None
        self._rollups = rollups
        self._metrics = metrics
        self._admin = admin
        self._deployment = deployment
        self._namespace = namespace

    def notify(self, message: str, subject: str | None) -> Notification:
        """Tell the admin about one message of the alert topic; raises only if the admin's topic refused it."""
        notification = self.compose(message, subject)
        message_id = self._admin.publish(notification.subject, notification.message)
        logger.info("notified", extra={"subject": notification.subject, "message_id": message_id})
        return notification

    def compose(self, message: str, subject: str | None) -> Notification:
        alarm = parse_alarm(message)
        if alarm is None:
            return unchanged(message, subject)
        try:
            owner = owner_of(alarm, self._bundle())
            spend = self._spend(alarm, owner) if owner else None
            return describe(alarm, deployment=self._deployment, owner=owner, spend=spend, subject=subject)
        except Exception as error:  # whatever went wrong in writing it, the mail must still go
            logger.exception("could not describe the alarm; sending it as it came", extra={"alarm": alarm.name})
            return undescribed(message, subject, error)

    def _bundle(self) -> ConfigBundle | Unavailable:
        if self._config is None:
            try:
                self._config = self._load_config()
            except Exception as error:  # config.json is validated before deploy; still, never lose the mail
                logger.exception("config.json could not be read")
                return Unavailable.of(error)
        return self._config

    def _spend(self, alarm: AlarmMessage, owner: ProfileOwner) -> Spend:
        start, end, day = spend_window(alarm)
        cost = MetricRef(
            self._namespace, str(MetricName.COST_USD), tuple(profile_dimensions(owner.tenant_id, owner.profile).items())
        )
        window = _lookup("the profile's CostUSD metric", lambda: metric_usd(self._metrics.sum(cost, start, end)))
        rows = _lookup(
            "the tenant's DAY rollups", lambda: self._rollups.tenant_totals(Granularity.DAY, day, owner.tenant_id)
        )
        if isinstance(rows, Unavailable):
            profile_day: Amount = rows
            tenant_day: Amount = rows
        else:
            profile_day = usd(sum(t.cost_pusd for key, t in rows.items() if key.profile == owner.profile))
            tenant_day = usd(sum(t.cost_pusd for t in rows.values()))
        return Spend(start, end, day, window, profile_day, tenant_day)


def _lookup(what: str, read: Callable[[], T]) -> T | Unavailable:
    try:
        return read()
    except Exception as error:  # an AWS error, a timeout, a throttle: the mail says so and goes anyway
        logger.warning("lookup failed", extra={"what": what, "error": repr(error)})
        return Unavailable.of(error)

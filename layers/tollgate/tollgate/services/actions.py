"""The actions function: a profile's cost alarm throttles, suspends or only notifies its tenant; OK lifts.

For each alarm message of AlertTopic (tollgate.actions decides; anything but a cost alarm's ALARM
or OK is ignored):
1. the alarm's action is put in force (or removed) on the tenant's STATUS item, unless that item
   saw a later change of the alarm (an older message, delivered late, changes nothing);
2. the tenant's API key is made what the strongest action in force says (its plan or the
   throttled twin; enabled or disabled): idempotent, so a redelivery re-applies nothing new;
3. the ACTION item is written once per message (condition on its key, which holds the SNS
   message id); a redelivery of a message already noticed stops here;
4. the tenant's contact is told (TenantNoticeTopic, tenant_id attribute) and the item marked notified.
A failure raises: Lambda retries the event (SNS invokes asynchronously), and every step is safe again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from tollgate.actions import Decision, StaleChange, action_sk, decide, in_force, notice
from tollgate.adapters.control import DynamoControl
from tollgate.config import ConfigBundle
from tollgate.notifications import parse_alarm
from tollgate.telemetry import DIM_TENANT

logger = Logger(service="tollgate", child=True)


class TenantKeys(Protocol):
    def enforce(self, tenant: str, *, throttled: bool, suspended: bool) -> list[str]: ...


class Notices(Protocol):
    def publish(self, tenant: str, subject: str, message: str) -> str: ...


@dataclass(frozen=True)
class Outcome:
    decision: Decision | None
    status: str | None = None
    changes: tuple[str, ...] = ()
    duplicate: bool = False
    stale: bool = False


class ActionsService:
    def __init__(
        self,
        *,
        config: Callable[[], ConfigBundle],
        control: DynamoControl,
        keys: Callable[[ConfigBundle], TenantKeys],
        notices: Notices,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._load_config = config
        self._bundle: ConfigBundle | None = None
        self._control = control
        self._keys = keys
        self._notices = notices
        self._clock = clock

    def handle(self, message: str, message_id: str) -> Outcome:
        alarm = parse_alarm(message)
        if alarm is None:
            return Outcome(None)
        if self._bundle is None:
            self._bundle = self._load_config()
        bundle = self._bundle
        decision = decide(alarm.name, alarm.new_state, bundle, alarm.dimension(DIM_TENANT))
        if decision is None:
            return Outcome(None)
        changed_at = alarm.changed_at.astimezone(UTC).isoformat()
        now = self._clock().astimezone(UTC).isoformat()
        action = None if decision.lift else decision.action
        try:
            before, actions = self._control.set_in_force(decision.tenant, decision.alarm, action, changed_at, now)
        except StaleChange:
            logger.info("older alarm change ignored", extra={"alarm": alarm.name, "message_id": message_id})
            return Outcome(decision, stale=True)
        if decision.lift and decision.alarm not in before and alarm.old_state != "ALARM":
            # An OK with nothing to lift (an alarm's first evaluation, INSUFFICIENT_DATA -> OK): no notice.
            return Outcome(None)
        state = in_force(actions)
        changes = tuple(
            self._keys(bundle).enforce(decision.tenant, throttled=state.throttled, suspended=state.suspended)
        )
        self._control.set_status(decision.tenant, state.status, list(state.by), changed_at if state.by else None)
        sk = action_sk(alarm.changed_at.astimezone(UTC), message_id)
        record: dict[str, Any] = {
            "tenant_id": decision.tenant,
            "profile": decision.profile,
            "alarm": decision.alarm,
            "state": alarm.new_state,
            "action": decision.action,
            "what": decision.verb,
            "status": state.status,
            "changes": list(changes),
            "reason": alarm.reason[:1000],
            "handled_at": now,
        }
        if not self._control.record_action(decision.tenant, sk, record):
            logger.info("alarm message already handled", extra={"alarm": alarm.name, "message_id": message_id})
            return Outcome(decision, state.status, changes, duplicate=True)
        tenant = bundle.tenant(decision.tenant)
        subject, text = notice(decision, state, tenant.display_name if tenant else None)
        notice_id = self._notices.publish(decision.tenant, subject, text)
        self._control.mark_notified(decision.tenant, sk, notice_id)
        logger.info("action", extra={**record, "message_id": message_id, "notice_id": notice_id})
        return Outcome(decision, state.status, changes)

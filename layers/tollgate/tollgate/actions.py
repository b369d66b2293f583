"""Actions on cost alarms: what a profile's BedrockTokenCostAlarm does to its tenant. Pure code.

A profile's ``on_cost_alarm`` (config.json: defaults < customer tier < tenant < profile) says
what its cost alarm does on ALARM: ``throttle`` (the tenant's API key moves to its plan's
throttled twin, tollgate.ratelimits), ``suspend`` (the key is disabled: API Gateway refuses it
with 403, no extra call per request) or ``notify`` (a notice only). OK lifts it.

A tenant with several profiles may have several alarms in ALARM: the STATUS item keeps the
action of each alarm in force, and what is applied is the strongest of them (suspend over
throttle over notify), so one profile's OK does not lift another profile's action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tollgate.alarms import COST_ALARM
from tollgate.config import ConfigBundle

Action = Literal["notify", "throttle", "suspend"]
_STRENGTH: dict[str, int] = {"notify": 0, "throttle": 1, "suspend": 2}

ALARM = "ALARM"
OK = "OK"

#: ControlTable keys (ISSUE10 design): the action log and the action in force, per tenant.
STATUS_SK = "STATUS"
#: On the STATUS item: one attribute per alarm in force (its action) and one per alarm seen (its last change).
IN_FORCE_PREFIX = "A#"
CHANGED_PREFIX = "T#"


class StaleChange(Exception):
    """The tenant's STATUS item saw a later change of this alarm: this message is older (out of order)."""


def action_pk(tenant: str) -> str:
    return f"ACTION#{tenant}"


def action_sk(changed_at: datetime, message_id: str) -> str:
    """The alarm's own change time (not the time of handling), so a redelivery has the same key."""
    return f"{changed_at.isoformat()}#{message_id}"


def status_pk(tenant: str) -> str:
    return f"STATUS#{tenant}"


def cost_alarm_profile(alarm_name: str) -> str | None:
    """The profile of a BedrockTokenCostAlarm-<profile>, None for any other alarm."""
    prefix = COST_ALARM.format(profile="")
    return alarm_name[len(prefix) :] if alarm_name.startswith(prefix) and len(alarm_name) > len(prefix) else None


@dataclass(frozen=True)
class Decision:
    """What one alarm state change does: ``action`` of ``profile``'s alarm is put in force, or lifted."""

    tenant: str
    profile: str
    alarm: str
    action: Action
    lift: bool  # True on OK

    @property
    def verb(self) -> str:
        if self.action == "notify":
            return "cost alarm cleared" if self.lift else "cost alarm fired"
        return f"{'lifted ' if self.lift else ''}{self.action}"


def decide(alarm_name: str, new_state: str, bundle: ConfigBundle, tenant_hint: str | None = None) -> Decision | None:
    """The decision for an alarm change; None when it is no cost alarm of a known profile, or
    INSUFFICIENT_DATA (which neither fires nor lifts).

    A profile no longer in config.json (removed while in ALARM): its tenant from the alarm's
    TenantId dimension (``tenant_hint``); on OK its action is lifted, on ALARM only notified.
    """
    profile = cost_alarm_profile(alarm_name)
    if profile is None or new_state not in (ALARM, OK):
        return None
    resolved = bundle.profile(profile)
    tenant = resolved.tenant_id if resolved else tenant_hint
    if not tenant:
        return None
    action: Action = resolved.on_cost_alarm if resolved else "notify"
    return Decision(tenant, profile, alarm_name, action, lift=new_state == OK)


@dataclass(frozen=True)
class InForce:
    """What the tenant's key must be, from the actions of the alarms in force."""

    throttled: bool
    suspended: bool
    by: tuple[str, ...]  # the alarms behind it

    @property
    def status(self) -> str:
        return "suspended" if self.suspended else "throttled" if self.throttled else "normal"


def in_force(actions: Mapping[str, str]) -> InForce:
    """The strongest action of the alarms in force (alarm name -> action)."""
    strongest = max((_STRENGTH.get(a, 0) for a in actions.values()), default=0)
    by = tuple(sorted(name for name, a in actions.items() if _STRENGTH.get(a, 0) == strongest and strongest))
    return InForce(throttled=strongest == 1, suspended=strongest == 2, by=by)


def notice(decision: Decision, state: InForce, display_name: str | None) -> tuple[str, str]:
    """The tenant's notice: subject and text."""
    who = display_name or decision.tenant
    if decision.lift:
        head = f"Tollgate: cost alarm of {decision.profile} cleared"
    else:
        head = f"Tollgate: cost alarm of {decision.profile} fired"
    what = {
        "notify": "No limit was changed.",
        "throttle": "Requests of your API keys are limited to the throttled rate of your plan.",
        "suspend": "Requests of your API keys are refused (403) until the alarm clears.",
    }
    lines = [
        f"Hello {who},",
        "",
        f"The cost alarm {decision.alarm} of your profile {decision.profile} is "
        f"{'OK again' if decision.lift else 'in ALARM'} (action: {decision.action}).",
        "" if decision.lift else what[decision.action],
        f"Status of tenant {decision.tenant} now: {state.status}"
        + (f" (by {', '.join(state.by)})" if state.by else "")
        + ".",
    ]
    return head[:100], "\n".join(line for line in lines if line is not None)

"""Scheduled functions under `make local`: every function of template.yaml with a ``Schedule`` event.

EventBridge invokes such a function with a "Scheduled Event" on its rule's rate; locally each is
invoked with the same event shape on one shared interval, ``TOLLGATE_SCHEDULE_INTERVAL`` seconds
(default 5: a deployed rate of minutes would make a local run wait for nothing). Generic: a new
scheduled function needs only its Schedule event in the template.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEFAULT_SCHEDULE_INTERVAL = 5.0


def schedule_interval(environ: Mapping[str, str] = os.environ) -> float:
    raw = environ.get("TOLLGATE_SCHEDULE_INTERVAL", "")
    if not raw:
        return DEFAULT_SCHEDULE_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ValueError(f"TOLLGATE_SCHEDULE_INTERVAL={raw!r}: give a positive number of seconds (default 5)")
    return value


def scheduled_functions(sam: Mapping[str, Any]) -> dict[str, list[str]]:
    """Logical id of each function with a Schedule event -> the names of those events."""
    found: dict[str, list[str]] = {}
    for logical, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = resource.get("Properties", {}).get("Events", {}) or {}
        names = [name for name, event in events.items() if event.get("Type") == "Schedule"]
        if names:
            found[logical] = names
    return found


def scheduled_event(rule: str, *, region: str, account_id: str, at: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target."""
    time = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": time,
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule}"],
        "detail": {},
    }


@dataclass
class ScheduledInvoker:
    """A Ticker task: invokes one scheduled function with its rule's event."""

    invoke: Callable[[dict[str, Any]], Any]
    rule: str
    region: str
    account_id: str

    def __call__(self) -> None:
        self.invoke(scheduled_event(self.rule, region=self.region, account_id=self.account_id))

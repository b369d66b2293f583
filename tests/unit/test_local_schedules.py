"""`make local` runs every function with a Schedule event of template.yaml, with EventBridge's event."""

from __future__ import annotations

import pytest
from tollgate_local.schedules import schedule_interval, scheduled_event, scheduled_functions
from tollgate_local.template import load_template


def test_every_scheduled_function_of_the_template_is_found() -> None:
    found = scheduled_functions(load_template())
    assert "BudgetWatcherFunction" in found
    assert "GatewayFunction" not in found


def test_the_event_is_eventbridges_scheduled_event() -> None:
    event = scheduled_event("tollgate-local-rule", region="us-east-1", account_id="123456789012")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/tollgate-local-rule"]


def test_the_local_interval_is_positive_seconds_and_a_bad_one_is_refused_clearly() -> None:
    assert schedule_interval({}) == 5.0
    assert schedule_interval({"TOLLGATE_SCHEDULE_INTERVAL": "0.5"}) == 0.5
    with pytest.raises(ValueError, match="TOLLGATE_SCHEDULE_INTERVAL='soon': give a positive number"):
        schedule_interval({"TOLLGATE_SCHEDULE_INTERVAL": "soon"})

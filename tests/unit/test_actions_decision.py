"""What a profile's cost alarm does to its tenant (tollgate.actions): the decision table."""

from __future__ import annotations

import pytest
from tollgate.actions import decide, in_force
from tollgate.config import ConfigBundle

from tests.conftest import REPO_ROOT

BUNDLE = ConfigBundle.load_dir(REPO_ROOT)


@pytest.mark.parametrize(
    ("alarm", "state", "expected"),
    [
        # acme: customer tier team -> throttle; initech: free -> suspend; globex: enterprise -> notify
        ("BedrockTokenCostAlarm-acme-chat", "ALARM", ("acme", "acme-chat", "throttle", False)),
        ("BedrockTokenCostAlarm-acme-chat", "OK", ("acme", "acme-chat", "throttle", True)),
        ("BedrockTokenCostAlarm-initech-coder", "ALARM", ("initech", "initech-coder", "suspend", False)),
        ("BedrockTokenCostAlarm-initech-coder", "OK", ("initech", "initech-coder", "suspend", True)),
        ("BedrockTokenCostAlarm-globex-reports", "ALARM", ("globex", "globex-reports", "notify", False)),
    ],
)
def test_a_cost_alarm_takes_its_profiles_resolved_action(alarm: str, state: str, expected: tuple) -> None:
    decision = decide(alarm, state, BUNDLE)
    assert decision is not None
    assert (decision.tenant, decision.profile, decision.action, decision.lift) == expected


@pytest.mark.parametrize(
    ("alarm", "state"),
    [
        ("BedrockTokensPerMinuteAlarm-acme-chat", "ALARM"),  # not a cost alarm: the notifier's only
        ("BedrockRequestsPerMinuteAlarm-acme-chat", "ALARM"),
        ("BedrockTokenCostAlarm-acme-chat", "INSUFFICIENT_DATA"),  # neither fires nor lifts
        ("BedrockTokenCostAlarm-", "ALARM"),
        ("NotificationFailureAlarm", "ALARM"),
    ],
)
def test_other_alarms_and_states_do_nothing(alarm: str, state: str) -> None:
    assert decide(alarm, state, BUNDLE) is None


def test_a_removed_profile_is_only_notified_on_alarm_and_still_lifted_on_ok() -> None:
    assert decide("BedrockTokenCostAlarm-gone", "ALARM", BUNDLE) is None  # whose? nobody says
    fired = decide("BedrockTokenCostAlarm-gone", "ALARM", BUNDLE, tenant_hint="acme")
    assert fired is not None
    assert (fired.tenant, fired.action) == ("acme", "notify")
    cleared = decide("BedrockTokenCostAlarm-gone", "OK", BUNDLE, tenant_hint="acme")
    assert cleared is not None
    assert cleared.lift


def test_the_strongest_action_in_force_applies_so_one_ok_does_not_lift_another_alarm() -> None:
    assert in_force({}).status == "normal"
    assert in_force({"a": "notify"}).status == "normal"
    both = in_force({"a": "throttle", "b": "suspend"})
    assert (both.suspended, both.throttled, both.by) == (True, False, ("b",))
    after_b_ok = in_force({"a": "throttle"})
    assert (after_b_ok.throttled, after_b_ok.suspended, after_b_ok.by) == (True, False, ("a",))

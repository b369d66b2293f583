"""Re-driving can never count a record twice: markers outlive every failed batch that can be re-driven."""

from __future__ import annotations

from datetime import timedelta

from tollgate.rollup import MARKER_TTL, REDRIVE_WINDOW
from tollgate_local.template import load_template


def test_markers_outlive_the_failure_queue_and_the_redrive_window() -> None:
    # Given the failure queue's retention as template.yaml sets it
    queue = load_template()["Resources"]["AggregationFailureQueue"]["Properties"]
    retention = timedelta(seconds=int(queue["MessageRetentionPeriod"]))

    # Then a failed batch can be re-driven for as long as its message exists, and the markers of
    # the records around it (aggregated before it failed) are still there by then, with a day to spare
    assert retention <= REDRIVE_WINDOW
    assert timedelta(days=1) <= MARKER_TTL - REDRIVE_WINDOW

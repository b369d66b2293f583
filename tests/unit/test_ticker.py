"""The local stack's ticker (SQS depth metrics, alarm evaluation): errors never stop it, stop is prompt."""

from __future__ import annotations

import threading
import time

import pytest
from tollgate_local.stack import Ticker


def test_a_failing_task_is_logged_and_the_others_and_later_ticks_still_run(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []
    twice = threading.Event()

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("moto went away")

    def evaluate() -> None:
        ran.append("evaluate")
        if ran.count("evaluate") == 2:
            twice.set()

    ticker = Ticker(0.01, [broken, evaluate], "test-ticker")
    ticker.start()
    try:
        assert twice.wait(timeout=5)
    finally:
        ticker.stop()
    assert ran[:4] == ["broken", "evaluate", "broken", "evaluate"]
    assert "periodic task failed" in caplog.text


def test_stop_does_not_wait_for_the_interval() -> None:
    started = threading.Event()
    ticker = Ticker(60, [started.set], "test-ticker")
    ticker.start()
    assert started.wait(timeout=5)
    begun = time.monotonic()
    ticker.stop()
    assert time.monotonic() - begun < 2

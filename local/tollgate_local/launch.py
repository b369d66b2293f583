"""`tollgate local` in a child process, for the end-to-end tests and the benchmarks.

The child gets no AWS_* variables from the caller (it sets its own endpoints), any free port,
its own state directory and a 1 s alarm interval. Its stderr goes to ``<state>/stderr.log``;
if it exits before writing local.json, the error carries the end of that log. On leaving the
context it is stopped (SIGTERM, then SIGKILL after 20 s) unless it was stopped already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollgate_local.template import REPO_ROOT

START_TIMEOUT = 90.0


class LaunchError(RuntimeError):
    """The local stack did not start."""


@dataclass(frozen=True)
class Launched:
    state: dict[str, Any]  # local.json
    state_dir: Path
    process: subprocess.Popen[bytes]
    startup_seconds: float


@contextmanager
def local_stack_process(state_dir: Path, *, alarm_interval: float = 1.0) -> Iterator[Launched]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TOLLGATE_ALARM_INTERVAL"] = str(alarm_interval)
    with (state_dir / "stderr.log").open("wb") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - our own CLI, by this interpreter
            [sys.executable, "-m", "tollgate_cli.main", "local", "--port", "0", "--state-dir", str(state_dir)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            state = _wait_for_state(process, state_dir)
            yield Launched(state, state_dir, process, time.monotonic() - started)
        finally:
            stop(process)


def _wait_for_state(process: subprocess.Popen[bytes], state_dir: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (state_dir / "stderr.log").read_text(errors="replace")[-2000:]
            raise LaunchError(f"`tollgate local` exited with {process.returncode}:\n{log}")
        try:
            loaded: dict[str, Any] = json.loads((state_dir / "local.json").read_text())
            return loaded
        except (FileNotFoundError, json.JSONDecodeError):  # not there yet, or being written
            time.sleep(0.1)
    raise LaunchError(f"`tollgate local` wrote no local.json within {START_TIMEOUT:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

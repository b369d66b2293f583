"""The Bedrock stand-in in a process of its own: ``python -m benchmarks.standin``.

Prints its URL on the first line of stdout and serves until stdin is closed. Out of the
measured process, its server threads' CPU and allocations (werkzeug's dev server, for one,
allocates a 10 MB read buffer to drain each finished connection) stay out of the figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tollgate_local.bedrock import BedrockStandIn
from tollgate_local.template import REPO_ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"


class StandInError(RuntimeError):
    pass


@contextmanager
def standin_process() -> Iterator[str]:
    """A stand-in process on a loopback port; yields its URL, ends it on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.standin"],
        cwd=REPO_ROOT, env=dict(os.environ), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        url = process.stdout.readline().decode().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise StandInError(f"the Bedrock stand-in did not start (exit code {process.poll()})")
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    server = BedrockStandIn(region=REGION, account_id=ACCOUNT).serve("127.0.0.1", 0)
    print(server.url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or exits)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cold start, as a proxy: each handler imported in a fresh interpreter, then its service built.

What Lambda's init phase does before the first event: import functions/<name>/app.py (and all
it imports), then, on the first event, build the service (config parsed, boto3 clients made).
Each sample is a new process, so nothing is cached between samples; the figure is the median.
No AWS call is made: building a client does not call AWS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass

from tollgate_local.template import REPO_ROOT

from benchmarks.report import heading, table

FUNCTIONS = ("authorizer", "gateway", "aggregator", "metering_recovery", "notifier", "provisioner")

_PROBE = r"""
import importlib.util, json, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
imported = time.perf_counter()
built = imported
if hasattr(module, "service"):
    module.service()
    built = time.perf_counter()
print(json.dumps({
    "import_s": imported - started,
    "service_s": built - imported,
    "modules": len(sys.modules),
    "boto3": "boto3" in sys.modules,
}))
"""

_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    "TOLLGATE_STACK": "bench",
    "TOLLGATE_CONFIG_DIR": str(REPO_ROOT),
    "USAGE_TABLE": "bench-usage",
    "TREND_TABLE": "bench-trends",
    "TENANT_TABLE": "bench-tenants",
    "METRICS_NAMESPACE": "Tollgate",
    "METERING_FALLBACK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-fallback",
    "ADMIN_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:bench-admin",
    "DASHBOARD_URL": "https://console.aws.amazon.com/cloudwatch/home#dashboards:name=bench",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}


@dataclass(frozen=True)
class ColdStart:
    function: str
    import_s: float
    service_s: float
    modules: int


def measure_cold_start(samples: int = 5) -> list[ColdStart]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(_ENV)
    results = []
    for function in FUNCTIONS:
        runs = []
        for _ in range(samples):
            done = subprocess.run(
                [sys.executable, "-c", _PROBE, function, str(REPO_ROOT / "functions" / function / "app.py")],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        results.append(
            ColdStart(
                function,
                statistics.median(r["import_s"] for r in runs),
                statistics.median(r["service_s"] for r in runs),
                int(statistics.median(r["modules"] for r in runs)),
            )
        )
    return results


def render_cold_start(results: list[ColdStart], samples: int) -> str:
    rows = [(r.function, f"{r.import_s * 1000:.0f} ms", f"{r.service_s * 1000:.0f} ms", r.modules) for r in results]
    return heading(
        f"Cold start proxy: handler import, then first service build (median of {samples} fresh processes)"
    ) + table(("function", "import app.py", "build service (config, clients)", "modules loaded"), rows)


if __name__ == "__main__":
    print(render_cold_start(measure_cold_start(), 5))

"""Each handler imports only what its own function uses (cold start), and one boto3 Session serves
all of a container's clients. Timings are in `make bench` (benchmarks/cold_start.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tollgate.adapters import aws_client, forget_shared_session

from tests.conftest import REPO_ROOT

_PROBE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("tollgate"))))
"""

#: What no function but the one named may load: the heavy or unrelated parts of the package.
OWN = {
    "tollgate.provisioning": "provisioner",
    "tollgate.adapters.lambda_layer": "provisioner",
    "tollgate.dashboard": "provisioner",
    "tollgate.services.notifier": "notifier",
    "tollgate.notifications": "notifier",
    "tollgate.adapters.sns": "notifier",
    "tollgate.services.gateway": "gateway",
    "tollgate.adapters.bedrock": "gateway",
    "tollgate.services.aggregator": "aggregator",
    "tollgate.adapters.emf": "aggregator",
    "tollgate.services.metering": "metering_recovery",
    "tollgate.services.authorizer": "authorizer",
}
SHARED_BY = {"tollgate.adapters.bedrock": {"gateway", "provisioner"}}


def loaded(function: str) -> set[str]:
    app = REPO_ROOT / "functions" / function / "app.py"
    done = subprocess.run([sys.executable, "-c", _PROBE, str(app)], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "function", ["authorizer", "gateway", "aggregator", "metering_recovery", "notifier", "provisioner"]
)
def test_a_handler_loads_no_other_functions_modules(function: str) -> None:
    modules = loaded(function)
    foreign = sorted(m for m in modules if m in OWN and function not in SHARED_BY.get(m, {OWN[m]}))
    assert foreign == [], f"functions/{function}/app.py loads {foreign}"


def test_every_client_of_a_container_comes_from_one_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3.session

    made: list[object] = []
    original = boto3.session.Session.__init__

    def counting(self: object, *args: object, **kwargs: object) -> None:
        made.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(boto3.session.Session, "__init__", counting)
    forget_shared_session()
    for service in ("dynamodb", "bedrock-runtime", "sqs", "dynamodb"):
        aws_client(service, "us-east-1")
    assert len(made) == 1

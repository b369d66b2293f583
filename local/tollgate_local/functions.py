"""Run the Lambda handlers of functions/ in this process, as Lambda would call them."""

from __future__ import annotations

import importlib.util
import itertools
import time
import uuid
from dataclasses import dataclass, field
from types import ModuleType

from tollgate_local.template import REPO_ROOT

FUNCTIONS_DIR = REPO_ROOT / "functions"
_counter = itertools.count()


def load_handler_module(name: str) -> ModuleType:
    """Import functions/<name>/app.py as a fresh module (its own caches, its own env reads)."""
    path = FUNCTIONS_DIR / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"tollgate_function_{name}_{next(_counter)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LocalLambdaContext:
    """The parts of Lambda's context object the handlers and Powertools use."""

    function_name: str
    timeout_seconds: float = 30.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    account_id: str = "123456789012"
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000), 0)

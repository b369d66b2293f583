"""What AWS calls cost while measuring: each botocore API call, and the CPU moto spends emulating them.

Calls are counted by wrapping ``BaseClient._make_api_call``; moto's share of the CPU by wrapping
its request interceptor (``BotocoreStubber.__call__``, where mock_aws answers a call in-process).
Both wrappers are in place only inside the ``with`` block.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import BotocoreStubber


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    params: dict[str, Any]
    error: str | None  # the error code when the call failed

    @property
    def name(self) -> str:
        return f"{self.service} {self.operation}"


@dataclass
class ApiCalls:
    """Every call made inside :func:`counting`, in order, and the thread CPU seconds moto spent on them."""

    calls: list[ApiCall] = field(default_factory=list)
    emulator_cpu: float = 0.0

    def __len__(self) -> int:
        return len(self.calls)

    def by_operation(self) -> Counter[str]:
        return Counter(call.name for call in self.calls)


@contextmanager
def counting() -> Iterator[ApiCalls]:
    """Record each botocore API call, and moto's CPU time, until the block ends."""
    recorded = ApiCalls()

    def counted(make_api_call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            try:
                result = make_api_call(client, operation_name, api_params)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                recorded.calls.append(ApiCall(service, operation_name, api_params, code or "unknown"))
                raise
            recorded.calls.append(ApiCall(service, operation_name, api_params, None))
            return result

        return wrapper

    def timed(intercept: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return intercept(*args, **kwargs)
            finally:
                recorded.emulator_cpu += time.thread_time() - started

        return wrapper

    with _patched(BaseClient, "_make_api_call", counted), _patched(BotocoreStubber, "__call__", timed):
        yield recorded


@contextmanager
def _patched(owner: type, name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    """``owner.name`` replaced by ``wrap(owner.name)`` inside the block."""
    original = owner.__dict__[name]
    setattr(owner, name, wrap(original))
    try:
        yield
    finally:
        setattr(owner, name, original)

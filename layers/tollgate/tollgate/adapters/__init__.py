"""AWS implementations of tollgate.ports (boto3 lives here and nowhere in the domain)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from tollgate.budget import ClientLimits

USER_AGENT = "tollgate/0.1"
DEFAULT_LIMITS = ClientLimits(connect_seconds=3, read_seconds=10, attempts=3)


def aws_client(service: str, region: str, *, limits: ClientLimits = DEFAULT_LIMITS) -> Any:
    """A boto3 client with explicit timeouts and attempts (botocore's standard retry mode).

    Endpoints follow the standard ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables,
    which is how the same code talks to the local emulator.
    """
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": limits.attempts},
            connect_timeout=limits.connect_seconds,
            read_timeout=limits.read_seconds,
            user_agent_extra=USER_AGENT,
        ),
    )

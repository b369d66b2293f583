"""AWS implementations of tollgate.ports (boto3 lives here and nowhere in the domain)."""

from __future__ import annotations

from typing import Any, Literal

import boto3
from botocore.config import Config

USER_AGENT = "tollgate/0.1"


def aws_client(
    service: str,
    region: str,
    *,
    max_attempts: int = 3,
    read_timeout: int = 10,
    retry_mode: Literal["standard", "adaptive"] = "standard",
    endpoint_url: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A boto3 client with explicit retries and timeouts.

    Endpoints follow the standard ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables,
    which is how the same code talks to the local emulator. ``retry_mode="adaptive"`` adds
    botocore's client-side rate limiting, which slows down to what a throttled API allows.
    ``endpoint_url`` and ``credentials`` (key id, secret) are for the CLI pointed at the local stack.
    """
    explicit: dict[str, str] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    if credentials:
        explicit.update(aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1])
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        **explicit,
        config=Config(
            retries={"mode": retry_mode, "total_max_attempts": max_attempts},
            connect_timeout=3,
            read_timeout=read_timeout,
            user_agent_extra=USER_AGENT,
        ),
    )

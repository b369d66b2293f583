"""AWS implementations of tollgate.ports (boto3 lives here and nowhere in the domain)."""

from __future__ import annotations

import threading
from typing import Any, Literal

import boto3
from botocore.config import Config

from tollgate.budget import ClientLimits

USER_AGENT = "tollgate/0.1"

_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def _shared_session() -> boto3.session.Session:
    """One boto3 Session per container: building one loads botocore's data (~75 ms each time).

    Credentials, region and endpoints still come from the environment (the endpoint variables are
    read when each client is made). A Session is not thread-safe: clients are made under a lock
    (the clients themselves are).
    """
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


def forget_shared_session() -> None:
    """The next client gets a new Session (tests that change AWS_PROFILE or credentials between cases)."""
    global _session
    with _session_lock:
        _session = None


DEFAULT_LIMITS = ClientLimits(connect_seconds=3, read_seconds=10, attempts=3)


def aws_client(
    service: str,
    region: str,
    *,
    limits: ClientLimits = DEFAULT_LIMITS,
    retry_mode: Literal["standard", "adaptive"] = "standard",
    endpoint_url: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A boto3 client with explicit timeouts and attempts.

    Endpoints follow the standard ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables,
    which is how the same code talks to the local emulator. ``retry_mode="adaptive"`` adds
    botocore's client-side rate limiting, which slows down to what a throttled API allows.
    ``endpoint_url`` and ``credentials`` (key id, secret) are for the CLI pointed at the local stack.
    """
    explicit: dict[str, str] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    if credentials:
        explicit.update(aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1])
    with _session_lock:
        return _shared_session().client(
            service,  # type: ignore[call-overload]
            region_name=region,
            **explicit,
            config=Config(
                retries={"mode": retry_mode, "total_max_attempts": limits.attempts},
                connect_timeout=limits.connect_seconds,
                read_timeout=limits.read_seconds,
                user_agent_extra=USER_AGENT,
            ),
        )

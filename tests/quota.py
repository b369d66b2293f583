"""CloudWatch's request-rate quotas, emulated in front of moto (which has none).

A token bucket per operation answers what AWS answers past the quota: HTTP 400 with error code
``Throttling``, in the protocol the client speaks (JSON, CBOR or query). Registered last on a client's
``before-send``, it sees a request when the client really sends it: after botocore's own
adaptive rate limiter has waited, and on every retry.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from botocore.awsrequest import AWSResponse

#: {"__type": "Throttling", "message": "Rate exceeded"} as JSON, as CBOR (written out by hand:
#: nothing at hand encodes a CBOR response) and as a query-protocol error.
_THROTTLED = {
    "json": (b'{"__type": "Throttling", "message": "Rate exceeded"}', "application/x-amz-json-1.0"),
    "cbor": (b"\xa2\x66__type\x6aThrottling\x67message\x6dRate exceeded", "application/cbor"),
    "query": (
        b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
        b"</Error><RequestId>emulated</RequestId></ErrorResponse>",
        "text/xml",
    ),
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class QuotaEmulator:
    """``rates``: operation name -> requests per second allowed (bucket as deep as one second's worth)."""

    def __init__(self, rates: dict[str, float], clock: Any = time.monotonic) -> None:
        self._rates = rates
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = {op: rate for op, rate in rates.items()}
        self._at = {op: clock() for op in rates}
        self.sent: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def install(self, client: Any) -> None:
        client.meta.events.register_last("before-send", self._before_send)

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]  # before-send.<service>.<operation>
        if operation not in self._rates:
            return None
        with self._lock:
            now = self._clock()
            rate = self._rates[operation]
            self._tokens[operation] = min(rate, self._tokens[operation] + (now - self._at[operation]) * rate)
            self._at[operation] = now
            self.sent[operation] += 1
            if self._tokens[operation] >= 1:
                self._tokens[operation] -= 1
                return None
            self.throttled[operation] += 1
        sent_as = str(request.headers.get("Content-Type", b"") or b"")
        kind = "cbor" if "cbor" in sent_as else "json" if "json" in sent_as else "query"
        body, content_type = _THROTTLED[kind]
        headers = {"content-type": content_type, "x-amzn-query-error": "Throttling;Sender"}
        if kind == "cbor":
            headers["smithy-protocol"] = "rpc-v2-cbor"
        return AWSResponse(request.url, 400, headers, _Raw(body))

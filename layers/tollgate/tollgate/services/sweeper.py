"""The sweeper: releases reservations whose request can no longer settle them (tollgate.ledger).

A reservation's ``release_at`` is the request's deadline plus a grace; past it, the gateway that
made it has answered or died. Releasing and settling race on the RES item's condition: exactly
one of them wins; a settle that lost books its cost late (tollgate.adapters.ledger).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from tollgate.ports import Ledger

logger = Logger(service="tollgate", child=True)


class SweeperService:
    def __init__(self, *, ledger: Ledger, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._ledger = ledger
        self._clock = clock

    def sweep(self) -> dict[str, Any]:
        now = self._clock()
        released, settled_meanwhile = [], 0
        for reservation in self._ledger.expired(now):
            if self._ledger.release(reservation, now):
                released.append(reservation)
                logger.warning(
                    "released an expired reservation",
                    extra={
                        "request_id": reservation.request_id,
                        "tenant_id": reservation.tenant_id,
                        "amount_pusd": reservation.amount_pusd,
                        "tokens": reservation.tokens,
                    },
                )
            else:
                settled_meanwhile += 1
        return {"released": len(released), "settled_meanwhile": settled_meanwhile}

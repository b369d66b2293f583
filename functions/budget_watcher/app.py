"""Budget watcher function: on a schedule, the budget alerts due (50/80/100 % and forecast), each once per period.

Invoked by an EventBridge schedule (template.yaml); the event carries nothing the watcher needs.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from tollgate.services.budget_watcher import BudgetWatcherService, summary
from tollgate.wiring.budget_watcher import budget_watcher_service

logger = Logger(service="tollgate")


@cache
def service() -> BudgetWatcherService:
    return budget_watcher_service()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"alerts": summary(service().run())}

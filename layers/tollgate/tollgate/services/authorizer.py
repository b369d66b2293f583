"""The Lambda authorizer: a bearer key in, a tenant (or a clear refusal) out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    parse_api_gateway_arn,
)

from tollgate.config import ConfigBundle
from tollgate.keys import KeyStatus, bearer_token, hash_key
from tollgate.ports import KeyStore

logger = Logger(service="tollgate", child=True)


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("Unauthorized")


class AuthorizerService:
    def __init__(self, *, keys: KeyStore, bundle: ConfigBundle):
        self._keys = keys
        self._bundle = bundle

    def authorize(self, authorization: str | None, method_arn: str) -> dict[str, Any]:
        """An IAM policy for API Gateway.

        Allowed keys get every route of the API (API Gateway caches the answer per key, so the
        policy must not depend on the path) with the tenant in the context. A missing or
        malformed header is a 401; an unknown or revoked key is a 403 whose message says why.
        """
        key = bearer_token(authorization)
        if key is None:
            raise Unauthorized()
        arn = parse_api_gateway_arn(method_arn)
        found = self._keys.find(hash_key(key))
        if found is None:
            return self._deny(arn, "the API key is not recognised; ask your administrator for a key")
        if found.status is KeyStatus.REVOKED:
            return self._deny(arn, f"the API key {found.key_id} has been revoked")
        if found.tenant_id not in self._bundle.config.tenants:
            return self._deny(arn, f"the API key {found.key_id} belongs to a tenant that no longer exists")
        logger.info("key accepted", extra={"tenant_id": found.tenant_id, "key_id": found.key_id})
        response = APIGatewayAuthorizerResponse(
            principal_id=found.tenant_id,
            region=arn.region,
            aws_account_id=arn.aws_account_id,
            api_id=arn.api_id,
            stage=arn.stage,
            context={"tenant_id": found.tenant_id, "key_id": found.key_id},
            # The tenant's usage-plan key, from the item just read: API Gateway meters and throttles
            # the request on that key's plan (ApiKeySourceType AUTHORIZER). None: refused (403)
            # by API Gateway, as the key is on no plan yet (the deploy gives every key one).
            usage_identifier_key=found.usage_key or None,
        )
        response.allow_all_routes()
        return response.asdict()

    @staticmethod
    def _deny(arn: Any, reason: str) -> dict[str, Any]:
        logger.info("key refused", extra={"reason": reason})
        response = APIGatewayAuthorizerResponse(
            principal_id="anonymous",
            region=arn.region,
            aws_account_id=arn.aws_account_id,
            api_id=arn.api_id,
            stage=arn.stage,
            context={"reason": reason},
        )
        response.deny_all_routes()
        return response.asdict()

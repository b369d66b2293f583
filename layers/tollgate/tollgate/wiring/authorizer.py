"""The authorizer function's service."""

from __future__ import annotations

from tollgate.adapters import aws_client
from tollgate.adapters.dynamodb import DynamoKeyStore
from tollgate.config import ConfigBundle
from tollgate.services.authorizer import AuthorizerService
from tollgate.settings import AuthorizerSettings


def authorizer_service() -> AuthorizerService:
    settings = AuthorizerSettings.from_env()
    return AuthorizerService(
        keys=DynamoKeyStore(aws_client("dynamodb", settings.region), settings.tenant_table),
        bundle=ConfigBundle.load_dir(settings.config_dir),
    )

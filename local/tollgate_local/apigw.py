"""API Gateway (REST API, Lambda proxy integration) events, shaped exactly as AWS sends them.

Used by the local HTTP front, and to write the sample events in events/ (so both agree).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

ACCOUNT_ID = "123456789012"
#: The error message with which a Lambda authorizer tells API Gateway to answer 401 (any other error is a 500).
UNAUTHORIZED = "Unauthorized"


def _multi(values: Mapping[str, str] | None) -> dict[str, list[str]] | None:
    return {k: [v] for k, v in values.items()} if values else None


def proxy_event(
    *,
    method: str,
    path: str,
    resource: str,
    path_parameters: Mapping[str, str] | None,
    headers: Mapping[str, str],
    body: str | None,
    authorizer: Mapping[str, Any] | None,
    stage: str = "prod",
    api_id: str = "tollgatelocal",
    region: str = "us-east-1",
    query: Mapping[str, str] | None = None,
    request_id: str | None = None,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    domain = f"{api_id}.execute-api.{region}.amazonaws.com"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": _multi(headers) or {},
        "queryStringParameters": dict(query) if query else None,
        "multiValueQueryStringParameters": _multi(query),
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "tg0001",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id[:16],
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": headers.get("User-Agent", headers.get("user-agent", "")),
                "user": None,
            },
            "domainName": domain,
            "deploymentId": "tgdeploy",
            "apiId": api_id,
            **({"authorizer": dict(authorizer)} if authorizer is not None else {}),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def token_authorizer_event(
    *, token: str, method: str, path: str, stage: str = "prod", api_id: str = "tollgatelocal", region: str = "us-east-1"
) -> dict[str, Any]:
    return {
        "type": "TOKEN",
        "authorizationToken": token,
        "methodArn": f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{api_id}/{stage}/{method}{path}",
    }


def authorizer_context(policy: Mapping[str, Any]) -> dict[str, Any]:
    """What API Gateway puts in requestContext.authorizer after an Allow: principalId and context."""
    return {"principalId": policy["principalId"], "integrationLatency": 0, **policy.get("context", {})}


def dumps(event: Mapping[str, Any]) -> str:
    return json.dumps(event, indent=2) + "\n"


def authorized_event(
    profile: str | None,
    tenant: str,
    body: Mapping[str, Any] | str,
    *,
    request_id: str,
    key_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A tenant's call as the authorizer lets it through to the gateway: POST /model/{profile}/converse,
    or POST /invoke when ``profile`` is None (the reference sample's route; the profile goes in headers)."""
    route = ("/invoke", "/invoke", None) if profile is None else (
        f"/model/{profile}/converse", "/model/{profile}/converse", {"profile": profile}
    )  # fmt: skip
    path, resource, path_parameters = route
    return proxy_event(
        method="POST",
        path=path,
        resource=resource,
        path_parameters=path_parameters,
        headers={"Content-Type": "application/json", **(headers or {})},
        body=body if isinstance(body, str) else json.dumps(body),
        authorizer={"principalId": tenant, "tenant_id": tenant, "key_id": key_id or f"{tenant}key01"},
        request_id=request_id,
    )

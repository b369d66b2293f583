"""The AWS Price List API (``pricing:GetProducts``): Bedrock's products for one region, as it answers.

The API has endpoints in a few regions only; us-east-1 serves every region's prices. The
endpoint follows ``AWS_ENDPOINT_URL_PRICING`` like every other client (tollgate.adapters.aws_client).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from tollgate.adapters import aws_client

from tollgate_cli.price_list import SERVICE_CODES

PRICING_REGION = "us-east-1"


class PriceListUnreachableError(RuntimeError):
    """The Price List API could not be asked (no network, no credentials, refused)."""


def fetch(region: str, client: Any = None) -> list[Any]:
    """Every PriceList entry of Bedrock's service codes whose regionCode is ``region``, all pages."""
    pricing = client if client is not None else aws_client("pricing", PRICING_REGION)
    entries: list[Any] = []
    try:
        for code in SERVICE_CODES:
            pages = pricing.get_paginator("get_products").paginate(
                ServiceCode=code,
                FormatVersion="aws_v1",
                Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}],
            )
            for page in pages:
                entries.extend(page.get("PriceList", []))
    except NoCredentialsError as error:
        raise PriceListUnreachableError(
            f"the AWS Price List API is not reachable: {error} (it needs AWS credentials allowed pricing:GetProducts)"
        ) from None
    except ClientError as error:
        raise PriceListUnreachableError(
            f"the AWS Price List API refused: {error.response.get('Error', {}).get('Message', error)} "
            "(the caller needs pricing:GetProducts)"
        ) from None
    except BotoCoreError as error:
        raise PriceListUnreachableError(f"the AWS Price List API is not reachable: {error}") from None
    return entries
